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
    }

    deinit { munmap(pointer, byteCount) }

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

    /// A tensor over the bytes at `offset`, which the caller has checked lie inside the file.
    /// Bytes not aligned to the element size are copied, so kernels can load elements directly.
    func tensor(at offset: Int, info: TensorInfo) -> Tensor {
        let byteCount = info.shape.reduce(1, *) * info.dtype.byteSize
        let start = pointer + offset
        guard Int(bitPattern: start) % info.dtype.byteSize == 0 else {
            let copy = TensorStorage(byteCount: byteCount)
            copy.pointer.copyMemory(from: start, byteCount: byteCount)
            return Tensor(shape: info.shape, dtype: info.dtype, storage: copy)
        }
        return Tensor(shape: info.shape, dtype: info.dtype,
                      storage: TensorStorage(borrowing: start, byteCount: byteCount, owner: self))
    }
}

/// Number of elements and bytes of `shape` with `elementSize`-byte elements, or nil if a dimension is
/// negative or the size overflows (a hostile header can claim any shape).
func checkedByteCount(shape: [Int], elementSize: Int) -> (elements: Int, bytes: Int)? {
    var elements = 1
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
        guard !overflow else { return nil }
        elements = product
    }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: elementSize)
    return overflow ? nil : (elements, bytes)
}

/// The validated tensors of one mapped file, as both single-file formats hand them out.
struct MappedTensorTable {
    let file: MappedFile
    /// Loadable tensors and the byte offset of their data in the file.
    let entries: [String: (info: TensorInfo, offset: Int)]
    let keys: [String]
    let skipped: [SkippedTensor]

    init(file: MappedFile, entries: [String: (info: TensorInfo, offset: Int)], skipped: [SkippedTensor]) {
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
        return file.tensor(at: entry.offset, info: entry.info)
    }
}
