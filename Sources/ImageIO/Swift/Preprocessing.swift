/// The reference's image preprocessing (spec §2.1, §2.2) and its final conversion of the decoded
/// image to 8 bits (spec §8), with the same float arithmetic so the values are bit-identical.
public enum Preprocessing {
    /// The reference's placeholder: a 16x16 content image passes through untouched.
    static let placeholderSide = 16
    /// Content references are cropped to multiples of the latent patch (8x VAE downsampling x 2x2 packing).
    static let patchMultiple = 16

    /// The content reference as `preprocess_ref(image, long_size)` makes it: resized with Pillow's
    /// LANCZOS so the long side is `longSide` (the short side is `int((longSide / long) * short)`,
    /// evaluated in double precision in that order), then centre-cropped to multiples of 16.
    public static func contentReference(_ image: RGBImage, longSide: Int = 512) throws -> RGBImage {
        if image.width == placeholderSide && image.height == placeholderSide { return image }
        let landscape = image.width >= image.height
        let (long, short) = landscape ? (image.width, image.height) : (image.height, image.width)
        let resizedShort = Int((Double(longSide) / Double(long)) * Double(short))
        let (resizedWidth, resizedHeight) = landscape ? (longSide, resizedShort) : (resizedShort, longSide)
        let targetWidth = resizedWidth / patchMultiple * patchMultiple
        let targetHeight = resizedHeight / patchMultiple * patchMultiple
        guard targetWidth > 0, targetHeight > 0 else {
            throw ImageError.referenceTooSmall(width: image.width, height: image.height, longSide: longSide)
        }
        let resized = try image.resized(width: resizedWidth, height: resizedHeight, filter: .lanczos)
        return try resized.cropped(left: (resizedWidth - targetWidth) / 2, top: (resizedHeight - targetHeight) / 2,
                                   width: targetWidth, height: targetHeight)
    }

    /// `to_tensor(image) * 2 - 1`: CHW float32 in [-1, 1], each step rounded to float32 as torch does.
    public static func signedUnitValues(_ image: RGBImage) -> [Float] {
        channelsFirst(image) { (Float($0) / 255) * 2 - 1 }
    }

    /// The SigLIP style-encoder input as `SiglipImageProcessor` (so400m-patch14-384) makes it:
    /// Pillow BICUBIC resize to exactly 384x384 (aspect ratio not kept), `x * (1/255)` in double
    /// then stored as float32, then `(x - 0.5) / 0.5` in float32. CHW, 3 x 384 x 384 values.
    public static func siglipPixelValues(_ image: RGBImage, side: Int = 384) throws -> [Float] {
        let resized = try image.resized(width: side, height: side, filter: .bicubic)
        return channelsFirst(resized) { (Float(Double($0) * (1.0 / 255.0)) - 0.5) / 0.5 }
    }

    /// The decoded image tensor (CHW float32, nominally in [-1, 1]) as the reference turns it into
    /// pixels: clamp to [-1, 1], `127.5 * (x + 1)` in float32, then truncation toward zero
    /// (`.byte()`, not rounding). NaN becomes 0, as the x86 float-to-integer conversion gives.
    public static func imageFromDecoded(_ values: [Float], width: Int, height: Int) throws -> RGBImage {
        guard width > 0, height > 0, values.count == RGBImage.channels * width * height else {
            throw ImageError.decodedTensorShape(count: values.count, width: width, height: height)
        }
        let planeSize = width * height
        var pixels = [UInt8](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { planes in
            for channel in 0..<RGBImage.channels {
                for index in 0..<planeSize {
                    let value = planes[channel * planeSize + index]
                    guard !value.isNaN else { continue }
                    let clamped = min(max(value, -1), 1)
                    pixels[index * RGBImage.channels + channel] = UInt8(127.5 * (clamped + 1))
                }
            }
        }
        return RGBImage(validWidth: width, height: height, pixels: pixels)
    }

    /// Applies `transform` to every sample through a 256-entry table, laying the result out CHW.
    private static func channelsFirst(_ image: RGBImage, _ transform: (UInt8) -> Float) -> [Float] {
        let table = (0...255).map { transform(UInt8($0)) }
        let planeSize = image.width * image.height
        var values = [Float](repeating: 0, count: planeSize * RGBImage.channels)
        image.pixels.withUnsafeBufferPointer { pixels in
            for index in 0..<planeSize {
                for channel in 0..<RGBImage.channels {
                    values[channel * planeSize + index] = table[Int(pixels[index * RGBImage.channels + channel])]
                }
            }
        }
        return values
    }
}
