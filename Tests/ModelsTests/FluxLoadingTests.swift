// Loading the FLUX DiT and the USO LoRA: configuration from shapes, precisions, and the errors a
// wrong file gets.
import XCTest
@testable import FluxDiT
import TensorEngine
import WeightFiles

final class FluxLoadingTests: XCTestCase {
    func testConfigIsDetectedFromShapes() throws {
        let config = try FluxConfig(detectingFrom: try FluxFixtures.dit())
        XCTAssertEqual(config.hiddenSize, 64)
        XCTAssertEqual(config.headDim, 32)
        XCTAssertEqual(config.headCount, 2)
        XCTAssertEqual(config.mlpHiddenSize, 256)
        XCTAssertEqual(config.doubleBlockCount, 2)
        XCTAssertEqual(config.singleBlockCount, 2)
        XCTAssertEqual(config.inChannels, 64)
        XCTAssertEqual(config.outChannels, 64)
        XCTAssertEqual(config.contextDim, 32)
        XCTAssertEqual(config.vectorDim, 16)
        XCTAssertEqual(config.timestepEmbeddingDim, 256)
        XCTAssertEqual(config.ropeAxes, [4, 14, 14])
        XCTAssertTrue(config.guidanceEmbed)
        XCTAssertTrue(config.qkvBias)
    }

    func testRoPEAxesRule() throws {
        XCTAssertEqual(try FluxConfig.ropeAxes(headDim: 128), [16, 56, 56], "the reference's split")
        XCTAssertEqual(try FluxConfig.ropeAxes(headDim: 64), [8, 28, 28])
        XCTAssertEqual(try FluxConfig.ropeAxes(headDim: 32), [4, 14, 14])
        XCTAssertEqual(try FluxConfig.ropeAxes(headDim: 72), [10, 30, 32])
        XCTAssertThrowsError(try FluxConfig.ropeAxes(headDim: 30 + 1))
    }

    func testBF16WeightsStayMappedAndFP8CastsEveryBaseTensor() throws {
        let file = try FluxFixtures.dit()
        let mappedAddress = try file.tensor("double_blocks.1.img_mlp.0.weight").rawPointer
        let bf16 = try FluxDiT(weights: file, lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .bf16))
        XCTAssertEqual(bf16.doubleBlocks[1].imageMLP.up.weight.rawPointer, mappedAddress, "not a LoRA target: the file's own bytes")
        XCTAssertEqual(bf16.doubleBlocks[1].imageAttention.qkv.weight.dtype, .bf16, "merged, rounded back to the stored type")

