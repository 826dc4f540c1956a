import Foundation
import ImageIO
import TensorEngine
import WeightFiles
import Tokenizers
import TextEncoders
import StyleEncoder
import FluxDiT
import Autoencoder

/// The USO pipeline (the reference's `USOPipeline` + `denoise`): encode the prompt (T5 + CLIP), the
/// style images (SigLIP + projector, once per generation, not once per step as the reference) and
/// the content image (VAE encoder), draw torch's noise for the seed, run the Euler steps on the DiT
/// and decode. The DiT stays loaded (memory-mapped) between requests; the encoders are loaded for
/// their stage and released after it.
public final class USOPipeline: ImageGenerator, @unchecked Sendable {
    public let location: ModelLocation
    private let expectedLoRARank: Int?
    private let lock = NSLock()
    private var transformer: (key: String, model: FluxDiT)?
    /// Release the DiT after the steps, before the decoder loads: the lowest peak memory (the fp8 DiT
    /// alone is ~12 GB; measured at 512², keeping it made the decode the peak, 14.46 GB), at the cost
    /// of loading it again for the next image. `uso generate --offload`, or a run of one image.
    public var releasesTransformerBeforeDecoding = false
    /// Where DiT weights converted for a low-memory precision are kept between runs; nil converts
    /// them in memory at every load.
    public var convertedWeights: ConvertedWeightCache?
    /// Choices made for the user and anything they should know (printed by the CLI).
    public var notice: @Sendable (String) -> Void = { _ in }
    var isTransformerLoaded: Bool { transformer != nil }

    public init(location: ModelLocation, expectedLoRARank: Int? = nil) throws {
        try location.checkPresent()
        self.location = location
        self.expectedLoRARank = expectedLoRARank
    }

