// The vision tower of SigLIP so400m-patch14-384 (Hugging Face `SiglipVisionModel`,
// modeling_siglip.py), as far as USO uses it: three intermediate hidden states.
import Foundation
import Layers

/// SigLIP vision hyperparameters: shapes from the weights, the rest from config.json.
public struct SigLIPVisionConfig: Sendable, Equatable {
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int
    public var patchSize: Int
    /// Patches per side: ⌊imageSize / patchSize⌋ (so400m: 384 px → 27, the last 6 pixels unused).
    public var patchGrid: Int
    /// The side of the square images the tower takes.
    public var imageSize: Int
    public var layerNormEps: Float

    public var tokens: Int { patchGrid * patchGrid }

    static let model = "SigLIP vision tower"

    /// Reads the shapes under `vision_model.` and checks them against config.json (a SiglipModel
    /// config with `vision_config`, or a bare SiglipVisionModel config) when given.
    init(weights: WeightReader, configJSON: Data?) throws {
        let file = try configJSON.map { try EncoderTowerConfigFile.decode($0, tower: .vision, model: Self.model) }
        let patchKey = "embeddings.patch_embedding.weight"
        guard let patch = weights.info(patchKey) else { throw WeightError.missingKey(weights.fullKey(patchKey)) }
        guard patch.shape.count == 4, patch.shape[1] == 3, patch.shape[2] == patch.shape[3] else {
            throw ModelConfigError.invalid(model: Self.model, reason: "\(weights.fullKey(patchKey)) has shape \(patch.shape), not [width, 3, patch, patch]")
        }
        let positionKey = "embeddings.position_embedding.weight"
        guard let positions = weights.info(positionKey) else { throw WeightError.missingKey(weights.fullKey(positionKey)) }
        let grid = Int(Double(positions.shape[0]).squareRoot().rounded())
        guard positions.shape.count == 2, grid * grid == positions.shape[0] else {
            throw ModelConfigError.invalid(model: Self.model, reason: "\(weights.fullKey(positionKey)) has shape \(positions.shape), not [grid², width]")
        }
        let mlpKey = "encoder.layers.0.mlp.fc1.weight"
        let fc1 = try weights.shape(mlpKey, rank: 2)
        width = patch.shape[0]
        patchSize = patch.shape[2]
        patchGrid = grid
        mlpWidth = fc1[0]
        layers = weights.numberedModuleCount("encoder.layers", probe: "layer_norm1.weight")
        try checkConfig(file?.patchSize, matches: patchSize, field: "patch_size", model: Self.model)
        // so400m has 16 heads of 72, other SigLIPs 64-wide heads.
        heads = try checkEncoderTower(file, width: width, mlpWidth: mlpWidth, layers: layers,
                                      defaultHeads: width == 1152 ? 16 : width / 64,
                                      activation: "gelu_pytorch_tanh", model: Self.model)
        layerNormEps = file?.layerNormEps ?? 1e-6
        imageSize = file?.imageSize ?? grid * patchSize
        guard imageSize / patchSize == grid else {
            throw ModelConfigError.invalid(model: Self.model, reason: "image_size \(imageSize) makes \(imageSize / patchSize)² patches of \(patchSize) px, but the position embedding has \(grid)²")
        }
    }
}

/// Which entries of `hidden_states` (embeddings, then one per layer) feed the projector's branches.
/// Negative indices count from the end, as in Python.
public struct SigLIPFeatureLayers: Sendable, Equatable {
    public var low: Int
    public var mid: Int
    public var high: Int

    public init(low: Int, mid: Int, high: Int) { self.low = low; self.mid = mid; self.high = high }

    /// USO's choice: hidden_states[-20], [-11], [-2], i.e. after layers 8, 17 and 26 of 27.
    public static let uso = SigLIPFeatureLayers(low: -20, mid: -11, high: -2)
}

/// The three hidden states the projector takes, each `[tokens, width]`, before `post_layernorm`.
public struct SigLIPFeatures {
    public let low: Tensor
    public let mid: Tensor
    public let high: Tensor

    public init(low: Tensor, mid: Tensor, high: Tensor) { self.low = low; self.mid = mid; self.high = high }
}

