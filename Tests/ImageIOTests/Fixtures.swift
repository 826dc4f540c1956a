import Foundation
import XCTest
@testable import ImageIO

/// Tests/Fixtures/images, written by tools/fixtures/images.py, and its manifest.
enum Fixtures {
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/images")
    }()

    static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    static func data(_ relative: String) throws -> Data { try Data(contentsOf: url(relative)) }

    static func bytes(_ relative: String) throws -> [UInt8] { [UInt8](try data(relative)) }

    static func floats(_ relative: String) throws -> [Float] {
        try data(relative).withUnsafeBytes { raw in
            (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    static let manifest: [String: Any] = {
        guard let data = try? Data(contentsOf: url("manifest.json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }()

    static var tensors: [String: Any] { manifest["tensors"] as? [String: Any] ?? [:] }

    static func cases(_ section: String) -> [[String: Any]] { manifest[section] as? [[String: Any]] ?? [] }
}

/// How far two byte buffers are apart.
struct ByteComparison: CustomStringConvertible {
    let maxDifference: Int
    let mismatches: Int
    let count: Int

    init(_ actual: [UInt8], _ expected: [UInt8]) {
        count = expected.count
        var maxDifference = actual.count == expected.count ? 0 : Int.max
        var mismatches = 0
        for (a, b) in zip(actual, expected) where a != b {
            mismatches += 1
            maxDifference = max(maxDifference, abs(Int(a) - Int(b)))
        }
        self.maxDifference = maxDifference
        self.mismatches = mismatches
    }

    var description: String { "max difference \(maxDifference), \(mismatches) of \(count) bytes differ" }
}

extension XCTestCase {
    /// Asserts that `expression` throws an `ImageError` whose underlying case satisfies `matches`.
    func assertImageError(_ expression: @autoclosure () throws -> some Any, _ what: String,
                          file: StaticString = #filePath, line: UInt = #line, _ matches: (ImageError) -> Bool) {
        do {
            _ = try expression()
            XCTFail("\(what): expected an error", file: file, line: line)
        } catch let error as ImageError {
            XCTAssertTrue(matches(error.underlying), "\(what): unexpected error \(error)", file: file, line: line)
            XCTAssertFalse(error.description.isEmpty, file: file, line: line)
        } catch {
            XCTFail("\(what): not an ImageError: \(error)", file: file, line: line)
        }
    }
}
