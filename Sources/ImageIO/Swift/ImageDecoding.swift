import Foundation
import CImageShims
import CWebP

/// How files are turned into `RGBImage`s.
public struct ImageDecodingOptions: Sendable {
    /// Rotate or mirror JPEG and WebP images as their EXIF orientation tag says, as photo viewers
    /// do (phone pictures are stored sideways with a tag). The reference does NOT do this
    /// (`Image.open(path).convert("RGB")` ignores the tag); turn it off for pixel parity with it.
    public var applyEXIFOrientation: Bool
    /// Images with more pixels are refused after reading the header, before any pixel memory is
    /// allocated. The default, 8192 x 8192 = 67,108,864 pixels (192 MiB as RGB, at most 512 MiB
    /// while decoding a 16-bit RGBA PNG), is far above what the pipeline uses (references are
    /// resized to 512 or 384 pixels) and well below what makes a decoder exhaust memory.
    public var maxPixelCount: Int

    public static let defaultMaxPixelCount = 8192 * 8192

    public init(applyEXIFOrientation: Bool = true, maxPixelCount: Int = ImageDecodingOptions.defaultMaxPixelCount) {
        self.applyEXIFOrientation = applyEXIFOrientation
        self.maxPixelCount = maxPixelCount
    }
}

/// Reading and writing image files (PNG, JPEG, WebP) through libpng, libjpeg-turbo and libwebp.
public enum ImageFile {
    /// Reads and decodes the image at `url`; errors name the file.
    public static func read(_ url: URL, options: ImageDecodingOptions = ImageDecodingOptions()) throws -> RGBImage {
        try withContents(of: url) { try decode($0, options: options) }
    }

