import FluxDiT
import ModelLayout

/// Everything that decides one generated image, with the reference CLI's defaults, and the rules
/// every front end (CLI flags, batch JSON, `--from`, the web API) shares: the accepted ranges and
/// the output size of an instruct edit.
public struct GenerationRequest: Sendable, Equatable, Codable {
    public typealias ModelType = ModelLayout.ModelType

    /// Where content-reference tokens sit in position space (spec §4.3).
    public enum PositionOffset: String, Sendable, Codable, CaseIterable { case d, h, w, o }

    /// Compute precision of activations: BF16 as the reference on its device, F32 for exact comparisons.
    public enum ComputeType: String, Sendable, Codable, CaseIterable { case bf16, f32 }

    public var prompt: String
    /// The content (subject) image, if any.
    public var contentImage: String?
    /// Style images, in order; the reference takes every image after the content as a style.
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
    /// The side the model set generates at by default (FLUX.1-dev: 1024, which the reference
    /// hard-codes; uso-mini: 128). An instruct edit scales the content reference by
    /// `sizeBase / contentReferenceSize`.
    public var sizeBase: Int = 1024
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

// MARK: - Seeds

extension GenerationRequest {
    /// A seed as torch's `manual_seed` takes it: any integer from -2^63 to 2^64 - 1, negative ones
    /// wrapped modulo 2^64 (so -1 draws the noise of 18446744073709551615). Nil for anything else.
    public static func torchSeed(_ text: String) -> UInt64? {
        UInt64(text) ?? Int64(text).map { UInt64(bitPattern: $0) }
    }
}

// MARK: - Validation

/// A setting outside what the generator accepts: which one, and what it must be.
public struct InvalidSetting: Error, Equatable, CustomStringConvertible {
    /// The settings, named by the front ends in their own spelling (`--num-steps`, `steps`).
    public enum Setting: String, Sendable, CaseIterable {
        case width, height, steps, guidance, contentReferenceSize, sizeBase, contentImage
    }

    public let setting: Setting
    /// What to change, e.g. "must be a finite number from 0 to 100, got nan".
    public let requirement: String

    public var description: String { "\(setting.rawValue) \(requirement)" }
}

extension GenerationRequest {
    /// Sides the pipeline accepts, in pixels (before flooring to 16).
    public static let sideRange = 16...4096
    public static let stepRange = 1...1000
    /// Guidance is a distilled embedding input (FLUX.1-dev is tuned around 1–5; the reference app
    /// offers 1...5); far beyond that the embedding overflows and the image is black.
    public static let guidanceRange = 0.0...100.0
    public static let contentReferenceRange = 16...2048

    /// Checks every setting; `contentImageSize` (the decoded content image, when known) also checks
    /// that the content reference is not cropped to nothing and that an instruct edit's size fits.
    public func validate(contentImageSize: (width: Int, height: Int)? = nil) throws {
        func check(_ value: Int, in range: ClosedRange<Int>, _ setting: InvalidSetting.Setting, unit: String = "") throws {
            guard range.contains(value) else {
                throw InvalidSetting(setting: setting, requirement: "must be from \(range.lowerBound) to \(range.upperBound)\(unit), got \(value)")
            }
        }
        try check(width, in: Self.sideRange, .width, unit: " pixels")
        try check(height, in: Self.sideRange, .height, unit: " pixels")
        try check(steps, in: Self.stepRange, .steps)
        try check(contentReferenceSize, in: Self.contentReferenceRange, .contentReferenceSize, unit: " pixels")
        try check(sizeBase, in: Self.sideRange, .sizeBase, unit: " pixels")
        guard guidance.isFinite, Self.guidanceRange.contains(guidance) else {
            let range = Self.guidanceRange
            throw InvalidSetting(setting: .guidance,
                                 requirement: "must be a finite number from \(Int(range.lowerBound)) to \(Int(range.upperBound)), got \(guidance)")
        }
        if instructEdit && contentImage == nil {
            throw InvalidSetting(setting: .contentImage, requirement: "is needed for an instruct edit, which takes the output size from it")
        }
        guard let contentImageSize else { return }
        let reference = Self.preprocessedContentSize(imageWidth: contentImageSize.width, imageHeight: contentImageSize.height,
                                                  longSide: contentReferenceSize)
        guard reference.width > 0, reference.height > 0 else {
            throw InvalidSetting(setting: .contentImage, requirement: """
                is \(contentImageSize.width)x\(contentImageSize.height) pixels: scaled to a long side of \(contentReferenceSize) \
                its short side falls below 16; use a larger content reference size or a less elongated image
                """)
        }
        if instructEdit {
            let size = outputSize(contentImageSize: contentImageSize)
            for (side, setting) in [(size.width, InvalidSetting.Setting.width), (size.height, .height)] where !Self.sideRange.contains(side) {
                throw InvalidSetting(setting: setting, requirement: """
                    of the instruct edit would be \(side) pixels (the content image scaled by \(sizeBase)/\(contentReferenceSize)), \
                    outside \(Self.sideRange.lowerBound)...\(Self.sideRange.upperBound); change the content reference size
                    """)
            }
        }
    }
}

// MARK: - Output size

extension GenerationRequest {
    /// The content image's size after `preprocess_ref` (as `Preprocessing.contentReference` makes
    /// it): long side to `longSide`, short side `int((longSide / long) * short)`, both floored to 16;
    /// the reference's 16x16 placeholder passes unchanged. Zero when cropped to nothing.
    public static func preprocessedContentSize(imageWidth: Int, imageHeight: Int, longSide: Int) -> (width: Int, height: Int) {
        if imageWidth == 16 && imageHeight == 16 { return (16, 16) }
        let landscape = imageWidth >= imageHeight
        let (long, short) = landscape ? (imageWidth, imageHeight) : (imageHeight, imageWidth)
        let resizedShort = Int((Double(longSide) / Double(long)) * Double(short))
        let (longOut, shortOut) = (longSide / 16 * 16, resizedShort / 16 * 16)
        return landscape ? (longOut, shortOut) : (shortOut, longOut)
    }

    /// The output size of an instruct edit ("keep input size" on the page): the preprocessed content
    /// reference scaled by `sizeBase / contentReferenceSize`, the quotient formed first in double
    /// and each side truncated, as the reference does with its base of 1024 (spec §1.3, §1.4).
    public static func editSize(contentImageWidth: Int, contentImageHeight: Int, contentReferenceSize: Int,
                                sizeBase: Int) -> (width: Int, height: Int) {
        let reference = Self.preprocessedContentSize(imageWidth: contentImageWidth, imageHeight: contentImageHeight,
                                                  longSide: contentReferenceSize)
        let scale = Double(sizeBase) / Double(contentReferenceSize)
        return (Int(Double(reference.width) * scale), Int(Double(reference.height) * scale))
    }

    /// The size to generate (before flooring to 16): the instruct-edit size from the content image,
    /// else `width` x `height`.
    public func outputSize(contentImageSize: (width: Int, height: Int)?) -> (width: Int, height: Int) {
        guard instructEdit, let contentImageSize else { return (width, height) }
        return Self.editSize(contentImageWidth: contentImageSize.width, contentImageHeight: contentImageSize.height,
                             contentReferenceSize: contentReferenceSize, sizeBase: sizeBase)
    }
}
