// Packing VAE latents into 2×2-patch tokens and back (spec §2.3).
import Layers

/// Packs a latent `[C, h, w]` into tokens `[(h/2)·(w/2), 4C]`: token `r·(w/2) + c` holds the
/// patch at rows 2r…2r+1, columns 2c…2c+1, feature `channel·4 + dy·2 + dx`.
public func packLatents(_ latent: Tensor) throws -> Tensor {
    guard latent.rank == 3 else { throw FluxInputError.shape(of: "latent", expected: "[channels, height, width]", found: latent.shape) }
    let channels = latent.shape[0], height = latent.shape[1], width = latent.shape[2]
    guard height % 2 == 0, width % 2 == 0, height > 0, width > 0 else { throw FluxInputError.oddLatentSize(height: height, width: width) }
    let patches = latent.reshaped([channels, height / 2, 2, width / 2, 2])
    return permute(patches, [1, 3, 0, 2, 4]).reshaped([(height / 2) * (width / 2), channels * 4])
}

/// The inverse of `packLatents`: tokens `[(h/2)·(w/2), 4C]` -> latent `[C, h, w]`.
public func unpackLatents(_ tokens: Tensor, latentHeight height: Int, latentWidth width: Int) throws -> Tensor {
    guard height % 2 == 0, width % 2 == 0, height > 0, width > 0 else { throw FluxInputError.oddLatentSize(height: height, width: width) }
    let count = (height / 2) * (width / 2)
    guard tokens.rank == 2, tokens.shape[0] == count, tokens.shape[1] % 4 == 0 else {
        throw FluxInputError.shape(of: "latent tokens", expected: "[\(count), 4·channels] for a \(height)×\(width) latent", found: tokens.shape)
    }
    let channels = tokens.shape[1] / 4
    let patches = tokens.reshaped([height / 2, width / 2, channels, 2, 2])
    return permute(patches, [2, 0, 3, 1, 4]).reshaped([channels, height, width])
}

/// Inputs the DiT cannot run on, each saying what was expected.
public enum FluxInputError: Error, Equatable, CustomStringConvertible {
    case shape(of: String, expected: String, found: [Int])
    case oddLatentSize(height: Int, width: Int)
    case positionCount(of: String, tokens: Int, positions: Int)
    case missingGuidance

    public var description: String {
        switch self {
        case .shape(let what, let expected, let found): "\(what) has shape \(found), expected \(expected)"
        case .oddLatentSize(let height, let width):
            "latent size \(height)×\(width) cannot be packed into 2×2 patches; image sizes must be multiples of 16"
        case .positionCount(let what, let tokens, let positions): "\(what): \(tokens) tokens but \(positions) positions"
        case .missingGuidance: "this DiT embeds a guidance value (FLUX.1-dev); pass one (the reference's default is 4)"
        }
    }
}
