import Foundation
import XCTest
@testable import WebServer

final class UploadFolderTests: XCTestCase {
    /// Upload folders of servers that were killed are removed by the next server; those of running
    /// servers, and folders named otherwise, are not.
    func testAbandonedUploadFoldersAreRemoved() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("uso-upload-parent-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: parent) }
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let names = (
            abandoned: "uso-serve-\(finished.processIdentifier)-\(UUID().uuidString.lowercased())",
            running: "uso-serve-\(getpid())-\(UUID().uuidString.lowercased())",
            oldStyle: "uso-serve-\(UUID().uuidString.lowercased())",
            other: "uso-serve-test-\(UUID().uuidString)")
        for name in [names.abandoned, names.running, names.oldStyle, names.other] {
            let folder = parent.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("upload".utf8).write(to: folder.appendingPathComponent("job-content.png"))
        }
        let uploads = try UploadFolder(parent: parent)
        defer { uploads.removeAll() }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: parent.path))
        XCTAssertEqual(left, [names.running, names.oldStyle, names.other, uploads.url.lastPathComponent])
        XCTAssertTrue(uploads.url.lastPathComponent.hasPrefix("uso-serve-\(getpid())-"))
    }
}
