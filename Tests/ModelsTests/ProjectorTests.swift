// StyleProjector and StyleEncoder against an independent torch implementation of USO's projector
// (tools/fixtures/conditioners.py) on a tiny one: 16 SigLIP tokens of width 16 -> 3 x 4 style tokens of
// width 24 per image, fed the tiny SigLIP tower's F32 features of two style images.
import Foundation
import Layers
import StyleEncoder
import XCTest

final class ProjectorTests: XCTestCase {
    func loadProjector(_ computeType: DType?, weights: WeightSource? = nil) throws -> StyleProjector {
        try StyleProjector(weights: weights ?? ConditionerFixtures.weights("projector.safetensors"), computeType: computeType)
    }

    /// The torch SigLIP features (F32) of style image `index`.
    static func features(_ index: Int) throws -> SigLIPFeatures {
        func state(_ branch: String) throws -> Tensor {
            try ConditionerFixtures.expected("siglip.\(branch).f32").rows(index..<(index + 1)).reshaped([16, 16])
        }
        return SigLIPFeatures(low: try state("low"), mid: try state("mid"), high: try state("high"))
    }

    func testShapeIsReadFromTheWeights() throws {
        let projector = try loadProjector(nil)
        XCTAssertEqual([projector.shape.siglipTokens, projector.shape.siglipWidth, projector.shape.styleTokens, projector.shape.outputWidth],
                       [16, 16, 4, 24])
        XCTAssertEqual(projector.tokensPerImage, 12)
        XCTAssertEqual(projector.computeType, .f32, "the stored type by default")
    }

    func projectBothImages(_ computeType: DType) throws -> Tensor {
        let projector = try loadProjector(computeType)
        return concat(try (0..<2).map { try projector(Self.features($0)) })
    }

    func testF32MatchesTorch() throws {
        assertClose(try projectBothImages(.f32), try ConditionerFixtures.expected("projector.style_tokens.f32"), relative: Tolerance.f32Relative, "projector F32")
    }

    // BF16, as the reference runs the projector: F32 SigLIP features cast to BF16 first.
    func testBF16MatchesTorch() throws {
        let tokens = try projectBothImages(.bf16)
        XCTAssertEqual(tokens.dtype, .bf16)
        assertClose(tokens, try ConditionerFixtures.expected("projector.style_tokens.bf16"), relative: Tolerance.bf16Relative, cosine: Tolerance.bf16Cosine, "projector BF16")
    }

    /// Pixels to style tokens for two style images, joined in order: SigLIP in F32 and the projector
    /// in F32, then in BF16 (the reference's mix).
    func testStyleEncoderJoinsImagesInOrder() throws {
        let tower = try SigLIPVisionTower(weights: ConditionerFixtures.weights("siglip/model.safetensors"),
                                          configJSON: ConditionerFixtures.configJSON("siglip/config.json"))
        let images = try [SigLIPVisionTowerTests.pixels(0), SigLIPVisionTowerTests.pixels(1)]
        let exact = try StyleEncoder(visionTower: tower, projector: loadProjector(.f32))
        assertClose(try exact.styleTokens(for: images), try ConditionerFixtures.expected("projector.style_tokens.f32"), relative: Tolerance.f32Relative,
                    "style tokens F32")
        let mixed = try StyleEncoder(visionTower: tower, projector: loadProjector(.bf16))
        assertClose(try mixed.styleTokens(for: images), try ConditionerFixtures.expected("projector.style_tokens.bf16"), relative: Tolerance.bf16Relative,
                    cosine: Tolerance.bf16Cosine, "style tokens F32 SigLIP + BF16 projector")
        assertThrows(StyleEncoderError.noStyleImages) { try exact.styleTokens(for: []) }
    }

    func testFeaturesOfTheWrongShapeAreAnError() throws {
        let wrong = Tensor(zeros: [15, 16])
        assertThrows(StyleEncoderError.featureShape(found: [15, 16], expected: [16, 16])) {
            try loadProjector(.f32)(SigLIPFeatures(low: wrong, mid: wrong, high: wrong))
        }
    }

    func testBranchesOfDifferentShapesAreAnError() throws {
        let key = "feature_embedder.low_projection.weight"
        let weights = EditedWeights(try ConditionerFixtures.weights("projector.safetensors"), adding: [key: Tensor(zeros: [20, 16])])
        assertThrows(WeightError.shapeMismatch(key: key, expected: [24, 16], found: [20, 16])) { try loadProjector(nil, weights: weights) }
    }

    /// A file without the projector's keys (e.g. the LoRA passed by mistake) names what is missing.
    func testWrongFileIsAnError() throws {
        assertThrows(WeightError.missingKey("feature_embedder.high_embedding_linear.0.weight")) {
            try loadProjector(nil, weights: ConditionerFixtures.weights("t5/model.safetensors"))
        }
    }

    func testTowerAndProjectorOfDifferentSizesDoNotCombine() throws {
        let tower = try SigLIPVisionTower(weights: ConditionerFixtures.weights("siglip/model.safetensors"),
                                          configJSON: ConditionerFixtures.configJSON("siglip/config.json"))
        var replaced: [String: Tensor] = [:]
        for branch in ["high", "mid", "low"] {
            replaced["feature_embedder.\(branch)_embedding_linear.0.weight"] = Tensor(zeros: [4, 9])
        }
        let projector = try loadProjector(.f32, weights: EditedWeights(try ConditionerFixtures.weights("projector.safetensors"), adding: replaced))
        XCTAssertEqual(projector.shape.siglipTokens, 9)
        XCTAssertThrowsError(try StyleEncoder(visionTower: tower, projector: projector)) { error in
            guard case StyleEncoderError.towerDoesNotFitProjector = error else { return XCTFail("\(error)") }
        }
    }
}
