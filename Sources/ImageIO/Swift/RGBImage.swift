/// An 8-bit RGB image: `pixels` holds `height` rows of `width` interleaved (R, G, B) samples.
/// This is the one in-memory image type of ImageIO; every decoder converts to it the way Pillow's
/// `convert("RGB")` does, and every resize and preprocessing step works on it.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public static let channels = 3

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else { throw ImageError.emptyImage(width: width, height: height) }
        let (area, areaOverflow) = width.multipliedReportingOverflow(by: height)
        let (count, countOverflow) = area.multipliedReportingOverflow(by: Self.channels)
        guard !areaOverflow, !countOverflow, pixels.count == count else {
            throw ImageError.pixelCountMismatch(width: width, height: height, count: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// For sizes this module has already validated.
    init(validWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width` × `height` image whose pixel (x, y) is this image's pixel `source(x, y)`: the one
    /// loop behind flips, rotations and nearest-neighbour resizing.
    func gathered(width outWidth: Int, height outHeight: Int, from source: (Int, Int) -> (x: Int, y: Int)) -> RGBImage {
        var result = [UInt8](repeating: 0, count: outWidth * outHeight * Self.channels)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let (sourceX, sourceY) = source(x, y)
                let from = (sourceY * width + sourceX) * Self.channels
                let to = (y * outWidth + x) * Self.channels
                result[to] = pixels[from]
                result[to + 1] = pixels[from + 1]
                result[to + 2] = pixels[from + 2]
            }
        }
        return RGBImage(validWidth: outWidth, height: outHeight, pixels: result)
    }

    /// A uniform image, handy for placeholders and tests.
    public init(width: Int, height: Int, red: UInt8, green: UInt8, blue: UInt8) throws {
        guard width > 0, height > 0 else { throw ImageError.emptyImage(width: width, height: height) }
        var pixels = [UInt8](repeating: 0, count: width * height * Self.channels)
        for index in stride(from: 0, to: pixels.count, by: Self.channels) {
            pixels[index] = red
            pixels[index + 1] = green
            pixels[index + 2] = blue
        }
        self.init(validWidth: width, height: height, pixels: pixels)
    }

    /// The rectangle `[left, left + width) x [top, top + height)`, as Pillow's `crop` inside the image.
    public func cropped(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int) throws -> RGBImage {
        guard cropWidth > 0, cropHeight > 0, left >= 0, top >= 0, left + cropWidth <= width, top + cropHeight <= height else {
            throw ImageError.invalidCrop(left: left, top: top, width: cropWidth, height: cropHeight, imageWidth: width, imageHeight: height)
        }
        var result = [UInt8](repeating: 0, count: cropWidth * cropHeight * Self.channels)
        let rowBytes = cropWidth * Self.channels
        for y in 0..<cropHeight {
            let source = ((top + y) * width + left) * Self.channels
            result.replaceSubrange(y * rowBytes..<(y + 1) * rowBytes, with: pixels[source..<source + rowBytes])
        }
        return RGBImage(validWidth: cropWidth, height: cropHeight, pixels: result)
    }
}
