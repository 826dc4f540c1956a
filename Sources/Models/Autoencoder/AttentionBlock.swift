// BFL `AttnBlock`: GroupNorm, 1×1 q/k/v convolutions, one attention head over every position, 1×1
// `proj_out`, residual. Used once in each mid block.
import Layers

struct AttentionBlock: Sendable {
    let norm: GroupNorm
    let q: Conv2d           // [C, C, 1, 1]
    let k: Conv2d
    let v: Conv2d
    let projOut: Conv2d

    init(_ weights: WeightReader, channels: Int, config: AutoencoderConfig) throws {
        norm = try weights.groupNorm("norm", channels, config)
        q = try weights.conv("q", channels, channels, kernel: 1)
        k = try weights.conv("k", channels, channels, kernel: 1)
        v = try weights.conv("v", channels, channels, kernel: 1)
        projOut = try weights.conv("proj_out", channels, channels, kernel: 1)
    }

    // x: [C, H, W] -> [C, H, W]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let channels = x.shape[0], height = x.shape[1], width = x.shape[2]
        let normed = norm(x)
        // [C, H, W] -> [H·W, 1 head, C]
        func positions(_ t: Tensor) -> Tensor { permute(t.reshaped([channels, height * width]), [1, 0]).reshaped([height * width, 1, channels]) }
        let attended = attention(query: positions(q(normed)), key: positions(k(normed)), value: positions(v(normed)),
                                 scale: 1 / Float(channels).squareRoot())   // [H·W, C]
        let image = permute(attended, [1, 0]).reshaped([channels, height, width])
        return x + projOut(image)
    }
}
