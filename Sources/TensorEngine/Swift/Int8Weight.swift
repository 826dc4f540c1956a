import CKernels

/// Linear-layer weights as int8 codes with one scale per output row (`w ≈ q·scale`, symmetric,
/// q in [-127, 127]): one byte a parameter, multiplied in int8 against activations quantized per
/// token (`linear(_:weight:bias:)`), which VNNI processors run at several times the F32 rate.
public struct Int8Weight: Sendable {
    public let codes: Tensor    // [out, in] I8
    public let scales: Tensor   // [out] F32
    /// Σq of each row, which turns the activations' zero point into one subtraction per output.
    let rowSums: [Int32]

    public var outFeatures: Int { codes.shape[0] }
    public var inFeatures: Int { codes.shape[1] }

    /// Quantizes a weight `[out, in]` of any float type.
    public init(quantizing weight: Tensor) {
        precondition(weight.rank == 2 && weight.dtype != .i8, "Int8Weight(quantizing:) takes a float matrix, not \(weight)")
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        let codes = Tensor(uninitialized: [rows, columns], dtype: .i8)
        let scales = Tensor(uninitialized: [rows], dtype: .f32)
        var sums = [Int32](repeating: 0, count: rows)
        sums.withUnsafeMutableBufferPointer { sums in
            let sumPointer = sums.baseAddress!
            parallelRanges(rows, itemCost: columns) { range in
                uso_quantize_weight_rows(weight.constPointer, weight.dtype.code, Int64(columns),
                                         codes.rawPointer.assumingMemoryBound(to: Int8.self), scales.floatPointer,
                                         sumPointer, Int64(range.lowerBound), Int64(range.upperBound))
            }
        }
        self.codes = codes
        self.scales = scales
        self.rowSums = sums
    }

    /// Stored codes and scales (a converted checkpoint); the row sums are computed here.
    public init(codes: Tensor, scales: Tensor) {
        precondition(codes.rank == 2 && codes.dtype == .i8 && scales.count == codes.shape[0],
                     "Int8Weight: codes \(codes), scales \(scales)")
        let (rows, columns) = (codes.shape[0], codes.shape[1])
        var sums = [Int32](repeating: 0, count: rows)
        sums.withUnsafeMutableBufferPointer { sums in
            let sumPointer = sums.baseAddress!, base = codes.constPointer.assumingMemoryBound(to: Int8.self)
            parallelRanges(rows, itemCost: columns) { range in
                for row in range {
                    var sum: Int32 = 0
                    for value in UnsafeBufferPointer(start: base + row * columns, count: columns) { sum &+= Int32(value) }
                    sumPointer[row] = sum
                }
            }
        }
        self.codes = codes
        self.scales = scales.converted(to: .f32)
        self.rowSums = sums
    }

    /// The weight decoded to `dtype` (for tests and error measurements).
    public func dequantized(to dtype: DType = .f32) -> Tensor {
        (codes.converted(to: .f32) * scales.reshaped([outFeatures, 1])).converted(to: dtype)
    }
}

/// `x [..., in] · weightᵀ + bias -> [..., out]` with int8 weights: each row (token) of x is
/// quantized to u8 with its own scale and zero point, the product is exact in int32, and the scales
/// are restored in one pass. The result has x's compute type (F32 stays F32, else BF16).
public func linear(_ x: Tensor, weight: Int8Weight, bias: Tensor? = nil) -> Tensor {
    linear(x, weight: weight, bias: bias, productBufferBytes: 64 << 20)
}

/// `linear` with the int32 products going through `productBufferBytes`, a block of rows at a time.
func linear(_ x: Tensor, weight: Int8Weight, bias: Tensor?, productBufferBytes: Int) -> Tensor {
    let inFeatures = weight.inFeatures, outFeatures = weight.outFeatures
    precondition(x.shape.last == inFeatures && (bias?.count ?? outFeatures) == outFeatures,
                 "linear: input \(x.shape), int8 weight \(weight.codes.shape), bias \(bias?.shape ?? [])")
    let rows = x.count / max(inFeatures, 1)
    let outputType: DType = x.dtype == .f32 ? .f32 : .bf16
    let result = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures], dtype: outputType)
    let biasValues = bias.map { outputType == .f32 ? $0.toFloats() : $0.converted(to: .bf16).toFloats() }
    let codes = TensorStorage(uninitializedByteCount: max(rows * inFeatures, 1))
    var scales = [Float](repeating: 0, count: rows), zeros = [Int32](repeating: 0, count: rows)
    let blockRows = max(1, min(rows, productBufferBytes / max(outFeatures * 4, 1)))
    let products = TensorStorage(uninitializedByteCount: max(blockRows * outFeatures * 4, 4))
    let xCodes = codes.pointer.assumingMemoryBound(to: UInt8.self)
    let acc = products.pointer.assumingMemoryBound(to: Int32.self)
    let wCodes = weight.codes.constPointer.assumingMemoryBound(to: Int8.self)
    scales.withUnsafeMutableBufferPointer { scales in
        zeros.withUnsafeMutableBufferPointer { zeros in
            let (xScales, xZeros) = (scales.baseAddress!, zeros.baseAddress!)
            parallelRanges(rows, itemCost: inFeatures) { range in
                uso_quantize_activation_rows(x.constPointer, x.dtype.code, Int64(inFeatures), xCodes, xScales, xZeros,
                                             Int64(range.lowerBound), Int64(range.upperBound))
            }
            weight.rowSums.withUnsafeBufferPointer { sums in
                for start in stride(from: 0, to: rows, by: blockRows) {
                    let count = min(blockRows, rows - start)
                    let status = uso_gemm_u8s8(Int64(count), Int64(outFeatures), Int64(inFeatures),
                                               xCodes + start * inFeatures, wCodes, acc)
                    precondition(status == 0, "linear \(x.shape) × int8 \(weight.codes.shape): int8 GEMM failed (\(status))")
                    parallelRanges(count, itemCost: outFeatures) { range in
                        uso_dequantize_rows(acc, Int64(outFeatures), xScales + start, xZeros + start, weight.scales.floatPointer,
                                            sums.baseAddress, biasValues, result.rawPointer + start * outFeatures * outputType.byteSize,
                                            outputType.code, Int64(outFeatures), Int64(range.lowerBound), Int64(range.upperBound))
                    }
                }
            }
        }
    }
    return result
}