    public func generate(_ request: GenerationRequest, cancellation: CancellationFlag,
                         progress: @escaping @Sendable (GenerationProgress) -> Void) throws -> GenerationResult {
        lock.lock()
        defer { lock.unlock() }
        let started = Date()
        let report = { (stage: GenerationStage, step: Int, total: Int, eta: Double?) in
            progress(GenerationProgress(stage: stage, step: step, totalSteps: total,
                                        elapsedSeconds: Date().timeIntervalSince(started), etaSeconds: eta))
        }
        try validate(request, contentImageSize: nil)
        let activation: DType = request.computeType == .f32 ? .f32 : .bf16
        var timings = StageTimings()

        // Content reference: Lanczos to the long side, crop to /16, VAE encode (spec §2.1).
        var reference: (tokens: Tensor, latentHeight: Int, latentWidth: Int)?
        var contentImageSize: (width: Int, height: Int)?
        if let path = request.contentImage {
            report(.encodingContent, 0, 0, nil)
            timings.start(.encodingContent)
            let image = try readImage(path)
            contentImageSize = (image.width, image.height)
            try validate(request, contentImageSize: contentImageSize)
            let prepared = try Preprocessing.contentReference(image, longSide: request.contentReferenceSize)
            let autoencoder = try Autoencoder(contentsOf: location.autoencoder.path, dtype: .f32, parts: .encoder)
            let pixels = Tensor(Preprocessing.signedUnitValues(prepared), shape: [3, prepared.height, prepared.width])
            var noise = TorchGenerator(seed: request.seed)
            let sampling: LatentSampling = request.samplePosterior ? .sample({ noise.normal(count: $0) }) : .mean
            let latent = try autoencoder.encode(pixels, sampling: sampling).converted(to: activation)
            reference = (try packLatents(latent), latent.shape[1], latent.shape[2])
        }
        try checkCancelled(cancellation)

        // Output size: as given, or from the content image with --instruct-edit; floored to /16.
        let size = request.outputSize(contentImageSize: contentImageSize)
        let (width, height) = (size.width / 16 * 16, size.height / 16 * 16)

        // Style tokens: SigLIP hidden states → projector, [192·S, hidden] (spec §4.2).
        var styleTokens: Tensor?
        if request.useSiglip && request.onlyLoRA && !request.styleImages.isEmpty {
            report(.encodingStyle, 0, 0, nil)
            timings.start(.encodingStyle)
            let tower = try SigLIPVisionTower(weights: try openWeights(path: location.siglip.path),
                                              configJSON: configJSON(in: location.siglip),
                                              computeType: .f32)
            let projector = try StyleProjector(weights: try openWeights(path: location.projector.path),
                                               computeType: activation)
            let encoder = try StyleEncoder(visionTower: tower, projector: projector)
            let images = try request.styleImages.map { path -> Tensor in
                let values = try Preprocessing.siglipPixelValues(try readImage(path), side: tower.config.imageSize)
                return Tensor(values, shape: [3, tower.config.imageSize, tower.config.imageSize])
            }
            styleTokens = try encoder.styleTokens(for: images).converted(to: activation)
        }
        try checkCancelled(cancellation)

        // Prompt: T5 last hidden state and CLIP pooled output, padding not masked (spec §5).
        report(.encodingPrompt, 0, 0, nil)
        timings.start(.encodingPrompt)
        let text: Tensor, pooled: Tensor
        do {
            let tokenizer = try T5Tokenizer(directory: location.t5)
            let encoder = try T5Encoder(weights: try openWeights(path: location.t5.path), configJSON: configJSON(in: location.t5),
                                        computeType: activation)
            text = try encoder(tokenIDs: tokenizer.encode(request.prompt).ids)
        }
        do {
            let tokenizer = try CLIPTokenizer(directory: location.clip)
            let model = try CLIPTextModel(weights: try openWeights(path: location.clip.path), configJSON: configJSON(in: location.clip),
                                          computeType: activation)
            pooled = try model(tokenIDs: tokenizer.encode(request.prompt).ids).pooled
        }
        try checkCancelled(cancellation)

        // Denoising (spec §7): torch's noise for the seed, packed; shifted schedule; Euler steps.
        report(.loading, 0, request.steps, nil)
        timings.start(.loading)
        let stepCache = request.stepCache.policy.map(FluxStepCache.init)
        // In its own scope, so that nothing holds the DiT once it is released.
        let (tokens, latentHeight, latentWidth) = try {
            let dit = try loadTransformer(request)
            let latentHeight = height / 8, latentWidth = width / 8
            let channels = dit.config.inChannels / 4
            var generator = TorchGenerator(seed: request.seed)
            let noise = Tensor(generator.normal(count: channels * latentHeight * latentWidth),
                               shape: [channels, latentHeight, latentWidth]).converted(to: activation)
            var references: [FluxReference] = []
            if let reference {
                let positions = FluxPositions.references(latentSizes: [(reference.latentHeight, reference.latentWidth)],
                                                         targetLatentHeight: latentHeight, targetLatentWidth: latentWidth,
                                                         mode: ReferencePositionMode(request.positionOffset))
                references = [FluxReference(tokens: reference.tokens, positions: positions[0])]
            }
            let context = try dit.prepare(FluxConditioning(
                text: text, pooled: pooled, styleTokens: styleTokens,
                imagePositions: FluxPositions.image(latentHeight: latentHeight, latentWidth: latentWidth),
                references: references))
            let timesteps = timestepSchedule(steps: request.steps, width: width, height: height)
            let guidance: Float? = dit.config.guidanceEmbed ? Float(request.guidance) : nil
            let denoiseStart = Date()
            report(.denoising, 0, request.steps, nil)
            timings.start(.denoising)
            let tokens = try eulerSample(latent: try packLatents(noise), timesteps: timesteps) { x, t, step in
                try checkCancelled(cancellation)
                let v = try dit.velocity(image: x, timestep: t, guidance: guidance, context: context, cache: stepCache)
                let perStep = Date().timeIntervalSince(denoiseStart) / Double(step + 1)
                report(.denoising, step + 1, request.steps, perStep * Double(request.steps - step - 1))
                return v
            }
            try checkCancelled(cancellation)
            return (tokens, latentHeight, latentWidth)
        }()
        if releasesTransformerBeforeDecoding { transformer = nil }

        // Decode: unpack, F32, VAE decoder, clamp and truncate to 8 bits (spec §8).
        if let stepCache {
            notice("step cache \(request.stepCache.rawValue): \(stepCache.fullEvaluations) full DiT evaluations, "
                   + "\(stepCache.reusedEvaluations) reused of \(request.steps)")
        }
        report(.decoding, request.steps, request.steps, nil)
        timings.start(.decoding)
        let latent = try unpackLatents(tokens, latentHeight: latentHeight, latentWidth: latentWidth).converted(to: .f32)
        let decoder = try Autoencoder(contentsOf: location.autoencoder.path, dtype: .f32, parts: .decoder)
        let decoded = try decoder.decode(latent)
        try checkCancelled(cancellation)   // the decoder does not look; a cancel during it still counts
        let image = try Preprocessing.imageFromDecoded(decoded.toFloats(), width: width, height: height)
        var used = request
        used.width = width
        used.height = height
        timings.finish()
        report(.done, request.steps, request.steps, 0)
        return GenerationResult(image: image, request: used, seconds: Date().timeIntervalSince(started), latentTokens: tokens,
                                timings: timings)
    }

