// model.py: Flux with the USO extensions (style tokens, content-reference tokens, LoRA).
import Layers

/// How to load the DiT.
public struct FluxLoadOptions: Sendable {
    public var precision: FluxPrecision
    /// nil chooses as the reference computes: merged for f32/bf16; at run time for fp8, where the
    /// reference keeps the LoRA unmerged in BF16 beside the fp8 weights (merging would quantise the
    /// deltas to fp8), and likewise for int8.
    public var loraMode: LoRAMode?
    /// The rank the LoRA must have (`--lora-rank`); nil accepts the file's own rank.
    public var expectedLoRARank: Int?

    public init(precision: FluxPrecision = .bf16, loraMode: LoRAMode? = nil, expectedLoRARank: Int? = nil) {
        self.precision = precision
        self.loraMode = loraMode
        self.expectedLoRARank = expectedLoRARank
    }

    var resolvedLoRAMode: LoRAMode { loraMode ?? (precision.keepsLoRAAtRunTime ? .runtime : .merged) }
}

/// A content reference: packed latent tokens and their positions.
public struct FluxReference: Sendable {
    public var tokens: Tensor  // [Nr, inChannels]
    public var positions: [FluxTokenPosition]

    public init(tokens: Tensor, positions: [FluxTokenPosition]) {
        self.tokens = tokens
        self.positions = positions
    }
}

/// Everything a DiT call takes that stays the same across denoising steps.
public struct FluxConditioning: Sendable {
    public var text: Tensor                     // [Lt, contextDim] T5 hidden states
    public var pooled: Tensor                   // [vectorDim] CLIP pooled output
    public var styleTokens: Tensor?             // [Ls, hidden] projector output (already in DiT width)
    public var imagePositions: [FluxTokenPosition]
    public var references: [FluxReference]

    public init(text: Tensor, pooled: Tensor, styleTokens: Tensor? = nil, imagePositions: [FluxTokenPosition],
                references: [FluxReference] = []) {
        self.text = text
        self.pooled = pooled
        self.styleTokens = styleTokens
        self.imagePositions = imagePositions
        self.references = references
    }
}

/// The step-independent part of a DiT call, computed once per generation: the text stream after
/// `txt_in` with the style tokens before it, the reference tokens after `img_in`, `vector_in(y)`
/// and the RoPE tables of the whole sequence `[style | text | image | references]`. The reference
/// recomputes all of this every step with the same result.
public struct FluxContext: Sendable {
    let textStream: Tensor         // [Ls + Lt, hidden]
    let referenceStream: Tensor?   // [ΣNr, hidden]
    let pooledEmbedding: Tensor    // [1, hidden]
    let rope: RoPETables
    public let imageTokenCount: Int
}

/// The FLUX.1 MM-DiT with the USO extensions, batch 1 (spec §3, §4).
public struct FluxDiT: Sendable {
    public let config: FluxConfig
    public let precision: FluxPrecision
    /// The LoRA's rank and how it is applied, if one was loaded.
    public let lora: (rank: Int, mode: LoRAMode)?

    let imageIn: Linear           // img_in: [hidden, inChannels]
    let timeIn: MLPEmbedder
    let guidanceIn: MLPEmbedder?  // absent in schnell
    let vectorIn: MLPEmbedder
    let textIn: Linear            // txt_in: [hidden, contextDim]
    let doubleBlocks: [DoubleStreamBlock]
    let singleBlocks: [SingleStreamBlock]
    let finalLayer: LastLayer
    let numerics: FluxNumerics

