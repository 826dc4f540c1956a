/// The EXIF orientation tag (0x0112) and the transform that shows the image upright, with the
/// same meaning as Pillow's `ImageOps.exif_transpose`.
public enum EXIFOrientation: Int, Sendable {
    case upright = 1, mirrored, rotated180, flipped, transposed, rotated90Clockwise, transversed, rotated90CounterClockwise

    /// Reads the tag from an EXIF payload (a TIFF structure, optionally after "Exif\0\0");
    /// nil when it is absent, out of range or the structure is malformed.
    public init?(exif: [UInt8]) {
        var tiff = exif[...]
        if tiff.starts(with: Array("Exif".utf8) + [0, 0]) { tiff = tiff.dropFirst(6) }
        let bytes = Array(tiff)
        guard bytes.count >= 8 else { return nil }
        let littleEndian: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): littleEndian = true
        case (0x4D, 0x4D): littleEndian = false
        default: return nil
        }
        func integer(at offset: Int, size: Int) -> Int? {
            guard offset >= 0, offset + size <= bytes.count else { return nil }
            let field = bytes[offset..<offset + size]
            return (littleEndian ? Array(field.reversed()) : Array(field)).reduce(0) { $0 << 8 | Int($1) }
        }
        guard integer(at: 2, size: 2) == 42, let directory = integer(at: 4, size: 4),
              let entryCount = integer(at: directory, size: 2) else { return nil }
        for entry in 0..<entryCount {
            let offset = directory + 2 + entry * 12
            guard let tag = integer(at: offset, size: 2) else { return nil }
            // Orientation is one SHORT (type 3) stored in the first bytes of the value field.
            if tag == 0x0112, integer(at: offset + 2, size: 2) == 3, let value = integer(at: offset + 8, size: 2) {
                self.init(rawValue: value)
                return
            }
        }
        return nil
    }
}

extension RGBImage {
    /// The image as it should be displayed given its EXIF orientation.
    public func oriented(_ orientation: EXIFOrientation) -> RGBImage {
        let swapsSides = orientation.rawValue >= EXIFOrientation.transposed.rawValue
        let outWidth = swapsSides ? height : width
        let outHeight = swapsSides ? width : height
        let (lastX, lastY) = (width - 1, height - 1)
        // For each displayed pixel (x, y): the stored pixel it shows.
        let source: (Int, Int) -> (x: Int, y: Int) = switch orientation {
        case .upright: { x, y in (x, y) }
        case .mirrored: { x, y in (lastX - x, y) }
        case .rotated180: { x, y in (lastX - x, lastY - y) }
        case .flipped: { x, y in (x, lastY - y) }
        case .transposed: { x, y in (y, x) }
        case .rotated90Clockwise: { x, y in (y, lastY - x) }
        case .transversed: { x, y in (lastX - y, lastY - x) }
        case .rotated90CounterClockwise: { x, y in (lastX - y, x) }
        }
        return gathered(width: outWidth, height: outHeight, from: source)
    }
}
