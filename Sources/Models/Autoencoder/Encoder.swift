// BFL `Encoder`: image -> latent moments (mean and log-variance), downsampling ×2 between levels.
import Layers

public struct Encoder: Sendable {
    struct Level: Sendable {
        let blocks: [ResnetBlock]
        let downsample: Downsample?     // every level but the last
    }

    let convIn: Conv2d                  // [ch, 3, 3, 3]
    let levels: [Level]                 // `down.N`
    let mid: MidBlock
    let normOut: GroupNorm
    let convOut: Conv2d                 // [2·z, C_last, 3, 3]
    public let config: AutoencoderConfig

    init(_ weights: WeightReader, config: AutoencoderConfig) throws {
        self.config = config
        convIn = try weights.conv("conv_in", config.imageChannels, config.baseChannels, kernel: 3, padding: 1)
        var width = config.baseChannels
        var levels: [Level] = []
        for level in 0..<config.levels {
            let stage = weights.scoped("down.\(level)")
            var blocks: [ResnetBlock] = []
            for index in 0..<config.resBlocksPerLevel {
                blocks.append(try ResnetBlock(stage.scoped("block.\(index)"), inputs: width,
                                              outputs: config.channels(level: level), config: config))
                width = config.channels(level: level)
            }
            let isLast = level == config.levels - 1
            levels.append(Level(blocks: blocks, downsample: isLast ? nil : try Downsample(stage.scoped("downsample"), channels: width)))
        }
        self.levels = levels
        mid = try MidBlock(weights.scoped("mid"), channels: width, config: config)
        normOut = try weights.groupNorm("norm_out", width, config)
        convOut = try weights.conv("conv_out", width, 2 * config.latentChannels, kernel: 3, padding: 1)
    }

    // image: [3, H, W] -> moments [2·z, H/f, W/f] (channels 0..<z mean, z..<2z log-variance)
    public func callAsFunction(_ image: Tensor) -> Tensor {
        var h = convIn(image)
        for level in levels {
            for block in level.blocks { h = block(h) }
            if let downsample = level.downsample { h = downsample(h) }
        }
        h = mid(h)
        return convOut(swish(normOut(h)))
    }
}
