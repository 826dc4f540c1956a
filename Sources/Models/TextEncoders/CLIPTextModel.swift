// The text tower of CLIP ViT-L/14 (Hugging Face `CLIPTextModel`, modeling_clip.py). Its pooled output
// is FLUX's vector conditioning `y`.
import Foundation
import Layers

/// CLIP text hyperparameters: shapes from the weights, the rest from config.json.
public struct CLIPTextConfig: Sendable, Equatable {
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int
    public var vocabularySize: Int
    public var maxPositions: Int
    public var layerNormEps: Float
    /// Where the pooled output is taken: the first position of this token id, or, when nil, the
    /// position of the largest id (Hugging Face's rule for configs with the legacy eos_token_id 2,
    /// such as openai/clip-vit-large-patch14's; its end token 49407 is the largest id).
    public var poolingTokenID: Int?

    static let model = "CLIP text model"

    /// Reads the shapes under `text_model.` and checks them against config.json (either a CLIPModel
    /// config with `text_config` or a bare CLIPTextModel config), when given.
    public init(weights: WeightReader, configJSON: Data?) throws {
        let file = try configJSON.map { try EncoderTowerConfigFile.decode($0, tower: .text, model: Self.model) }
        let tokens = try weights.shape("embeddings.token_embedding.weight", rank: 2)
        let positions = try weights.shape("embeddings.position_embedding.weight", rank: 2)
        let fc1 = try weights.shape("encoder.layers.0.mlp.fc1.weight", rank: 2)
        vocabularySize = tokens[0]
        width = tokens[1]
        maxPositions = positions[0]
        mlpWidth = fc1[0]
        layers = weights.numberedModuleCount("encoder.layers", probe: "layer_norm1.weight")
        try checkConfig(file?.vocabSize, matches: vocabularySize, field: "vocab_size", model: Self.model)
        try checkConfig(file?.maxPositionEmbeddings, matches: maxPositions, field: "max_position_embeddings", model: Self.model)
        // ViT-L/14's text tower has 64-wide heads.
        heads = try checkEncoderTower(file, width: width, mlpWidth: mlpWidth, layers: layers, defaultHeads: width / 64,
                                      activation: "quick_gelu", model: Self.model)
        layerNormEps = file?.layerNormEps ?? 1e-5
        // Without config.json: the pooling rule of the checkpoint the reference uses. With one:
        // transformers' default end token when the file names none.
        let eos = configJSON == nil ? 2 : file?.eosTokenId ?? 49407
        poolingTokenID = eos == 2 ? nil : eos
    }
}

/// The encoder's outputs for one token sequence.
public struct CLIPTextOutput {
    /// Final-LayerNorm'd hidden states `[L, width]` (`last_hidden_state`).
    public let hiddenStates: Tensor
    /// The hidden state at the end token `[width]` (`pooler_output`, FLUX's `y`).
    public let pooled: Tensor
}

/// Hugging Face `CLIPTextModel` (keys under `text_model.`). Weights stay where the source has them
/// (memory-mapped); linear weights are rounded to the compute type as they are used. Dropping the
/// value (and the `WeightSource`) releases the mapping.
public struct CLIPTextModel {
    public let config: CLIPTextConfig
    /// Activations are rounded to this type after every op (BF16 as the reference runs CLIP).
    public let computeType: DType
    let tokenEmbedding: Tensor      // [vocabulary, width], as stored
    let positionEmbedding: Tensor   // [maxPositions, width], as stored
    let layers: [PreNormEncoderLayer]
    let finalNorm: LayerNorm

    /// Parts of CLIP checkpoints that the text encoder does not use (openai/clip-vit-large-patch14
    /// holds the whole CLIP model; old files also carry the `position_ids` buffer).
    static let ignoredPrefixes = ["vision_model.", "text_projection.", "visual_projection.", "logit_scale",
                                  "text_model.embeddings.position_ids"]

    /// Loads `text_model.*` from `weights`; every other key must be one of `ignoredPrefixes`.
    public init(weights source: WeightSource, configJSON: Data? = nil, computeType: DType = .bf16) throws {
        try checkComputeType(computeType, model: CLIPTextConfig.model)
        let root = WeightReader(source)
        let weights = root.scoped("text_model")
        let config = try CLIPTextConfig(weights: weights, configJSON: configJSON)
        self.config = config
        self.computeType = computeType
        tokenEmbedding = try weights.tensor("embeddings.token_embedding.weight")
        positionEmbedding = try weights.tensor("embeddings.position_embedding.weight", shape: [config.maxPositions, config.width])
        layers = try (0..<config.layers).map {
            try PreNormEncoderLayer(weights.scoped("encoder.layers.\($0)"), width: config.width, heads: config.heads,
                                    mlpWidth: config.mlpWidth, eps: config.layerNormEps, computeType: computeType,
                                    activation: .quickGELU, causal: true)
        }
        finalNorm = try LayerNorm(weights, "final_layer_norm", width: config.width, eps: config.layerNormEps, dtype: computeType)
        try root.checkAllUsed(ignoringPrefixes: Self.ignoredPrefixes)
    }

    /// Encodes token ids (start token, text, end token, padding: at most `maxPositions`).
    public func callAsFunction(tokenIDs ids: [Int]) throws -> CLIPTextOutput {
        try checkTokens(ids, model: CLIPTextConfig.model, vocabularySize: config.vocabularySize, maximumLength: config.maxPositions)
        // x: [L, width]
        var x = embedding(tokenEmbedding, ids: ids).converted(to: computeType)
            + positionEmbedding.rows(0..<ids.count).converted(to: computeType)
        for layer in layers { x = layer(x) }
        let hiddenStates = finalNorm(x)
        let end = poolingPosition(ids)
        return CLIPTextOutput(hiddenStates: hiddenStates, pooled: hiddenStates.rows(end..<(end + 1)).reshaped([config.width]))
    }

    /// Hugging Face's rule: the first position of the end token, or of the largest id for legacy
    /// configs; position 0 if the end token is absent (argmax of all zeros), as transformers does.
    func poolingPosition(_ ids: [Int]) -> Int {
        if let end = config.poolingTokenID { return ids.firstIndex(of: end) ?? 0 }
        let largest = ids.max() ?? 0
        return ids.firstIndex(of: largest) ?? 0
    }
}