/// Hugging Face `SiglipVisionModel` (keys under `vision_model.`), computing only the layers up to the
/// deepest requested hidden state. Deliberately unused, and not loaded: the later layers (layer 27
/// for USO), `post_layernorm` and the attention-pooling `head` (USO reads hidden states, not the
/// pooled output), and the text tower and logit scale/bias that the hub checkpoint also holds.
public struct SigLIPVisionTower {
    public let config: SigLIPVisionConfig
    public let featureLayers: SigLIPFeatureLayers
    /// Activations are rounded to this type after every op (F32 as the reference runs SigLIP).
    public let computeType: DType
    let patchEmbedding: Conv2d      // [width, 3, patch, patch] + bias, in the compute type
    let positionEmbedding: Tensor   // [tokens, width], in the compute type
    let layers: [PreNormEncoderLayer]
    let featureIndices: (low: Int, mid: Int, high: Int)   // into hidden_states, non-negative

    public init(weights source: WeightSource, configJSON: Data? = nil, computeType: DType = .f32,
                featureLayers: SigLIPFeatureLayers = .uso) throws {
        try checkComputeType(computeType, model: SigLIPVisionConfig.model)
        let root = WeightReader(source)
        let weights = root.scoped("vision_model")
        let config = try SigLIPVisionConfig(weights: weights, configJSON: configJSON)
        self.config = config
        self.featureLayers = featureLayers
        self.computeType = computeType

        let hiddenStates = config.layers + 1
        func absolute(_ index: Int) throws -> Int {
            let resolved = index < 0 ? hiddenStates + index : index
            guard resolved >= 0 && resolved < hiddenStates else {
                throw StyleEncoderError.featureLayerOutOfRange(index: index, hiddenStates: hiddenStates)
            }
            return resolved
        }
        featureIndices = (try absolute(featureLayers.low), try absolute(featureLayers.mid), try absolute(featureLayers.high))
        let computedLayers = max(featureIndices.low, featureIndices.mid, featureIndices.high)

        var patchEmbedding = try Conv2d(weights, "embeddings.patch_embedding", stride: config.patchSize)
        patchEmbedding.weight = patchEmbedding.weight.converted(to: computeType)
        patchEmbedding.bias = patchEmbedding.bias?.converted(to: computeType)
        self.patchEmbedding = patchEmbedding
        positionEmbedding = try weights.tensor("embeddings.position_embedding.weight", shape: [config.tokens, config.width])
            .converted(to: computeType)
        layers = try (0..<computedLayers).map {
            try PreNormEncoderLayer(weights.scoped("encoder.layers.\($0)"), width: config.width, heads: config.heads,
                                    mlpWidth: config.mlpWidth, eps: config.layerNormEps, computeType: computeType,
                                    activation: .geluTanh, causal: false)
        }
        let unusedLayers = (computedLayers..<config.layers).map { "vision_model.encoder.layers.\($0)." }
        try root.checkAllUsed(ignoringPrefixes: unusedLayers + [
            "vision_model.post_layernorm.", "vision_model.head.", "vision_model.embeddings.position_ids",
            "text_model.", "logit_scale", "logit_bias",
        ])
    }

    /// The requested hidden states for one preprocessed image `pixels [3, size, size]` (values in
    /// [-1, 1] from the SigLIP image processor).
    public func features(pixels: Tensor) throws -> SigLIPFeatures {
        let expected = [3, config.imageSize, config.imageSize]
        guard pixels.shape == expected else { throw StyleEncoderError.imageShape(found: pixels.shape, expected: expected) }
        // Patchify: [width, grid, grid] -> [tokens, width], plus learned positions.
        let patches = patchEmbedding(pixels.converted(to: computeType)).reshaped([config.width, config.tokens])
        var x = permute(patches, [1, 0]) + positionEmbedding
        var hiddenStates = [x]
        for layer in layers {
            x = layer(x)
            hiddenStates.append(x)
        }
        return SigLIPFeatures(low: hiddenStates[featureIndices.low], mid: hiddenStates[featureIndices.mid],
                              high: hiddenStates[featureIndices.high])
    }
}
