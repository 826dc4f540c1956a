// layers.py: QKNorm (RMSNorm per head) and SelfAttention (img_attn / txt_attn).
import Layers

/// RMSNorm of queries and keys per head: `x·rsqrt(mean(x²)+1e-6)·scale`, computed in F32 and
/// cast back to the input type (spec §3.3).
struct QKNorm: Sendable {
    let queryScale: Tensor  // [headDim]
    let keyScale: Tensor    // [headDim]

    init(_ weights: WeightReader, _ name: String, headDim: Int) throws {
        let module = weights.scoped(name)
        queryScale = try module.tensor("query_norm.scale", shape: [headDim])
        keyScale = try module.tensor("key_norm.scale", shape: [headDim])
    }

    // q, k: [L, H, D] -> [L, H, D]
    func callAsFunction(query: Tensor, key: Tensor) -> (query: Tensor, key: Tensor) {
        (rmsNorm(query, weight: queryScale, eps: 1e-6), rmsNorm(key, weight: keyScale, eps: 1e-6))
    }
}

/// Splits a fused qkv projection, viewed as `(3, heads, headDim)`, and normalises q and k.
// qkv: [L, 3·hidden] -> q, k, v: [L, heads, headDim]
func splitQKV(_ qkv: Tensor, norm: QKNorm, headCount: Int) -> (query: Tensor, key: Tensor, value: Tensor) {
    let length = qkv.shape[0], hidden = qkv.shape[1] / 3
    let parts = (0..<3).map { slice(qkv, axis: 1, ($0 * hidden)..<(($0 + 1) * hidden)).reshaped([length, headCount, hidden / headCount]) }
    let (query, key) = norm(query: parts[0], key: parts[1])
    return (query, key, parts[2])
}

/// The attention weights of one stream of a double block.
struct SelfAttention: Sendable {
    let qkv: Linear   // [3·hidden, hidden]
    let norm: QKNorm
    let proj: Linear  // [hidden, hidden]

    init(_ weights: WeightReader, _ name: String, config: FluxConfig) throws {
        let module = weights.scoped(name)
        qkv = try Linear(module, "qkv", inFeatures: config.hiddenSize, outFeatures: 3 * config.hiddenSize, bias: config.qkvBias)
        norm = try QKNorm(module, "norm", headDim: config.headDim)
        proj = try Linear(module, "proj", inFeatures: config.hiddenSize, outFeatures: config.hiddenSize)
    }
}

/// Linear → GELU(tanh) → Linear (`img_mlp`, `txt_mlp`).
struct FeedForward: Sendable {
    let up: Linear    // "0": [mlp, hidden]
    let down: Linear  // "2": [hidden, mlp]

    init(_ weights: WeightReader, _ name: String, config: FluxConfig) throws {
        let module = weights.scoped(name)
        up = try Linear(module, "0", inFeatures: config.hiddenSize, outFeatures: config.mlpHiddenSize)
        down = try Linear(module, "2", inFeatures: config.mlpHiddenSize, outFeatures: config.hiddenSize)
    }

    // x: [L, hidden] -> [L, hidden]
    func callAsFunction(_ x: Tensor, _ numerics: FluxNumerics) -> Tensor {
        numerics.linear(down, gelu(numerics.linear(up, x), approximation: .tanh))
    }
}
