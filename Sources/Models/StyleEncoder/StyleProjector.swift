// USO's style projector (`SigLIPMultiFeatProjModel`, `Flux.feature_embedder` in the reference,
// `projector.safetensors`): turns three SigLIP hidden states into style tokens in the DiT's width.
import Foundation
import Layers

/// One branch (high, mid or low) of the projector.
struct ProjectorBranch {
    let tokenMixer: Linear   // `{branch}_embedding_linear.0`: [styleTokens, siglipTokens], mixes tokens
    let norm: LayerNorm      // `{branch}_layer_norm`: affine, over the SigLIP width
    let projection: Linear   // `{branch}_projection`: [outputWidth, siglipWidth]

    init(_ weights: WeightReader, branch: String, shape: StyleProjector.Shape, computeType: DType) throws {
        tokenMixer = try Linear(weights, "\(branch)_embedding_linear.0", inFeatures: shape.siglipTokens, outFeatures: shape.styleTokens)
        norm = try LayerNorm(weights, "\(branch)_layer_norm", width: shape.siglipWidth, eps: StyleProjector.layerNormEps, dtype: computeType)
        projection = try Linear(weights, "\(branch)_projection", inFeatures: shape.siglipWidth, outFeatures: shape.outputWidth)
    }

    // features: [siglipTokens, siglipWidth] -> [styleTokens, outputWidth]
    func callAsFunction(_ features: Tensor) -> Tensor {
        // The linear runs over the token axis (a learned resampler shared by all channels).
        let mixed = silu(tokenMixer(permute(features, [1, 0])))   // [siglipWidth, styleTokens]
        return projection(norm(permute(mixed, [1, 0])))
    }
}

/// The projector: `concat(high(h₋₂), mid(h₋₁₁), low(h₋₂₀))` along tokens, 3 · 64 = 192 style tokens of
/// width 3072 per style image for the real model (all dimensions are read from the weights).
public struct StyleProjector {
    /// Dimensions read from the weights' shapes.
    public struct Shape: Sendable, Equatable {
        public var siglipTokens: Int    // 729
        public var siglipWidth: Int     // 1152
        public var styleTokens: Int     // per branch: 64
        public var outputWidth: Int     // the DiT width: 3072
    }

    public let shape: Shape
    /// The type SigLIP features are cast to and the projector computes in.
    public let computeType: DType
    let high, mid, low: ProjectorBranch

    /// PyTorch's default LayerNorm eps: the reference builds these norms without one.
    static let layerNormEps: Float = 1e-5
    static let model = "USO style projector"

    /// Style tokens made from one image: one set per branch.
    public var tokensPerImage: Int { 3 * shape.styleTokens }

    /// Loads `feature_embedder.*`. `computeType` defaults to the stored type (BF16 in the reference,
    /// where the projector shares the DiT's dtype); F32 is for exact comparisons.
    public init(weights source: WeightSource, computeType: DType? = nil) throws {
        let root = WeightReader(source)
        let weights = root.scoped("feature_embedder")
        let mixerKey = "high_embedding_linear.0.weight", projectionKey = "high_projection.weight"
        let mixer = try weights.shape(mixerKey, rank: 2), projection = try weights.shape(projectionKey, rank: 2)
        let shape = Shape(siglipTokens: mixer[1], siglipWidth: projection[1], styleTokens: mixer[0], outputWidth: projection[0])
        let computeType = computeType ?? (weights.info(projectionKey)?.dtype == .f32 ? .f32 : .bf16)
        try checkComputeType(computeType, model: Self.model)
        self.shape = shape
        self.computeType = computeType
        high = try ProjectorBranch(weights, branch: "high", shape: shape, computeType: computeType)
        mid = try ProjectorBranch(weights, branch: "mid", shape: shape, computeType: computeType)
        low = try ProjectorBranch(weights, branch: "low", shape: shape, computeType: computeType)
        try root.checkAllUsed(ignoringPrefixes: [])
    }

    /// The style tokens of one image: `[3 · styleTokens, outputWidth]` (high, then mid, then low).
    public func callAsFunction(_ features: SigLIPFeatures) throws -> Tensor {
        let expected = [shape.siglipTokens, shape.siglipWidth]
        for part in [features.high, features.mid, features.low] where part.shape != expected {
            throw StyleEncoderError.featureShape(found: part.shape, expected: expected)
        }
        return concat([high(features.high.converted(to: computeType)),
                       mid(features.mid.converted(to: computeType)),
                       low(features.low.converted(to: computeType))])
    }
}
