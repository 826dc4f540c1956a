// Loading the autoencoder: configuration from shapes, and typed errors for files that do not fit.
import XCTest
import TensorEngine
import WeightFiles
@testable import Autoencoder

final class AutoencoderLoadingTests: XCTestCase {
    func testConfigurationIsDetectedFromShapes() throws {
        let config = try AutoencoderConfig(detectingFrom: AutoencoderFixtures.weights())
        XCTAssertEqual(config.imageChannels, 3)
        XCTAssertEqual(config.baseChannels, 32)
        XCTAssertEqual(config.channelMultipliers, [2, 1])
        XCTAssertEqual(config.resBlocksPerLevel, 1)
        XCTAssertEqual(config.latentChannels, 4)
        XCTAssertEqual(config.downsamplingFactor, 2)
        XCTAssertEqual(config.scaleFactor, 0.3611)
        XCTAssertEqual(config.shiftFactor, 0.1159)
        XCTAssertEqual(AutoencoderConfig.flux.downsamplingFactor, 8)

        let model = try Autoencoder(contentsOf: AutoencoderFixtures.weightsPath)
        XCTAssertEqual(model.config, config)
        XCTAssertNotNil(model.encoder)
        XCTAssertNotNil(model.decoder)
    }

    func testAFileOfAnotherModelIsWrongModel() throws {
        let dit = InMemoryWeights(["double_blocks.0.img_attn.qkv.weight": Tensor(zeros: [12, 4]),
                                   "img_in.weight": Tensor(zeros: [4, 8])])
        XCTAssertThrowsError(try Autoencoder(weights: dit)) { error in
            guard case WeightError.wrongModel(let expected, let reason)? = error as? WeightError else {
                return XCTFail("expected wrongModel, got \(error)")
            }
            XCTAssertTrue(expected.contains("FLUX autoencoder"))
            XCTAssertTrue(reason.contains("img_in.weight") || reason.contains("double_blocks"), reason)
        }
    }

    func testAMissingKeyIsNamed() throws {
        var tensors = try AutoencoderFixtures.weightDictionary()
        tensors["decoder.up.0.block.0.nin_shortcut.bias"] = nil
        XCTAssertThrowsError(try Autoencoder(weights: InMemoryWeights(tensors))) { error in
            XCTAssertEqual(error as? WeightError, .missingKey("decoder.up.0.block.0.nin_shortcut.bias"))
        }
        // Loading only the encoder does not need the decoder's tensors.
        XCTAssertNoThrow(try Autoencoder(weights: InMemoryWeights(tensors), parts: .encoder))
    }

    func testAnUnexpectedKeyIsNamed() throws {
        var tensors = try AutoencoderFixtures.weightDictionary()
        tensors["encoder.down.0.attn.0.q.weight"] = Tensor(zeros: [64, 64, 1, 1])
        XCTAssertThrowsError(try Autoencoder(weights: InMemoryWeights(tensors))) { error in
            XCTAssertEqual(error as? WeightError, .unexpectedKeys(["encoder.down.0.attn.0.q.weight"]))
        }
        var stray = try AutoencoderFixtures.weightDictionary()
        stray["quant_conv.weight"] = Tensor(zeros: [8, 8, 1, 1])
        XCTAssertThrowsError(try Autoencoder(weights: InMemoryWeights(stray), parts: .decoder)) { error in
            XCTAssertEqual(error as? WeightError, .unexpectedKeys(["quant_conv.weight"]))
        }
    }

    func testAMisshapedTensorIsNamed() throws {
        var tensors = try AutoencoderFixtures.weightDictionary()
        tensors["decoder.mid.attn_1.q.weight"] = Tensor(zeros: [32, 32, 3, 3])
        XCTAssertThrowsError(try Autoencoder(weights: InMemoryWeights(tensors))) { error in
            XCTAssertEqual(error as? WeightError,
                           .shapeMismatch(key: "decoder.mid.attn_1.q.weight", expected: [32, 32, 1, 1], found: [32, 32, 3, 3]))
        }
        var latent = try AutoencoderFixtures.weightDictionary()
        latent["encoder.conv_out.weight"] = Tensor(zeros: [6, 32, 3, 3])
        latent["encoder.conv_out.bias"] = Tensor(zeros: [6])
        XCTAssertThrowsError(try Autoencoder(weights: InMemoryWeights(latent))) { error in
            XCTAssertEqual(error as? WeightError,
                           .shapeMismatch(key: "encoder.conv_out.weight", expected: [8, 32, 3, 3], found: [6, 32, 3, 3]))
        }
    }

    func testBadInputsAreTypedErrors() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights())
        XCTAssertThrowsError(try model.encode(Tensor(zeros: [3, 47, 32]))) { error in
            guard case AutoencoderError.imageShape? = error as? AutoencoderError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try model.encode(Tensor(zeros: [4, 8, 8])))
        XCTAssertThrowsError(try model.encode(Tensor(zeros: [3, 0, 8])))
        XCTAssertThrowsError(try model.decode(Tensor(zeros: [16, 4, 4]))) { error in
            guard case AutoencoderError.latentShape? = error as? AutoencoderError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try model.encode(Tensor(zeros: [3, 8, 8]), sampling: .sample { _ in [0, 1] })) { error in
            XCTAssertEqual(error as? AutoencoderError, .noiseCount(expected: 64, found: 2))
        }
        XCTAssertThrowsError(try model.decode(Tensor(zeros: [4, 4, 4]), tiling: .tiled(TileLayout(maxTileSize: 4, overlap: 4))))
        XCTAssertThrowsError(try Autoencoder(weights: AutoencoderFixtures.weights(), dtype: .f8e4m3)) { error in
            XCTAssertEqual(error as? AutoencoderError, .unsupportedDType(.f8e4m3))
        }
        let decoderOnly = try Autoencoder(weights: AutoencoderFixtures.weights(), parts: .decoder)
        XCTAssertThrowsError(try decoderOnly.encode(Tensor(zeros: [3, 8, 8]))) { error in
            XCTAssertEqual(error as? AutoencoderError, .partNotLoaded("encoder"))
        }
    }
}