    /// Runs `body` on the bytes of the file at `url`; any error names the file.
    static func withContents<Result>(of url: URL, _ body: (Data) throws -> Result) throws -> Result {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImageError.unreadableFile(path: url.path, reason: (error as NSError).localizedDescription)
        }
        do {
            return try body(data)
        } catch let error as ImageError {
            throw ImageError.inFile(path: url.path, error)
        }
    }

    /// Decodes PNG, JPEG or WebP data (the format is sniffed from its first bytes) and converts it
    /// to RGB as Pillow's `convert("RGB")` does:
    /// - alpha is dropped without compositing;
    /// - gray is replicated into R, G and B; 1, 2 and 4-bit gray scaled to 0...255; palettes expanded;
    /// - 16-bit RGB(A) and gray+alpha keep the high byte; 16-bit gray is clipped to 255 (Pillow opens
    ///   it as mode `I;16`, whose conversion to RGB saturates rather than scales);
    /// - CMYK JPEGs are read with Adobe's inverted polarity, then R = (255 - K) - C(255 - K)/255
    ///   with Pillow's rounding;
    /// - animated WebP: the first frame, composited on a transparent canvas as libwebp does.
    public static func decode(_ data: Data, options: ImageDecodingOptions = ImageDecodingOptions()) throws -> RGBImage {
        let info = try ImageInfo(data: data)
        guard info.width > 0, info.height > 0 else { throw ImageError.emptyImage(width: info.width, height: info.height) }
        guard info.width <= options.maxPixelCount / info.height else {
            throw ImageError.tooLarge(width: info.width, height: info.height, limit: options.maxPixelCount)
        }
        let decoded: (image: RGBImage, exif: [UInt8]?)
        switch info.format {
        case .png: decoded = (try decodePNG(data, limit: options.maxPixelCount), nil)
        case .jpeg: decoded = try decodeJPEG(data, limit: options.maxPixelCount)
        case .webp: decoded = try decodeWebP(data)
        }
        guard options.applyEXIFOrientation, let exif = decoded.exif, let orientation = EXIFOrientation(exif: exif) else {
            return decoded.image
        }
        return decoded.image.oriented(orientation)
    }

    // MARK: - PNG and JPEG through the C shims

    private typealias ShimDecoder = (UnsafePointer<UInt8>?, Int, UInt64, UnsafeMutablePointer<uso_decoded_image>?,
                                     UnsafeMutablePointer<CChar>?, Int) -> uso_image_status

    /// Runs a shim decoder and turns its status into a typed error.
    private static func runShim<T>(_ decoder: ShimDecoder, _ data: Data, limit: Int, format: ImageFormat,
                                   convert: (uso_decoded_image) -> T) throws -> T {
        var image = uso_decoded_image()
        let messageSize = 256
        var message = [CChar](repeating: 0, count: messageSize)
        let status = data.withUnsafeBytes { raw in
            decoder(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, UInt64(limit), &image, &message, messageSize)
        }
        defer { uso_decoded_image_free(&image) }
        switch status {
        case USO_IMAGE_OK: return convert(image)
        case USO_IMAGE_TOO_LARGE: throw ImageError.tooLarge(width: Int(image.width), height: Int(image.height), limit: limit)
        case USO_IMAGE_TRUNCATED: throw ImageError.truncated(format: format)
        default: throw ImageError.corrupt(format: format, reason: String(cString: message))
        }
    }

    private static func decodePNG(_ data: Data, limit: Int) throws -> RGBImage {
        try runShim(uso_png_decode, data, limit: limit, format: .png) { image in
            let pixelCount = Int(image.width) * Int(image.height)
            let channels = Int(image.channels)
            let isGray16 = image.bytes_per_sample == 2 && image.source_color_type == 0
            var rgb = [UInt8](repeating: 0, count: pixelCount * RGBImage.channels)
            rgb.withUnsafeMutableBufferPointer { out in
                guard let samples = image.pixels else { return }
                for pixel in 0..<pixelCount {
                    for channel in 0..<RGBImage.channels {
                        // Gray (1 or 2 channels) repeats its first sample; alpha is never read.
                        let sample = pixel * channels + (channels < 3 ? 0 : channel)
                        if image.bytes_per_sample == 1 {
                            out[pixel * 3 + channel] = samples[sample]
                        } else {
                            let high = samples[2 * sample], low = samples[2 * sample + 1]
                            out[pixel * 3 + channel] = isGray16 ? (high == 0 ? low : 255) : high
                        }
                    }
                }
            }
            return RGBImage(validWidth: Int(image.width), height: Int(image.height), pixels: rgb)
        }
    }

    private static func decodeJPEG(_ data: Data, limit: Int) throws -> (RGBImage, [UInt8]?) {
        try runShim(uso_jpeg_decode, data, limit: limit, format: .jpeg) { image in
            let pixelCount = Int(image.width) * Int(image.height)
            let channels = Int(image.channels)
            var rgb = [UInt8](repeating: 0, count: pixelCount * RGBImage.channels)
            rgb.withUnsafeMutableBufferPointer { out in
                guard let samples = image.pixels else { return }
                for pixel in 0..<pixelCount {
                    let source = pixel * channels
                    switch channels {
                    case 4:
                        let (red, green, blue) = cmykToRGB(samples[source], samples[source + 1], samples[source + 2], samples[source + 3])
                        (out[pixel * 3], out[pixel * 3 + 1], out[pixel * 3 + 2]) = (red, green, blue)
                    case 3:
                        for channel in 0..<3 { out[pixel * 3 + channel] = samples[source + channel] }
                    default:
                        for channel in 0..<3 { out[pixel * 3 + channel] = samples[source] }
                    }
                }
            }
            let exif = image.exif.map { [UInt8](UnsafeBufferPointer(start: $0, count: image.exif_size)) }
            return (RGBImage(validWidth: Int(image.width), height: Int(image.height), pixels: rgb), exif)
        }
    }

    /// Pillow's CMYK -> RGB for JPEG samples stored with Adobe's inverted polarity (Pillow reads
    /// every CMYK JPEG that way): ink = 255 - stored, then each channel is
    /// (255 - K) - C·(255 - K)/255 with its `MULDIV255` rounding.
    private static func cmykToRGB(_ cyan: UInt8, _ magenta: UInt8, _ yellow: UInt8, _ black: UInt8) -> (UInt8, UInt8, UInt8) {
        let keyComplement = Int(black)  // 255 - (255 - stored K)
        func channel(_ stored: UInt8) -> UInt8 {
            let ink = 255 - Int(stored)
            let product = ink * keyComplement + 128
            return UInt8(clamping: keyComplement - ((product >> 8) + product) >> 8)
        }
        return (channel(cyan), channel(magenta), channel(yellow))
    }

    // MARK: - WebP through libwebp's animation decoder (as Pillow decodes every WebP)

    private static func decodeWebP(_ data: Data) throws -> (RGBImage, [UInt8]?) {
        // The RIFF header states the file size; a shorter file was cut off.
        let declaredSize = data.prefix(8).dropFirst(4).reversed().reduce(0) { $0 << 8 | Int($1) } + 8
        guard data.count >= declaredSize else { throw ImageError.truncated(format: .webp) }
        return try data.withUnsafeBytes { raw -> (RGBImage, [UInt8]?) in
            var webpData = WebPData(bytes: raw.bindMemory(to: UInt8.self).baseAddress, size: raw.count)
            guard let decoder = WebPAnimDecoderNew(&webpData, nil) else {
                throw ImageError.corrupt(format: .webp, reason: "libwebp cannot parse the container")
            }
            defer { WebPAnimDecoderDelete(decoder) }
            var info = WebPAnimInfo()
            var canvas: UnsafeMutablePointer<UInt8>?
            var timestamp: Int32 = 0
            guard WebPAnimDecoderGetInfo(decoder, &info) != 0, WebPAnimDecoderGetNext(decoder, &canvas, &timestamp) != 0,
                  let canvas else {
                throw ImageError.corrupt(format: .webp, reason: "libwebp cannot decode the first frame")
            }
            let pixelCount = Int(info.canvas_width) * Int(info.canvas_height)
            var rgb = [UInt8](repeating: 0, count: pixelCount * RGBImage.channels)
            rgb.withUnsafeMutableBufferPointer { out in
                for pixel in 0..<pixelCount {
                    for channel in 0..<3 { out[pixel * 3 + channel] = canvas[pixel * 4 + channel] }
                }
            }
            var exif: [UInt8]?
            var chunk = WebPChunkIterator()
            if let demuxer = WebPAnimDecoderGetDemuxer(decoder), WebPDemuxGetChunk(demuxer, "EXIF", 1, &chunk) != 0 {
                exif = [UInt8](UnsafeBufferPointer(start: chunk.chunk.bytes, count: chunk.chunk.size))
                WebPDemuxReleaseChunkIterator(&chunk)
            }
            return (RGBImage(validWidth: Int(info.canvas_width), height: Int(info.canvas_height), pixels: rgb), exif)
        }
    }
}
