import Foundation
import TensorEngine
import XCTest
@testable import WeightFiles

final class TorchCheckpointTests: XCTestCase {
    func testStateDictLoadsBitExactly() throws {
        for name in ["state_dict.bin", "state_dict_protocol4.bin", "state_dict_zip64.bin", "nested.bin"] {
            try assertHoldsExpectedTensors(TorchCheckpoint(path: Fixtures.path("good/\(name)")), fixture: "good/\(name)")
        }
    }

    func testViewsShareTheirStorageWithoutCopies() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("good/state_dict.bin"))
        let full = try checkpoint.tensor("shared.full")
        XCTAssertEqual(try checkpoint.tensor("shared.rows_1_to_3").rawPointer, full.rawPointer + 3 * 4)
        XCTAssertEqual(try checkpoint.tensor("shared.row_3").rawPointer, full.rawPointer + 9 * 4)
        XCTAssertEqual(try checkpoint.tensor("bfloat_tail").rawPointer, try checkpoint.tensor("bfloat").rawPointer + 2 * 2)
    }

    /// torch.load takes views with any strides and offsets; they load as contiguous copies, while
    /// contiguous views of the same storage stay views of the mapped file.
    func testStridedViewsLoadAsContiguousCopies() throws {
        for name in ["strided.bin", "shared_views.bin"] {
            try assertHoldsExpectedTensors(TorchCheckpoint(path: Fixtures.path("good/\(name)")), fixture: "good/\(name)")
        }
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("good/shared_views.bin"))
        XCTAssertEqual(try checkpoint.tensor("row").rawPointer, try checkpoint.tensor("row").rawPointer, "a contiguous view is not copied")
        let copies = (try checkpoint.tensor("transposed"), try checkpoint.tensor("transposed"))
        withExtendedLifetime(copies) { XCTAssertNotEqual(copies.0.rawPointer, copies.1.rawPointer, "a strided view is a fresh copy") }
    }

    func testNonFloatBuffersAreSkipped() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("good/state_dict.bin"))
        XCTAssertEqual(checkpoint.skippedTensors, [SkippedTensor(key: "position_ids", storedType: "int64", shape: [1, 5], byteCount: 40)])
        assertWeightError(try checkpoint.tensor("position_ids"), \.isUnknownDType, mentions: ["state_dict.bin", "position_ids", "int64"])
    }

    /// A checkpoint above 4 GB (zip64 sizes and offsets, sparse on disk) opens at once and maps the
    /// tensor in place.
    func testHugeCheckpointOpensLazily() throws {
        let path = NSTemporaryDirectory() + "uso-huge-\(getpid()).bin"
        defer { unlink(path) }
        let elements = (5 << 30) / 2  // 5 GB of bf16
        let pickle = PickleBuilder.stateDict(["shared.weight": (storage: "BFloat16Storage", key: "0", count: elements, offset: 0,
                                                               shape: [elements / 4096, 4096], strides: [4096, 1])])
        try SparseZipWriter.write(path: path, members: [("archive/data.pkl", .bytes(pickle)), ("archive/byteorder", .bytes(Array("little".utf8))),
                                                        ("archive/data/0", .hole(2 * elements))])
        let start = Date()
        let checkpoint = try TorchCheckpoint(path: path)
        let tensor = try checkpoint.tensor("shared.weight")
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
        XCTAssertEqual(tensor.shape, [elements / 4096, 4096])
        XCTAssertEqual(tensor.dtype, .bf16)
        XCTAssertEqual(tensor.rows(elements / 4096 - 1..<elements / 4096).toFloats().reduce(0, +), 0)
    }

    // MARK: Bad input

    func testForbiddenGlobalIsRefused() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/forbidden_global.bin")), \.isUnsafePickle,
                          mentions: ["forbidden_global.bin", "posix.system"])
    }

    func testForbiddenOpcodeIsRefused() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/forbidden_opcode.bin")), \.isUnsafePickle,
                          mentions: ["forbidden_opcode.bin", "INST"])
    }

    func testGlobalsOutsideTheAllowList() throws {
        for (module, name) in [("builtins", "eval"), ("torch", "load"), ("torch._utils", "_rebuild_qtensor"), ("collections", "defaultdict"), ("os", "system")] {
            var pickle = PickleBuilder.header
            pickle += Array("c\(module)\n\(name)\n".utf8) + Array(").".utf8)
            assertWeightError(try unpickle(pickle), \.isUnsafePickle, mentions: ["\(module).\(name)"])
        }
    }

    func testCompressedEntryIsRefused() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/compressed.bin")), \.isUnsupportedFormat,
                          mentions: ["compressed.bin", "data/0", "compressed"])
    }

    func testTruncatedArchivesAndPickles() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/truncated.bin")), \.isMalformedHeader, mentions: ["truncated.bin", "truncated"])
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/truncated_pickle.bin")), \.isMalformedHeader, mentions: ["truncated_pickle.bin", "ends early"])
    }

    func testStorageProblemsNameTheTensor() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/missing_storage.bin")), \.isBadTensorData, mentions: ["'weight'", "data/0", "missing"])
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/short_storage.bin")), \.isBadTensorData, mentions: ["'weight'", "20 bytes"])
    }

    /// Sizes, strides and offsets a crafted pickle claims are checked without overflowing: each is a
    /// WeightError naming the tensor, never a trap (nor, unchecked, a wrong view).
    func testHostileSizesStridesAndOffsetsAreRefusedByName() throws {
        let huge = 1 << 40
        let cases: [(shape: [Int], strides: [Int], offset: Int, count: Int, mention: String)] = [
            ([0, huge, huge], [0, 0, 0], 0, 4, "too large"),  // empty, yet its row size overflows
            ([huge, huge, 0], [0, 0, 0], 0, 4, "too large"),
            ([Int.max], [1], 0, 4, "too large"),
            ([4], [1 << 62], 0, 4, "reach outside"),
            ([2, 2], [Int.max, 1], 0, 4, "reach outside"),
            ([4], [1], Int.max, 4, "reach outside"),
            ([4], [1], 1 << 62, 4, "reach outside"),  // in range as elements, not as bytes
            ([4], [1], -1, 4, "reach outside"),
            ([4], [-1], 3, 4, "do not fit"),
            ([4], [1], 0, 1 << 62, "holds 16 bytes"),
            ([1 << 30, 1 << 30], [0, 0], 0, 4, "repeat elements"),  // 4 EB from 16 bytes
        ]
        for (index, crafted) in cases.enumerated() {
            let pickle = PickleBuilder.stateDict(["w": (storage: "FloatStorage", key: "0", count: crafted.count, offset: crafted.offset,
                                                       shape: crafted.shape, strides: crafted.strides)])
            let path = try temporaryFile("crafted-\(index).bin", [])
            try SparseZipWriter.write(path: path, members: [("archive/data.pkl", .bytes(pickle)), ("archive/data/0", .bytes([UInt8](repeating: 0, count: 16)))])
            assertWeightError(try TorchCheckpoint(path: path), \.isBadTensorData, mentions: ["crafted-\(index).bin", "'w'", crafted.mention])
        }
    }

    /// Zip64 sizes and offsets near `Int.max` are refused as malformed, not added past the end.
    func testHostileZipOffsetsAndSizes() throws {
        let pickle = PickleBuilder.stateDict(["w": (storage: "FloatStorage", key: "0", count: 4, offset: 0, shape: [4], strides: [1])])
        let path = try temporaryFile("valid.bin", [])
        try SparseZipWriter.write(path: path, members: [("archive/data.pkl", .bytes(pickle)), ("archive/data/0", .bytes([UInt8](repeating: 0, count: 16)))])
        let valid = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(try TorchCheckpoint(path: path).tensor("w").toFloats(), [0, 0, 0, 0])

        // The central directory entry of data/0 ends with its zip64 field: size, compressed size, local header offset.
        let name = Array("archive/data/0".utf8)
        let centralName = try XCTUnwrap((0...valid.count - name.count).last { Array(valid[$0..<$0 + name.count]) == name })
        let zip64Field = centralName + name.count + 4
        // The zip64 end record: entry counts at +24 and +32, directory size at +40 and offset at +48.
        let endRecord = try XCTUnwrap((0...valid.count - 4).last { Array(valid[$0..<$0 + 4]) == littleEndianBytes(UInt32(0x0606_4b50)) })
        let edits: [(at: [Int], value: UInt64, mention: String)] = [
            ([zip64Field + 16], UInt64(Int.max), "no local header"),
            ([zip64Field + 16], UInt64(Int.max - 29), "no local header"),
            ([zip64Field, zip64Field + 8], UInt64(Int.max), "runs past the end"),
            ([zip64Field + 8], UInt64.max, "out of range"),
            ([endRecord + 48], UInt64(Int.max), "outside the file"),
            ([endRecord + 40], UInt64(Int.max), "outside the file"),
            ([endRecord + 32], UInt64(Int.max), "claims"),
            ([valid.count - 22 - 12], UInt64(Int.max - 20), "zip64 end record"),
        ]
        for (index, edit) in edits.enumerated() {
            var crafted = valid
            for field in edit.at { crafted.replaceSubrange(field..<field + 8, with: littleEndianBytes(edit.value)) }
            let craftedPath = try temporaryFile("zip-\(index).bin", crafted)
            assertWeightError(try TorchCheckpoint(path: craftedPath), { $0.isMalformedHeader || $0.isUnsupportedFormat },
                              mentions: ["zip-\(index).bin", edit.mention])
        }
    }

    func testUnsupportedVariants() {
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/big_endian.bin")), \.isUnsupportedFormat, mentions: ["big"])
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/legacy_format.bin")), \.isUnsupportedFormat, mentions: ["legacy"])
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("bad/not_a_state_dict.bin")), \.isMalformedHeader, mentions: ["a list, not a state dict"])
        assertWeightError(try TorchCheckpoint(path: Fixtures.path("good/dtypes.safetensors")), \.isMalformedHeader, mentions: ["no zip archive"])
    }

    func testMalformedPickles() {
        let pickles: [[UInt8]] = [
            PickleBuilder.header + Array("s.".utf8),  // stack underflow
            PickleBuilder.header + Array("h\u{05}.".utf8),  // memo read before it is written
            PickleBuilder.header + Array("}t.".utf8),  // TUPLE without a MARK
            PickleBuilder.header + Array("}}.".utf8),  // two values left at STOP
            PickleBuilder.header + [0x8a, 9] + [UInt8](repeating: 1, count: 9) + Array(".".utf8),  // 9-byte integer
            PickleBuilder.header + [UInt8(ascii: "X"), 0xff, 0xff, 0xff, 0x7f],  // string past the end
            PickleBuilder.header + Array("ccollections".utf8),  // unterminated GLOBAL
            PickleBuilder.header + Array("NQ.".utf8),  // persistent id that is not a storage tuple
            PickleBuilder.header + Array("ccollections\nOrderedDict\nNR.".utf8),  // REDUCE without an argument tuple
        ]
        for pickle in pickles {
            assertWeightError(try unpickle(pickle), \.isMalformedHeader, mentions: ["test.bin", "malformed"])
        }
    }

    /// Deep nesting (a pickle nests one level per byte) is released without recursion.
    func testDeeplyNestedPicklesDoNotOverflowTheStack() {
        let nestedTuples = PickleBuilder.header + Array(")".utf8) + [UInt8](repeating: 0x85, count: 300_000) + Array(".".utf8)
        assertWeightError(try unpickle(nestedTuples), \.isMalformedHeader, mentions: ["a tuple, not a state dict"])
        // Each step fetches the innermost list from memo 1, appends a new list to it and memoizes that one.
        var nestedLists = PickleBuilder.header + Array("]q\u{01}".utf8)
        for _ in 0..<100_000 { nestedLists += Array("h\u{01}]r".utf8) + [1, 0, 0, 0] + Array("a".utf8) }
        nestedLists += Array(".".utf8)
        assertWeightError(try unpickle(nestedLists), \.isMalformedHeader, mentions: ["values on its stack"])
    }

    func testSelfReferentialDictionaryIsRefused() {
        // d = {}; d["self"] = d
        let pickle = PickleBuilder.header + Array("}q\u{00}".utf8) + PickleBuilder.string("self") + Array("h\u{00}s.".utf8)
        assertWeightError(try unpickle(pickle), \.isMalformedHeader, mentions: ["'self'", "appears twice"])
    }

    private func unpickle(_ bytes: [UInt8]) throws -> [(key: String, reference: TensorReference)] {
        try RestrictedUnpickler.stateDictTensors(pickle: bytes, path: "test.bin")
    }
}

