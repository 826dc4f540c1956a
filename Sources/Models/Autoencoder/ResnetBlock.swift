// BFL `ResnetBlock`: two GroupNorm → swish → 3×3 conv steps and a residual (1×1 `nin_shortcut` when
// the width changes).
import Layers

struct ResnetBlock: Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d           // [out, in, 3, 3]
    let norm2: GroupNorm
    let conv2: Conv2d           // [out, out, 3, 3]
    let ninShortcut: Conv2d?    // [out, in, 1, 1], only when in ≠ out

    init(_ weights: WeightReader, inputs: Int, outputs: Int, config: AutoencoderConfig) throws {
        norm1 = try weights.groupNorm("norm1", inputs, config)
        conv1 = try weights.conv("conv1", inputs, outputs, kernel: 3, padding: 1)
        norm2 = try weights.groupNorm("norm2", outputs, config)
        conv2 = try weights.conv("conv2", outputs, outputs, kernel: 3, padding: 1)
        ninShortcut = inputs == outputs ? nil : try weights.conv("nin_shortcut", inputs, outputs, kernel: 1)
    }

    // x: [in, H, W] -> [out, H, W]
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(swish(norm1(x)))
        h = conv2(swish(norm2(h)))
        let skip = ninShortcut.map { $0(x) } ?? x
        return skip + h
    }
}
