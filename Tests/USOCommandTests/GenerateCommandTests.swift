import Foundation
import ImageIO
import XCTest

/// `uso generate` as a user meets it: the real binary, the bundled DefaultModel, tiny sizes.
final class GenerateCommandTests: XCTestCase {
    private let fixtures = CommandRunner.packageRoot.appendingPathComponent("Tests/Fixtures/e2e")
    private var contentImage: String { fixtures.appendingPathComponent("content.png").path }
    private var styleImage: String { fixtures.appendingPathComponent("style.png").path }

    /// The reference's config file keys, in `inference.py`'s dataclass order.
    private let referenceConfigKeys = [
        "prompt", "image_paths", "eval_json_path", "offload", "num_images_per_prompt", "model_type", "width", "height",
        "num_steps", "guidance", "seed", "save_path", "only_lora", "concat_refs", "lora_rank", "pe", "content_ref",
        "ckpt_path", "use_siglip", "instruct_edit", "hf_download",
    ]

    // MARK: - Help and usage errors (no model needed)

    func testHelpDescribesTheReferenceOptionsAndExitsZero() throws {
        let outcome = try CommandRunner(["generate", "--help"]).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let help = outcome.standardOutput
        for expected in ["--prompt", "--image-paths", "--content", "--style", "--eval-json-path", "--from", "--width",
                         "--num-steps", "--guidance", "--seed", "--model-dir", "--model-type", "--dtype", "--save-path",
                         "--num-images-per-prompt", "Examples:", "Settings are taken in this order", "Exit status", "130"] {
            XCTAssertTrue(help.contains(expected), "help lacks \(expected):\n\(help)")
        }
        // Paragraphs are wrapped by the parser, not broken by hand into ragged lines.
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        let ragged = zip(lines, lines.dropFirst()).filter { line, next in
            !line.isEmpty && line.count < 60 && next.first?.isLowercase == true
        }
        XCTAssertTrue(ragged.isEmpty, "lines broken by hand: \(ragged.map(\.0))")
        // Option groups keep a long list readable.
        for group in ["INPUTS:", "SAMPLING:", "MODEL:", "OUTPUT:"] {
            XCTAssertTrue(help.uppercased().contains(group), "help lacks the group \(group)")
        }
    }