/// Hand-written state-dict pickles, spelled as torch.save spells them (protocol 2).
enum PickleBuilder {
    static let header: [UInt8] = [0x80, 0x02]

    typealias TensorSpec = (storage: String, key: String, count: Int, offset: Int, shape: [Int], strides: [Int])

    static func stateDict(_ tensors: [String: TensorSpec]) -> [UInt8] {
        var out = header + Array("}(".utf8)  // EMPTY_DICT, MARK
        for (name, spec) in tensors.sorted(by: { $0.key < $1.key }) {
            out += string(name) + Array("ctorch._utils\n_rebuild_tensor_v2\n((".utf8)
            out += string("storage") + Array("ctorch\n\(spec.storage)\n".utf8) + string(spec.key) + string("cpu") + integer(spec.count)
            out += Array("tQ".utf8) + integer(spec.offset) + tuple(spec.shape) + tuple(spec.strides)
            out += [0x89] + Array("}tR".utf8)  // requires_grad False, hooks {}, REDUCE
        }
        return out + Array("u.".utf8)  // SETITEMS, STOP
    }

    static func string(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        return [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8
    }

    static func integer(_ value: Int) -> [UInt8] {
        [0x8a, 8] + withUnsafeBytes(of: Int64(value).littleEndian, Array.init)  // LONG1
    }

    static func tuple(_ values: [Int]) -> [UInt8] {
        Array("(".utf8) + values.flatMap(integer) + Array("t".utf8)
    }
}

/// Writes a zip64 archive of stored members in which a member may be a hole (sparse on disk), so a
/// test can have a checkpoint of several GB without writing them.
enum SparseZipWriter {
    enum Content { case bytes([UInt8]), hole(Int) }