    /// The request model's checks, as this pipeline's error (the front ends have run them already).
    private func validate(_ request: GenerationRequest, contentImageSize: (width: Int, height: Int)?) throws {
        do { try request.validate(contentImageSize: contentImageSize) } catch {
            throw GenerationError.invalidRequest("\(error)")
        }
    }

    /// The DiT for this request's model type and precision, kept between requests.
    private func loadTransformer(_ request: GenerationRequest) throws -> FluxDiT {
        let path = location.transformer.path
        let (precision, reason) = DiTWeights.precision(for: request, checkpointBytes: checkpointBytes(at: path))
        let key = "\(path)|\(precision)|\(request.onlyLoRA)"
        if let transformer, transformer.key == key { return transformer.model }
        transformer = nil   // release the previous one first
        if let reason { notice(reason) }
        let lora = request.onlyLoRA ? try openWeights(path: location.lora.path) : nil
        let weights = try convertedWeights?.weights(at: path, precision: precision, warn: notice) ?? openWeights(path: path)
        let model = try FluxDiT(weights: weights, lora: lora,
                                options: FluxLoadOptions(precision: precision, expectedLoRARank: expectedLoRARank))
        transformer = (key, model)
        return model
    }

    /// The DiT checkpoint's size: its file, or the files of a sharded folder.
    private func checkpointBytes(at path: String) -> UInt64 {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isFolder) else { return 0 }
        let files = isFolder.boolValue
            ? ((try? manager.contentsOfDirectory(atPath: path)) ?? []).map { (path as NSString).appendingPathComponent($0) } : [path]
        return files.reduce(0) { $0 + ((try? manager.attributesOfItem(atPath: $1)[.size] as? NSNumber)?.uint64Value ?? 0) }
    }

    private func readImage(_ path: String) throws -> RGBImage {
        do {
            return try ImageFile.read(URL(fileURLWithPath: path))
        } catch {
            throw GenerationError.unreadableImage(path: path, reason: "\(error)")
        }
    }

    private func configJSON(in directory: URL) -> Data? {
        try? Data(contentsOf: directory.appendingPathComponent("config.json"))
    }

    private func checkCancelled(_ flag: CancellationFlag) throws {
        if flag.isCancelled { throw GenerationError.cancelled }
    }
}

extension ReferencePositionMode {
    init(_ offset: GenerationRequest.PositionOffset) {
        switch offset {
        case .d: self = .diagonal
        case .h: self = .height
        case .w: self = .width
        case .o: self = .overlap
        }
    }
}
