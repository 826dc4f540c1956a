import Foundation
import XCTest
@testable import WeightFiles

final class OpenWeightsTests: XCTestCase {
    func testShardedSafetensors() throws {
        let sharded = try ShardedWeights(indexPath: Fixtures.path("good/sharded/model.safetensors.index.json"))
        try assertHoldsExpectedTensors(sharded, fixture: "good/sharded/model.safetensors.index.json")
        XCTAssertEqual(sharded.shards.count, 2)
        assertWeightError(try sharded.tensor("layers.0.position_ids"), \.isUnknownDType, mentions: ["model-00001-of-00002", "I64"])
    }

    func testOpenWeightsChoosesByContentAndFolderLayout() throws {
        try assertHoldsExpectedTensors(openWeights(path: Fixtures.path("good/dtypes.safetensors")), fixture: "good/dtypes.safetensors")
        try assertHoldsExpectedTensors(openWeights(path: Fixtures.path("good/state_dict.bin")), fixture: "good/state_dict.bin")
        try assertHoldsExpectedTensors(openWeights(path: Fixtures.path("good/sharded")), fixture: "good/sharded")
        try assertHoldsExpectedTensors(openWeights(path: Fixtures.path("good/folder_bin")), fixture: "good/folder_bin")
        try assertHoldsExpectedTensors(openWeights(path: Fixtures.path("good/sharded_bin")), fixture: "good/sharded_bin")
        // Both formats present: safetensors wins (the .bin beside it holds different values).
        let both = try openWeights(path: Fixtures.path("good/folder_both"))
        XCTAssertTrue(both is SafetensorsFile)
        try assertHoldsExpectedTensors(both, fixture: "good/folder_both")
    }

    /// A safetensors file starts with its header length, whose low byte may be 0x80 like a pickle's
    /// PROTO (0x280 even starts 0x80 0x02, as a protocol-2 pickle does): the structure decides.
    func testFormatIsToldByStructureNotByTheFirstByte() throws {
        let values: [Float] = [1, -2, 3.5, 0.25, 6]
        let data = values.flatMap { littleEndianBytes($0.bitPattern) }
        for headerLength in [0x180, 0x280, 0x580] {
            let bytes = safetensorsBytes(header: #"{"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]}}"#,
                                         headerLength: headerLength, data: data)
            XCTAssertEqual(bytes[0], 0x80)
            let source = try openWeights(path: try temporaryFile("header-\(headerLength).safetensors", bytes))
            XCTAssertTrue(source is SafetensorsFile, "header length \(headerLength)")
            XCTAssertEqual(try source.tensor("w").toFloats(), values, "header length \(headerLength)")
        }
        // A real pickle of torch.save before 1.6 (PROTO 2, then LONG1 of its magic number) is still named.
        assertWeightError(try openWeights(path: Fixtures.path("bad/legacy_format.bin")), \.isUnsupportedFormat,
                          mentions: ["legacy_format.bin", "legacy torch.save format"])
    }

    func testWeightReaderOverAShardedSet() throws {
        let reader = WeightReader(try openWeights(path: Fixtures.path("good/sharded")))
        let layers = reader.scoped("layers")
        XCTAssertEqual(try layers.tensor("2.weight", shape: [4, 3]).dtype, .bf16)
        assertWeightError(try layers.tensor("1.weight", shape: [3, 4]), { $0 == .shapeMismatch(key: "layers.1.weight", expected: [3, 4], found: [4, 3]) })
        XCTAssertEqual(reader.unusedKeys(), ["layers.0.weight", "layers.1.weight"])
    }

    // MARK: Bad input

    func testMissingPathsAndEmptyFolders() {
        assertWeightError(try openWeights(path: Fixtures.path("bad/absent")), \.isFileNotFound, mentions: ["bad/absent"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/no_weights_folder")), \.isUnsupportedFormat,
                          mentions: ["no_weights_folder", "model.safetensors", "pytorch_model.bin"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/empty.safetensors")), \.isMalformedHeader, mentions: ["empty"])
    }

    func testIndexAndShardsMustAgree() {
        assertWeightError(try openWeights(path: Fixtures.path("bad/missing_shard")), \.isFileNotFound, mentions: ["absent.safetensors"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/bad_index")), \.isMalformedHeader, mentions: ["model.safetensors.index.json", "weight_map"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/wrong_shard")), \.isBadTensorData, mentions: ["shard.safetensors", "'v'", "does not hold"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/unlisted_key")), \.isBadTensorData, mentions: ["shard.safetensors", "'extra'", "does not list"])
        assertWeightError(try openWeights(path: Fixtures.path("bad/escaping_shard")), \.isMalformedHeader, mentions: ["../unlisted_key", "beside the index"])
    }

    /// Every malformed fixture fails with a WeightError through the generic entry point too.
    func testEveryBadFixtureIsATypedError() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("bad"))
        XCTAssertGreaterThan(names.count, 30)
        for name in names {
            assertWeightError(try openWeights(path: Fixtures.path("bad/\(name)")), { _ in true }, mentions: [name])
        }
    }
}

final class WeightInventoryTests: XCTestCase {
    func testInventoryCountsEveryTensorOnce() throws {
        let inventory = WeightInventory(try openWeights(path: Fixtures.path("good/state_dict.bin")))
        let expected = try XCTUnwrap(Fixtures.expected["good/state_dict.bin"])
        XCTAssertEqual(inventory.format, "PyTorch checkpoint")
        XCTAssertEqual(inventory.tensors.map(\.name), (Array(expected.tensors.keys) + Array(expected.skipped.keys)).sorted())
        let expectedBytes = expected.tensors.values.reduce(0) { $0 + $1.hex.count / 2 } + 5 * 8  // + int64 position ids
        XCTAssertEqual(inventory.byteCount, expectedBytes)
        XCTAssertEqual(inventory.parameterCount, expected.tensors.values.reduce(0) { $0 + $1.shape.reduce(1, *) } + 5)
        XCTAssertEqual(inventory.tensors.first { $0.name == "position_ids" },
                       WeightInventory.Entry(name: "position_ids", dtype: "int64", shape: [1, 5], parameters: 5, bytes: 40, loadable: false))
        XCTAssertEqual(WeightInventory(try openWeights(path: Fixtures.path("good/sharded"))).format, "sharded set of 2 files")
    }
}
