// How the DiT holds its weights and rounds its activations, for each of the reference's model types.
import Layers

/// Weight storage and compute precision of the DiT.
public enum FluxPrecision: String, Sendable, CaseIterable {
    /// Weights as stored, activations F32: exact comparisons and `--dtype f32`.
    case f32
    /// Weights as stored (a BF16 file stays memory-mapped), activations BF16 rounded after every
    /// op as PyTorch does: the reference's flux-dev / flux-krea-dev / flux-schnell.
    case bf16
    /// The reference's flux-dev-fp8: every base DiT tensor cast to float8_e4m3fn at load, the USO
    /// LoRA kept in BF16, compute under CUDA autocast(bf16) (spec §7.4).
    case fp8
    /// uso's low-memory mode: every matrix of the blocks quantized to int8 at load (one scale per
    /// output row, one byte a parameter) and multiplied in int8 against activations quantized per
    /// token; the LoRA at run time, its two small products in int8 as well; everything else as in `bf16`.
    case int8

    /// The dtype of the residual streams and of the model's output.
    public var activationType: DType { self == .f32 ? .f32 : .bf16 }

    /// The dtype base tensors are cast to at load, if any (for int8: the blocks' matrices only).
    var weightCast: DType? {
        switch self {
        case .fp8: .f8e4m3
        case .int8: .i8
        case .f32, .bf16: nil
        }
    }

    /// Whether the LoRA stays a run-time branch by default: where merging would quantise its deltas.
    var keepsLoRAAtRunTime: Bool { weightCast != nil }
}

/// The rounding rules of one precision, applied where the reference's dtypes decide them.
///
/// Without autocast every op rounds to the activation type (its inputs' type). Under the fp8
/// mode's autocast, CUDA's op policy applies: linear layers and attention take BF16 inputs (the
/// fp8 weights are widened to BF16 by `linear`), while layer_norm runs in F32, so the modulated
/// input `(1+scale)·LN(x)+shift` is F32; a LoRA branch casts its output back to that F32 input
/// type, which keeps qkv + LoRA, the QK norm and RoPE in F32 until attention rounds them.
struct FluxNumerics: Sendable {
    let activation: DType
    let autocast: Bool

    init(_ precision: FluxPrecision) {
        activation = precision.activationType
        autocast = precision == .fp8
    }

    // x: [L, in] -> [L, out]
    func linear(_ layer: Linear, _ x: Tensor) -> Tensor {
        layer(autocast ? x.converted(to: .bf16) : x)
    }

    /// `(1 + scale)·LayerNorm(x) + shift` with the blocks' non-affine LayerNorm (eps 1e-6).
    // x: [L, hidden], shift/scale: [1, hidden] -> [L, hidden]
    func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor {
        let normalized = layerNorm(autocast ? x.converted(to: .f32) : x, eps: 1e-6)
        return (1 + scale) * normalized + shift
    }

    /// RoPE on q and k, then softmax(q·kᵀ/√D)·v (PyTorch's SDPA default scale, no mask).
    // q, k, v: [L, H, D] -> [L, H·D]
    func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, rope: RoPETables) -> Tensor {
        var query = applyRoPE(q, cos: rope.cos, sin: rope.sin)
        var key = applyRoPE(k, cos: rope.cos, sin: rope.sin)
        var value = v
        if autocast {
            query = query.converted(to: .bf16)
            key = key.converted(to: .bf16)
            value = value.converted(to: .bf16)
        }
        let headDim = q.shape[2]
        return TensorEngine.attention(query: query, key: key, value: value, scale: Float(1 / Double(headDim).squareRoot()))
    }

    /// The type a run-time LoRA branch computes in: F32 in F32 runs, else BF16 (the stored type of
    /// the USO LoRA, to which the reference casts the branch input).
    var loraType: DType { activation == .f32 ? .f32 : .bf16 }
}
