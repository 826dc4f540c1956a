import Foundation
import ImageIO
import XCTest

/// The reference CLI's spellings (`inference.py` through HfArgumentParser) and the usage errors
/// that must be found before a model loads: the real binary, the bundled model, tiny sizes.
final class ReferenceFormsTests: XCTestCase {
    private let fixtures = CommandRunner.packageRoot.appendingPathComponent("Tests/Fixtures/e2e")
    private var contentImage: String { fixtures.appendingPathComponent("content.png").path }
    private var styleImage: String { fixtures.appendingPathComponent("style.png").path }
    private let tiny = ["--width", "32", "--height", "32", "--num_steps", "2", "--content_ref", "32"]

    /// HfArgumentParser's booleans (`--flag`, `--flag true|false|yes|no|1|0`, `--no_flag`),
    /// underscore spellings, `--hf_download` and `--seed -1`, which draws torch's noise for 2^64 - 1.
    func testReferenceBooleansAndSeedMinusOne() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        let reference = folder.appendingPathComponent("reference")
        let outcome = try CommandRunner(["generate", "--prompt", "p", "--image_paths", "", styleImage, "--seed", "-1",
                                         "--offload", "true", "--concat_refs", "false", "--only_lora", "yes",
                                         "--use_siglip", "0", "--instruct_edit", "false", "--hf_download",
                                         "--save_path", reference.path] + tiny).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("uso download"), outcome.standardError)
        let config = try jsonObject(reference.appendingPathComponent("0_0.json"))
        XCTAssertEqual(config["seed"] as? Int, -1, "the reference records the seed as given")
        for (key, value) in [("offload", true), ("concat_refs", false), ("only_lora", true), ("use_siglip", false),
                             ("instruct_edit", false), ("hf_download", true)] {
            XCTAssertEqual(config[key] as? Bool, value, key)
        }
        XCTAssertEqual(try visibleFiles(reference), ["0_0.json", "0_0.png"], "--concat_refs false writes no strip")

        // The same noise as the unsigned spelling; --no_use_siglip is --use_siglip false.
        let unsigned = folder.appendingPathComponent("unsigned")
        let again = try CommandRunner(["generate", "--prompt", "p", "--image-paths", "", styleImage,
                                       "--seed", "18446744073709551615", "--no_use_siglip", "--offload=1",
                                       "--save-path", unsigned.path] + tiny).run()
        XCTAssertEqual(again.status, 0, again.standardError)
        XCTAssertEqual(try ImageFile.read(unsigned.appendingPathComponent("0_0.png")),
                       try ImageFile.read(reference.appendingPathComponent("0_0.png")))
        XCTAssertEqual(try jsonObject(unsigned.appendingPathComponent("0_0.json"))["use_siglip"] as? Bool, false)
    }

    func testBadBooleanAndSeedSpellingsAreUsageErrors() throws {
        for (arguments, message) in [(["--offload=maybe"], "maybe"), (["--seed", "1e3"], "--seed"),
                                     (["--seed", "18446744073709551616"], "--seed")] {
            let outcome = try CommandRunner(["generate", "--prompt", "p"] + arguments).run()
            XCTAssertEqual(outcome.status, 64, "\(arguments): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.contains(message), "\(arguments): \(outcome.standardError)")
        }
    }

    /// Everything wrong with the settings or the images is reported before any model loads.
    func testUsageErrorsAreFoundBeforeTheModelLoads() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        let broken = folder.appendingPathComponent("broken.png")
        try Data("not an image".utf8).write(to: broken)
        let thin = folder.appendingPathComponent("thin.png")
        try ImageFile.write(try RGBImage(width: 300, height: 8, red: 9, green: 9, blue: 9), to: thin, as: .png())
        let output = folder.appendingPathComponent("out")
        let cases: [(arguments: [String], message: String)] = [
            (["--guidance", "nan"], "--guidance must be a finite number from 0 to 100, got nan"),
            (["--guidance", "inf"], "--guidance must be a finite number"),
            (["--guidance", "1e308"], "--guidance must be a finite number"),
            (["--guidance", "-0.5"], "--guidance"),
            (["--content", folder.appendingPathComponent("missing.png").path], "missing.png"),
            (["--style", contentImage, "--style", broken.path], "cannot use the image \(broken.path)"),
            (["--content", thin.path], "300x8"),
            (["--content-ref", "8"], "--content-ref must be from 16 to 2048"),
            (["--instruct_edit", "true"], "instruct edit"),
        ]
        for (arguments, message) in cases {
            let outcome = try CommandRunner(["generate", "--prompt", "p", "--save-path", output.path] + arguments).run()
            XCTAssertEqual(outcome.status, 64, "\(arguments): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.contains(message), "\(arguments): stderr lacks \(message): \(outcome.standardError)")
            XCTAssertFalse(outcome.standardError.contains("loading model"), "\(arguments): checked only after loading")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path))
    }

    /// A batch is checked whole first: a bad entry stops the run before anything is generated.
    func testBatchEntriesAreCheckedBeforeAnyIsGenerated() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("style.png"), to: folder.appendingPathComponent("style.png"))
        let output = folder.appendingPathComponent("out")
        let cases: [(entry: [String: Any], message: String)] = [
            (["prompt": "second", "image_paths": ["missing.png"]], "entry 1: cannot use the image"),
            (["prompt": "second", "image_paths": [""], "save_dir": "../../x"], "entry 1: save_dir \"../../x\" leads outside"),
            (["prompt": "second", "image_paths": ["", "style.png"], "save_dir": "/tmp/x"], "entry 1: save_dir"),
        ]
        for (entry, message) in cases {
            let batch = folder.appendingPathComponent("batch.json")
            try JSONSerialization.data(withJSONObject: [["prompt": "first", "image_paths": ["", "style.png"]], entry]).write(to: batch)
            let outcome = try CommandRunner(["generate", "--eval_json_path", batch.path, "--save_path", output.path] + tiny).run()
            XCTAssertEqual(outcome.status, 64, outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains(message), "stderr lacks \(message): \(outcome.standardError)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "entry 0 was generated before entry 1 was checked")
        }
    }

    /// `save_dir` may name subfolders (the reference makes them) and counts without --save-path too.
    func testBatchSaveDirWithSubfoldersWithAndWithoutSavePath() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("style.png"), to: folder.appendingPathComponent("style.png"))
        let batch = folder.appendingPathComponent("batch.json")
        try JSONSerialization.data(withJSONObject: [["prompt": "p", "image_paths": ["", "style.png"], "save_dir": "sub/layout"]])
            .write(to: batch)

        let output = folder.appendingPathComponent("out")
        let withPath = try CommandRunner(["generate", "--eval-json-path", batch.path, "--save-path", output.path] + tiny).run()
        XCTAssertEqual(withPath.status, 0, withPath.standardError)
        XCTAssertEqual(try visibleFiles(output.appendingPathComponent("sub")), ["layout_0.json", "layout_0.png"])

        let workingDirectory = folder.appendingPathComponent("cwd")
        try FileManager.default.createDirectory(at: workingDirectory, withIntermediateDirectories: true)
        let dated = try CommandRunner(["generate", "--eval-json-path", batch.path] + tiny, in: workingDirectory).run()
        XCTAssertEqual(dated.status, 0, dated.standardError)
        let outputs = workingDirectory.appendingPathComponent("outputs")
        let days = try visibleFiles(outputs)
        XCTAssertEqual(days.count, 1)
        XCTAssertEqual(try visibleFiles(outputs.appendingPathComponent("\(days[0])/sub")), ["layout_0.json", "layout_0.png"])
    }

    /// More than two style images pass the command line (the reference takes every image after the
    /// content as a style); whether they generate is the pipeline's matter.
    func testAnyNumberOfStyleImagesReachTheRequest() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        let output = folder.appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--prompt", "p", "--style", styleImage, "--style", styleImage,
                                         "--style", styleImage, "--save-path", output.path] + tiny).run()
        XCTAssertFalse(outcome.standardError.contains("at most two --style"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("loading model"), "refused by the command line: \(outcome.standardError)")
    }

    /// On the bundled model (made at 128) an instruct edit scales the content reference by 128 /
    /// content_ref, not the reference's 1024 / content_ref.
    func testInstructEditOnTheBundledModelUsesItsBase() throws {
        let output = try CommandRunner.temporaryFolder(self).appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--prompt", "", "--content", contentImage, "--instruct-edit",
                                         "--content-ref", "32", "--num-steps", "1", "--save-path", output.path]).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let image = try ImageFile.read(output.appendingPathComponent("0_0.png"))
        // content.png is 96x80: 32x16 after preprocessing, x 128/32.
        XCTAssertEqual([image.width, image.height], [128, 64])
        let config = try jsonObject(output.appendingPathComponent("0_0.json"))
        XCTAssertEqual(config["instruct_edit"] as? Bool, true)
        XCTAssertEqual([config["width"] as? Int, config["height"] as? Int], [128, 64])
    }

    /// The config file records the rank of the LoRA used (the bundled one is rank 16).
    func testConfigRecordsTheLoadedLoRARank() throws {
        let output = try CommandRunner.temporaryFolder(self).appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--prompt", "p", "--save-path", output.path] + tiny).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertEqual(try jsonObject(output.appendingPathComponent("0_0.json"))["lora_rank"] as? Int, 16)
    }

    /// Help shows the defaults in effect: the reference's and the bundled model's own.
    func testHelpShowsTheBundledModelsDefaults() throws {
        let outcome = try CommandRunner(["generate", "--help"]).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let help = outcome.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for expected in ["Default: 1024, or the model set's own (bundled uso-mini: 128)",
                         "Default: 25, or the model set's own (bundled uso-mini: 12)",
                         "Default: 512, or the model set's own (bundled uso-mini: 128)"] {
            XCTAssertTrue(help.contains(expected), "help lacks \(expected):\n\(outcome.standardOutput)")
        }
        XCTAssertFalse(help.contains("Default 1024."), help)
    }

    // MARK: - Helpers

    private func jsonObject(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func visibleFiles(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
    }
}
