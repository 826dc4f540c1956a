// CLIPTextModel against transformers 4.46.3 on a tiny CLIP (width 32, 2 layers, 4 heads) saved in the
// layout of openai/clip-vit-large-patch14 (text + vision towers, projections, logit scale).
import Foundation
import Layers
import TextEncoders
import XCTest

final class CLIPTextModelTests: XCTestCase {
    func loadModel(_ computeType: DType, weights: WeightSource? = nil, configJSON: Data? = nil) throws -> CLIPTextModel {
        try CLIPTextModel(weights: weights ?? ConditionerFixtures.weights("clip/model.safetensors"),
                          configJSON: configJSON ?? ConditionerFixtures.configJSON("clip/config.json"),
                          computeType: computeType)
    }

    func testConfigIsReadFromShapesAndConfigJSON() throws {
        let config = try loadModel(.f32).config
        XCTAssertEqual([config.width, config.layers, config.heads, config.mlpWidth, config.vocabularySize, config.maxPositions],
                       [32, 2, 4, 64, 100, 77])
        XCTAssertEqual(config.layerNormEps, 1e-5)
        XCTAssertNil(config.poolingTokenID, "legacy eos_token_id 2: pool at the largest id")
    }

    func testF32MatchesTransformers() throws {
        let output = try loadModel(.f32)(tokenIDs: ConditionerFixtures.tokenIDs("clip.input_ids"))
        assertClose(output.hiddenStates, try ConditionerFixtures.expected("clip.last_hidden_state.f32"), relative: Tolerance.f32Relative, "CLIP hidden F32")
        assertClose(output.pooled, try ConditionerFixtures.expected("clip.pooled.f32"), relative: Tolerance.f32Relative, "CLIP pooled F32")
    }

    func testBF16MatchesTransformers() throws {
        let output = try loadModel(.bf16)(tokenIDs: ConditionerFixtures.tokenIDs("clip.input_ids"))
        XCTAssertEqual(output.pooled.dtype, .bf16)
        assertClose(output.hiddenStates, try ConditionerFixtures.expected("clip.last_hidden_state.bf16"), relative: Tolerance.bf16Relative, cosine: Tolerance.bf16Cosine, "CLIP hidden BF16")
        assertClose(output.pooled, try ConditionerFixtures.expected("clip.pooled.bf16"), relative: Tolerance.bf16Relative, cosine: Tolerance.bf16Cosine, "CLIP pooled BF16")
    }

    /// A config with a real eos_token_id pools at that token's first position, not at the largest id.
    func testPoolsAtTheConfiguredEndToken() throws {
        let config = try ConditionerFixtures.editedConfigJSON("clip/config.json", section: "text_config") { $0["eos_token_id"] = 50 }
        let model = try loadModel(.f32, configJSON: config)
        XCTAssertEqual(model.config.poolingTokenID, 50)
        let output = try model(tokenIDs: ConditionerFixtures.tokenIDs("clip.input_ids_eos50"))
        assertClose(output.pooled, try ConditionerFixtures.expected("clip.pooled_eos50.f32"), relative: Tolerance.f32Relative, "CLIP pooled at eos 50")
    }

    /// openai/clip-vit-large-patch14 ships a PyTorch pickle with the vision tower too: only
    /// `text_model.*` is read.
    func testLoadsTheReferenceCheckpointFormat() throws {
        let checkpoint = try openWeights(path: ConditionerFixtures.path("clip/pytorch_model.bin"))
        let model = try loadModel(.f32, weights: checkpoint)
        let output = try model(tokenIDs: ConditionerFixtures.tokenIDs("clip.input_ids"))
        assertClose(output.pooled, try ConditionerFixtures.expected("clip.pooled.f32"), relative: Tolerance.f32Relative, "CLIP pooled from .bin")
    }

    func testConfigThatDoesNotMatchTheWeightsIsAnError() throws {
        let config = try ConditionerFixtures.editedConfigJSON("clip/config.json", section: "text_config") { $0["hidden_size"] = 48 }
        assertThrows(ModelConfigError.mismatch(model: "CLIP text model", field: "hidden_size", config: 48, weights: 32)) {
            try loadModel(.f32, configJSON: config)
        }
    }

    func testUnreadableConfigJSONIsAnError() throws {
        XCTAssertThrowsError(try loadModel(.f32, configJSON: Data("{\"text_config\": [1, 2]".utf8))) { error in
            guard case ModelConfigError.invalid(let model, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(model, "CLIP text model")
        }
    }

    func testHeadCountNeedsConfigJSONForNarrowModels() throws {
        XCTAssertThrowsError(try CLIPTextModel(weights: ConditionerFixtures.weights("clip/model.safetensors"))) { error in
            guard case ModelConfigError.invalid(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("num_attention_heads"), reason)
        }
    }

    func testMissingKeyIsNamed() throws {
        let key = "text_model.encoder.layers.1.mlp.fc2.bias"
        let weights = EditedWeights(try ConditionerFixtures.weights("clip/model.safetensors"), removing: [key])
        assertThrows(WeightError.missingKey(key)) {
            try CLIPTextModel(weights: weights, configJSON: ConditionerFixtures.configJSON("clip/config.json"))
        }
    }

    /// The vision tower is ignored on purpose; a stray key inside the text tower is not.
    func testUnexpectedKeyInsideTheTextTowerIsAnError() throws {
        let key = "text_model.encoder.layers.0.self_attn.extra.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("clip/model.safetensors"), adding: [key: Tensor(zeros: [2])])
        assertThrows(WeightError.unexpectedKeys([key])) {
            try CLIPTextModel(weights: weights, configJSON: ConditionerFixtures.configJSON("clip/config.json"))
        }
    }

    func testMisshapenWeightIsAnError() throws {
        let key = "text_model.encoder.layers.0.mlp.fc1.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("clip/model.safetensors"), adding: [key: Tensor(zeros: [64, 31])])
        assertThrows(WeightError.shapeMismatch(key: key, expected: [64, 32], found: [64, 31])) {
            try CLIPTextModel(weights: weights, configJSON: ConditionerFixtures.configJSON("clip/config.json"))
        }
    }

    func testBadTokenSequencesAreErrors() throws {
        let model = try loadModel(.f32)
        assertThrows(TextEncoderError.tokenOutOfRange(model: "CLIP text model", id: 100, vocabularySize: 100)) { try model(tokenIDs: [1, 100]) }
        assertThrows(TextEncoderError.sequenceTooLong(model: "CLIP text model", length: 78, maximum: 77)) {
            try model(tokenIDs: Array(repeating: 1, count: 78))
        }
        assertThrows(TextEncoderError.emptySequence(model: "CLIP text model")) { try model(tokenIDs: []) }
    }

    /// CLIP-L at full size (random weights): one 77-token prompt in BF16.
    func testFullSizeEncodeTime() throws {
        let directory = try FullSize.directory().appendingPathComponent("clip-vit-l14")
        let model = try FullSize.measure("CLIP-L load") {
            try CLIPTextModel(weights: SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path),
                              configJSON: Data(contentsOf: directory.appendingPathComponent("config.json")))
        }
        let ids = [49406] + (0..<20).map { 300 + 17 * $0 } + Array(repeating: 49407, count: 56)
        let output = try FullSize.measure("CLIP-L encode 77 tokens") { try model(tokenIDs: ids) }
        XCTAssertEqual(output.pooled.shape, [768])
        XCTAssertTrue(output.pooled.toFloats().allSatisfy(\.isFinite))
    }
}
