import FluxDiT
import ModelLayout

/// Everything that decides one generated image, with the reference CLI's defaults.
public struct GenerationRequest: Sendable, Equatable, Codable {
    public typealias ModelType = ModelLayout.ModelType

    /// Where content-reference tokens sit in position space (spec §4.3).
    public enum PositionOffset: String, Sendable, Codable, CaseIterable { case d, h, w, o }

    /// Compute precision of activations: BF16 as the reference on its device, F32 for exact comparisons.
    public enum ComputeType: String, Sendable, Codable, CaseIterable { case bf16, f32 }

    public var prompt: String
    /// The content (subject) image, if any.
    public var contentImage: String?
    /// Zero, one or two style images, in order.
    public var styleImages: [String]
    public var width: Int = 1024
    public var height: Int = 1024
    public var steps: Int = 25
    public var guidance: Double = 4
    public var seed: UInt64 = 3407
    public var modelType: ModelType = .fluxDev
    public var positionOffset: PositionOffset = .d
    /// Long side of the content reference in pixels.
    public var contentReferenceSize: Int = 512
    public var useSiglip: Bool = true
    public var onlyLoRA: Bool = true
    public var instructEdit: Bool = false
    public var computeType: ComputeType = .bf16
    /// Use the VAE posterior mean for the content latent (reproducible) rather than a seeded sample.
    public var samplePosterior: Bool = false
    /// How the DiT holds its weights (BF16 when it fits in memory, else int8, by default).
    public var ditWeights: DiTWeights = .auto
    /// Step caching: off runs every block at every step, as the reference does.
    public var stepCache: StepCachePreset = .off

    public init(prompt: String, contentImage: String? = nil, styleImages: [String] = []) {
        self.prompt = prompt
        self.contentImage = contentImage
        self.styleImages = styleImages
    }

    /// The reference's positional list: the first entry is the content image ("" for none), the
    /// rest are style images.
    public init(prompt: String, imagePaths: [String]) {
        let content = imagePaths.first.flatMap { $0.isEmpty ? nil : $0 }
        self.init(prompt: prompt, contentImage: content, styleImages: imagePaths.dropFirst().filter { !$0.isEmpty })
    }

    /// The reference's `image_paths` spelling of the inputs.
    public var imagePaths: [String] { [contentImage ?? ""] + styleImages }

    /// The size actually generated: floored to multiples of 16 as the reference's pipeline does.
    public var latentAlignedSize: (width: Int, height: Int) { (width / 16 * 16, height / 16 * 16) }
}
