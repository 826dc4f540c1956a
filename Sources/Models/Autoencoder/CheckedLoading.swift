// Loading helpers for the autoencoder's layers: every weight's shape is checked against the
// configuration before use, so a mis-shaped file is an error naming the key, never a crash in a kernel.
import Layers

extension WeightReader {
    /// Throws `missingKey` / `shapeMismatch` unless `name` exists with exactly `shape`.
    func requireShape(_ name: String, _ shape: [Int]) throws {
        guard let info = info(name) else { throw WeightError.missingKey(fullKey(name)) }
        guard info.shape == shape else { throw WeightError.shapeMismatch(key: fullKey(name), expected: shape, found: info.shape) }
    }

    /// A square convolution `name` from `inputs` to `outputs` channels.
    func conv(_ name: String, _ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0) throws -> Conv2d {
        try requireShape(name + ".weight", [outputs, inputs, kernel, kernel])
        return try Conv2d(self, name, stride: stride, padding: padding)
    }

    /// The affine GroupNorm `name` over `channels` channels, with the configuration's groups and epsilon.
    func groupNorm(_ name: String, _ channels: Int, _ config: AutoencoderConfig) throws -> GroupNorm {
        try requireShape(name + ".weight", [channels])
        try requireShape(name + ".bias", [channels])
        return try GroupNorm(self, name, groups: config.normGroups, eps: config.normEpsilon)
    }
}

/// A weight source whose tensors come back in another storage type (converted as each is read), so
/// an F32 checkpoint can run as a BF16 model. Tensors already in that type stay memory-mapped views.
final class ConvertedWeights: WeightSource, @unchecked Sendable {
    let source: WeightSource
    let dtype: DType

    init(_ source: WeightSource, to dtype: DType) { self.source = source; self.dtype = dtype }

    var keys: [String] { source.keys }
    func info(_ key: String) -> TensorInfo? { source.info(key).map { TensorInfo(dtype: dtype, shape: $0.shape) } }
    func tensor(_ key: String) throws -> Tensor { try source.tensor(key).converted(to: dtype) }
}

/// Swish as the reference writes it, `x·sigmoid(x)`: two ops, so BF16 activations are rounded
/// after each, as PyTorch does.
func swish(_ x: Tensor) -> Tensor { x * sigmoid(x) }
