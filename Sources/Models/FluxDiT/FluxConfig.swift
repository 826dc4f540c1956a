// The reference's `FluxParams`, detected from a checkpoint in the Black Forest Labs key layout.
import Layers

/// FLUX DiT hyperparameters. Every value comes from tensor shapes, so flux1-dev, flux1-schnell,
/// flux1-krea-dev and smaller models in the same layout load through the same code.
public struct FluxConfig: Sendable, Equatable {
    /// Packed latent channels in (`img_in`) and out (`final_layer.linear`): 64 = 16 latent channels × 2×2.
    public var inChannels: Int
    public var outChannels: Int
    /// Width of the text-encoder tokens (`txt_in`): 4096 for T5-XXL.
    public var contextDim: Int
    /// Width of the pooled vector (`vector_in`): 768 for CLIP-L.
    public var vectorDim: Int
    /// Width of the sinusoidal timestep and guidance embeddings (`time_in.in_layer`): 256.
    public var timestepEmbeddingDim: Int
    public var hiddenSize: Int
    public var headCount: Int
    public var headDim: Int
    public var mlpHiddenSize: Int
    public var doubleBlockCount: Int
    public var singleBlockCount: Int
    /// Head dimensions rotated by each position axis (index, row, column); sums to `headDim`.
    public var ropeAxes: [Int]
    public var ropeTheta: Double
    public var qkvBias: Bool
    /// dev and krea-dev embed the guidance value; schnell does not.
    public var guidanceEmbed: Bool

    /// The expected layout, for error messages.
    static let layoutName = "a FLUX DiT in the Black Forest Labs layout (like flux1-dev.safetensors)"

    /// Reads the hyperparameters from tensor shapes. Throws `WeightError.wrongModel` for a file that
    /// is not a FLUX DiT (saying what it looks like instead) and `.missingKey` for a FLUX file that
    /// lacks one of the tensors the shapes are read from.
    public init(detectingFrom source: WeightSource) throws {
        guard source.info("img_in.weight") != nil else {
            throw WeightError.wrongModel(expected: Self.layoutName, reason: Self.describeForeignLayout(source.keys))
        }
        func shape(_ key: String, rank: Int) throws -> [Int] {
            guard let info = source.info(key) else { throw WeightError.missingKey(key) }
            guard info.shape.count == rank, info.shape.allSatisfy({ $0 > 0 }) else {
                throw WeightError.wrongModel(expected: Self.layoutName,
                                             reason: "'\(key)' has shape \(info.shape), expected a non-empty rank-\(rank) tensor")
            }
            return info.shape
        }
        let imageIn = try shape("img_in.weight", rank: 2)
        hiddenSize = imageIn[0]
        inChannels = imageIn[1]
        outChannels = try shape("final_layer.linear.weight", rank: 2)[0]
        contextDim = try shape("txt_in.weight", rank: 2)[1]
        vectorDim = try shape("vector_in.in_layer.weight", rank: 2)[1]
        timestepEmbeddingDim = try shape("time_in.in_layer.weight", rank: 2)[1]
        guidanceEmbed = source.info("guidance_in.in_layer.weight") != nil

        doubleBlockCount = Self.blockCount("double_blocks", in: source.keys)
        singleBlockCount = Self.blockCount("single_blocks", in: source.keys)
        let hidden = hiddenSize
        if doubleBlockCount > 0 {
            headDim = try shape("double_blocks.0.img_attn.norm.query_norm.scale", rank: 1)[0]
            mlpHiddenSize = try shape("double_blocks.0.img_mlp.0.weight", rank: 2)[0]
            qkvBias = source.info("double_blocks.0.img_attn.qkv.bias") != nil
        } else if singleBlockCount > 0 {
            headDim = try shape("single_blocks.0.norm.query_norm.scale", rank: 1)[0]
            mlpHiddenSize = try shape("single_blocks.0.linear1.weight", rank: 2)[0] - 3 * hidden
            qkvBias = true
        } else {
            throw WeightError.wrongModel(expected: Self.layoutName, reason: "it has no double_blocks.* or single_blocks.* tensors")
        }
        guard hiddenSize % headDim == 0, mlpHiddenSize > 0 else {
            throw WeightError.wrongModel(expected: Self.layoutName,
                                         reason: "hidden size \(hiddenSize) is not a multiple of the head dim \(headDim) (from the QK-norm scale)")
        }
        headCount = hiddenSize / headDim
        ropeAxes = try Self.ropeAxes(headDim: headDim)
        ropeTheta = 10_000
    }

    /// How the head dimensions are shared by the three position axes (index, row, column).
    ///
    /// The reference uses [16, 56, 56] for head dim 128. The same proportions for any head dim:
    /// axis 0 gets headDim/8 rounded to the nearest even number (at least 2), rows and columns
    /// split the rest in two even parts (columns take the larger one when it does not halve
    /// evenly). 128 → [16, 56, 56]; 64 → [8, 28, 28]; 32 → [4, 14, 14]; 72 → [10, 30, 32].
    public static func ropeAxes(headDim: Int) throws -> [Int] {
        guard headDim >= 8, headDim % 2 == 0 else {
            throw WeightError.wrongModel(expected: layoutName, reason: "head dim \(headDim) must be even and at least 8 for 3-axis RoPE")
        }
        let index = max(2, 2 * ((headDim + 8) / 16))
        let rest = headDim - index
        let rows = 2 * (rest / 4)
        return [index, rows, rest - rows]
    }

    /// One more than the largest N of `prefix.N.*` (a gap shows up later as a missing key).
    static func blockCount(_ prefix: String, in keys: [String]) -> Int {
        let start = prefix + "."
        var largest = -1
        for key in keys where key.hasPrefix(start) {
            if let index = Int(key.dropFirst(start.count).prefix { $0 != "." }) { largest = max(largest, index) }
        }
        return largest + 1
    }

    /// A hint at what a file without `img_in.weight` is instead.
    static func describeForeignLayout(_ keys: [String]) -> String {
        if keys.isEmpty { return "the file holds no tensors" }
        if keys.contains("x_embedder.weight") || keys.contains(where: { $0.hasPrefix("transformer_blocks.") }) {
            return "it is in the diffusers layout (x_embedder, transformer_blocks.*); use the original Black Forest Labs file"
        }
        if keys.contains(where: { $0.hasPrefix("model.diffusion_model.input_blocks.") || $0.hasPrefix("first_stage_model.") || $0.hasPrefix("cond_stage_model.") }) {
            return "it looks like a Stable Diffusion (UNet) checkpoint"
        }
        if keys.contains(where: { $0.hasPrefix("model.diffusion_model.double_blocks.") }) {
            return "its keys carry a 'model.diffusion_model.' prefix (a ComfyUI/all-in-one checkpoint); use the DiT file alone"
        }
        if keys.contains(where: { $0.hasPrefix("encoder.conv_in.") || $0.hasPrefix("decoder.conv_in.") }) {
            return "it looks like an autoencoder (encoder.*/decoder.* tensors), e.g. ae.safetensors"
        }
        if keys.contains(where: { $0.contains(".processor.") && $0.hasSuffix("down.weight") }) {
            return "it looks like a LoRA (e.g. dit_lora.safetensors), not base weights"
        }
        return "there is no 'img_in.weight' among its \(keys.count) tensors (first: \(keys.prefix(3).joined(separator: ", ")))"
    }
}
