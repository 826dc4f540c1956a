import Foundation
import CImageShims
import CWebP

/// One PNG text chunk (`tEXt` when both key and text are Latin-1, else `iTXt` in UTF-8, as
/// Pillow's `PngInfo.add_text` chooses).
public struct PNGTextEntry: Equatable, Sendable {
    public var key: String
    public var text: String

    public init(key: String, text: String) {
        self.key = key
        self.text = text
    }
}

/// The file to write and its settings.
public enum ImageEncoding: Equatable, Sendable {
    case png(text: [PNGTextEntry] = [])
    /// Quality 0...100 (libjpeg's scale; 4:2:0 chroma subsampling as libjpeg's defaults).
    case jpeg(quality: Int = 95)
    /// Quality 0...100 for lossy; `lossless` ignores it (libwebp's simple API).
    case webp(quality: Int = 90, lossless: Bool = false)
}

extension ImageFile {
    /// The encoded file contents.
    public static func encode(_ image: RGBImage, as encoding: ImageEncoding) throws -> Data {
        switch encoding {
        case .png(let text): return try encodePNG(image, text: text)
        case .jpeg(let quality): return try encodeJPEG(image, quality: quality)
        case .webp(let quality, let lossless): return try encodeWebP(image, quality: quality, lossless: lossless)
        }
    }

    /// Encodes and writes atomically: the bytes go to a temporary file in the same directory,
    /// which is then renamed over `url`. On any failure the temporary file is removed, so `url`
    /// either keeps its old contents or does not exist — never half an image.
    public static func write(_ image: RGBImage, to url: URL, as encoding: ImageEncoding) throws {
        let data = try encode(image, as: encoding)
        try writeAtomically(data, to: url)
    }

    /// The text chunks of the PNG at `url` (for `uso generate --from IMAGE.png`), in file order.
    public static func readPNGText(_ url: URL, maxPixelCount: Int = ImageDecodingOptions.defaultMaxPixelCount) throws -> [PNGTextEntry] {
        try withContents(of: url) { try pngText($0, maxPixelCount: maxPixelCount) }
    }

    /// The text chunks of PNG `data` (tEXt and zTXt decoded as Latin-1, iTXt as UTF-8).
    public static func pngText(_ data: Data, maxPixelCount: Int = ImageDecodingOptions.defaultMaxPixelCount) throws -> [PNGTextEntry] {
        let format = try ImageFormat.sniff(data)
        guard format == .png else { throw ImageError.unsupportedFormat("text metadata in \(format.name)") }
        var entries: UnsafeMutablePointer<uso_png_text>?
        var count: Int32 = 0
        let messageSize = 256
        var message = [CChar](repeating: 0, count: messageSize)
        let status = data.withUnsafeBytes { raw in
            uso_png_read_text(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, UInt64(maxPixelCount),
                              &entries, &count, &message, messageSize)
        }
        defer { uso_png_text_free(entries, count) }
        switch status {
        case USO_IMAGE_OK: break
        case USO_IMAGE_TOO_LARGE:
            let info = try ImageInfo(data: data)
            throw ImageError.tooLarge(width: info.width, height: info.height, limit: maxPixelCount)
        case USO_IMAGE_TRUNCATED: throw ImageError.truncated(format: .png)
        default: throw ImageError.corrupt(format: .png, reason: String(cString: message))
        }
        return (0..<Int(count)).compactMap { index in
            guard let entry = entries?[index], let key = entry.key, let text = entry.text else { return nil }
            let bytes = UnsafeRawBufferPointer(start: text, count: entry.text_size)
            let value = String(bytes: bytes, encoding: entry.is_utf8 != 0 ? .utf8 : .isoLatin1) ?? String(decoding: bytes, as: UTF8.self)
            return PNGTextEntry(key: String(cString: key), text: value)
        }
    }

    // MARK: - Encoders

