// The FLUX autoencoder against the independent PyTorch implementation in tools/fixtures/autoencoder.py
// (tiny configuration, random weights in the BFL layout).
import FluxDiT
import XCTest
import TensorEngine
import WeightFiles
@testable import Autoencoder

final class AutoencoderParityTests: XCTestCase {
    /// F32: same operations in the same precision; only summation order differs (GEMM blocking,
    /// GroupNorm and softmax reductions), which stays orders of magnitude below 1e-4.
    static let f32Tolerance: Float = 1e-4

    func testEncodeMatchesTorchInF32() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights(), dtype: .f32, parts: .encoder)
        let expected = try AutoencoderFixtures.expected()
        let image = try expected.tensor("image")

        let (mean, logVariance) = try model.moments(image)
        for (name, actual) in [("mean", mean), ("logvar", logVariance)] {
            let difference = AutoencoderDifference(actual, try expected.tensor(name))
            print("encode \(name) F32: \(difference)")
            XCTAssertLessThan(difference.relative, Self.f32Tolerance, name)
        }

        let latent = try model.encode(image)
        XCTAssertEqual(latent.shape, [4, 24, 16])
        XCTAssertEqual(latent.dtype, .f32)
        let meanDifference = AutoencoderDifference(latent, try expected.tensor("latent_mean"))
        print("encode (mean, scale/shift) F32: \(meanDifference)")
        XCTAssertLessThan(meanDifference.relative, Self.f32Tolerance)

        let noise = try expected.tensor("noise").toFloats()
        var requested: [Int] = []
        let sampled = try model.encode(image, sampling: .sample { count in requested.append(count); return noise })
        XCTAssertEqual(requested, [noise.count])
        let sampleDifference = AutoencoderDifference(sampled, try expected.tensor("latent_sample"))
        print("encode (sample, scale/shift) F32: \(sampleDifference)")
        XCTAssertLessThan(sampleDifference.relative, Self.f32Tolerance)
    }

    func testDecodeMatchesTorchInF32() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights(), dtype: .f32, parts: .decoder)
        let expected = try AutoencoderFixtures.expected()
        let image = try model.decode(expected.tensor("latent"), tiling: .disabled)
        XCTAssertEqual(image.shape, [3, 48, 32])
        let difference = AutoencoderDifference(image, try expected.tensor("decoded"))
        print("decode F32: \(difference)")
        XCTAssertLessThan(difference.relative, Self.f32Tolerance)
    }

    /// BF16 (torch: `model.to(bfloat16)`): both sides round every op's result to BF16 (8 bits of
    /// mantissa, relative step 2⁻⁸ ≈ 0.4%), but accumulate in different orders, so a value sitting
    /// near a rounding boundary can land one BF16 step apart and the difference propagates through
    /// ~20 layers. Bound: a few BF16 steps of the output's range, and cosine ≥ 0.999.
    func testEncodeAndDecodeMatchTorchInBF16() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights(), dtype: .bf16)
        let expected = try AutoencoderFixtures.expected()

        let latent = try model.encode(expected.tensor("image"))
        XCTAssertEqual(latent.dtype, .bf16)
        let encodeDifference = AutoencoderDifference(latent, try expected.tensor("bf16_latent_mean"))
        print("encode BF16: \(encodeDifference)")
        XCTAssertLessThan(encodeDifference.relative, 0.03)   // measured 0.9%
        XCTAssertGreaterThan(encodeDifference.cosine, 0.999)

        let image = try model.decode(expected.tensor("latent"), tiling: .disabled)
        XCTAssertEqual(image.dtype, .bf16)
        let decodeDifference = AutoencoderDifference(image, try expected.tensor("bf16_decoded"))
        print("decode BF16: \(decodeDifference)")
        XCTAssertLessThan(decodeDifference.relative, 0.03)   // measured 0.9%
        XCTAssertGreaterThan(decodeDifference.cosine, 0.999)

        // And BF16 stays close to the F32 reference (what the rounding costs overall).
        let f32Difference = AutoencoderDifference(image, try expected.tensor("decoded"))
        print("decode BF16 vs F32 torch: \(f32Difference)")
        XCTAssertGreaterThan(f32Difference.cosine, 0.999)
    }

    /// The DiT's packing (one implementation, in FluxDiT) on the VAE fixture's latent, against torch.
    func testPatchPackingMatchesTorchAndInverts() throws {
        let expected = try AutoencoderFixtures.expected()
        let latent = try expected.tensor("latent")
        let tokens = try packLatents(latent)
        XCTAssertEqual(tokens.shape, [96, 16])
        XCTAssertEqual(tokens.toFloats(), try expected.tensor("tokens").toFloats())
        let unpacked = try unpackLatents(tokens, latentHeight: 24, latentWidth: 16)
        XCTAssertEqual(unpacked.shape, latent.shape)
        XCTAssertEqual(unpacked.toFloats(), latent.toFloats())

        XCTAssertThrowsError(try packLatents(Tensor(zeros: [4, 3, 4])))
        XCTAssertThrowsError(try unpackLatents(tokens, latentHeight: 24, latentWidth: 18))
        XCTAssertThrowsError(try unpackLatents(Tensor(zeros: [96, 6]), latentHeight: 24, latentWidth: 16))
    }
}
