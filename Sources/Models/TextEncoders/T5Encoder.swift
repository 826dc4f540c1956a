// The encoder of T5 v1.1 (Hugging Face `T5EncoderModel`, modeling_t5.py): its last hidden state is
// FLUX's text-token conditioning.
import Foundation
import Layers
#if canImport(Glibc)
import Glibc
#endif

/// T5 encoder hyperparameters: shapes from the weights, the rest from config.json.
public struct T5EncoderConfig: Sendable, Equatable {
    public var modelWidth: Int          // d_model
    public var layers: Int
    public var heads: Int
    public var headDim: Int             // d_kv
    public var feedForwardWidth: Int    // d_ff
    public var vocabularySize: Int
    public var relativeBuckets: Int
    public var relativeMaxDistance: Int
    public var layerNormEps: Float

    static let model = "T5 encoder"

    /// Reads the shapes under `encoder.` (and the `shared` embedding) and checks them against
    /// config.json when given.
    init(weights: WeightReader, embedding: TensorInfo, configJSON: Data?) throws {
        let file = try configJSON.map { try decodeModelConfig(T5ConfigFile.self, from: $0, model: Self.model) }
        let attention = "block.0.layer.0.SelfAttention"
        let query = try weights.shape("\(attention).q.weight", rank: 2)
        let bias = try weights.shape("\(attention).relative_attention_bias.weight", rank: 2)
        let gate = try weights.shape("block.0.layer.1.DenseReluDense.wi_0.weight", rank: 2)
        guard embedding.shape.count == 2 else {
            throw ModelConfigError.invalid(model: Self.model, reason: "the token embedding has shape \(embedding.shape)")
        }
        vocabularySize = embedding.shape[0]
        modelWidth = embedding.shape[1]
        relativeBuckets = bias[0]
        heads = bias[1]
        guard query[0] % heads == 0 else {
            throw ModelConfigError.invalid(model: Self.model, reason: "attention width \(query[0]) is not a multiple of \(heads) heads")
        }
        headDim = query[0] / heads
        feedForwardWidth = gate[0]
        layers = weights.numberedModuleCount("block", probe: "layer.0.layer_norm.weight")
        try checkConfig(file?.dModel, matches: modelWidth, field: "d_model", model: Self.model)
        try checkConfig(file?.vocabSize, matches: vocabularySize, field: "vocab_size", model: Self.model)
        try checkConfig(file?.numHeads, matches: heads, field: "num_heads", model: Self.model)
        try checkConfig(file?.dKv, matches: headDim, field: "d_kv", model: Self.model)
        try checkConfig(file?.dFf, matches: feedForwardWidth, field: "d_ff", model: Self.model)
        try checkConfig(file?.numLayers, matches: layers, field: "num_layers", model: Self.model)
        try checkConfig(file?.relativeAttentionNumBuckets, matches: relativeBuckets, field: "relative_attention_num_buckets", model: Self.model)
        // v1.1's feed-forward: gated, with the tanh GELU (transformers maps "gated-gelu" to gelu_new).
        if let projection = file?.feedForwardProj, projection != "gated-gelu" {
            throw ModelConfigError.invalid(model: Self.model, reason: "feed_forward_proj \(projection) is not supported (T5 v1.1 uses gated-gelu)")
        }
        relativeMaxDistance = file?.relativeAttentionMaxDistance ?? 128
        layerNormEps = file?.layerNormEpsilon ?? 1e-6
    }
}

/// The fields of a T5 config.json that matter here.
struct T5ConfigFile: Decodable {
    var dModel: Int?
    var dKv: Int?
    var dFf: Int?
    var numHeads: Int?
    var numLayers: Int?
    var vocabSize: Int?
    var relativeAttentionNumBuckets: Int?
    var relativeAttentionMaxDistance: Int?
    var layerNormEpsilon: Float?
    var feedForwardProj: String?
}

/// T5's RMS norm (T5LayerNorm): no mean, no bias; normalised in Float, rounded to the activation
/// type, and only then scaled, as transformers does for half-precision weights.
struct T5LayerNorm {
    let weight: Tensor   // [width], in the compute type
    let eps: Float

