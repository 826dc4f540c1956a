import Foundation
import TensorEngine
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file; tensors borrow views of it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw WeightError.fileNotFound(path: path) }
            throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        byteCount = Int(info.st_size)
        guard byteCount > 0 else { throw WeightError.malformedHeader(path: path, reason: "the file is empty") }
        guard let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw WeightError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        pointer = mapped
    }

    deinit { munmap(pointer, byteCount) }
}

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the data. The file is mapped, not read.
public final class SafetensorsFile: WeightSource, @unchecked Sendable {
    public let path: String
    public let metadata: [String: String]
    private let file: MappedFile
    private let entries: [String: (info: TensorInfo, range: Range<Int>)]
    private let dataStart: Int

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        guard file.byteCount >= 8 else { throw WeightError.malformedHeader(path: path, reason: "shorter than the 8-byte header length") }
        let headerLength = Int(file.pointer.loadUnaligned(as: UInt64.self).littleEndian)
        guard headerLength <= file.byteCount - 8 else {
            throw WeightError.malformedHeader(path: path, reason: "header length \(headerLength) runs past the end of the file (\(file.byteCount) bytes)")
        }
        dataStart = 8 + headerLength
        let headerData = Data(bytes: file.pointer + 8, count: headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw WeightError.malformedHeader(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: (info: TensorInfo, range: Range<Int>)] = [:]
        let dataLength = file.byteCount - dataStart
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let fields = value as? [String: Any], let dtypeName = fields["dtype"] as? String,
                  let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int], offsets.count == 2
            else { throw WeightError.malformedHeader(path: path, reason: "entry '\(key)' lacks dtype, shape or data_offsets") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw WeightError.unknownDType(path: path, key: key, dtype: dtypeName)
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw WeightError.badTensorData(path: path, key: key, reason: "negative dimension in \(shape)") }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataLength else {
                throw WeightError.badTensorData(path: path, key: key, reason: "byte range \(offsets) lies outside the data (\(dataLength) bytes)")
            }
            let expected = shape.reduce(1, *) * dtype.byteSize
            guard offsets[1] - offsets[0] == expected else {
                throw WeightError.badTensorData(path: path, key: key, reason: "\(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtype) (expected \(expected))")
            }
            entries[key] = (TensorInfo(dtype: dtype, shape: shape), offsets[0]..<offsets[1])
        }
        let sorted = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.value.range.upperBound > next.value.range.lowerBound && !next.value.range.isEmpty {
            throw WeightError.badTensorData(path: path, key: next.key, reason: "its bytes overlap those of '\(previous.key)'")
        }
        self.metadata = metadata
        self.entries = entries
        self.keys = entries.keys.sorted()
    }

    public let keys: [String]

    public func info(_ key: String) -> TensorInfo? { entries[key]?.info }

    public func tensor(_ key: String) throws -> Tensor {
        guard let entry = entries[key] else { throw WeightError.missingKey(key) }
        let storage = TensorStorage(borrowing: file.pointer + dataStart + entry.range.lowerBound,
                                    byteCount: entry.range.count, owner: file)
        return Tensor(shape: entry.info.shape, dtype: entry.info.dtype, storage: storage)
    }
}

/// Writes tensors as one `.safetensors` file (to a temporary name, then renamed into place).
public func writeSafetensors(_ tensors: [String: Tensor], to path: String, metadata: [String: String] = [:]) throws {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    let names = tensors.keys.sorted()
    for name in names {
        let t = tensors[name]!
        header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]]
        offset += t.byteCount
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var data = Data()
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
    data.append(json)
    for name in names { let t = tensors[name]!; data.append(Data(bytes: t.rawPointer, count: t.byteCount)) }
    let temporary = path + ".tmp-\(getpid())"
    do {
        try data.write(to: URL(fileURLWithPath: temporary))
        if rename(temporary, path) != 0 { throw WeightError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    } catch {
        unlink(temporary)
        throw error
    }
}
