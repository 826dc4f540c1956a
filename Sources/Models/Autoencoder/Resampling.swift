// BFL `Downsample` and `Upsample`, the ×2 steps between levels.
import Layers

struct Downsample: Sendable {
    let conv: Conv2d        // [C, C, 3, 3], stride 2, no padding of its own

    init(_ weights: WeightReader, channels: Int) throws {
        conv = try weights.conv("conv", channels, channels, kernel: 3, stride: 2)
    }

    // x: [C, H, W] -> [C, ⌈H/2⌉, ⌈W/2⌉]; zero padding on the right and bottom only, as the reference.
    func callAsFunction(_ x: Tensor) -> Tensor { conv(padded(x, bottom: 1, right: 1)) }
}

struct Upsample: Sendable {
    let conv: Conv2d        // [C, C, 3, 3], padding 1

    init(_ weights: WeightReader, channels: Int) throws {
        conv = try weights.conv("conv", channels, channels, kernel: 3, padding: 1)
    }

    // x: [C, H, W] -> [C, 2H, 2W]; nearest-neighbour, then a convolution.
    func callAsFunction(_ x: Tensor) -> Tensor { conv(upsampleNearest2x(x)) }
}
