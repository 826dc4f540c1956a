import TensorEngine
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file; tensors borrow views of it. Mapping is instant even
/// for a 44 GB checkpoint: pages are read from disk only when a tensor's bytes are touched.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    /// What `munmap` releases: the file's pages, or for an in-memory file its pages and guard page.
    private let mapping: (start: UnsafeMutableRawPointer, byteCount: Int)

    public init(path: String) throws {
        self.path = path
        // Checked before opening: opening a FIFO would block.
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw WeightError.fileNotFound(path: path) }
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            let kind = info.st_mode & S_IFMT == S_IFDIR ? "a folder" : "not a regular file"
            throw WeightError.unreadable(path: path, reason: "it is \(kind), expected a weight file")
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        byteCount = Int(info.st_size)
        guard byteCount > 0 else { throw WeightError.malformedHeader(path: path, reason: "the file is empty") }
        guard let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw WeightError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        pointer = mapped
        mapping = (mapped, byteCount)
    }

    /// A copy of `bytes` that reads like a file at `path`: how the fuzzer presents crafted files. The
    /// bytes end where an inaccessible page begins, so a read past the end faults at once instead of
    /// finding whatever lies beyond.
    init(bytes: [UInt8], path: String) throws {
        self.path = path
        byteCount = bytes.count
        guard byteCount > 0 else { throw WeightError.malformedHeader(path: path, reason: "the file is empty") }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let dataPages = (byteCount + page - 1) / page * page
        guard let region = mmap(nil, dataPages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), region != MAP_FAILED else {
            throw WeightError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        mapping = (region, dataPages + page)
        pointer = region + dataPages - byteCount
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: byteCount) }
        mprotect(region, dataPages, PROT_READ)
        mprotect(region + dataPages, page, PROT_NONE)
    }

    deinit { munmap(mapping.start, mapping.byteCount) }

    /// Whether `count` bytes at `offset` lie inside the file (overflow-safe).
    func contains(offset: Int, count: Int) -> Bool {
        guard offset >= 0, count >= 0 else { return false }
        let (end, overflow) = offset.addingReportingOverflow(count)
        return !overflow && end <= byteCount
    }

    /// A little-endian integer at `offset`, or nil past the end of the file.
    func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T? {
        guard contains(offset: offset, count: MemoryLayout<T>.size) else { return nil }
        return T(littleEndian: (pointer + offset).loadUnaligned(as: T.self))
    }

    /// The bytes `range` as an array (for small structures such as headers and pickles).
    func bytes(_ range: Range<Int>) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: pointer + range.lowerBound, count: range.count))
    }

    /// The tensor `stored`, whose elements the caller has checked lie inside the file: a view of the
    /// mapped bytes, or a copy where they are strided or not aligned to the element size (kernels
    /// take contiguous tensors and load elements directly).
    func tensor(_ stored: StoredTensor) -> Tensor {
        let (shape, dtype) = (stored.info.shape, stored.info.dtype)
        let byteCount = shape.reduce(1, *) * dtype.byteSize
        let start = pointer + stored.offset
        if let strides = stored.strides {
            return Tensor(shape: shape, dtype: dtype, storage: contiguousCopy(from: start, shape: shape, strides: strides, elementSize: dtype.byteSize))
        }
        guard Int(bitPattern: start) % dtype.byteSize == 0 else {
            let copy = TensorStorage(byteCount: byteCount)
            copy.pointer.copyMemory(from: start, byteCount: byteCount)
            return Tensor(shape: shape, dtype: dtype, storage: copy)
        }
        return Tensor(shape: shape, dtype: dtype, storage: TensorStorage(borrowing: start, byteCount: byteCount, owner: self))
    }
}

/// The `shape` elements found `strides` elements apart from `start`, copied in row-major order.
private func contiguousCopy(from start: UnsafeRawPointer, shape: [Int], strides: [Int], elementSize: Int) -> TensorStorage {
    let count = shape.reduce(1, *)
    let copy = TensorStorage(byteCount: count * elementSize)
    var index = [Int](repeating: 0, count: shape.count)
    var source = 0  // in elements from `start`
    for element in 0..<count {
        (copy.pointer + element * elementSize).copyMemory(from: start + source * elementSize, byteCount: elementSize)
        // Step like an odometer, the last axis fastest; `source` never passes the last element.
        var axis = shape.count - 1
        while axis >= 0, index[axis] == shape[axis] - 1 {
            source -= index[axis] * strides[axis]
            index[axis] = 0
            axis -= 1
        }
        if axis >= 0 {
            index[axis] += 1
            source += strides[axis]
        }
    }
    return copy
}

/// Where a tensor lies in a mapped file: its first element at byte `offset`, then the rest in
/// row-major order, or `strides` elements apart for a view that is not contiguous.
struct StoredTensor {
    let info: TensorInfo
    let offset: Int
    var strides: [Int]? = nil
}

/// Number of elements and bytes of `shape` with `elementSize`-byte elements, or nil if a dimension is
/// negative or the non-zero dimensions' bytes overflow (a hostile header can claim any shape). Zeros
/// do not excuse the others: an empty (0, 2^40, 2^40) tensor is refused too, so that no product of
/// an accepted shape's dimensions, in any order (row sizes, strides), overflows later.
func checkedByteCount(shape: [Int], elementSize: Int) -> (elements: Int, bytes: Int)? {
    var bytes = elementSize
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = bytes.multipliedReportingOverflow(by: max(dimension, 1))
        guard !overflow else { return nil }
        bytes = product
    }
    let elements = shape.contains(0) ? 0 : bytes / elementSize
    return (elements, elements * elementSize)
}

/// The validated tensors of one mapped file, as both single-file formats hand them out.
struct MappedTensorTable {
    let file: MappedFile
    /// Loadable tensors by key.
    let entries: [String: StoredTensor]
    let keys: [String]
    let skipped: [SkippedTensor]

    init(file: MappedFile, entries: [String: StoredTensor], skipped: [SkippedTensor]) {
        self.file = file
        self.entries = entries
        self.keys = entries.keys.sorted()
        self.skipped = skipped.sorted { $0.key < $1.key }
    }

    func tensor(_ key: String) throws -> Tensor {
        guard let entry = entries[key] else {
            if let skipped = skipped.first(where: { $0.key == key }) {
                throw WeightError.unknownDType(path: file.path, key: key, dtype: skipped.storedType)
            }
            throw WeightError.missingKey(key)
        }
        return file.tensor(entry)
    }
}
