import Foundation
import TensorEngine
import XCTest
@testable import WeightFiles

/// Paths and expected contents of Tests/Fixtures/weights (written by tools/fixtures/weights.py).
enum Fixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/weights")
    }()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    struct ExpectedTensor: Decodable {
        let dtype: String
        let shape: [Int]
        let hex: String
    }

    struct ExpectedSkipped: Decodable {
        let storedType: String
        let shape: [Int]
    }

    struct ExpectedFile: Decodable {
        let tensors: [String: ExpectedTensor]
        let skipped: [String: ExpectedSkipped]
    }

    static let expected: [String: ExpectedFile] = {
        do {
            let data = try Data(contentsOf: root.appendingPathComponent("expected.json"))
            return try JSONDecoder().decode([String: ExpectedFile].self, from: data)
        } catch {
            XCTFail("cannot read expected.json: \(error)")
            return [:]
        }
    }()
}

/// Raw bytes of a tensor as stored.
func storedBytes(_ tensor: Tensor) -> [UInt8] {
    [UInt8](UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount))
}

func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Checks that `source` holds exactly the tensors listed for `fixture` in expected.json, with the
/// same dtype, shape and bytes, and lists the same skipped tensors.
func assertHoldsExpectedTensors(_ source: WeightSource, fixture: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let expected = try XCTUnwrap(Fixtures.expected[fixture], "no expectations for \(fixture)", file: file, line: line)
    XCTAssertEqual(source.keys, expected.tensors.keys.sorted(), fixture, file: file, line: line)
    for (key, want) in expected.tensors {
        let info = try XCTUnwrap(source.info(key), "\(fixture): no info for \(key)", file: file, line: line)
        XCTAssertEqual(info.dtype.rawValue, want.dtype, "\(fixture): \(key)", file: file, line: line)
        XCTAssertEqual(info.shape, want.shape, "\(fixture): \(key)", file: file, line: line)
        let tensor = try source.tensor(key)
        XCTAssertEqual(tensor.shape, want.shape, "\(fixture): \(key)", file: file, line: line)
        XCTAssertEqual(tensor.dtype.rawValue, want.dtype, "\(fixture): \(key)", file: file, line: line)
        XCTAssertEqual(storedBytes(tensor), bytes(hex: want.hex), "\(fixture): bytes of \(key)", file: file, line: line)
        XCTAssertEqual(Int(bitPattern: tensor.rawPointer) % tensor.dtype.byteSize, 0, "\(fixture): \(key) misaligned", file: file, line: line)
    }
    XCTAssertEqual(source.skippedTensors.map(\.key), expected.skipped.keys.sorted(), fixture, file: file, line: line)
    for skipped in source.skippedTensors {
        XCTAssertEqual(skipped.storedType, expected.skipped[skipped.key]?.storedType, "\(fixture): \(skipped.key)", file: file, line: line)
        XCTAssertEqual(skipped.shape, expected.skipped[skipped.key]?.shape, "\(fixture): \(skipped.key)", file: file, line: line)
    }
}

/// Asserts that `body` throws a `WeightError` whose case matches and whose message contains every
/// string of `mentions` (typically the file and the tensor name).
func assertWeightError(_ body: @autoclosure () throws -> Any, _ matches: (WeightError) -> Bool, mentions: [String] = [],
                       file: StaticString = #filePath, line: UInt = #line) {
    do {
        let value = try body()
        XCTFail("expected a WeightError, got \(value)", file: file, line: line)
    } catch let error as WeightError {
        XCTAssertTrue(matches(error), "unexpected error: \(error)", file: file, line: line)
        for text in mentions {
            XCTAssertTrue(error.description.contains(text), "'\(error)' does not mention '\(text)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a WeightError, got \(error)", file: file, line: line)
    }
}

extension WeightError {
    var isMalformedHeader: Bool { if case .malformedHeader = self { true } else { false } }
    var isBadTensorData: Bool { if case .badTensorData = self { true } else { false } }
    var isUnknownDType: Bool { if case .unknownDType = self { true } else { false } }
    var isUnsupportedFormat: Bool { if case .unsupportedFormat = self { true } else { false } }
    var isUnsafePickle: Bool { if case .unsafePickle = self { true } else { false } }
    var isFileNotFound: Bool { if case .fileNotFound = self { true } else { false } }
    var isUnreadable: Bool { if case .unreadable = self { true } else { false } }
}

/// The little-endian bytes of an integer, as both formats store their lengths.
func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

/// A safetensors file: the header length, `header` padded with spaces to `headerLength` bytes (as the
/// format allows), then `data`.
func safetensorsBytes(header: String, headerLength: Int? = nil, data: [UInt8]) -> [UInt8] {
    let json = Array(header.utf8)
    let padded = json + [UInt8](repeating: UInt8(ascii: " "), count: max(0, (headerLength ?? json.count) - json.count))
    return littleEndianBytes(UInt64(padded.count)) + padded + data
}

extension XCTestCase {
    /// Writes `bytes` to a file called `name` in a temporary folder that is removed after the test.
    func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("uso-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}
