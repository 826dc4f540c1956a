// The base checkpoint as the DiT holds it: the one place where LoRA merging and the fp8 and int8
// casts happen, so the modules just read their keys.
import Foundation
import Layers
#if canImport(Glibc)
import Glibc
#endif

/// A view of a FLUX checkpoint that merges LoRA deltas into their target weights and casts
/// tensors: every tensor to float8_e4m3fn for flux-dev-fp8; for int8, the blocks' matrices to int8
/// codes with a `weight_scale` key beside each (the layout a converted checkpoint stores). Tensors
/// it leaves alone are the source's own memory-mapped views, never copies.
final class PreparedFluxWeights: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let merges: [String: (adapter: LoRAAdapter, rows: Range<Int>?)]
    /// The storage type of merged weights when no cast applies; nil keeps each weight's own type.
    let mergedType: DType?
    let cast: DType?
    /// Scales of the weights quantized last, until their `weight_scale` key is read.
    private var pendingScales: [String: Tensor] = [:]
    private let lock = NSLock()

    init(base: WeightSource, merges: [String: (adapter: LoRAAdapter, rows: Range<Int>?)], mergedType: DType?, cast: DType?) {
        self.base = base
        self.merges = merges
        self.mergedType = mergedType
        self.cast = cast
    }

    var keys: [String] { base.keys + base.keys.filter(isQuantized).map(Self.scaleKey) }

    func info(_ key: String) -> TensorInfo? {
        if let weightKey = quantizedWeightKey(forScale: key), let info = base.info(weightKey) {
            return TensorInfo(dtype: .f32, shape: [info.shape[0]])
        }
        guard let info = base.info(key) else { return nil }
        return TensorInfo(dtype: storageType(key, stored: info.dtype), shape: info.shape)
    }

    func tensor(_ key: String) throws -> Tensor {
        if let weightKey = quantizedWeightKey(forScale: key) {
            if let scales = lock.withLock({ pendingScales.removeValue(forKey: key) }) { return scales }
            return try quantized(weightKey).scales
        }
        if isQuantized(key) { return try quantized(key).codes }
        let stored = try base.tensor(key)
        let target = storageType(key, stored: stored.dtype)
        guard merges[key] != nil else {
            if target == stored.dtype { return stored }
            defer { releasePages(of: stored) }
            return stored.converted(to: target)
        }
        defer { releasePages(of: stored) }
        return try merged(key, stored).converted(to: target)
    }

    /// The weight `key` (merged if it has a LoRA target) as int8; its scales wait for their key.
    private func quantized(_ key: String) throws -> Int8Weight {
        let stored = try base.tensor(key)
        defer { releasePages(of: stored) }
        let weight = Int8Weight(quantizing: merges[key] == nil ? stored : try merged(key, stored))
        lock.withLock { pendingScales[Self.scaleKey(key)] = weight.scales }
        return weight
    }

    private func merged(_ key: String, _ stored: Tensor) throws -> Tensor {
        guard let merge = merges[key] else { return stored }
        let delta = merge.adapter.weightDelta()  // [rows, in] F32
        let rows = merge.rows ?? 0..<stored.shape[0]
        guard stored.rank == 2, rows.upperBound <= stored.shape[0], delta.shape == [rows.count, stored.shape[1]] else {
            throw WeightError.shapeMismatch(key: key, expected: delta.shape, found: stored.shape)
        }
        let parts = [stored.rows(0..<rows.lowerBound), stored.rows(rows) + delta, stored.rows(rows.upperBound..<stored.shape[0])]
        return concat(parts.filter { $0.shape[0] > 0 })
    }

    /// int8 covers the matrices of the double and single blocks (all but ~0.5% of the parameters);
    /// the embedders and the final layer keep their stored type.
    private func isQuantized(_ key: String) -> Bool {
        guard cast == .i8, key.hasSuffix(".weight"), key.hasPrefix("double_blocks.") || key.hasPrefix("single_blocks.") else {
            return false
        }
        guard let info = base.info(key) else { return false }
        return info.shape.count == 2 && info.dtype != .i8   // an I8 weight is already converted
    }

    private static func scaleKey(_ weightKey: String) -> String { weightKey + "_scale" }

    private func quantizedWeightKey(forScale key: String) -> String? {
        guard key.hasSuffix(".weight_scale") else { return nil }
        let weightKey = String(key.dropLast("_scale".count))
        return isQuantized(weightKey) ? weightKey : nil
    }

    private func storageType(_ key: String, stored: DType) -> DType {
        if cast == .i8 { return isQuantized(key) ? .i8 : merges[key] != nil ? mergedType ?? stored : stored }
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
