// The `mid` module of encoder and decoder: resnet block, attention over the whole latent grid, resnet block.
import Layers

struct MidBlock: Sendable {
    let block1: ResnetBlock
    let attention: AttentionBlock
    let block2: ResnetBlock

    init(_ weights: WeightReader, channels: Int, config: AutoencoderConfig) throws {
        block1 = try ResnetBlock(weights.scoped("block_1"), inputs: channels, outputs: channels, config: config)
        attention = try AttentionBlock(weights.scoped("attn_1"), channels: channels, config: config)
        block2 = try ResnetBlock(weights.scoped("block_2"), inputs: channels, outputs: channels, config: config)
    }

    // x: [C, h, w] -> [C, h, w]
    func callAsFunction(_ x: Tensor) -> Tensor { block2(attention(block1(x))) }
}