    func testUsageErrorsExit64WithAMessage() throws {
        let cases: [(arguments: [String], message: String)] = [
            (["--prompt", "p", "--no-such-flag"], "--no-such-flag"),
            (["--prompt", "p", "--num-steps", "0"], "--num-steps"),
            (["--prompt", "p", "--width", "5"], "--width"),
            (["--prompt", "p", "--image-paths", contentImage, "--content", contentImage], "not both"),
            (["--width", "64"], "--prompt"),
            (["--prompt", "p", "--instruct-edit"], "instruct edit"),
        ]
        for (arguments, message) in cases {
            let outcome = try CommandRunner(["generate"] + arguments).run()
            XCTAssertEqual(outcome.status, 64, "\(arguments): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.contains(message), "\(arguments): stderr lacks \(message): \(outcome.standardError)")
        }
    }

    // MARK: - Missing weights

    func testMissingModelFilesNameTheFileAndSuggestDownload() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        let withoutProjector = try linkedModelCopy(in: folder.appendingPathComponent("a"),
                                                   omitting: "USO/uso_flux_v1.0/projector.safetensors")
        let withoutT5Weights = try linkedModelCopy(in: folder.appendingPathComponent("b"), omitting: "t5-xxl/model.safetensors")
        for (model, missing) in [(withoutProjector, "projector.safetensors"), (withoutT5Weights, "t5-xxl")] {
            let outcome = try CommandRunner(["generate", "--prompt", "p", "--model-dir", model.path,
                                             "--save-path", folder.appendingPathComponent("out").path]
                                            + CommandRunner.tinySettings).run()
            XCTAssertEqual(outcome.status, 1, outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains(missing), outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains("uso download"), outcome.standardError)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    // MARK: - Outputs

    /// --save-path names files {i}_{j}; image j uses seed + j; the config JSON is the reference's;
    /// sizes that are not multiples of 16 are floored with a notice.
    func testSavePathNamingSeedsConfigAndFlooredSize() throws {
        let output = try CommandRunner.temporaryFolder(self).appendingPathComponent("run")
        let outcome = try CommandRunner(["generate", "--prompt", "a cat", "--content", contentImage, "--seed", "10",
                                         "--num-images-per-prompt", "2", "--width", "40", "--height", "36", "--num-steps", "2",
                                         "--content-ref", "32", "--lora-rank", "16", "--save-path", output.path]).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("40x36"), "no notice about flooring: \(outcome.standardError)")
        XCTAssertTrue(outcome.standardError.contains("32x32"), "no notice about flooring: \(outcome.standardError)")
        XCTAssertEqual(try visibleFiles(output), ["0_0.json", "0_0.png", "0_1.json", "0_1.png"])

        let first = try ImageFile.read(output.appendingPathComponent("0_0.png"))
        let second = try ImageFile.read(output.appendingPathComponent("0_1.png"))
        XCTAssertEqual([first.width, first.height], [32, 32])
        XCTAssertNotEqual(first.pixels, second.pixels, "seed and seed + 1 gave the same image")
        XCTAssertEqual(try metadata(output.appendingPathComponent("0_0.png"))["uso:seed"], "10")
        XCTAssertEqual(try metadata(output.appendingPathComponent("0_1.png"))["uso:seed"], "11")
        let parameters = try XCTUnwrap(try metadata(output.appendingPathComponent("0_0.png"))["parameters"])
        XCTAssertTrue(parameters.hasPrefix("a cat\nSteps: 2, Sampler: Euler, Seed: 10, Size: 32x32,"), parameters)

        for j in 0..<2 {
            let text = try String(contentsOf: output.appendingPathComponent("0_\(j).json"), encoding: .utf8)
            XCTAssertEqual(keysInOrder(text), referenceConfigKeys)
            XCTAssertFalse(text.hasSuffix("\n"), "json.dump writes no trailing newline")
            XCTAssertTrue(text.contains("\n    \"prompt\": \"a cat\",\n"), "not indented by 4 as json.dump(indent=4):\n\(text)")
            let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            XCTAssertEqual(config["prompt"] as? String, "a cat")
            XCTAssertEqual(config["image_paths"] as? [String], [contentImage])
            XCTAssertTrue(config["eval_json_path"] is NSNull)
            XCTAssertEqual(config["num_images_per_prompt"] as? Int, 2)
            XCTAssertEqual(config["model_type"] as? String, "flux-dev")
            XCTAssertEqual(config["width"] as? Int, 40, "the reference stores the width as given")
            XCTAssertEqual(config["height"] as? Int, 36)
            XCTAssertEqual(config["num_steps"] as? Int, 2)
            XCTAssertTrue(text.contains("\"guidance\": 4,"), "the dataclass default guidance is the integer 4:\n\(text)")
            XCTAssertEqual(config["seed"] as? Int, 10, "the reference stores the base seed")
            XCTAssertEqual(config["save_path"] as? String, output.path)
            XCTAssertEqual(config["lora_rank"] as? Int, 16)
            XCTAssertEqual(config["pe"] as? String, "d")
            XCTAssertEqual(config["content_ref"] as? Int, 32)
            XCTAssertTrue(config["ckpt_path"] is NSNull)
            for (key, value) in [("offload", false), ("only_lora", true), ("concat_refs", false), ("use_siglip", true),
                                 ("instruct_edit", false), ("hf_download", false)] {
                XCTAssertEqual(config[key] as? Bool, value, key)
            }
        }

        // --from re-runs the second image's settings; the --seed given beside it wins, so the result
        // is exactly the first image.
        let rerun = output.deletingLastPathComponent().appendingPathComponent("rerun")
        let again = try CommandRunner(["generate", "--from", output.appendingPathComponent("0_1.png").path, "--seed", "10",
                                       "--save-path", rerun.path]).run()
        XCTAssertEqual(again.status, 0, again.standardError)
        XCTAssertEqual(try ImageFile.read(rerun.appendingPathComponent("0_0.png")), first)
        let rerunConfig = try String(contentsOf: rerun.appendingPathComponent("0_0.json"), encoding: .utf8)
        XCTAssertTrue(rerunConfig.contains("\"prompt\": \"a cat\""), rerunConfig)
        XCTAssertTrue(rerunConfig.contains("\"num_steps\": 2,"), rerunConfig)
        XCTAssertTrue(rerunConfig.contains("\"seed\": 10,"), rerunConfig)
    }

    /// Without --save-path: outputs/YYYY-MM-DD/ under the current directory.
    func testDefaultOutputFolderIsDatedUnderTheWorkingDirectory() throws {
        let workingDirectory = try CommandRunner.temporaryFolder(self)
        let before = Self.dayStamp()
        let outcome = try CommandRunner(["generate", "--prompt", "", "--style", styleImage] + CommandRunner.tinySettings,
                                        in: workingDirectory).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        let days = Set([before, Self.dayStamp()])
        let outputs = workingDirectory.appendingPathComponent("outputs")
        let made = try FileManager.default.contentsOfDirectory(atPath: outputs.path)
        XCTAssertEqual(made.count, 1)
        XCTAssertTrue(days.contains(made[0]), "\(made) is not today's date \(days)")
        let files = try visibleFiles(outputs.appendingPathComponent(made[0]))
        XCTAssertEqual(files.filter { $0.hasSuffix(".png") }.count, 1, "\(files)")
        XCTAssertEqual(files.filter { $0.hasSuffix(".json") }.count, 1, "\(files)")
        XCTAssertTrue(outcome.standardError.contains("outputs/\(made[0])/"), outcome.standardError)
    }

    // MARK: - Bad input

    /// A usage error, found before any model loads.
    func testUnreadableContentImageFailsAndWritesNothing() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        let broken = folder.appendingPathComponent("broken.png")
        try Data("this is not an image".utf8).write(to: broken)
        let output = folder.appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--prompt", "p", "--content", broken.path, "--save-path", output.path]
                                        + CommandRunner.tinySettings).run()
        XCTAssertEqual(outcome.status, 64, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("error: cannot use the image \(broken.path)"), outcome.standardError)
        XCTAssertEqual(try visibleFiles(output, allowMissing: true), [])
        XCTAssertEqual(try hiddenFiles(output), [])
    }

    /// Entries are named {i}_{j}, or {save_dir}_{j}; each config records the batch file.
    func testBatchFileNamesAndConfigs() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("style.png"), to: folder.appendingPathComponent("style.png"))
        let batch: [[String: Any]] = [
            ["prompt": "first", "image_paths": ["", "style.png"]],
            ["prompt": "third", "image_paths": [""], "save_dir": "named"],
        ]
        let batchFile = folder.appendingPathComponent("batch.json")
        try JSONSerialization.data(withJSONObject: batch).write(to: batchFile)
        let output = folder.appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--eval-json-path", batchFile.path, "--save-path", output.path]
                                        + CommandRunner.tinySettings).run()
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertEqual(try visibleFiles(output), ["0_0.json", "0_0.png", "named_0.json", "named_0.png"])
        let config = try String(contentsOf: output.appendingPathComponent("named_0.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"prompt\": \"third\""), config)
        XCTAssertTrue(config.contains("\"eval_json_path\": \"\(batchFile.path)\""), config)
    }

    func testUnwritableOutputFolderIsAClearError() throws {
        let folder = try CommandRunner.temporaryFolder(self)
        // A regular file where a folder should be: not writable for anyone, root included.
        let blocker = folder.appendingPathComponent("file")
        try Data().write(to: blocker)
        let output = blocker.appendingPathComponent("out")
        let outcome = try CommandRunner(["generate", "--prompt", "p", "--save-path", output.path] + CommandRunner.tinySettings).run()
        XCTAssertEqual(outcome.status, 1, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("cannot write to \(output.path)"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("--save-path"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("denoising"), "the folder should be checked before generating")
    }

    /// Ctrl-C during denoising: exit 130, nothing written (no image, no config, no temporary file).
    func testInterruptDuringDenoisingExits130AndWritesNothing() throws {
        let output = try CommandRunner.temporaryFolder(self).appendingPathComponent("out")
        let running = try CommandRunner(["generate", "--prompt", "p", "--width", "64", "--height", "64", "--num-steps", "1000",
                                         "--save-path", output.path]).start()
        XCTAssertTrue(running.waitForStandardError(containing: "denoising", timeout: 60), running.standardErrorSoFar)
        Thread.sleep(forTimeInterval: 0.2)
        running.process.interrupt()
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { running.process.waitUntilExit(); stopped.signal() }
        if stopped.wait(timeout: .now() + 30) == .timedOut {
            running.process.terminate()
            XCTFail("uso kept running for 30 s after Ctrl-C")
        }
        let outcome = running.outcome()
        XCTAssertEqual(running.process.terminationReason, .exit)
        XCTAssertEqual(outcome.status, 130, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("cancelled"), outcome.standardError)
        XCTAssertEqual(try visibleFiles(output, allowMissing: true), [])
        XCTAssertEqual(try hiddenFiles(output), [])
    }

    // MARK: - Helpers

    /// A model folder whose files are symbolic links to DefaultModel's, without `omitted`.
    private func linkedModelCopy(in folder: URL, omitting omitted: String) throws -> URL {
        let source = CommandRunner.packageRoot.appendingPathComponent("DefaultModel")
        let manager = FileManager.default
        guard let walker = manager.enumerator(at: source, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw CocoaError(.fileReadNoSuchFile)
        }
        var linked = 0
        for case let file as URL in walker where try file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
            let relative = String(file.path.dropFirst(source.path.count + 1))
            let target = folder.appendingPathComponent(relative)
            try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if relative != omitted {
                try manager.createSymbolicLink(at: target, withDestinationURL: file)
                linked += 1
            }
        }
        XCTAssertGreaterThan(linked, 10, "DefaultModel/ is missing or incomplete")
        return folder
    }

    private func visibleFiles(_ folder: URL, allowMissing: Bool = false) throws -> [String] {
        if allowMissing && !FileManager.default.fileExists(atPath: folder.path) { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
    }

    private func hiddenFiles(_ folder: URL) throws -> [String] {
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".") }
    }

    private func metadata(_ png: URL) throws -> [String: String] {
        Dictionary(try ImageFile.readPNGText(png).map { ($0.key, $0.text) }, uniquingKeysWith: { first, _ in first })
    }

    /// Top-level keys of a JSON object as written, in order.
    private func keysInOrder(_ json: String) -> [String] {
        json.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("    \""), !line.hasPrefix("     ") else { return nil }
            return line.dropFirst(5).split(separator: "\"", maxSplits: 1).first.map(String.init)
        }
    }

    private static func dayStamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: Date())
    }
}
