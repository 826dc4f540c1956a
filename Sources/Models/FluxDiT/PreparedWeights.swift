// The base checkpoint as the DiT holds it: the one place where LoRA merging and the fp8 cast
// happen, so the modules just read their keys.
import Layers
#if canImport(Glibc)
import Glibc
#endif

/// A view of a FLUX checkpoint that merges LoRA deltas into their target weights and casts every
/// tensor to `cast` (float8_e4m3fn for flux-dev-fp8). Tensors it leaves alone are the source's
/// own memory-mapped views, never copies.
final class PreparedFluxWeights: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let merges: [String: (adapter: LoRAAdapter, rows: Range<Int>?)]
    /// The storage type of merged weights when no cast applies; nil keeps each weight's own type.
    let mergedType: DType?
    let cast: DType?

    init(base: WeightSource, merges: [String: (adapter: LoRAAdapter, rows: Range<Int>?)], mergedType: DType?, cast: DType?) {
        self.base = base
        self.merges = merges
        self.mergedType = mergedType
        self.cast = cast
    }

    var keys: [String] { base.keys }

    func info(_ key: String) -> TensorInfo? {
        guard let info = base.info(key) else { return nil }
        return TensorInfo(dtype: storageType(key, stored: info.dtype), shape: info.shape)
    }

    func tensor(_ key: String) throws -> Tensor {
        let stored = try base.tensor(key)
        let target = storageType(key, stored: stored.dtype)
        guard let merge = merges[key] else {
            if target == stored.dtype { return stored }
            defer { releasePages(of: stored) }
            return stored.converted(to: target)
        }
        let delta = merge.adapter.weightDelta()  // [rows, in] F32
        let rows = merge.rows ?? 0..<stored.shape[0]
        guard stored.rank == 2, rows.upperBound <= stored.shape[0], delta.shape == [rows.count, stored.shape[1]] else {
            throw WeightError.shapeMismatch(key: key, expected: delta.shape, found: stored.shape)
        }
        defer { releasePages(of: stored) }
        let parts = [stored.rows(0..<rows.lowerBound), stored.rows(rows) + delta, stored.rows(rows.upperBound..<stored.shape[0])]
        return concat(parts.filter { $0.shape[0] > 0 }).converted(to: target)
    }

    private func storageType(_ key: String, stored: DType) -> DType {
        if let cast { return cast }
        if merges[key] != nil, let mergedType { return mergedType }
        return stored
    }

    /// Drops the resident pages behind a tensor of a memory-mapped safetensors file once a
    /// converted copy replaces it, so the process does not hold both (clean pages of a read-only
    /// mapping: they come back from the file if read again). Other sources are left alone.
    private func releasePages(of tensor: Tensor) {
        guard base is SafetensorsFile else { return }
        releaseMappedPages(of: tensor)
    }
}

private func releaseMappedPages(of tensor: Tensor) {
    #if canImport(Glibc)
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard pageSize > 0 else { return }
    let start = Int(bitPattern: tensor.rawPointer), end = start + tensor.byteCount
    let firstPage = (start + pageSize - 1) / pageSize * pageSize, lastPage = end / pageSize * pageSize
    guard lastPage > firstPage, let pointer = UnsafeMutableRawPointer(bitPattern: firstPage) else { return }
    madvise(pointer, lastPage - firstPage, MADV_DONTNEED)
    #endif
}