    init(_ weights: WeightReader, _ name: String, config: T5EncoderConfig, computeType: DType) throws {
        weight = try weights.tensor(name + ".weight", shape: [config.modelWidth]).converted(to: computeType)
        eps = config.layerNormEps
    }

    // x: [L, width] -> [L, width]
    func callAsFunction(_ x: Tensor) -> Tensor { rmsNorm(x, eps: eps) * weight }
}

/// T5 self-attention: no biases and no 1/√d scaling (it is folded into the trained weights); the
/// relative position bias is added to the scores.
struct T5SelfAttention {
    let query, key, value, output: Linear
    let heads, headDim: Int

    init(_ weights: WeightReader, config: T5EncoderConfig) throws {
        let inner = config.heads * config.headDim
        query = try Linear(weights, "q", inFeatures: config.modelWidth, outFeatures: inner, bias: false)
        key = try Linear(weights, "k", inFeatures: config.modelWidth, outFeatures: inner, bias: false)
        value = try Linear(weights, "v", inFeatures: config.modelWidth, outFeatures: inner, bias: false)
        output = try Linear(weights, "o", inFeatures: inner, outFeatures: config.modelWidth, bias: false)
        heads = config.heads
        headDim = config.headDim
    }

    // x: [L, width], positionBias: [heads, L, L] -> [L, width]
    func callAsFunction(_ x: Tensor, positionBias: Tensor) -> Tensor {
        let length = x.shape[0]
        let q = query(x).reshaped([length, heads, headDim])
        let k = key(x).reshaped([length, heads, headDim])
        let v = value(x).reshaped([length, heads, headDim])
        return output(attention(query: q, key: k, value: v, scale: 1, bias: positionBias))
    }
}

/// The gated-GELU feed-forward of T5 v1.1 (T5DenseGatedActDense).
struct T5GatedFeedForward {
    let gate, up, down: Linear   // wi_0, wi_1, wo

    init(_ weights: WeightReader, config: T5EncoderConfig) throws {
        gate = try Linear(weights, "wi_0", inFeatures: config.modelWidth, outFeatures: config.feedForwardWidth, bias: false)
        up = try Linear(weights, "wi_1", inFeatures: config.modelWidth, outFeatures: config.feedForwardWidth, bias: false)
        down = try Linear(weights, "wo", inFeatures: config.feedForwardWidth, outFeatures: config.modelWidth, bias: false)
    }

    // x: [L, width] -> [L, width]
    func callAsFunction(_ x: Tensor) -> Tensor { down(gelu(gate(x), approximation: .tanh) * up(x)) }
}

/// One encoder block (T5Block): attention then feed-forward, each pre-normed with a residual.
struct T5Block {
    let attentionNorm, feedForwardNorm: T5LayerNorm
    let selfAttention: T5SelfAttention
    let feedForward: T5GatedFeedForward

    init(_ weights: WeightReader, config: T5EncoderConfig, computeType: DType) throws {
        attentionNorm = try T5LayerNorm(weights, "layer.0.layer_norm", config: config, computeType: computeType)
        selfAttention = try T5SelfAttention(weights.scoped("layer.0.SelfAttention"), config: config)
        feedForwardNorm = try T5LayerNorm(weights, "layer.1.layer_norm", config: config, computeType: computeType)
        feedForward = try T5GatedFeedForward(weights.scoped("layer.1.DenseReluDense"), config: config)
    }

    // x: [L, width], positionBias: [heads, L, L] -> [L, width]
    func callAsFunction(_ x: Tensor, positionBias: Tensor) -> Tensor {
        let h = x + selfAttention(attentionNorm(x), positionBias: positionBias)
        return h + feedForward(feedForwardNorm(h))
    }
}

