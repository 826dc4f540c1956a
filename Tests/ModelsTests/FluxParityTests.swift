// The USO FLUX forward against tools/fixtures/flux.py (an independent PyTorch implementation of
// spec §3-§4), on a tiny DiT in the real key layout: text, 6 style tokens, two content references.
import XCTest
@testable import FluxDiT
import TensorEngine
import WeightFiles

final class FluxParityTests: XCTestCase {
    // F32: both sides compute in F32 with the same weights, so only summation order differs;
    // measured 3.4e-6 relative (cosine 1 - 1e-12).
    let f32Relative = 1e-4, f32Cosine = 0.99999

    func testF32VelocityMatchesTorchForEveryPositionMode() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                              options: FluxLoadOptions(precision: .f32, loraMode: .runtime))
        for mode in ReferencePositionMode.allCases {
            let velocity = try FluxFixtures.velocity(dit, cases, mode: mode)
            XCTAssertEqual(velocity.dtype, .f32)
            XCTAssertAgrees(velocity, try cases.tensor("f32.\(mode.rawValue).velocity"),
                            relative: f32Relative, cosine: f32Cosine, "f32 runtime LoRA pe=\(mode.rawValue)")
        }
    }

    func testF32MergedLoRAMatchesTorchAndRuntimeLoRA() throws {
        let cases = try FluxFixtures.cases()
        let merged = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .f32))
        XCTAssertEqual(merged.lora?.mode, .merged)
        XCTAssertEqual(merged.lora?.rank, 4)
        let runtime = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                                  options: FluxLoadOptions(precision: .f32, loraMode: .runtime))
        let mergedVelocity = try FluxFixtures.velocity(merged, cases)
        XCTAssertAgrees(mergedVelocity, try cases.tensor("f32.d.velocity"), relative: f32Relative, cosine: f32Cosine, "f32 merged LoRA")
        XCTAssertAgrees(mergedVelocity, try FluxFixtures.velocity(runtime, cases), relative: f32Relative, cosine: f32Cosine,
                        "f32 merged vs runtime LoRA")
    }

    func testPositionModesGiveDifferentVelocities() throws {
        // Guards the test above against a fixture in which the reference positions do not matter.
        let cases = try FluxFixtures.cases()
        let diagonal = try cases.tensor("f32.d.velocity")
        for mode in ["h", "w", "o"] {
            XCTAssertGreaterThan(Agreement(try cases.tensor("f32.\(mode).velocity"), diagonal).relativeMaxAbs, 1e-2, mode)
        }
    }

    func testPlainFluxWithoutLoRAStyleOrReferences() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), options: FluxLoadOptions(precision: .f32))
        XCTAssertNil(dit.lora)
        let velocity = try FluxFixtures.velocity(dit, cases, style: false, references: false)
        XCTAssertAgrees(velocity, try cases.tensor("f32.plain.velocity"), relative: f32Relative, cosine: f32Cosine, "f32 plain FLUX")
    }

    func testSchnellLayoutWithoutGuidanceEmbedding() throws {
        let cases = try FluxFixtures.cases()
        let schnell = try InMemoryWeights(copying: try FluxFixtures.dit()) { $0.hasPrefix("guidance_in.") }
        let dit = try FluxDiT(weights: schnell, lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .f32))
        XCTAssertFalse(dit.config.guidanceEmbed)
        let velocity = try FluxFixtures.velocity(dit, cases)
        XCTAssertAgrees(velocity, try cases.tensor("f32.schnell.velocity"), relative: f32Relative, cosine: f32Cosine, "f32 schnell")
    }

    // BF16 and FP8: both sides round to BF16 at the same points, but PyTorch's CPU kernels
    // accumulate in other orders (blocked GEMM, vectorised reductions), so now and then a rounding
    // lands one BF16 ulp away; such a flip reaches the output as about one BF16 ulp of its range
    // (2⁻⁶ on values up to ~3, i.e. ~5e-3 relative). Measured: bf16 4.6e-3 (cosine 0.999997
    // runtime, 0.99999 merged, whose merged weights round differently), fp8 bit-identical.
    // Bound: 1e-2 (two output ulps), cosine 0.9999. For scale: BF16 against F32 is ~8e-3 here.
    let bf16Relative = 1e-2, bf16Cosine = 0.9999

    func testBF16VelocityMatchesTorch() throws {
        let cases = try FluxFixtures.cases()
        let expected = try cases.tensor("bf16.d.velocity")
        for mode in LoRAMode.allCases {
            let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                                  options: FluxLoadOptions(precision: .bf16, loraMode: mode))
            let velocity = try FluxFixtures.velocity(dit, cases)
            XCTAssertEqual(velocity.dtype, .bf16)
            XCTAssertAgrees(velocity, expected, relative: bf16Relative, cosine: bf16Cosine, "bf16 \(mode) LoRA")
        }
    }

    // FP8: the same e4m3 weights on both sides (one rounding of the same BF16 values) and BF16
    // compute with the autocast's F32 islands, so the BF16 bound applies.
    func testFP8VelocityMatchesTorch() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .fp8))
        XCTAssertEqual(dit.lora?.mode, .runtime, "fp8 keeps the LoRA unmerged, as the reference")
        let velocity = try FluxFixtures.velocity(dit, cases)
        XCTAssertEqual(velocity.dtype, .bf16)
        let expected = try cases.tensor("fp8.d.velocity")
        XCTAssertAgrees(velocity, expected, relative: bf16Relative, cosine: bf16Cosine, "fp8 runtime LoRA")
        XCTAssertGreaterThan(Agreement(velocity, try cases.tensor("bf16.d.velocity")).relativeMaxAbs, 2e-2,
                             "the fp8 weights must differ measurably from BF16, else this test proves nothing")
    }

    // Merging into fp8 weights (a non-default choice) quantises the LoRA deltas with the weights,
    // which the reference never does; it must still load and stay close.
    func testFP8WithMergedLoRAStaysClose() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                              options: FluxLoadOptions(precision: .fp8, loraMode: .merged))
        XCTAssertEqual(dit.singleBlocks[1].linear1.weight.dtype, .f8e4m3)
        XCTAssertNil(dit.singleBlocks[1].lora)
        let agreement = Agreement(try FluxFixtures.velocity(dit, cases), try cases.tensor("fp8.d.velocity"))
        print("[flux] fp8 merged LoRA vs reference fp8: \(agreement)")
        XCTAssertGreaterThan(agreement.cosine, 0.99)
    }

    /// The conditioning vector isolates the timestep and guidance embeddings, whose BF16 rounding
    /// of t and 1000·t (spec §10.1) moves the whole output when missed. F32: the sinusoids of
    /// arguments up to 1000·t turn a one-ulp difference between libm's and PyTorch's exp into
    /// ~1e-5 absolute; measured 5e-6 relative, bound 5e-5. BF16/FP8: measured bit-identical.
    func testConditioningVectorMatchesTorchInEveryPrecision() throws {
        let cases = try FluxFixtures.cases()
        let bounds: [(FluxPrecision, Double)] = [(.f32, 5e-5), (.bf16, 1e-2), (.fp8, 1e-2)]
        for (precision, bound) in bounds {
            let dit = try FluxDiT(weights: try FluxFixtures.dit(), options: FluxLoadOptions(precision: precision))
            let context = try dit.prepare(try FluxFixtures.conditioning(cases, mode: .diagonal))
            let vec = try dit.conditioningVector(timestep: try FluxFixtures.scalar(cases, "input.timestep"),
                                                 guidance: try FluxFixtures.scalar(cases, "input.guidance"), context: context)
            XCTAssertAgrees(vec.reshaped([vec.count]), try cases.tensor("\(precision.rawValue).d.vec"),
                            relative: bound, cosine: 0.9999, "vec \(precision)")
        }
        // Guidance 3.5 is embedded as bf16(1000·3.5) = 3504 in BF16 runs (the spec's example).
        XCTAssertEqual(roundedValue(1000 * roundedValue(3.5, to: .bf16), to: .bf16), 3504)
        let bf16Embedding = timestepEmbedding(3.5, dim: 256, type: .bf16).converted(to: .f32)
        XCTAssertEqual(bf16Embedding.toFloats()[1], roundedValue(cosf(3504 * expf(Float(-log(10_000.0)) / 128)), to: .bf16))
    }

    func testPositionsAndRoPETablesMatchTorch() throws {
        let cases = try FluxFixtures.cases()
        let textCount = 13  // 6 style + 7 text tokens
        for mode in ReferencePositionMode.allCases {
            let conditioning = try FluxFixtures.conditioning(cases, mode: mode)
            let positions = Array(repeating: FluxTokenPosition.origin, count: textCount) + conditioning.imagePositions
                + conditioning.references.flatMap(\.positions)
            let flat = positions.flatMap { [Float($0.index), Float($0.row), Float($0.column)] }
            XCTAssertEqual(flat, try cases.tensor("f32.\(mode.rawValue).ids").toFloats(), "ids for pe=\(mode.rawValue)")
            if mode == .diagonal {
                let rope = RoPETables(positions: positions, axes: [4, 14, 14], theta: 10_000)
                XCTAssertAgrees(rope.cos, try cases.tensor("f32.d.rope.cos"), relative: 1e-6, cosine: 0.999999, "rope cos")
                XCTAssertAgrees(rope.sin, try cases.tensor("f32.d.rope.sin"), relative: 1e-6, cosine: 0.999999, "rope sin")
            }
        }
    }

    func testPackingMatchesTorchAndUnpackInverts() throws {
        let cases = try FluxFixtures.cases()
        let latent = try cases.tensor("input.latent")
        let tokens = try packLatents(latent)
        XCTAssertEqual(tokens.shape, [12, 64])
        XCTAssertEqual(tokens.toFloats(), try cases.tensor("input.image").toFloats())
        XCTAssertEqual(try unpackLatents(tokens, latentHeight: 8, latentWidth: 6).toFloats(), latent.toFloats())
        for i in 0..<2 {
            XCTAssertEqual(try packLatents(try cases.tensor("input.reference\(i).latent")).toFloats(),
                           try cases.tensor("input.reference\(i).tokens").toFloats())
        }
    }

    func testPreparedContextIsReusedAcrossSteps() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .f32))
        let context = try dit.prepare(try FluxFixtures.conditioning(cases, mode: .diagonal))
        XCTAssertEqual(context.imageTokenCount, 12)
        let image = try cases.tensor("input.image")
        let guidance = try FluxFixtures.scalar(cases, "input.guidance")
        let first = try dit.velocity(image: image, timestep: 0.25, guidance: guidance, context: context)
        let second = try dit.velocity(image: image, timestep: try FluxFixtures.scalar(cases, "input.timestep"),
                                      guidance: guidance, context: context)
        XCTAssertAgrees(second, try cases.tensor("f32.d.velocity"), relative: f32Relative, cosine: f32Cosine, "second step")
        XCTAssertGreaterThan(Agreement(first, second).relativeMaxAbs, 1e-2, "the timestep must matter")
    }
}

