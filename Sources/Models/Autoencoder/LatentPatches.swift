// Latents as the DiT sees them: 2×2 patches packed into tokens (spec §2.3, the reference's
// `rearrange(x, "b c (h ph) (w pw) -> b (h w) (c ph pw)", ph=2, pw=2)` and its inverse).
import Layers

/// latent `[C, h, w]` (h, w even) -> tokens `[(h/2)·(w/2), 4C]`; token `r·(w/2) + c` is the patch at
/// rows 2r…2r+1, columns 2c…2c+1; feature `channel·4 + dy·2 + dx`.
public func packPatches(_ latent: Tensor) throws -> Tensor {
    guard latent.rank == 3, latent.shape[1] % 2 == 0, latent.shape[2] % 2 == 0, latent.count > 0 else {
        throw AutoencoderError.latentShape(expected: "[C, h, w] with h and w even", found: latent.shape)
    }
    let channels = latent.shape[0], rows = latent.shape[1] / 2, columns = latent.shape[2] / 2
    return permute(latent.reshaped([channels, rows, 2, columns, 2]), [1, 3, 0, 2, 4]).reshaped([rows * columns, channels * 4])
}

/// tokens `[(h/2)·(w/2), 4C]` -> latent `[C, h, w]`, the inverse of `packPatches`. For an image of
/// H×W pixels the reference uses h = 2·⌈H/16⌉, w = 2·⌈W/16⌉.
public func unpackPatches(_ tokens: Tensor, latentHeight: Int, latentWidth: Int) throws -> Tensor {
    let rows = latentHeight / 2, columns = latentWidth / 2
    guard tokens.rank == 2, latentHeight % 2 == 0, latentWidth % 2 == 0, rows > 0, columns > 0,
          tokens.shape[0] == rows * columns, tokens.shape[1] % 4 == 0, tokens.shape[1] > 0 else {
        throw AutoencoderError.latentShape(expected: "tokens [\(rows * columns), 4C] for an even \(latentHeight)×\(latentWidth) latent",
                                           found: tokens.shape)
    }
    let channels = tokens.shape[1] / 4
    return permute(tokens.reshaped([rows, columns, channels, 2, 2]), [2, 0, 3, 1, 4]).reshaped([channels, latentHeight, latentWidth])
}
