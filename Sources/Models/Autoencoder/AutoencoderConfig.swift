// Hyperparameters of the FLUX autoencoder (BFL `AutoEncoderParams`), read from the checkpoint's shapes
// so that smaller autoencoders in the same layout load too.
import Layers

/// Shape and latent-space constants of an autoencoder in the Black Forest Labs layout.
public struct AutoencoderConfig: Sendable, Equatable {
    /// Image channels in and out (3 for RGB).
    public var imageChannels: Int
    /// Width of the first level (`ch`, 128 in FLUX).
    public var baseChannels: Int
    /// Width of each level as a multiple of `baseChannels` (`ch_mult`, [1, 2, 4, 4] in FLUX).
    public var channelMultipliers: [Int]
    /// Resnet blocks per encoder level (`num_res_blocks`, 2 in FLUX); decoder levels have one more.
    public var resBlocksPerLevel: Int
    /// Latent channels (`z_channels`, 16 in FLUX).
    public var latentChannels: Int
    /// Latent normalisation: `latent = scale·(z − shift)`. FLUX.1's values (BFL `ae_params`).
    public var scaleFactor: Float
    public var shiftFactor: Float
    /// GroupNorm settings of every norm in the model (torch `Normalize`: 32 groups, eps 1e-6).
    public var normGroups: Int = 32
    public var normEpsilon: Float = 1e-6

    public static let fluxScaleFactor: Float = 0.3611
    public static let fluxShiftFactor: Float = 0.1159

    public init(imageChannels: Int = 3, baseChannels: Int, channelMultipliers: [Int], resBlocksPerLevel: Int,
                latentChannels: Int, scaleFactor: Float = fluxScaleFactor, shiftFactor: Float = fluxShiftFactor) {
        self.imageChannels = imageChannels
        self.baseChannels = baseChannels
        self.channelMultipliers = channelMultipliers
        self.resBlocksPerLevel = resBlocksPerLevel
        self.latentChannels = latentChannels
        self.scaleFactor = scaleFactor
        self.shiftFactor = shiftFactor
    }

    /// FLUX.1's autoencoder (`ae.safetensors`).
    public static let flux = AutoencoderConfig(baseChannels: 128, channelMultipliers: [1, 2, 4, 4],
                                               resBlocksPerLevel: 2, latentChannels: 16)

    public var levels: Int { channelMultipliers.count }
    /// Image pixels per latent pixel along each axis (8 in FLUX): one ×2 step between levels.
    public var downsamplingFactor: Int { 1 << (levels - 1) }
    /// Width of level `level`.
    public func channels(level: Int) -> Int { baseChannels * channelMultipliers[level] }

    /// Reads the configuration from tensor shapes (no tensor bytes are touched):
    /// base channels from `encoder.conv_in`, each level's width from its first block's `conv2`, blocks
    /// per level by counting `encoder.down.0.block.N`, latent channels from `decoder.conv_in` (and
    /// `encoder.conv_out`, which emits mean and log-variance, so twice as many).
    /// A file without the autoencoder's landmark tensors is `WeightError.wrongModel`.
    public init(detectingFrom source: WeightSource, scaleFactor: Float = fluxScaleFactor,
                shiftFactor: Float = fluxShiftFactor) throws {
        func shape(_ key: String) -> [Int]? { source.info(key)?.shape }
        func require(_ key: String, rank: Int) throws -> [Int] {
            guard let found = shape(key) else { throw WeightError.missingKey(key) }
            guard found.count == rank, found.allSatisfy({ $0 > 0 }) else {
                throw WeightError.wrongModel(expected: "a FLUX autoencoder", reason: "'\(key)' has shape \(found)")
            }
            return found
        }
        guard let convIn = shape("encoder.conv_in.weight"), shape("decoder.conv_in.weight") != nil else {
            let sample = source.keys.prefix(3).joined(separator: ", ")
            throw WeightError.wrongModel(
                expected: "a FLUX autoencoder (ae.safetensors, Black Forest Labs layout)",
                reason: "no encoder.conv_in / decoder.conv_in tensors; the file holds \(source.keys.count) tensors such as \(sample)")
        }
        guard convIn.count == 4 else {
            throw WeightError.wrongModel(expected: "a FLUX autoencoder", reason: "'encoder.conv_in.weight' has shape \(convIn)")
        }
        let base = convIn[0]
        var multipliers: [Int] = []
        while shape("encoder.down.\(multipliers.count).block.0.conv2.weight") != nil {
            let key = "encoder.down.\(multipliers.count).block.0.conv2.weight"
            let width = try require(key, rank: 4)[0]
            guard width % base == 0 else {
                throw WeightError.wrongModel(expected: "a FLUX autoencoder",
                                             reason: "'\(key)' has \(width) channels, not a multiple of the base \(base)")
            }
            multipliers.append(width / base)
        }
        guard !multipliers.isEmpty else { throw WeightError.missingKey("encoder.down.0.block.0.conv2.weight") }
        var blocks = 0
        while shape("encoder.down.0.block.\(blocks).conv1.weight") != nil { blocks += 1 }
        let decoderIn = try require("decoder.conv_in.weight", rank: 4)
        let encoderOut = try require("encoder.conv_out.weight", rank: 4)
        guard encoderOut[0] == 2 * decoderIn[1] else {
            throw WeightError.shapeMismatch(key: "encoder.conv_out.weight", expected: [2 * decoderIn[1]] + encoderOut.dropFirst(),
                                            found: encoderOut)
        }
        let imageOut = try require("decoder.conv_out.weight", rank: 4)
        guard imageOut[0] == convIn[1] else {
            throw WeightError.shapeMismatch(key: "decoder.conv_out.weight", expected: [convIn[1]] + imageOut.dropFirst(), found: imageOut)
        }
        self.init(imageChannels: convIn[1], baseChannels: base, channelMultipliers: multipliers, resBlocksPerLevel: blocks,
                  latentChannels: decoderIn[1], scaleFactor: scaleFactor, shiftFactor: shiftFactor)
        if let width = ([base] + multipliers.map { $0 * base }).first(where: { $0 % normGroups != 0 }) {
            throw WeightError.wrongModel(expected: "a FLUX autoencoder",
                                         reason: "\(width) channels cannot be split into \(normGroups) GroupNorm groups")
        }
    }
}