    private static func encodePNG(_ image: RGBImage, text: [PNGTextEntry]) throws -> Data {
        // Keys: 1-79 printable Latin-1 characters, no leading, trailing or double spaces (PNG spec).
        let keys = try text.map { entry -> [UInt8] in
            let key = entry.key
            let printable = key.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) || (0xA1...0xFF).contains($0.value) }
            guard (1...79).contains(key.unicodeScalars.count), printable, !key.hasPrefix(" "), !key.hasSuffix(" "),
                  !key.contains("  ") else { throw ImageError.invalidMetadataKey(key) }
            return key.unicodeScalars.map { UInt8($0.value) } + [0]
        }
        let values: [(bytes: [UInt8], isUTF8: Bool)] = text.map { entry in
            if let latin1 = entry.text.data(using: .isoLatin1) { return (Array(latin1) + [0], false) }
            return (Array(entry.text.utf8) + [0], true)
        }
        return try withCStrings(keys + values.map(\.bytes)) { pointers in
            let chunks = (0..<text.count).map { index in
                uso_png_text(key: pointers[index], text: pointers[text.count + index],
                             text_size: values[index].bytes.count - 1, is_utf8: values[index].isUTF8 ? 1 : 0)
            }
            return try runEncoder(.png) { output, size, message, messageSize in
                image.pixels.withUnsafeBufferPointer { rgb in
                    uso_png_encode(rgb.baseAddress, UInt32(image.width), UInt32(image.height), chunks, Int32(chunks.count),
                                   output, size, message, messageSize)
                }
            }
        }
    }

    private static func encodeJPEG(_ image: RGBImage, quality: Int) throws -> Data {
        guard (0...100).contains(quality) else { throw ImageError.invalidQuality(quality) }
        return try runEncoder(.jpeg) { output, size, message, messageSize in
            image.pixels.withUnsafeBufferPointer { rgb in
                uso_jpeg_encode(rgb.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality),
                                output, size, message, messageSize)
            }
        }
    }

    private static func encodeWebP(_ image: RGBImage, quality: Int, lossless: Bool) throws -> Data {
        guard (0...100).contains(quality) else { throw ImageError.invalidQuality(quality) }
        // libwebp's limit is 16383 pixels per side.
        guard image.width <= Int(WEBP_MAX_DIMENSION), image.height <= Int(WEBP_MAX_DIMENSION) else {
            throw ImageError.encodingFailed(format: .webp, reason: "\(image.width)x\(image.height) exceeds WebP's \(WEBP_MAX_DIMENSION) pixels per side")
        }
        var output: UnsafeMutablePointer<UInt8>?
        let size = image.pixels.withUnsafeBufferPointer { rgb in
            let stride = Int32(image.width * RGBImage.channels)
            return lossless
                ? WebPEncodeLosslessRGB(rgb.baseAddress, Int32(image.width), Int32(image.height), stride, &output)
                : WebPEncodeRGB(rgb.baseAddress, Int32(image.width), Int32(image.height), stride, Float(quality), &output)
        }
        defer { WebPFree(output) }
        guard size > 0, let output else { throw ImageError.encodingFailed(format: .webp, reason: "libwebp returned no data") }
        return Data(bytes: output, count: size)
    }

    private static func runEncoder(
        _ format: ImageFormat,
        _ encoder: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>, Int) -> uso_image_status
    ) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        let messageSize = 256
        var message = [CChar](repeating: 0, count: messageSize)
        let status = encoder(&output, &size, &message, messageSize)
        defer { uso_buffer_free(output) }
        guard status == USO_IMAGE_OK, let output else {
            throw ImageError.encodingFailed(format: format, reason: String(cString: message))
        }
        return Data(bytes: output, count: size)
    }

    /// Calls `body` with pointers to NUL-terminated copies of `strings`.
    private static func withCStrings<T>(_ strings: [[UInt8]], _ body: ([UnsafeMutablePointer<CChar>]) throws -> T) throws -> T {
        let pointers = strings.map { bytes -> UnsafeMutablePointer<CChar> in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
            bytes.withUnsafeBufferPointer { pointer.initialize(from: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), count: bytes.count) }
            return pointer
        }
        defer { pointers.forEach { $0.deallocate() } }
        return try body(pointers)
    }

    /// Writes `data` to a temporary sibling of `url`, flushes it and renames it into place.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        let fail = { (reason: String) -> ImageError in
            unlink(temporary.path)
            return ImageError.writeFailed(path: url.path, reason: reason)
        }
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw ImageError.writeFailed(path: url.path, reason: String(cString: strerror(errno))) }
        var written = 0
        let writeError: Int32? = data.withUnsafeBytes { raw in
            while written < raw.count {
                let result = writeToDescriptor(descriptor, raw.baseAddress! + written, raw.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += result
            }
            return fsync(descriptor) == 0 ? nil : errno
        }
        close(descriptor)
        if let writeError { throw fail(String(cString: strerror(writeError))) }
        guard rename(temporary.path, url.path) == 0 else { throw fail(String(cString: strerror(errno))) }
    }
}

/// The POSIX `write` (inside `ImageFile` the name means the image writer).
private func writeToDescriptor(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
