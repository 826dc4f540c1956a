// layers.py: DoubleStreamBlock with DoubleStreamBlockLoraProcessor (spec §3.3, §4.1).
import Layers

/// Two streams with their own weights (image: noisy + reference tokens; text: style + T5 tokens)
/// attending jointly over `[text | image]`.
struct DoubleStreamBlock: Sendable {
    let imageModulation: Modulation  // img_mod: 2 × (shift, scale, gate)
    let imageAttention: SelfAttention
    let imageMLP: FeedForward
    let textModulation: Modulation   // txt_mod
    let textAttention: SelfAttention
    let textMLP: FeedForward
    let lora: DoubleBlockLoRA?       // run-time LoRA branches (nil when merged or absent)
    let config: FluxConfig
    let numerics: FluxNumerics

    init(_ weights: WeightReader, _ name: String, config: FluxConfig, lora: DoubleBlockLoRA?, numerics: FluxNumerics) throws {
        let block = weights.scoped(name)
        imageModulation = try Modulation(block, "img_mod", hiddenSize: config.hiddenSize, sets: 2)
        imageAttention = try SelfAttention(block, "img_attn", config: config)
        imageMLP = try FeedForward(block, "img_mlp", config: config)
        textModulation = try Modulation(block, "txt_mod", hiddenSize: config.hiddenSize, sets: 2)
        textAttention = try SelfAttention(block, "txt_attn", config: config)
        textMLP = try FeedForward(block, "txt_mlp", config: config)
        self.lora = lora
        self.config = config
        self.numerics = numerics
    }

    // image: [Li, hidden], text: [Lt, hidden], vec: [1, hidden], rope over Lt + Li -> (image, text)
    func callAsFunction(image: Tensor, text: Tensor, vec: Tensor, rope: RoPETables) -> (image: Tensor, text: Tensor) {
        let imageMod = imageModulation(vec, numerics), textMod = textModulation(vec, numerics)

        // 1. Modulate each stream and project it to q, k, v (plus the LoRA branch).
        let imageModulated = numerics.modulate(image, imageMod[0])
        var imageQKV = numerics.linear(imageAttention.qkv, imageModulated)
        if let lora { imageQKV = imageQKV + lora.imageQKV(imageModulated, type: numerics.loraType) }
        let imageHeads = splitQKV(imageQKV, norm: imageAttention.norm, headCount: config.headCount)

        let textModulated = numerics.modulate(text, textMod[0])
        var textQKV = numerics.linear(textAttention.qkv, textModulated)
        if let lora { textQKV = textQKV + lora.textQKV(textModulated, type: numerics.loraType) }
        let textHeads = splitQKV(textQKV, norm: textAttention.norm, headCount: config.headCount)

        // 2. Joint attention over [text | image].
        let attended = numerics.attention(concat([textHeads.query, imageHeads.query]), concat([textHeads.key, imageHeads.key]),
                                          concat([textHeads.value, imageHeads.value]), rope: rope)
        let textCount = text.shape[0]
        let textAttended = attended.rows(0..<textCount), imageAttended = attended.rows(textCount..<attended.shape[0])

        // 3. Gate the projected attention and the MLP into each residual stream.
        var imageProjected = numerics.linear(imageAttention.proj, imageAttended)
        if let lora { imageProjected = imageProjected + lora.imageProjection(imageAttended, type: numerics.loraType) }
        var image = image + imageMod[0].gate * imageProjected
        image = image + imageMod[1].gate * imageMLP(numerics.modulate(image, imageMod[1]), numerics)

        var textProjected = numerics.linear(textAttention.proj, textAttended)
        if let lora { textProjected = textProjected + lora.textProjection(textAttended, type: numerics.loraType) }
        var text = text + textMod[0].gate * textProjected
        text = text + textMod[1].gate * textMLP(numerics.modulate(text, textMod[1]), numerics)
        return (image, text)
    }
}
