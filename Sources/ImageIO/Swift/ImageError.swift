import Foundation

/// Everything that can go wrong reading, converting or writing an image. Each message says what
/// was found and, where it helps, what to do instead.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case notAnImage(leadingBytes: String)
    case unsupportedFormat(String)
    case emptyImage(width: Int, height: Int)
    case tooLarge(width: Int, height: Int, limit: Int)
    case truncated(format: ImageFormat)
    case corrupt(format: ImageFormat, reason: String)
    case pixelCountMismatch(width: Int, height: Int, count: Int)
    case invalidSize(width: Int, height: Int)
    case invalidCrop(left: Int, top: Int, width: Int, height: Int, imageWidth: Int, imageHeight: Int)
    case invalidMetadataKey(String)
    case invalidQuality(Int)
    case encodingFailed(format: ImageFormat, reason: String)
    case writeFailed(path: String, reason: String)
    case decodedTensorShape(count: Int, width: Int, height: Int)
    case referenceTooSmall(width: Int, height: Int, longSide: Int)
    /// An error about the file at `path`.
    indirect case inFile(path: String, ImageError)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .notAnImage(let leadingBytes):
            "not an image: the data starts with \(leadingBytes), which is not a PNG, JPEG or WebP signature"
        case .unsupportedFormat(let name): "\(name) images are not supported; convert the image to PNG, JPEG or WebP"
        case .emptyImage(let width, let height): "the image is empty (\(width)x\(height) pixels)"
        case .tooLarge(let width, let height, let limit):
            "the image is \(width)x\(height) = \(width * height) pixels, more than the limit of \(limit) pixels; downscale it first"
        case .truncated(let format): "the \(format.name) data is truncated: the file ends before the image does"
        case .corrupt(let format, let reason): "the \(format.name) data is corrupt: \(reason)"
        case .pixelCountMismatch(let width, let height, let count):
            "\(count) bytes cannot be a \(width)x\(height) RGB image (expected \(width * height * RGBImage.channels))"
        case .invalidSize(let width, let height): "cannot resize to \(width)x\(height): both sides must be at least 1"
        case .invalidCrop(let left, let top, let width, let height, let imageWidth, let imageHeight):
            "the crop \(width)x\(height) at (\(left), \(top)) does not lie inside the \(imageWidth)x\(imageHeight) image"
        case .invalidMetadataKey(let key):
            "'\(key)' cannot be a PNG text key: it must be 1 to 79 Latin-1 characters without leading, trailing or double spaces"
        case .invalidQuality(let quality): "quality \(quality) is outside 0...100"
        case .encodingFailed(let format, let reason): "cannot encode the \(format.name) image: \(reason)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        case .decodedTensorShape(let count, let width, let height):
            "\(count) values cannot be a [3, \(height), \(width)] image tensor (expected \(3 * width * height))"
        case .referenceTooSmall(let width, let height, let longSide):
            "a \(width)x\(height) content image is too narrow: with its long side at \(longSide) pixels its short side is under 16 pixels; crop it or raise --content-ref"
        case .inFile(let path, let error): "\(path): \(error.description)"
        }
    }

    /// The error without the file it happened in.
    public var underlying: ImageError {
        if case .inFile(_, let error) = self { return error.underlying }
        return self
    }
}
