/// Multi-head self-attention as Hugging Face's CLIP and SigLIP write it: `q_proj`, `k_proj`,
/// `v_proj`, `out_proj` with biases, scale head_dim^-0.5, optionally causal.
public struct SelfAttention: Sendable {
    let query, key, value, output: Linear
    let heads: Int
    let causal: Bool

    public init(_ weights: WeightReader, width: Int, heads: Int, causal: Bool) throws {
        query = try Linear(weights, "q_proj", inFeatures: width, outFeatures: width)
        key = try Linear(weights, "k_proj", inFeatures: width, outFeatures: width)
        value = try Linear(weights, "v_proj", inFeatures: width, outFeatures: width)
        output = try Linear(weights, "out_proj", inFeatures: width, outFeatures: width)
        self.heads = heads
        self.causal = causal
    }

    // x: [L, width] -> [L, width]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let length = x.shape[0], headDim = query.outFeatures / heads
        let q = query(x).reshaped([length, heads, headDim])
        let k = key(x).reshaped([length, heads, headDim])
        let v = value(x).reshaped([length, heads, headDim])
        return output(attention(query: q, key: k, value: v, scale: 1 / Float(headDim).squareRoot(), causal: causal))
    }
}

/// One pre-LayerNorm transformer layer of Hugging Face's CLIP and SigLIP encoders
/// (`layer_norm1`, `self_attn.*`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`); they differ only in the
/// MLP's activation and CLIP's causal mask.
public struct PreNormEncoderLayer: Sendable {
    public enum Activation: Sendable {
        /// CLIP: x·sigmoid(1.702x).
        case quickGELU
        /// SigLIP: GELU, tanh approximation.
        case geluTanh
    }

    let norm1, norm2: LayerNorm
    let selfAttention: SelfAttention
    let fc1, fc2: Linear
    let activation: Activation

    public init(_ weights: WeightReader, width: Int, heads: Int, mlpWidth: Int, eps: Float, computeType: DType,
                activation: Activation, causal: Bool) throws {
        norm1 = try LayerNorm(weights, "layer_norm1", width: width, eps: eps, dtype: computeType)
        norm2 = try LayerNorm(weights, "layer_norm2", width: width, eps: eps, dtype: computeType)
        selfAttention = try SelfAttention(weights.scoped("self_attn"), width: width, heads: heads, causal: causal)
        fc1 = try Linear(weights, "mlp.fc1", inFeatures: width, outFeatures: mlpWidth)
        fc2 = try Linear(weights, "mlp.fc2", inFeatures: mlpWidth, outFeatures: width)
        self.activation = activation
    }

    // x: [L, width] -> [L, width]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x + selfAttention(norm1(x))
        let hidden = fc1(norm2(h))
        let activated = switch activation {
        case .quickGELU: quickGELU(hidden)
        case .geluTanh: gelu(hidden, approximation: .tanh)
        }
        return h + fc2(activated)
    }
}
