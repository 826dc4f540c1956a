import CKernels

/// Bytes behind one or more tensors: either owned (64-byte aligned heap memory, uso_alloc) or borrowed from
/// an owner that keeps them alive, such as a memory-mapped weight file.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owner: AnyObject?

    /// Fresh zeroed memory.
    public convenience init(byteCount: Int) {
        self.init(uninitializedByteCount: byteCount)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// Fresh memory that the caller fills completely (skips a pass over large op outputs).
    init(uninitializedByteCount byteCount: Int) {
        self.byteCount = byteCount
        guard let pointer = uso_alloc(byteCount) else { fatalError("out of memory allocating \(byteCount) bytes") }
        self.pointer = pointer
        self.owner = nil
    }

    /// A view of memory that `owner` keeps alive (no copy).
    public init(borrowing pointer: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = pointer
        self.byteCount = byteCount
        self.owner = owner
    }

    deinit { if owner == nil { uso_free(pointer, byteCount) } }
}

/// The one tensor type: a contiguous row-major array of `shape` in storage type `dtype`.
///
/// Models run at batch 1, so shapes carry no batch axis: tokens are `[L, D]`, images `[C, H, W]`.
/// Arithmetic is done in Float; results are stored in the input's dtype (F32 or BF16), which is
/// how PyTorch rounds BF16 activations after every op.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let dtype: DType
    public let storage: TensorStorage
    public let byteOffset: Int

    public init(shape: [Int], dtype: DType, storage: TensorStorage, byteOffset: Int = 0) {
        precondition(byteOffset + shape.reduce(1, *) * dtype.byteSize <= storage.byteCount,
                     "tensor \(shape) \(dtype) exceeds its storage")
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.byteOffset = byteOffset
    }

    /// Zero-filled tensor.
    public init(zeros shape: [Int], dtype: DType = .f32) {
        self.init(shape: shape, dtype: dtype,
                  storage: TensorStorage(byteCount: shape.reduce(1, *) * dtype.byteSize))
    }

    /// Tensor whose every element the caller is about to write.
    init(uninitialized shape: [Int], dtype: DType) {
        self.init(shape: shape, dtype: dtype,
                  storage: TensorStorage(uninitializedByteCount: shape.reduce(1, *) * dtype.byteSize))
    }

    /// Tensor holding `values` (rounded to `dtype`).
    public init(_ values: [Float], shape: [Int], dtype: DType = .f32) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(uninitialized: shape, dtype: dtype)
        let destination = rawPointer
        values.withUnsafeBufferPointer {
            uso_convert($0.baseAddress, DType.f32.code, destination, dtype.code, values.count)
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var byteCount: Int { count * dtype.byteSize }
    public var rawPointer: UnsafeMutableRawPointer { storage.pointer + byteOffset }

    /// Float pointer to the elements; only for F32 tensors.
    public var floatPointer: UnsafeMutablePointer<Float> {
        precondition(dtype == .f32, "floatPointer on a \(dtype) tensor")
        return rawPointer.assumingMemoryBound(to: Float.self)
    }

    /// All elements decoded to Float.
    public func toFloats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            uso_convert(rawPointer, dtype.code, buffer.baseAddress, DType.f32.code, count)
            initialized = count
        }
    }

    /// The same values in another storage type (a copy unless the type is unchanged).
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return self }
        precondition(target != .i8, "I8 tensors come from quantization (Int8Weight), not from a cast")
        let result = Tensor(uninitialized: shape, dtype: target)
        let chunk = 1 << 14, chunks = (count + chunk - 1) / chunk
        parallelRanges(chunks, itemCost: chunk) { range in
            let start = range.lowerBound * chunk, end = min(range.upperBound * chunk, count)
            uso_convert(rawPointer + start * dtype.byteSize, dtype.code,
                        result.rawPointer + start * target.byteSize, target.code, end - start)
        }
        return result
    }

    /// The same bytes seen with another shape of equal element count (no copy). One axis may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
            resolved[unknown] = count / max(known, 1)
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: resolved, dtype: dtype, storage: storage, byteOffset: byteOffset)
    }

    /// Rows `range` of the first axis (no copy).
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "rows \(range) of \(shape)")
        let rowBytes = shape.dropFirst().reduce(1, *) * dtype.byteSize
        return Tensor(shape: [range.count] + shape.dropFirst(), dtype: dtype, storage: storage,
                      byteOffset: byteOffset + range.lowerBound * rowBytes)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(dtype))" }
}