    /// Loads a DiT from a checkpoint in the BFL layout and, optionally, the USO LoRA. Every tensor
    /// of both files must be used: a missing, unexpected or mis-shaped key is an error naming it.
    public init(weights: WeightSource, lora loraSource: WeightSource? = nil, options: FluxLoadOptions = FluxLoadOptions()) throws {
        let config = try FluxConfig(detectingFrom: weights)
        let lora = try loraSource.map { try USOLoRA($0, config: config, expectedRank: options.expectedLoRARank) }
        let mode = options.resolvedLoRAMode
        // Beside int8 matrices the run-time branches multiply in int8 too.
        let runtimeLoRA = mode == .runtime ? (options.precision == .int8 ? lora?.quantized() : lora) : nil
        // Merged weights are F32 in F32 runs (exact comparisons), else they keep the stored type.
        let prepared = PreparedFluxWeights(
            base: weights, merges: (mode == .merged ? lora?.mergeTargets(hiddenSize: config.hiddenSize) : nil) ?? [:],
            mergedType: options.precision == .f32 ? .f32 : nil, cast: options.precision.weightCast)
        let numerics = FluxNumerics(options.precision)
        let reader = WeightReader(prepared)
        let hidden = config.hiddenSize

        imageIn = try Linear(reader, "img_in", inFeatures: config.inChannels, outFeatures: hidden)
        timeIn = try MLPEmbedder(reader, "time_in", inFeatures: config.timestepEmbeddingDim, hiddenSize: hidden)
        guidanceIn = config.guidanceEmbed
            ? try MLPEmbedder(reader, "guidance_in", inFeatures: config.timestepEmbeddingDim, hiddenSize: hidden) : nil
        vectorIn = try MLPEmbedder(reader, "vector_in", inFeatures: config.vectorDim, hiddenSize: hidden)
        textIn = try Linear(reader, "txt_in", inFeatures: config.contextDim, outFeatures: hidden)
        doubleBlocks = try (0..<config.doubleBlockCount).map {
            try DoubleStreamBlock(reader, "double_blocks.\($0)", config: config, lora: runtimeLoRA?.doubleBlocks[$0], numerics: numerics)
        }
        singleBlocks = try (0..<config.singleBlockCount).map {
            try SingleStreamBlock(reader, "single_blocks.\($0)", config: config, lora: runtimeLoRA?.singleBlocks[$0], numerics: numerics)
        }
        finalLayer = try LastLayer(reader, "final_layer", config: config, numerics: numerics)
        try reader.checkAllUsed()

        self.config = config
        self.precision = options.precision
        self.lora = lora.map { ($0.rank, mode) }
        self.numerics = numerics
    }

    /// Checks the conditioning and computes its step-independent part (spec §3.2 steps 3-7).
    public func prepare(_ conditioning: FluxConditioning) throws -> FluxContext {
        let act = numerics.activation
        let text = conditioning.text
        guard text.rank == 2, text.shape[1] == config.contextDim else {
            throw FluxInputError.shape(of: "text tokens", expected: "[tokens, \(config.contextDim)]", found: text.shape)
        }
        guard conditioning.pooled.count == config.vectorDim, conditioning.pooled.rank <= 2 else {
            throw FluxInputError.shape(of: "pooled text vector", expected: "[\(config.vectorDim)]", found: conditioning.pooled.shape)
        }
        var textStream = numerics.linear(textIn, text.converted(to: act))
        if let style = conditioning.styleTokens {
            guard style.rank == 2, style.shape[1] == config.hiddenSize else {
                throw FluxInputError.shape(of: "style tokens", expected: "[tokens, \(config.hiddenSize)] (projector output)", found: style.shape)
            }
            textStream = concat([style.converted(to: act), textStream])
        }
        var positions = Array(repeating: FluxTokenPosition.origin, count: textStream.shape[0]) + conditioning.imagePositions
        var references: [Tensor] = []
        for (i, reference) in conditioning.references.enumerated() {
            try checkTokens(reference.tokens, positions: reference.positions, what: "content reference \(i + 1)")
            references.append(numerics.linear(imageIn, reference.tokens.converted(to: act)))
            positions += reference.positions
        }
        let pooled = conditioning.pooled.converted(to: act).reshaped([1, config.vectorDim])
        return FluxContext(textStream: textStream, referenceStream: references.isEmpty ? nil : concat(references),
                           pooledEmbedding: vectorIn(pooled, numerics),
                           rope: RoPETables(positions: positions, axes: config.ropeAxes, theta: config.ropeTheta),
                           imageTokenCount: conditioning.imagePositions.count)
    }

    /// The predicted velocity for the noisy image tokens (spec §3.2 steps 1-2 and 8-11).
    /// - Parameters:
    ///   - image: packed noisy latent `[Ni, inChannels]`, in the order of the context's image positions
    ///   - timestep: t in [0, 1] (rounded to BF16 in BF16 runs, as the reference's bf16 tensor does)
    ///   - guidance: the distilled guidance value; required by models that embed it, ignored otherwise
    ///   - cache: the step cache of this generation, to skip the blocks after the first where it can
    /// - Returns: `[Ni, outChannels]` in the activation type.
    public func velocity(image: Tensor, timestep: Float, guidance: Float?, context: FluxContext,
                         cache: FluxStepCache? = nil) throws -> Tensor {
        try velocity(image: image, timestep: timestep, guidance: guidance, context: context, cache: cache, stages: nil)
    }

