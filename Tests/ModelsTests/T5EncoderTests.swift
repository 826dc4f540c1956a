// T5Encoder against transformers 4.46.3 (T5EncoderModel) on a tiny T5 v1.1 (d_model 32, 4 heads of 8,
// d_ff 48, 2 layers) saved as a whole encoder-decoder, as google/t5-v1_1-xxl is.
import Foundation
import Layers
import TextEncoders
import XCTest

final class T5EncoderTests: XCTestCase {
    func loadEncoder(_ computeType: DType, weights: WeightSource? = nil, configJSON: Data? = nil) throws -> T5Encoder {
        try T5Encoder(weights: weights ?? ConditionerFixtures.weights("t5/model.safetensors"),
                      configJSON: configJSON ?? ConditionerFixtures.configJSON("t5/config.json"), computeType: computeType)
    }

    func testConfigIsReadFromShapesAndConfigJSON() throws {
        let config = try loadEncoder(.f32).config
        XCTAssertEqual([config.modelWidth, config.layers, config.heads, config.headDim, config.feedForwardWidth,
                        config.vocabularySize, config.relativeBuckets, config.relativeMaxDistance], [32, 2, 4, 8, 48, 64, 32, 128])
        XCTAssertEqual(config.layerNormEps, 1e-6)
    }

    // 150 tokens: distances up to ±149 cover every relative-position bucket, including those capped
    // beyond max_distance 128, so a wrong bucket edge shows here.
    func testF32MatchesTransformers() throws {
        let hidden = try loadEncoder(.f32)(tokenIDs: ConditionerFixtures.tokenIDs("t5.input_ids"))
        assertClose(hidden, try ConditionerFixtures.expected("t5.last_hidden_state.f32"), relative: Tolerance.f32Relative, "T5 F32")
    }

    // The weights are F32 on disk (like the reference's pytorch_model.bin) and rounded to BF16 as they
    // are used.
    func testBF16MatchesTransformers() throws {
        let hidden = try loadEncoder(.bf16)(tokenIDs: ConditionerFixtures.tokenIDs("t5.input_ids"))
        XCTAssertEqual(hidden.dtype, .bf16)
        assertClose(hidden, try ConditionerFixtures.expected("t5.last_hidden_state.bf16"), relative: Tolerance.bf16Relative, cosine: Tolerance.bf16Cosine, "T5 BF16")
    }

    /// Without config.json everything but the max distance comes from the shapes (128 is the default).
    func testLoadsWithoutConfigJSON() throws {
        let encoder = try T5Encoder(weights: ConditionerFixtures.weights("t5/model.safetensors"), computeType: .f32)
        let hidden = try encoder(tokenIDs: ConditionerFixtures.tokenIDs("t5.input_ids"))
        assertClose(hidden, try ConditionerFixtures.expected("t5.last_hidden_state.f32"), relative: Tolerance.f32Relative, "T5 F32 without config")
    }

    /// google/t5-v1_1-xxl ships a PyTorch pickle holding the encoder and decoder (tied embeddings
    /// share storage): only the encoder's tensors are read, as views of the mapped file.
    func testLoadsTheReferenceCheckpointFormat() throws {
        let checkpoint = try openWeights(path: ConditionerFixtures.path("t5/pytorch_model.bin"))
        XCTAssertTrue(checkpoint.keys.contains { $0.hasPrefix("decoder.") })
        let hidden = try loadEncoder(.f32, weights: checkpoint)(tokenIDs: ConditionerFixtures.tokenIDs("t5.input_ids"))
        assertClose(hidden, try ConditionerFixtures.expected("t5.last_hidden_state.f32"), relative: Tolerance.f32Relative, "T5 F32 from .bin")
    }

    func testConfigThatDoesNotMatchTheWeightsIsAnError() throws {
        let config = try ConditionerFixtures.editedConfigJSON("t5/config.json") { $0["num_heads"] = 8 }
        assertThrows(ModelConfigError.mismatch(model: "T5 encoder", field: "num_heads", config: 8, weights: 4)) {
            try loadEncoder(.f32, configJSON: config)
        }
    }

    func testNonGatedConfigIsRefused() throws {
        let config = try ConditionerFixtures.editedConfigJSON("t5/config.json") { $0["feed_forward_proj"] = "relu" }
        XCTAssertThrowsError(try loadEncoder(.f32, configJSON: config)) { error in
            guard case ModelConfigError.invalid(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("feed_forward_proj relu"), reason)
        }
    }

    func testMissingKeyIsNamed() throws {
        let key = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("t5/model.safetensors"), removing: [key])
        assertThrows(WeightError.missingKey(key)) { try loadEncoder(.f32, weights: weights) }
    }

    /// The decoder and lm_head are ignored on purpose; a stray key inside the encoder is not.
    func testUnexpectedKeyInsideTheEncoderIsAnError() throws {
        let key = "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("t5/model.safetensors"), adding: [key: Tensor(zeros: [32, 4])])
        assertThrows(WeightError.unexpectedKeys([key])) { try loadEncoder(.f32, weights: weights) }
    }

    func testTokenOutsideTheVocabularyIsAnError() throws {
        assertThrows(TextEncoderError.tokenOutOfRange(model: "T5 encoder", id: -1, vocabularySize: 64)) {
            try loadEncoder(.f32)(tokenIDs: [5, -1])
        }
    }

    /// The encoder holds views of the mapped file, nothing global: once the encoder and the source are
    /// gone, the file is unmapped (what the pipeline relies on to release T5 before the DiT runs).
    func testDroppingTheEncoderUnmapsItsWeights() throws {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("uso-t5-\(UUID().uuidString).safetensors")
        try FileManager.default.copyItem(atPath: ConditionerFixtures.path("t5/model.safetensors"), toPath: copy.path)
        defer { try? FileManager.default.removeItem(at: copy) }
        // /proc files report size 0, so read them to the end rather than by their size.
        func isMapped() throws -> Bool {
            let maps = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps")).readDataToEndOfFile()
            return String(decoding: maps, as: UTF8.self).contains(copy.path)
        }

        var encoder: T5Encoder? = try T5Encoder(weights: SafetensorsFile(path: copy.path), computeType: .bf16)
        XCTAssertTrue(try isMapped())
        _ = try encoder?(tokenIDs: [3, 4, 1, 0])
        encoder = nil
        XCTAssertFalse(try isMapped())
    }

    /// T5-XXL at full size (random weights): one 512-token prompt in BF16, weights memory-mapped.
    func testFullSizeEncodeTime() throws {
        let directory = try FullSize.directory().appendingPathComponent("t5-xxl")
        let encoder = try FullSize.measure("T5-XXL load") {
            try T5Encoder(weights: SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path),
                          configJSON: Data(contentsOf: directory.appendingPathComponent("config.json")))
        }
        let ids = (0..<60).map { 100 + 37 * $0 } + [1] + Array(repeating: 0, count: 451)
        let hidden = try FullSize.measure("T5-XXL encode 512 tokens") { try encoder(tokenIDs: ids) }
        XCTAssertEqual(hidden.shape, [512, 4096])
        XCTAssertTrue(hidden.toFloats().allSatisfy(\.isFinite))
    }
}