    static func write(path: String, members: [(name: String, content: Content)]) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? handle.close() }
        var offset = 0
        var central: [UInt8] = []
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        for (name, content) in members {
            let size: Int
            switch content { case .bytes(let bytes): size = bytes.count; case .hole(let count): size = count }
            let nameBytes = Array(name.utf8)
            // A zip64 field with the sizes, then padding so the data starts 64-byte aligned, as torch writes it.
            var localExtra = le(UInt16(1)) + le(UInt16(16)) + le(UInt64(size)) + le(UInt64(size))
            let padding = (64 - (offset + 30 + nameBytes.count + localExtra.count + 4) % 64) % 64
            localExtra += le(UInt16(0x4246)) + le(UInt16(padding)) + [UInt8](repeating: 0, count: padding)
            let local = le(UInt32(0x0403_4b50)) + le(UInt16(45)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
                + le(UInt32.max) + le(UInt32.max) + le(UInt16(nameBytes.count)) + le(UInt16(localExtra.count)) + nameBytes + localExtra
            try handle.seek(toOffset: UInt64(offset))
            handle.write(Data(local))
            if case .bytes(let bytes) = content { handle.write(Data(bytes)) }
            let centralExtra = le(UInt16(1)) + le(UInt16(24)) + le(UInt64(size)) + le(UInt64(size)) + le(UInt64(offset))
            central += le(UInt32(0x0201_4b50)) + le(UInt16(45)) + le(UInt16(45)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
                + le(UInt32.max) + le(UInt32.max) + le(UInt16(nameBytes.count)) + le(UInt16(centralExtra.count)) + le(UInt16(0))
                + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32.max) + nameBytes + centralExtra
            offset += local.count + size
        }
        let record = offset + central.count
        let end = central + le(UInt32(0x0606_4b50)) + le(UInt64(44)) + le(UInt16(45)) + le(UInt16(45)) + le(UInt32(0)) + le(UInt32(0))
            + le(UInt64(members.count)) + le(UInt64(members.count)) + le(UInt64(central.count)) + le(UInt64(offset))
            + le(UInt32(0x0706_4b50)) + le(UInt32(0)) + le(UInt64(record)) + le(UInt32(1))
            + le(UInt32(0x0605_4b50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16.max) + le(UInt16.max) + le(UInt32.max) + le(UInt32.max) + le(UInt16(0))
        try handle.seek(toOffset: UInt64(offset))
        handle.write(Data(end))
    }
}
