import Foundation

/// Pillow's resampling filters (`PIL.Image.Resampling`).
public enum ResamplingFilter: Sendable, CaseIterable {
    case nearest, box, bilinear, hamming, bicubic, lanczos

    /// Half-width of the kernel in source pixels at scale 1.
    var support: Double {
        switch self {
        case .nearest, .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest, .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let distance = abs(x)
            return distance < 1 ? 1 - distance : 0
        case .hamming:
            let distance = abs(x)
            if distance == 0 { return 1 }
            if distance >= 1 { return 0 }
            let angle = distance * Double.pi
            // Pillow's constants are float literals (0.54f, 0.46f), promoted to double.
            return sin(angle) / angle * (Double(Float(0.54)) + Double(Float(0.46)) * cos(angle))
        case .bicubic:
            // Keys' cubic convolution with a = -0.5.
            let a = -0.5
            let distance = abs(x)
            if distance < 1 { return ((a + 2) * distance - (a + 3)) * distance * distance + 1 }
            if distance < 2 { return (((distance - 5) * distance + 8) * distance - 4) * a }
            return 0
        case .lanczos:
            return -3 <= x && x < 3 ? Self.sinc(x) * Self.sinc(x / 3) : 0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let angle = x * Double.pi
        return sin(angle) / angle
    }
}

extension RGBImage {
    /// The image resized to `width` x `height` with Pillow's algorithm (`Image.resize` on an 8-bit
    /// RGB image, full source box), so the bytes equal Pillow's:
    /// - `.nearest` picks the source pixel under each output pixel centre, stepping through the
    ///   source in double precision as Pillow's affine scaler does;
    /// - every other filter is separable: a horizontal pass into an 8-bit intermediate image,
    ///   then a vertical pass. When shrinking, the kernel is stretched by the scale factor
    ///   (antialiasing). Per output pixel the weights are normalised to sum 1, turned into
    ///   22-bit fixed point (rounded half away from zero), accumulated in 32-bit integers from
    ///   a bias of one half, then shifted and clamped to 0...255.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResamplingFilter) throws -> RGBImage {
        guard newWidth > 0, newHeight > 0 else { throw ImageError.invalidSize(width: newWidth, height: newHeight) }
        if newWidth == width && newHeight == height { return self }
        if filter == .nearest { return nearestResized(width: newWidth, height: newHeight) }

        let vertical = ResamplingKernel(inputSize: height, outputSize: newHeight, filter: filter)
        var image = self
        if newWidth != width {
            // Only the source rows the vertical pass reads are resampled horizontally.
            let firstRow = newHeight != height ? vertical.bounds[0].start : 0
            let lastRow = newHeight != height ? vertical.bounds[newHeight - 1].start + vertical.bounds[newHeight - 1].count : height
            let horizontal = ResamplingKernel(inputSize: width, outputSize: newWidth, filter: filter)
            image = horizontal.resampleRows(of: self, rows: firstRow..<lastRow)
            if newHeight != height {
                return vertical.shifted(by: -firstRow).resampleColumns(of: image)
            }
            return image
        }
        return vertical.resampleColumns(of: image)
    }

    private func nearestResized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        // Pillow: source coordinate = scale * 0.5 + scale * i, accumulated by repeated addition.
        func sourceIndices(inputSize: Int, outputSize: Int) -> [Int] {
            let scale = Double(inputSize) / Double(outputSize)
            var position = scale * 0.5
            return (0..<outputSize).map { _ in
                defer { position += scale }
                return min(Int(position), inputSize - 1)
            }
        }
        let columns = sourceIndices(inputSize: width, outputSize: newWidth)
        let rows = sourceIndices(inputSize: height, outputSize: newHeight)
        return gathered(width: newWidth, height: newHeight) { x, y in (columns[x], rows[y]) }
    }
}

/// Fixed-point weights of one 1-D resampling pass: for each output index, the first source
/// index and the weights of the source pixels from there.
struct ResamplingKernel {
    static let precisionBits = 32 - 8 - 2  // 8 bits of result, 2 bits of headroom for overshoot

    let bounds: [(start: Int, count: Int)]
    let weights: [Int32]  // bounds.count rows of `stride` weights
    let stride: Int

