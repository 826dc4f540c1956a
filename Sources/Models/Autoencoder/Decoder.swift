// BFL `Decoder`: latent -> image, levels run from the last (narrowest grid) to the first, upsampling ×2
// after every level but level 0.
import Layers

public struct Decoder: Sendable {
    struct Level: Sendable {
        let blocks: [ResnetBlock]
        let upsample: Upsample?         // every level but level 0
    }

    let convIn: Conv2d                  // [C_last, z, 3, 3]
    let mid: MidBlock
    let levels: [Level]                 // `up.N`, indexed by level; run in reverse
    let normOut: GroupNorm
    let convOut: Conv2d                 // [3, ch·mult[0], 3, 3]
    public let config: AutoencoderConfig

    init(_ weights: WeightReader, config: AutoencoderConfig) throws {
        self.config = config
        var width = config.channels(level: config.levels - 1)
        convIn = try weights.conv("conv_in", config.latentChannels, width, kernel: 3, padding: 1)
        mid = try MidBlock(weights.scoped("mid"), channels: width, config: config)
        var levels: [Level] = []
        for level in (0..<config.levels).reversed() {
            let stage = weights.scoped("up.\(level)")
            var blocks: [ResnetBlock] = []
            for index in 0...config.resBlocksPerLevel {   // one block more than the encoder's level
                blocks.append(try ResnetBlock(stage.scoped("block.\(index)"), inputs: width,
                                              outputs: config.channels(level: level), config: config))
                width = config.channels(level: level)
            }
            levels.insert(Level(blocks: blocks, upsample: level == 0 ? nil : try Upsample(stage.scoped("upsample"), channels: width)),
                          at: 0)
        }
        self.levels = levels
        normOut = try weights.groupNorm("norm_out", width, config)
        convOut = try weights.conv("conv_out", width, config.imageChannels, kernel: 3, padding: 1)
    }

    // z: [z, h, w] (unscaled) -> image [3, h·f, w·f]
    public func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid(convIn(z))
        for level in levels.reversed() {
            for block in level.blocks { h = block(h) }
            if let upsample = level.upsample { h = upsample(h) }
        }
        return convOut(swish(normOut(h)))
    }
}
