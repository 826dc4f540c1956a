// SigLIPVisionTower against transformers 4.46.3 (SiglipVisionModel, output_hidden_states) on a tiny
// SigLIP (width 16, 2 heads, 20 layers, 62x62 images of 4x4 14-pixel patches) saved in the layout of
// google/siglip-so400m-patch14-384 (vision + text towers, logit scale/bias, pooling head). With 20
// layers USO's indices -20/-11/-2 pick the states after layers 1, 10 and 19; layer 20 is unused.
import Foundation
import Layers
import StyleEncoder
import XCTest

final class SigLIPVisionTowerTests: XCTestCase {
    func loadTower(_ computeType: DType, weights: WeightSource? = nil, featureLayers: SigLIPFeatureLayers = .uso) throws -> SigLIPVisionTower {
        try SigLIPVisionTower(weights: weights ?? ConditionerFixtures.weights("siglip/model.safetensors"),
                              configJSON: ConditionerFixtures.configJSON("siglip/config.json"),
                              computeType: computeType, featureLayers: featureLayers)
    }

    /// Style image `index` of the fixture, `[3, 62, 62]`.
    static func pixels(_ index: Int) throws -> Tensor {
        try ConditionerFixtures.expected("siglip.pixels").rows(index..<(index + 1)).reshaped([3, 62, 62])
    }

    func testConfigIsReadFromShapesAndConfigJSON() throws {
        let config = try loadTower(.f32).config
        XCTAssertEqual([config.width, config.layers, config.heads, config.mlpWidth, config.patchSize, config.imageSize, config.tokens],
                       [16, 20, 2, 32, 14, 62, 16])
        XCTAssertEqual(config.layerNormEps, 1e-6)
    }

    func checkFeatures(_ computeType: DType, suffix: String, relative: Float, cosine: Float?) throws {
        let tower = try loadTower(computeType)
        for image in 0..<2 {
            let features = try tower.features(pixels: Self.pixels(image))
            for (branch, actual) in [("low", features.low), ("mid", features.mid), ("high", features.high)] {
                let expected = try ConditionerFixtures.expected("siglip.\(branch).\(suffix)").rows(image..<(image + 1)).reshaped([16, 16])
                assertClose(actual, expected, relative: relative, cosine: cosine, "SigLIP \(branch) image \(image) \(suffix)")
            }
        }
    }

    // F32 is how the reference runs SigLIP.
    func testF32MatchesTransformers() throws { try checkFeatures(.f32, suffix: "f32", relative: Tolerance.f32Relative, cosine: nil) }

    func testBF16MatchesTransformers() throws { try checkFeatures(.bf16, suffix: "bf16", relative: Tolerance.bf16Relative, cosine: Tolerance.bf16Cosine) }

    func testFeatureIndexBeyondTheTowerIsAnError() throws {
        assertThrows(StyleEncoderError.featureLayerOutOfRange(index: -30, hiddenStates: 21)) {
            try loadTower(.f32, featureLayers: SigLIPFeatureLayers(low: -30, mid: -11, high: -2))
        }
    }

    func testImageOfTheWrongSizeIsAnError() throws {
        let tower = try loadTower(.f32)
        assertThrows(StyleEncoderError.imageShape(found: [3, 42, 62], expected: [3, 62, 62])) {
            try tower.features(pixels: Tensor(zeros: [3, 42, 62]))
        }
    }

    func testMissingKeyIsNamed() throws {
        let key = "vision_model.encoder.layers.18.self_attn.v_proj.bias"
        let weights = EditedWeights(try ConditionerFixtures.weights("siglip/model.safetensors"), removing: [key])
        assertThrows(WeightError.missingKey(key)) { try loadTower(.f32, weights: weights) }
    }

    /// Layer 20 (index 19) is never computed, so its weights are not even read.
    func testTheUnusedLastLayerIsNotLoaded() throws {
        let unused = "vision_model.encoder.layers.19.self_attn.v_proj.bias"
        let weights = EditedWeights(try ConditionerFixtures.weights("siglip/model.safetensors"), removing: [unused])
        XCTAssertNoThrow(try loadTower(.f32, weights: weights))
    }

    /// The text tower, head, post_layernorm and the unused last layer are skipped on purpose; a stray
    /// key in the used part is not.
    func testUnexpectedKeyInsideTheUsedLayersIsAnError() throws {
        let key = "vision_model.encoder.layers.3.mlp.fc3.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("siglip/model.safetensors"), adding: [key: Tensor(zeros: [2])])
        assertThrows(WeightError.unexpectedKeys([key])) { try loadTower(.f32, weights: weights) }
    }

    func testConfigThatDoesNotMatchTheWeightsIsAnError() throws {
        let config = try ConditionerFixtures.editedConfigJSON("siglip/config.json", section: "vision_config") { $0["num_hidden_layers"] = 27 }
        assertThrows(ModelConfigError.mismatch(model: "SigLIP vision tower", field: "num_hidden_layers", config: 27, weights: 20)) {
            try SigLIPVisionTower(weights: ConditionerFixtures.weights("siglip/model.safetensors"), configJSON: config)
        }
    }

    /// SigLIP so400m (F32, as the reference) + the USO projector (BF16) at full size, random weights:
    /// one 384x384 style image to 192 style tokens.
    func testFullSizeStyleImageTime() throws {
        let directory = try FullSize.directory()
        let siglip = directory.appendingPathComponent("siglip")
        let encoder = try FullSize.measure("SigLIP + projector load") {
            try StyleEncoder(
                visionTower: SigLIPVisionTower(weights: SafetensorsFile(path: siglip.appendingPathComponent("model.safetensors").path),
                                               configJSON: Data(contentsOf: siglip.appendingPathComponent("config.json"))),
                projector: StyleProjector(weights: SafetensorsFile(path: directory.appendingPathComponent("USO/uso_flux_v1.0/projector.safetensors").path)))
        }
        let image = Tensor(FullSize.values(3 * 384 * 384), shape: [3, 384, 384])
        let tokens = try FullSize.measure("SigLIP + projector, one style image") { try encoder.styleTokens(for: [image]) }
        XCTAssertEqual(tokens.shape, [192, 3072])
        XCTAssertTrue(tokens.toFloats().allSatisfy(\.isFinite))
    }
}