    init(inputSize: Int, outputSize: Int, filter: ResamplingFilter) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let inverseScale = 1 / filterScale  // Pillow multiplies by the reciprocal (rounding differs from dividing)
        stride = Int(ceil(support)) * 2 + 1
        var bounds: [(start: Int, count: Int)] = []
        var weights = [Int32](repeating: 0, count: outputSize * stride)
        var row = [Double](repeating: 0, count: stride)
        for output in 0..<outputSize {
            let center = (Double(output) + 0.5) * scale
            // Truncation toward zero, then clamping, as Pillow's (int) casts.
            let start = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            let count = end - start
            var total = 0.0
            for tap in 0..<count {
                row[tap] = filter.weight((Double(tap + start) - center + 0.5) * inverseScale)
                total += row[tap]
            }
            for tap in 0..<count {
                let normalized = total != 0 ? row[tap] / total : row[tap]
                let fixed = normalized * Double(1 << Self.precisionBits)
                weights[output * stride + tap] = Int32(normalized < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            bounds.append((start, count))
        }
        self.bounds = bounds
        self.weights = weights
    }

    private init(bounds: [(start: Int, count: Int)], weights: [Int32], stride: Int) {
        self.bounds = bounds
        self.weights = weights
        self.stride = stride
    }

    /// The same kernel reading from a source that starts `offset` rows later.
    func shifted(by offset: Int) -> ResamplingKernel {
        ResamplingKernel(bounds: bounds.map { ($0.start + offset, $0.count) }, weights: weights, stride: stride)
    }

    @inline(__always)
    private static func clip8(_ accumulator: Int32) -> UInt8 {
        UInt8(clamping: accumulator >> Int32(precisionBits))
    }

    /// Horizontal pass over source rows `rows`, giving an image `rows.count` high.
    func resampleRows(of image: RGBImage, rows: Range<Int>) -> RGBImage {
        let outWidth = bounds.count
        var result = [UInt8](repeating: 0, count: outWidth * rows.count * RGBImage.channels)
        image.pixels.withUnsafeBufferPointer { source in
            weights.withUnsafeBufferPointer { weights in
                result.withUnsafeMutableBufferPointer { out in
                    for (outRow, sourceRow) in rows.enumerated() {
                        let rowStart = sourceRow * image.width * RGBImage.channels
                        for x in 0..<outWidth {
                            let (start, count) = bounds[x]
                            var red: Int32 = 1 << (Self.precisionBits - 1), green = red, blue = red
                            for tap in 0..<count {
                                let weight = weights[x * stride + tap]
                                let index = rowStart + (start + tap) * RGBImage.channels
                                red &+= Int32(source[index]) &* weight
                                green &+= Int32(source[index + 1]) &* weight
                                blue &+= Int32(source[index + 2]) &* weight
                            }
                            let to = (outRow * outWidth + x) * RGBImage.channels
                            out[to] = Self.clip8(red)
                            out[to + 1] = Self.clip8(green)
                            out[to + 2] = Self.clip8(blue)
                        }
                    }
                }
            }
        }
        return RGBImage(validWidth: outWidth, height: rows.count, pixels: result)
    }

    /// Vertical pass: every output row mixes whole source rows.
    func resampleColumns(of image: RGBImage) -> RGBImage {
        let outHeight = bounds.count
        let rowLength = image.width * RGBImage.channels
        var result = [UInt8](repeating: 0, count: rowLength * outHeight)
        image.pixels.withUnsafeBufferPointer { source in
            weights.withUnsafeBufferPointer { weights in
                result.withUnsafeMutableBufferPointer { out in
                    for y in 0..<outHeight {
                        let (start, count) = bounds[y]
                        for sample in 0..<rowLength {
                            var accumulator: Int32 = 1 << (Self.precisionBits - 1)
                            for tap in 0..<count {
                                accumulator &+= Int32(source[(start + tap) * rowLength + sample]) &* weights[y * stride + tap]
                            }
                            out[y * rowLength + sample] = Self.clip8(accumulator)
                        }
                    }
                }
            }
        }
        return RGBImage(validWidth: image.width, height: outHeight, pixels: result)
    }
}
