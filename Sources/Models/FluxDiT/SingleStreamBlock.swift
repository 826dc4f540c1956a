// layers.py: SingleStreamBlock with SingleStreamBlockLoraProcessor (spec §3.3, §4.1).
import Layers

/// One stream over the whole sequence `[text | image]`, with attention and MLP side by side:
/// linear1 produces qkv and the MLP input at once, linear2 maps attention ++ GELU(mlp) back.
struct SingleStreamBlock: Sendable {
    let modulation: Modulation  // 1 × (shift, scale, gate)
    let linear1: Linear         // [3·hidden + mlp, hidden]
    let linear2: Linear         // [hidden, hidden + mlp]
    let norm: QKNorm
    let lora: SingleBlockLoRA?  // run-time LoRA branches (nil when merged or absent)
    let config: FluxConfig
    let numerics: FluxNumerics

    init(_ weights: WeightReader, _ name: String, config: FluxConfig, lora: SingleBlockLoRA?, numerics: FluxNumerics) throws {
        let block = weights.scoped(name)
        let hidden = config.hiddenSize, mlp = config.mlpHiddenSize
        modulation = try Modulation(block, "modulation", hiddenSize: hidden, sets: 1)
        linear1 = try Linear(block, "linear1", inFeatures: hidden, outFeatures: 3 * hidden + mlp)
        linear2 = try Linear(block, "linear2", inFeatures: hidden + mlp, outFeatures: hidden)
        norm = try QKNorm(block, "norm", headDim: config.headDim)
        self.lora = lora
        self.config = config
        self.numerics = numerics
    }

    // x: [L, hidden], vec: [1, hidden] -> [L, hidden]
    func callAsFunction(_ x: Tensor, vec: Tensor, rope: RoPETables) -> Tensor {
        let mod = modulation(vec, numerics)[0]
        let modulated = numerics.modulate(x, mod)
        let fused = numerics.linear(linear1, modulated)  // [L, 3·hidden + mlp]
        let qkvWidth = 3 * config.hiddenSize
        var qkv = slice(fused, axis: 1, 0..<qkvWidth)
        if let lora { qkv = qkv + lora.qkv(modulated, type: numerics.loraType) }
        let heads = splitQKV(qkv, norm: norm, headCount: config.headCount)
        let attended = numerics.attention(heads.query, heads.key, heads.value, rope: rope)
        let mlpActivated = gelu(slice(fused, axis: 1, qkvWidth..<fused.shape[1]), approximation: .tanh)
        let combined = concat([attended, mlpActivated], axis: 1)  // [L, hidden + mlp]
        var output = numerics.linear(linear2, combined)
        if let lora { output = output + lora.projection(combined, type: numerics.loraType) }
        return x + mod.gate * output
    }
}