        let fp8 = try FluxDiT(weights: file, lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .fp8))
        XCTAssertEqual(fp8.doubleBlocks[1].imageMLP.up.weight.dtype, .f8e4m3)
        XCTAssertEqual(fp8.singleBlocks[0].norm.queryScale.dtype, .f8e4m3, "norm scales too (spec §7.4)")
        XCTAssertEqual(fp8.finalLayer.linear.bias?.dtype, .f8e4m3, "biases too")
        XCTAssertEqual(fp8.singleBlocks[0].lora?.qkv.down.dtype, .bf16, "the LoRA keeps its stored type")
    }

    func testVAEFileIsNotADiT() throws {
        let vae = InMemoryWeights([
            "encoder.conv_in.weight": Tensor(zeros: [8, 3, 3, 3]), "decoder.conv_in.weight": Tensor(zeros: [8, 16, 3, 3]),
        ])
        XCTAssertThrowsError(try FluxDiT(weights: vae)) { error in
            guard case WeightError.wrongModel(let expected, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(expected.contains("FLUX DiT"), expected)
            XCTAssertTrue(reason.contains("autoencoder"), reason)
        }
    }

    func testDiffusersLayoutIsNamed() throws {
        let diffusers = InMemoryWeights(["x_embedder.weight": Tensor(zeros: [8, 4]), "transformer_blocks.0.attn.to_q.weight": Tensor(zeros: [8, 8])])
        XCTAssertThrowsError(try FluxConfig(detectingFrom: diffusers)) { error in
            XCTAssertTrue("\(error)".contains("diffusers"), "\(error)")
        }
    }

    func testMissingKeyIsNamed() throws {
        let weights = try InMemoryWeights(copying: try FluxFixtures.dit()) { $0 == "single_blocks.1.linear2.bias" }
        XCTAssertThrowsError(try FluxDiT(weights: weights)) { error in
            XCTAssertEqual(error as? WeightError, .missingKey("single_blocks.1.linear2.bias"))
        }
    }

    func testUnexpectedKeyIsNamed() throws {
        let weights = try InMemoryWeights(copying: try FluxFixtures.dit(), adding: ["double_blocks.0.img_attn.extra.weight": Tensor(zeros: [2])])
        XCTAssertThrowsError(try FluxDiT(weights: weights)) { error in
            XCTAssertEqual(error as? WeightError, .unexpectedKeys(["double_blocks.0.img_attn.extra.weight"]))
        }
    }

    func testMisshapenKeyIsNamed() throws {
        let weights = try InMemoryWeights(copying: try FluxFixtures.dit(), adding: ["double_blocks.1.txt_mlp.2.weight": Tensor(zeros: [64, 128])])
        XCTAssertThrowsError(try FluxDiT(weights: weights)) { error in
            XCTAssertEqual(error as? WeightError, .shapeMismatch(key: "double_blocks.1.txt_mlp.2.weight", expected: [64, 256], found: [64, 128]))
        }
    }

    func testLoRARankIsReadFromTheFileAndCheckedAgainstTheExpectedRank() throws {
        let config = try FluxConfig(detectingFrom: try FluxFixtures.dit())
        XCTAssertEqual(try USOLoRA(try FluxFixtures.lora(), config: config).rank, 4)
        XCTAssertThrowsError(try USOLoRA(try FluxFixtures.lora(), config: config, expectedRank: 128)) { error in
            guard case WeightError.wrongModel(let expected, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(expected.contains("rank-128"), expected)
            XCTAssertTrue(reason.contains("rank is 4"), reason)
        }
    }

    func testLoRAWithAnotherRankInOneBranchIsRejected() throws {
        let lora = try InMemoryWeights(copying: try FluxFixtures.lora(), adding: [
            "single_blocks.1.processor.proj_lora.down.weight": Tensor(zeros: [8, 320]),
            "single_blocks.1.processor.proj_lora.up.weight": Tensor(zeros: [64, 8]),
        ])
        XCTAssertThrowsError(try FluxDiT(weights: try FluxFixtures.dit(), lora: lora)) { error in
            guard case WeightError.wrongModel(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("single_blocks.1.processor.proj_lora.down.weight"), reason)
        }
    }

    func testLoRAForALargerModelIsRejected() throws {
        // Widths of another DiT: every branch mismatches; the first one is named.
        let config = try FluxConfig(detectingFrom: try FluxFixtures.dit())
        let wide = try InMemoryWeights(copying: try FluxFixtures.lora(), adding: [
            "double_blocks.0.processor.qkv_lora1.down.weight": Tensor(zeros: [4, 3072]),
        ])
        XCTAssertThrowsError(try USOLoRA(wide, config: config)) { error in
            XCTAssertTrue("\(error)".contains("double_blocks.0.processor.qkv_lora1.down.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("hidden 64"), "\(error)")
        }
    }

    func testLoRAMissingOrExtraBranchesAreErrors() throws {
        let missing = try InMemoryWeights(copying: try FluxFixtures.lora()) { $0 == "double_blocks.1.processor.proj_lora2.up.weight" }
        XCTAssertThrowsError(try FluxDiT(weights: try FluxFixtures.dit(), lora: missing)) { error in
            XCTAssertEqual(error as? WeightError, .missingKey("double_blocks.1.processor.proj_lora2.up.weight"))
        }
        let deeper = try InMemoryWeights(copying: try FluxFixtures.lora(), adding: [
            "double_blocks.2.processor.qkv_lora1.down.weight": Tensor(zeros: [4, 64]),
        ])
        XCTAssertThrowsError(try FluxDiT(weights: try FluxFixtures.dit(), lora: deeper)) { error in
            XCTAssertEqual(error as? WeightError, .unexpectedKeys(["double_blocks.2.processor.qkv_lora1.down.weight"]))
        }
    }

    func testBaseWeightsPassedAsLoRAAreRejected() throws {
        XCTAssertThrowsError(try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.dit())) { error in
            guard case WeightError.wrongModel(let expected, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(expected.contains("USO LoRA"), expected)
        }
    }

    func testBadInputsAreTypedErrors() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), options: FluxLoadOptions(precision: .f32))
        let conditioning = try FluxFixtures.conditioning(cases, mode: .diagonal)
        let image = try cases.tensor("input.image")
        XCTAssertThrowsError(try dit(image: image, conditioning: conditioning, timestep: 0.5, guidance: nil)) {
            XCTAssertEqual($0 as? FluxInputError, .missingGuidance)
        }
        XCTAssertThrowsError(try dit(image: Tensor(zeros: [12, 16]), conditioning: conditioning, timestep: 0.5, guidance: 4)) {
            guard case FluxInputError.shape = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try dit(image: image.rows(0..<10), conditioning: conditioning, timestep: 0.5, guidance: 4)) {
            XCTAssertEqual($0 as? FluxInputError, .positionCount(of: "noisy image tokens", tokens: 10, positions: 12))
        }
        var badReference = conditioning
        badReference.references[1].positions.removeLast()
        XCTAssertThrowsError(try dit.prepare(badReference)) {
            XCTAssertEqual($0 as? FluxInputError, .positionCount(of: "content reference 2", tokens: 6, positions: 5))
        }
        var badStyle = conditioning
        badStyle.styleTokens = Tensor(zeros: [3, 32])
        XCTAssertThrowsError(try dit.prepare(badStyle)) { guard case FluxInputError.shape = $0 else { return XCTFail("\($0)") } }
        XCTAssertThrowsError(try packLatents(Tensor(zeros: [16, 7, 6]))) {
            XCTAssertEqual($0 as? FluxInputError, .oddLatentSize(height: 7, width: 6))
        }
    }
}