    /// `velocity`, adding the time spent in each block stack to `stages` when given.
    func velocity(image: Tensor, timestep: Float, guidance: Float?, context: FluxContext, cache: FluxStepCache? = nil,
                  stages: StageTimes?) throws -> Tensor {
        let act = numerics.activation
        try checkTokens(image, positions: nil, what: "noisy image tokens")
        guard image.shape[0] == context.imageTokenCount else {
            throw FluxInputError.positionCount(of: "noisy image tokens", tokens: image.shape[0], positions: context.imageTokenCount)
        }
        let vec = try conditioningVector(timestep: timestep, guidance: guidance, context: context)
        var imageStream = numerics.linear(imageIn, image.converted(to: act))
        if let references = context.referenceStream { imageStream = concat([imageStream, references]) }
        var textStream = context.textStream
        let imageCount = context.imageTokenCount
        let doubleStart = ContinuousClock.now
        var remainingDoubleBlocks = doubleBlocks[...]
        // With a cache: the first block, then either its residual decides to reuse the rest, or the rest runs.
        var afterFirstBlock: Tensor?
        if let cache, let first = doubleBlocks.first {
            let before = imageStream
            (imageStream, textStream) = first(image: imageStream, text: textStream, vec: vec, rope: context.rope)
            remainingDoubleBlocks = doubleBlocks.dropFirst()
            let firstOutput = imageStream.rows(0..<imageCount).converted(to: .f32)
            if let remaining = cache.reusableResidual(firstResidual: imageStream.converted(to: .f32) - before.converted(to: .f32)) {
                stages?.doubleBlocks += doubleStart.duration(to: .now)
                return finalLayer((firstOutput + remaining).converted(to: act), vec: vec)
            }
            afterFirstBlock = firstOutput
        }
        for block in remainingDoubleBlocks {
            (imageStream, textStream) = block(image: imageStream, text: textStream, vec: vec, rope: context.rope)
        }
        let singleStart = ContinuousClock.now
        var sequence = concat([textStream, imageStream])
        for block in singleBlocks { sequence = block(sequence, vec: vec, rope: context.rope) }
        stages?.doubleBlocks += doubleStart.duration(to: singleStart)
        stages?.singleBlocks += singleStart.duration(to: .now)
        // Drop the text stream, then the reference tokens.
        let textCount = textStream.shape[0]
        let hidden = sequence.rows(textCount..<(textCount + imageCount))
        if let cache, let afterFirstBlock { cache.store(remainingResidual: hidden.converted(to: .f32) - afterFirstBlock) }
        return finalLayer(hidden, vec: vec)
    }

    /// `vec = time_in(emb(t)) + guidance_in(emb(g)) + vector_in(y)`, summed in that order.
    // -> [1, hidden]
    func conditioningVector(timestep: Float, guidance: Float?, context: FluxContext) throws -> Tensor {
        let act = numerics.activation
        var vec = timeIn(timestepEmbedding(timestep, dim: config.timestepEmbeddingDim, type: act), numerics)
        if let guidanceIn {
            guard let guidance else { throw FluxInputError.missingGuidance }
            vec = vec + guidanceIn(timestepEmbedding(guidance, dim: config.timestepEmbeddingDim, type: act), numerics)
        }
        return vec + context.pooledEmbedding
    }

    /// One full call: `prepare` then `velocity` (for single evaluations; a sampler prepares once).
    public func callAsFunction(image: Tensor, conditioning: FluxConditioning, timestep: Float, guidance: Float?) throws -> Tensor {
        try velocity(image: image, timestep: timestep, guidance: guidance, context: try prepare(conditioning))
    }

    private func checkTokens(_ tokens: Tensor, positions: [FluxTokenPosition]?, what: String) throws {
        guard tokens.rank == 2, tokens.shape[1] == config.inChannels else {
            throw FluxInputError.shape(of: what, expected: "[tokens, \(config.inChannels)] (packed latents)", found: tokens.shape)
        }
        if let positions, positions.count != tokens.shape[0] {
            throw FluxInputError.positionCount(of: what, tokens: tokens.shape[0], positions: positions.count)
        }
    }
}
