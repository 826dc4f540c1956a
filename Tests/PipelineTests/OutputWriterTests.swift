import XCTest
import ImageIO
@testable import Pipeline

/// File names from a batch file's `save_dir`: subfolders are made, the folder is never left.
final class OutputWriterTests: XCTestCase {
    func testStemsMayNameSubfolders() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("uso-writer-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let request = GenerationRequest(prompt: "p")
        let result = GenerationResult(image: try RGBImage(width: 16, height: 16, red: 1, green: 2, blue: 3), request: request, seconds: 0)
        let png = try OutputWriter(directory: folder).write(result, record: RunRecord(request: request, savePath: folder.path),
                                                            stem: "sub/layout_0")
        XCTAssertEqual(png, folder.appendingPathComponent("sub/layout_0.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: png.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sub/layout_0.json").path))
    }

    func testNamesLeavingTheFolderAreRefused() {
        for name in ["../../x", "..", "sub/../../x", "/tmp/x"] {
            XCTAssertThrowsError(try OutputWriter.checkRelativeName(name), name) { error in
                XCTAssertTrue("\(error)".contains("outside the output folder"), "\(error)")
            }
        }
        for name in ["layout", "sub/layout", "a/b/c", "x..y"] {
            XCTAssertNoThrow(try OutputWriter.checkRelativeName(name), name)
        }
    }
}