/// Hugging Face `T5EncoderModel` (keys `shared.weight` and `encoder.*`). The checkpoint may be a whole
/// encoder-decoder (google/t5-v1_1-xxl's pytorch_model.bin, ~44 GB of F32): only the encoder's
/// tensors are touched, memory-mapped, and each linear weight is rounded to the compute type as it
/// is used, so the model is never copied into RAM. Dropping the value (and the `WeightSource`)
/// releases the mapping.
public struct T5Encoder {
    public let config: T5EncoderConfig
    /// Activations are rounded to this type after every op (BF16 as the reference runs T5).
    public let computeType: DType
    let tokenEmbedding: Tensor              // [vocabulary, width], as stored
    let relativeAttentionBias: [Float]      // [buckets, heads], block 0's table, shared by all blocks
    let blocks: [T5Block]
    let finalNorm: T5LayerNorm

    /// The decoder half of encoder-decoder checkpoints, and the tied copies of the embedding.
    static let ignoredPrefixes = ["decoder.", "lm_head.", "encoder.embed_tokens.weight"]

    public init(weights source: WeightSource, configJSON: Data? = nil, computeType: DType = .bf16) throws {
        try checkComputeType(computeType, model: T5EncoderConfig.model)
        let root = WeightReader(source)
        let weights = root.scoped("encoder")
        // `shared.weight` is the embedding; encoder-only files may carry only its tied name.
        let embeddingKey = root.contains("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight"
        guard let embeddingInfo = root.info(embeddingKey) else { throw WeightError.missingKey("shared.weight") }
        let config = try T5EncoderConfig(weights: weights, embedding: embeddingInfo, configJSON: configJSON)
        self.config = config
        self.computeType = computeType
        tokenEmbedding = try root.tensor(embeddingKey)
        // Rounded to the compute type as the reference's cast model holds it.
        relativeAttentionBias = try weights.tensor("block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                                                   shape: [config.relativeBuckets, config.heads])
            .converted(to: computeType).toFloats()
        blocks = try (0..<config.layers).map { try T5Block(weights.scoped("block.\($0)"), config: config, computeType: computeType) }
        finalNorm = try T5LayerNorm(weights, "final_layer_norm", config: config, computeType: computeType)
        try root.checkAllUsed(ignoringPrefixes: Self.ignoredPrefixes)
    }

    /// Encodes token ids (text, `</s>`, padding) -> the last hidden state `[L, d_model]`.
    public func callAsFunction(tokenIDs ids: [Int]) throws -> Tensor {
        try checkTokens(ids, model: T5EncoderConfig.model, vocabularySize: config.vocabularySize, maximumLength: nil)
        let positionBias = positionBias(length: ids.count)
        // x: [L, width]
        var x = embedding(tokenEmbedding, ids: ids).converted(to: computeType)
        for block in blocks { x = block(x, positionBias: positionBias) }
        return finalNorm(x)
    }

    /// The additive attention bias `[heads, L, L]`: block 0's learned value for the bucket of each
    /// query-key distance, reused by every block.
    func positionBias(length: Int) -> Tensor {
        let heads = config.heads
        // Buckets depend only on the distance key − query ∈ (−length, length).
        let buckets = (-(length - 1)..<length).map(relativePositionBucket)
        var values = [Float](repeating: 0, count: heads * length * length)
        for h in 0..<heads {
            for query in 0..<length {
                for key in 0..<length {
                    values[(h * length + query) * length + key] = relativeAttentionBias[buckets[key - query + length - 1] * heads + h]
                }
            }
        }
        return Tensor(values, shape: [heads, length, length], dtype: computeType)
    }

    /// T5's bidirectional bucketing: half the buckets per direction; distances below a quarter of the
    /// buckets get their own bucket, larger ones share logarithmically wider buckets up to
    /// `relativeMaxDistance`. Computed in Float like transformers, so the bucket edges agree.
    func relativePositionBucket(_ distance: Int) -> Int {
        let perDirection = config.relativeBuckets / 2
        let exact = perDirection / 2
        let offset = distance > 0 ? perDirection : 0
        let n = abs(distance)
        if n < exact { return offset + n }
        let logRatio = logf(Float(n) / Float(exact)) / Float(log(Double(config.relativeMaxDistance) / Double(exact)))
        let large = exact + Int(logRatio * Float(perDirection - exact))
        return offset + min(large, perDirection - 1)
    }
}