final class FluxStepBenchmarkTests: XCTestCase {
    func testBenchmarkCountsTokensAndFLOPsOfTheTinyModel() throws {
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                              options: FluxLoadOptions(precision: .bf16, loraMode: .runtime))
        let scenario = FluxStepBenchmark.Scenario(width: 64, height: 48, referenceWidth: 32, referenceHeight: 32,
                                                  styleImages: 1, styleTokensPerImage: 3, textTokens: 5)
        let result = try FluxStepBenchmark.run(dit, scenario: scenario)
        print("[flux] \(result)")
        XCTAssertEqual(result.sequenceLength, 3 + 5 + 4 * 3 + 2 * 2)
        XCTAssertGreaterThan(result.stepSeconds, 0)
        XCTAssertLessThanOrEqual(result.doubleBlockSeconds + result.singleBlockSeconds, result.stepSeconds)
        XCTAssertGreaterThan(result.peakResidentBytes, 0)
        // 2 double + 2 single blocks over N = 24 tokens, hidden 64, MLP 256, rank-4 LoRA.
        let n = 24.0, h = 64.0, mlp = 256.0, r = 4.0
        let attention = 4 * n * n * h
        let expected = 2 * (2 * n * (3 * h * h + h * h + 2 * h * mlp) + attention)
            + 2 * (2 * n * (h * (3 * h + mlp) + (h + mlp) * h) + attention)
            + 2 * 2 * n * r * (4 * h + 2 * h) + 2 * 2 * n * r * (4 * h + h + mlp + h)
            + 2 * 12 * 128 * h
        XCTAssertEqual(result.stepFLOPs, expected, accuracy: 1)
    }

    func testFLOPCountMatchesTheSpecForTheFullModel() throws {
        // Spec §9.3: 1024², 512² content, 1 style, merged LoRA: double linear 25.07 T + attention
        // 7.92 T, single 50.13 T + 15.84 T over N = 5824.
        var config = try FluxConfig(detectingFrom: try FluxFixtures.dit())
        config.hiddenSize = 3072
        config.mlpHiddenSize = 12288
        config.doubleBlockCount = 19
        config.singleBlockCount = 38
        let flops = FluxStepBenchmark.stepFLOPs(config: config, runtimeLoRARank: nil, textLength: 704, imageLength: 5120, targetLength: 4096)
        let imageInAndFinalLayer = 2 * 4096 * 128 * 3072.0
        XCTAssertEqual((flops - imageInAndFinalLayer) / 1e12, 25.07 + 7.92 + 50.13 + 15.84, accuracy: 0.02)
    }
}
