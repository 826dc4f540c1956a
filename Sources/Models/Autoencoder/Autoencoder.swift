// The FLUX autoencoder (BFL `AutoEncoder`, `ae.safetensors`): images in [-1, 1] <-> normalised latents.
import Foundation
import Layers

/// Problems with the tensors given to the autoencoder (its weights' problems are `WeightError`s).
public enum AutoencoderError: Error, Equatable, CustomStringConvertible {
    case imageShape(expected: String, found: [Int])
    case latentShape(expected: String, found: [Int])
    case noiseCount(expected: Int, found: Int)
    case unsupportedDType(DType)
    case partNotLoaded(String)
    case badTileLayout(String)

    public var description: String {
        switch self {
        case .imageShape(let expected, let found): "the image tensor has shape \(found); expected \(expected)"
        case .latentShape(let expected, let found): "the latent has shape \(found); expected \(expected)"
        case .noiseCount(let expected, let found): "the noise source gave \(found) values; \(expected) are needed"
        case .unsupportedDType(let dtype): "the autoencoder runs in F32 or BF16, not \(dtype)"
        case .partNotLoaded(let part): "the autoencoder's \(part) was not loaded (see AutoencoderParts)"
        case .badTileLayout(let reason): "invalid tile layout: \(reason)"
        }
    }
}

/// Standard-normal values, `count` at a time, for sampling the latent posterior. The pipeline passes
/// its torch-compatible seeded generator so a seed reproduces the reference's draw.
public typealias NormalNoise = (_ count: Int) -> [Float]

/// What `encode` returns from the posterior `N(mean, exp(logvar))`.
public enum LatentSampling {
    /// The posterior mean: deterministic (our default; the reference samples with an unseeded generator).
    case mean
    /// `mean + exp(logvar/2)·ε` with ε from the given source, as the reference's `DiagonalGaussian`.
    case sample(NormalNoise)
}

/// Which halves to load: the pipeline needs the encoder only for content references.
public struct AutoencoderParts: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let encoder = AutoencoderParts(rawValue: 1)
    public static let decoder = AutoencoderParts(rawValue: 2)
    public static let all: AutoencoderParts = [.encoder, .decoder]
}

public struct Autoencoder: Sendable {
    public let config: AutoencoderConfig
    /// Storage type of weights and activations (F32 as the reference runs it, or BF16).
    public let dtype: DType
    public let encoder: Encoder?
    public let decoder: Decoder?

    /// Loads the autoencoder from `weights` in the BFL layout; the configuration is detected from
    /// shapes. Every tensor of a loaded part must be used (an unexpected key is an error naming it).
    public init(weights: WeightSource, dtype: DType = .f32, parts: AutoencoderParts = .all,
                scaleFactor: Float = AutoencoderConfig.fluxScaleFactor,
                shiftFactor: Float = AutoencoderConfig.fluxShiftFactor) throws {
        guard dtype == .f32 || dtype == .bf16 else { throw AutoencoderError.unsupportedDType(dtype) }
        let config = try AutoencoderConfig(detectingFrom: weights, scaleFactor: scaleFactor, shiftFactor: shiftFactor)
        let reader = WeightReader(ConvertedWeights(weights, to: dtype))
        let strays = weights.keys.filter { !$0.hasPrefix("encoder.") && !$0.hasPrefix("decoder.") }
        if !strays.isEmpty { throw WeightError.unexpectedKeys(strays) }
        encoder = parts.contains(.encoder) ? try Encoder(reader.scoped("encoder"), config: config) : nil
        decoder = parts.contains(.decoder) ? try Decoder(reader.scoped("decoder"), config: config) : nil
        if parts.contains(.encoder) { try reader.scoped("encoder").checkAllUsed() }
        if parts.contains(.decoder) { try reader.scoped("decoder").checkAllUsed() }
        self.config = config
        self.dtype = dtype
    }

    /// Loads `ae.safetensors` (memory-mapped; F32 weights used in place by an F32 model).
    public init(contentsOf path: String, dtype: DType = .f32, parts: AutoencoderParts = .all) throws {
        try self.init(weights: SafetensorsFile(path: path), dtype: dtype, parts: parts)
    }

    /// Posterior moments of an image: image `[3, H, W]` in [-1, 1] -> (mean, logVariance), each `[z, H/f, W/f]`.
    public func moments(_ image: Tensor) throws -> (mean: Tensor, logVariance: Tensor) {
        guard let encoder else { throw AutoencoderError.partNotLoaded("encoder") }
        let f = config.downsamplingFactor
        guard image.rank == 3, image.shape[0] == config.imageChannels, image.shape[1] > 0, image.shape[2] > 0,
              image.shape[1] % f == 0, image.shape[2] % f == 0 else {
            throw AutoencoderError.imageShape(expected: "[\(config.imageChannels), H, W] with H and W positive multiples of \(f)",
                                              found: image.shape)
        }
        let moments = encoder(image.converted(to: dtype))   // [2z, h, w]
        let z = config.latentChannels
        return (moments.rows(0..<z), moments.rows(z..<(2 * z)))
    }

    /// image `[3, H, W]` in [-1, 1] -> normalised latent `[z, H/f, W/f]` = scale·(z − shift), where z is
    /// the posterior mean or a sample (see `LatentSampling`).
    public func encode(_ image: Tensor, sampling: LatentSampling = .mean) throws -> Tensor {
        let (mean, logVariance) = try moments(image)
        var latent = mean
        if case .sample(let noise) = sampling {
            let values = noise(mean.count)
            guard values.count == mean.count else { throw AutoencoderError.noiseCount(expected: mean.count, found: values.count) }
            let standardDeviation = exponential(0.5 * logVariance)
            latent = mean + standardDeviation * Tensor(values, shape: mean.shape, dtype: dtype)
        }
        return config.scaleFactor * (latent - config.shiftFactor)
    }

    /// Normalised latent `[z, h, w]` -> image `[3, h·f, w·f]` (about [-1, 1]; not clamped), in `dtype`.
    /// With `.automatic` tiling a latent too large for the memory budget is decoded in overlapping tiles.
    public func decode(_ latent: Tensor, tiling: DecodeTiling = .automatic()) throws -> Tensor {
        guard let decoder else { throw AutoencoderError.partNotLoaded("decoder") }
        guard latent.rank == 3, latent.shape[0] == config.latentChannels, latent.shape[1] > 0, latent.shape[2] > 0 else {
            throw AutoencoderError.latentShape(expected: "[\(config.latentChannels), h, w]", found: latent.shape)
        }
        let z = latent.converted(to: dtype) / config.scaleFactor + config.shiftFactor
        guard let layout = try tileLayout(for: tiling, latentHeight: latent.shape[1], latentWidth: latent.shape[2]) else {
            return decoder(z)
        }
        return decodeInTiles(z, layout: layout, decoder: decoder)
    }
}

/// eˣ elementwise, rounded to x's storage type (an op the engine does not have yet).
func exponential(_ x: Tensor) -> Tensor {
    Tensor(x.toFloats().map { Foundation.exp($0) }, shape: x.shape).converted(to: x.dtype)
}
