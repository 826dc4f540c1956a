import Foundation
import TensorEngine
import XCTest
@testable import WeightFiles

final class SafetensorsTests: XCTestCase {
    func testEveryDTypeLoadsBitExactly() throws {
        let file = try SafetensorsFile(path: Fixtures.path("good/dtypes.safetensors"))
        try assertHoldsExpectedTensors(file, fixture: "good/dtypes.safetensors")
        XCTAssertEqual(file.metadata["made_by"], "tools/fixtures/weights.py")
        // Every float type; I8 (quantized weights) is read in FluxInt8Tests' converted checkpoints.
        XCTAssertEqual(Set(file.keys.compactMap { file.info($0)?.dtype }), Set(DType.allCases).subtracting([.i8]))
    }

    func testInt64TensorIsListedAsSkippedAndRefusedByName() throws {
        let file = try SafetensorsFile(path: Fixtures.path("good/dtypes.safetensors"))
        XCTAssertEqual(file.skippedTensors, [SkippedTensor(key: "position_ids", storedType: "I64", shape: [1, 7], byteCount: 56)])
        XCTAssertNil(file.info("position_ids"))
        assertWeightError(try file.tensor("position_ids"), \.isUnknownDType, mentions: ["position_ids", "I64"])
        assertWeightError(try file.tensor("no.such.key"), { $0 == .missingKey("no.such.key") })
    }

    func testTensorsAreViewsOfTheMappedFile() throws {
        let file = try SafetensorsFile(path: Fixtures.path("good/dtypes.safetensors"))
        let first = try file.tensor("bf16.random"), second = try file.tensor("bf16.random")
        XCTAssertEqual(first.rawPointer, second.rawPointer, "two reads of one tensor share the mapped bytes")
    }

    func testMisalignedDataIsCopiedToAlignedMemory() throws {
        let file = try SafetensorsFile(path: Fixtures.path("good/unaligned.safetensors"))
        try assertHoldsExpectedTensors(file, fixture: "good/unaligned.safetensors")
    }

