// The small modules every model is made of. Each holds its weights under the checkpoint's own key
// names and is loaded from a `WeightReader` scoped to its module path.
@_exported import TensorEngine
@_exported import WeightFiles

/// `y = x·Wᵀ + b` (torch.nn.Linear). weight `[out, in]`, bias `[out]`.
///
/// A weight stored as I8 is quantized: `name.weight_scale [out]` (F32, one scale per output row)
/// sits beside it, and the layer multiplies in int8.
public struct Linear: Sendable {
    public var weight: Tensor
    public var bias: Tensor?
    /// The weight's int8 codes and scales, when it is stored quantized.
    public var int8: Int8Weight?

    public init(weight: Tensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    /// Loads `name.weight` (and `name.weight_scale` if the weight is I8) and, if `bias`, `name.bias`.
    public init(_ weights: WeightReader, _ name: String, bias: Bool = true) throws {
        let module = weights.scoped(name)
        let weight = try module.tensor("weight")
        try self.init(weights, name, inFeatures: weight.shape.last ?? 0, outFeatures: weight.shape.first ?? 0, bias: bias)
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    // x: [..., in] -> [..., out]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let int8 { return linear(x, weight: int8, bias: bias) }
        return linear(x, weight: weight, bias: bias)
    }
}

/// torch.nn.LayerNorm over the last axis, affine or not.
public struct LayerNorm: Sendable {
    public var weight: Tensor?
    public var bias: Tensor?
    public let eps: Float

    /// A LayerNorm without parameters (FLUX's blocks).
    public init(eps: Float) { self.weight = nil; self.bias = nil; self.eps = eps }

    public init(_ weights: WeightReader, _ name: String, eps: Float) throws {
        let module = weights.scoped(name)
        self.weight = try module.tensor("weight")
        self.bias = try module.tensor("bias")
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// 2-D convolution on `[C, H, W]` (torch.nn.Conv2d, square kernel, symmetric padding).
public struct Conv2d: Sendable {
    public var weight: Tensor   // [out, in, k, k]
    public var bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(_ weights: WeightReader, _ name: String, stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        let module = weights.scoped(name)
        self.weight = try module.tensor("weight")
        self.bias = bias ? try module.tensor("bias", shape: [weight.shape[0]]) : nil
        self.stride = stride
        self.padding = padding
    }

    // x: [C, H, W] -> [out, H', W']
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// torch.nn.GroupNorm on `[C, H, W]`.
public struct GroupNorm: Sendable {
    public var weight: Tensor
    public var bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(_ weights: WeightReader, _ name: String, groups: Int, eps: Float) throws {
        let module = weights.scoped(name)
        self.weight = try module.tensor("weight")
        self.bias = try module.tensor("bias")
        self.groups = groups
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps) }
}
