import Foundation
import CWebP

/// The file formats ImageIO reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png, jpeg, webp

    public var name: String {
        switch self {
        case .png: "PNG"
        case .jpeg: "JPEG"
        case .webp: "WebP"
        }
    }

    /// The format named by a file extension (for choosing what to write).
    public init?(fileExtension: String) {
        switch fileExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg", "jpe", "jfif": self = .jpeg
        case "webp": self = .webp
        default: return nil
        }
    }

    /// The format of `data`, from its signature bytes (never from a file name).
    public static func sniff(_ data: Data) throws -> ImageFormat {
        let bytes = [UInt8](data.prefix(16))
        func starts(_ signature: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + signature.count && Array(bytes[offset..<offset + signature.count]) == signature
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF8".utf8)) { throw ImageError.unsupportedFormat("GIF") }
        if starts(Array("BM".utf8)) { throw ImageError.unsupportedFormat("BMP") }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { throw ImageError.unsupportedFormat("TIFF") }
        if starts(Array("ftyp".utf8), at: 4) { throw ImageError.unsupportedFormat("HEIF/AVIF") }
        let shown = bytes.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
        throw ImageError.notAnImage(leadingBytes: bytes.isEmpty ? "nothing (the data is empty)" : shown)
    }
}

/// What the header says, read without decoding any pixels.
public struct ImageInfo: Equatable, Sendable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }

    /// Reads the signature and the dimensions: the PNG IHDR chunk, the JPEG SOF marker, the WebP
    /// canvas (libwebp's header parser).
    public init(data: Data) throws {
        format = try ImageFormat.sniff(data)
        let bytes = [UInt8](data.prefix(format == .jpeg ? data.count : 64))
        switch format {
        case .png: (width, height) = try Self.pngSize(bytes)
        case .jpeg: (width, height) = try Self.jpegSize(bytes)
        case .webp: (width, height) = try Self.webpSize(data)
        }
    }

    private static func bigEndian(_ bytes: [UInt8], _ offset: Int, count: Int) -> Int {
        bytes[offset..<offset + count].reduce(0) { $0 << 8 | Int($1) }
    }

    private static func pngSize(_ bytes: [UInt8]) throws -> (Int, Int) {
        // Signature (8), then the IHDR chunk: length (4), "IHDR" (4), width (4), height (4).
        guard bytes.count >= 24 else { throw ImageError.truncated(format: .png) }
        guard bytes[12..<16].elementsEqual("IHDR".utf8) else {
            throw ImageError.corrupt(format: .png, reason: "the first chunk is not IHDR")
        }
        return (bigEndian(bytes, 16, count: 4), bigEndian(bytes, 20, count: 4))
    }

    private static func jpegSize(_ bytes: [UInt8]) throws -> (Int, Int) {
        // Walk the marker segments after SOI until a start-of-frame marker.
        var offset = 2
        while true {
            guard offset + 4 <= bytes.count else { throw ImageError.truncated(format: .jpeg) }
            guard bytes[offset] == 0xFF else {
                throw ImageError.corrupt(format: .jpeg, reason: "expected a marker at byte \(offset)")
            }
            let marker = bytes[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }  // no payload
            let length = bigEndian(bytes, offset + 2, count: 2)
            let isStartOfFrame = (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker)
            if isStartOfFrame {
                // length (2), precision (1), height (2), width (2)
                guard offset + 9 <= bytes.count else { throw ImageError.truncated(format: .jpeg) }
                return (bigEndian(bytes, offset + 7, count: 2), bigEndian(bytes, offset + 5, count: 2))
            }
            if marker == 0xDA || marker == 0xD9 {
                throw ImageError.corrupt(format: .jpeg, reason: "no frame header before the image data")
            }
            guard length >= 2 else { throw ImageError.corrupt(format: .jpeg, reason: "marker segment of length \(length)") }
            offset += 2 + length
        }
    }

    private static func webpSize(_ data: Data) throws -> (Int, Int) {
        var features = WebPBitstreamFeatures()
        let status = data.withUnsafeBytes { raw in
            WebPGetFeatures(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &features)
        }
        switch status {
        case VP8_STATUS_OK: return (Int(features.width), Int(features.height))
        case VP8_STATUS_NOT_ENOUGH_DATA: throw ImageError.truncated(format: .webp)
        default: throw ImageError.corrupt(format: .webp, reason: "invalid header (libwebp status \(status.rawValue))")
        }
    }
}