    func testWriterRoundTrip() throws {
        let path = NSTemporaryDirectory() + "uso-roundtrip-\(getpid()).safetensors"
        defer { unlink(path) }
        let tensors = ["a": Tensor([1, -2, 3.5, 0], shape: [2, 2]), "b": Tensor([0.1, 0.2, 0.3], shape: [3], dtype: .bf16)]
        try writeSafetensors(tensors, to: path, metadata: ["note": "x"])
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.keys, ["a", "b"])
        XCTAssertEqual(file.metadata, ["note": "x"])
        for (key, tensor) in tensors { XCTAssertEqual(storedBytes(try file.tensor(key)), storedBytes(tensor), key) }
    }

    /// Mapping is lazy: an 8 GB file (sparse, nothing on disk) opens without reading its data.
    func testHugeFileOpensWithoutReadingData() throws {
        let path = NSTemporaryDirectory() + "uso-huge-\(getpid()).safetensors"
        defer { unlink(path) }
        let elements = 1 << 32
        var header = Array(#"{"embedding": {"dtype": "BF16", "shape": [1048576, 4096], "data_offsets": [0, \#(2 * elements)]}}"#.utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)  // aligned data, as writers pad it
        var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { [UInt8]($0) } + header
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(prefix)))
        XCTAssertEqual(truncate(path, off_t(prefix.count + 2 * elements)), 0)
        prefix.removeAll()
        let start = Date()
        let file = try SafetensorsFile(path: path)
        let tensor = try file.tensor("embedding")
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
        XCTAssertEqual(tensor.shape, [1_048_576, 4096])
        XCTAssertEqual(tensor.rows(1_048_575..<1_048_576).toFloats().reduce(0, +), 0, "a hole reads as zeros")
    }

    // MARK: Bad input

    func testMissingFileFolderAndFIFO() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/absent.safetensors")), \.isFileNotFound, mentions: ["absent.safetensors"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("good/sharded")), \.isUnreadable, mentions: ["sharded", "folder"])
        let fifo = NSTemporaryDirectory() + "uso-fifo-\(getpid())"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { unlink(fifo) }
        assertWeightError(try SafetensorsFile(path: fifo), \.isUnreadable, mentions: ["not a regular file"])
    }

    func testEmptyAndShortFiles() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/empty.safetensors")), \.isMalformedHeader, mentions: ["empty.safetensors", "empty"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/too_short.safetensors")), \.isMalformedHeader, mentions: ["too_short", "8-byte"])
    }

    func testTruncatedFile() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/truncated.safetensors")), \.isMalformedHeader,
                          mentions: ["truncated.safetensors", "past the end"])
        // Cut in the data: the last tensor's bytes are missing, and the error names it.
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/truncated_data.safetensors")), \.isBadTensorData,
                          mentions: ["truncated_data.safetensors", "outside the data"])
    }

    func testHeaderLengthBeyondTheFile() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/header_past_end.safetensors")), \.isMalformedHeader,
                          mentions: ["header_past_end", "4096", "past the end"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/header_length_huge.safetensors")), \.isMalformedHeader,
                          mentions: ["18446744073709551615"])
    }

    func testMalformedJSON() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/bad_json.safetensors")), \.isMalformedHeader, mentions: ["bad_json", "JSON"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/not_object.safetensors")), \.isMalformedHeader, mentions: ["not_object", "JSON object"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/bad_metadata.safetensors")), \.isMalformedHeader, mentions: ["__metadata__"])
    }

    func testMalformedEntriesNameTheTensor() {
        for name in ["fractional_shape", "huge_shape_value", "missing_field", "three_offsets"] {
            assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/\(name).safetensors")), \.isBadTensorData, mentions: ["\(name).safetensors", "'w'"])
        }
    }

    func testUnknownDType() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/unknown_dtype.safetensors")), \.isUnknownDType,
                          mentions: ["unknown_dtype.safetensors", "'w'", "F17"])
    }

    func testOffsetsOutOfRangeOrOverlapping() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/out_of_range.safetensors")), \.isBadTensorData, mentions: ["'w'", "outside"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/negative_offset.safetensors")), \.isBadTensorData, mentions: ["'w'", "outside"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/overlapping.safetensors")), \.isBadTensorData, mentions: ["'b'", "overlap", "'a'"])
    }

    func testShapeSizeMismatchAndOverflow() {
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/size_mismatch.safetensors")), \.isBadTensorData,
                          mentions: ["size_mismatch", "'w'", "16 bytes", "expected 24"])
        assertWeightError(try SafetensorsFile(path: Fixtures.path("bad/overflow_shape.safetensors")), \.isBadTensorData,
                          mentions: ["'w'", "too large"])
    }

    /// A header nested a million levels deep is refused, not decoded by recursion until the stack overflows.
    func testDeeplyNestedHeaderIsRefused() throws {
        let depth = 1_000_000
        let header = #"{"w": "# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        let path = try temporaryFile("nested.safetensors", safetensorsBytes(header: header, data: []))
        assertWeightError(try SafetensorsFile(path: path), { $0.isMalformedHeader || $0.isBadTensorData }, mentions: ["nested.safetensors"])
    }

    /// Checked like a PyTorch shape: an empty tensor whose other dimensions overflow is refused, so
    /// no later product of its dimensions (a row size, say) can overflow.
    func testShapesAndOffsetsNearIntMax() throws {
        let cases: [(shape: String, offsets: String, mention: String)] = [
            ("[0, 1099511627776, 1099511627776]", "[0, 0]", "too large"),
            ("[1099511627776, 1099511627776, 0]", "[0, 0]", "too large"),
            ("[9223372036854775807]", "[0, 16]", "too large"),
            ("[4]", "[9223372036854775791, 9223372036854775807]", "outside"),
        ]
        for (index, crafted) in cases.enumerated() {
            let header = #"{"w": {"dtype": "F32", "shape": \#(crafted.shape), "data_offsets": \#(crafted.offsets)}}"#
            let path = try temporaryFile("crafted-\(index).safetensors", safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: 16)))
            assertWeightError(try SafetensorsFile(path: path), \.isBadTensorData, mentions: ["crafted-\(index).safetensors", "'w'", crafted.mention])
        }
    }
}
