import Foundation
import TensorEngine
#if canImport(Glibc)
import Glibc
#endif

/// Writes a `.safetensors` file one tensor at a time, so a file larger than memory (a converted
/// 12 GB DiT) never exists whole in memory: the header comes from the tensors' infos, then `tensor`
/// produces each in turn. The file is written under a temporary name and renamed into place only
/// when complete, so a crash, a full disk or a thrown error never leaves a file under `path`.
public func writeSafetensors(streaming entries: [(key: String, info: TensorInfo)], to path: String,
                             metadata: [String: String] = [:], tensor: (String) throws -> Tensor) throws {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    for (key, info) in entries {
        let bytes = info.shape.reduce(1, *) * info.dtype.byteSize
        header[key] = ["dtype": info.dtype.rawValue, "shape": info.shape, "data_offsets": [offset, offset + bytes]]
        offset += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }

    let temporary = path + ".tmp-\(getpid())"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw WeightError.unwritable(path: path, reason: String(cString: strerror(errno))) }
    var closed = false
    defer {
        if !closed { close(descriptor) }
        unlink(temporary)   // a no-op once renamed
    }
    func write(_ pointer: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            let written = Glibc.write(descriptor, pointer + done, min(count - done, 1 << 30))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw WeightError.unwritable(path: path, reason: String(cString: strerror(errno))) }
            done += written
        }
    }
    var length = UInt64(json.count).littleEndian
    try withUnsafeBytes(of: &length) { try write($0.baseAddress!, 8) }
    try json.withUnsafeBytes { try write($0.baseAddress!, json.count) }
    for (key, info) in entries {
        let value = try tensor(key)
        guard value.dtype == info.dtype, value.shape == info.shape else {
            throw WeightError.shapeMismatch(key: key, expected: info.shape, found: value.shape)
        }
        try write(value.constPointer, value.byteCount)
    }
    guard fsync(descriptor) == 0, close(descriptor) == 0 else {
        closed = true
        throw WeightError.unwritable(path: path, reason: String(cString: strerror(errno)))
    }
    closed = true
    guard rename(temporary, path) == 0 else { throw WeightError.unwritable(path: path, reason: String(cString: strerror(errno))) }
}
