// The autoencoder's pixel convention: images are [3, H, W] in [-1, 1]; 8-bit RGB converts in and out
// exactly as the reference does (spec §2.1 to_tensor·2 − 1, §8 clamp and truncation).
import Layers

/// Interleaved 8-bit RGB (`height·width·3` bytes, row-major) -> `[3, H, W]` F32 in [-1, 1]:
/// `x/255` (torchvision `to_tensor`), then `x·2 − 1`, each rounded to Float.
public func imageTensor(rgb pixels: [UInt8], width: Int, height: Int) throws -> Tensor {
    guard width > 0, height > 0, pixels.count == width * height * 3 else {
        throw AutoencoderError.imageShape(expected: "\(width)×\(height)×3 bytes", found: [pixels.count])
    }
    var planes = [Float](repeating: 0, count: pixels.count)
    for i in 0..<(width * height) { for c in 0..<3 { planes[c * width * height + i] = Float(pixels[i * 3 + c]) / 255 } }
    return Tensor(planes, shape: [3, height, width]) * 2 - 1
}

/// Decoded `[3, H, W]` -> interleaved 8-bit RGB: clamp to [-1, 1], `127.5·(x + 1)` rounded in the
/// tensor's storage type (F32, or BF16 as under the reference's fp8 autocast), then truncated as
/// torch's `.byte()` does (not rounded).
public func rgbBytes(fromDecoded image: Tensor) throws -> [UInt8] {
    guard image.rank == 3, image.shape[0] == 3 else { throw AutoencoderError.imageShape(expected: "[3, H, W]", found: image.shape) }
    let plane = image.shape[1] * image.shape[2]
    let clamped = Tensor(image.toFloats().map { min(max($0, -1), 1) }, shape: image.shape).converted(to: image.dtype)
    let levels = ((clamped + 1) * 127.5).toFloats()
    var pixels = [UInt8](repeating: 0, count: 3 * plane)
    for i in 0..<plane { for c in 0..<3 { pixels[i * 3 + c] = UInt8(levels[c * plane + i]) } }
    return pixels
}
