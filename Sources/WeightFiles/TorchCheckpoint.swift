import TensorEngine

/// A PyTorch checkpoint written by `torch.save` (PyTorch ≥ 1.6), such as `pytorch_model.bin`: a zip
/// archive holding `<name>/data.pkl` (the pickled state dict) and one stored record per storage,
/// `<name>/data/<key>`. Opening reads only the zip directory and the pickle, so a 44 GB file opens at
/// once; tensors are views of the mapped records, except views with other strides (a transposed
/// weight saved as it is), which are copied into contiguous tensors as they are read.
public final class TorchCheckpoint: WeightSource, @unchecked Sendable {
    public let path: String
    private let table: MappedTensorTable

    /// A state dict's pickle is a few hundred bytes per tensor; anything far larger is not one.
    static let maximumPickleSize = 256 << 20

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        switch WeightFileFormat(of: file) {
        case .torchZip: break
        case .legacyTorchPickle:
            throw WeightError.unsupportedFormat(path: path, reason: "this is the legacy torch.save format (before PyTorch 1.6); re-save it with a current torch.save or convert it to safetensors")
        case .safetensors, nil:
            throw WeightError.malformedHeader(path: path, reason: "not a PyTorch checkpoint (no zip archive)")
        }
        let archive = try ZipArchive(file: file)
        let records = Dictionary(archive.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        let pickles = archive.entries.filter { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        guard pickles.count == 1, let pickle = pickles.first else {
            throw WeightError.malformedHeader(path: path, reason: "expected one data.pkl in the archive, found \(pickles.count)")
        }
        let folder = String(pickle.name.dropLast("data.pkl".count))
        if let byteOrder = records[folder + "byteorder"] {
            let order = String(decoding: file.bytes(try archive.dataRange(of: byteOrder)), as: UTF8.self)
            guard order == "little" else {
                throw WeightError.unsupportedFormat(path: path, reason: "tensors are stored in '\(order)' byte order; only little-endian checkpoints are read")
            }
        }
        let pickleRange = try archive.dataRange(of: pickle)
        guard pickleRange.count <= Self.maximumPickleSize else {
            throw WeightError.malformedHeader(path: path, reason: "data.pkl is \(pickleRange.count) bytes, too large for a state dict")
        }
        let tensors = try RestrictedUnpickler.stateDictTensors(pickle: file.bytes(pickleRange), path: path)
        var entries: [String: StoredTensor] = [:]
        var skipped: [SkippedTensor] = []
        var seen = Set<String>()
        for (key, reference) in tensors {
            guard seen.insert(key).inserted else {
                throw WeightError.badTensorData(path: path, key: key, reason: "the key occurs twice once nested dictionaries are flattened")
            }
            let placed = try Self.locate(reference, key: key, in: archive, records: records, folder: folder)
            if let dtype = reference.element.dtype {
                entries[key] = StoredTensor(info: TensorInfo(dtype: dtype, shape: reference.shape), offset: placed.offset, strides: placed.strides)
            } else {
                skipped.append(SkippedTensor(key: key, storedType: reference.element.rawValue,
                                             shape: reference.shape, byteCount: placed.byteCount))
            }
        }
        table = MappedTensorTable(file: file, entries: entries, skipped: skipped)
    }

    public var keys: [String] { table.keys }
    public var skippedTensors: [SkippedTensor] { table.skipped }
    public func info(_ key: String) -> TensorInfo? { table.entries[key]?.info }
    public func tensor(_ key: String) throws -> Tensor { try table.tensor(key) }

    /// Where the tensor's first element lies in the file, and its strides if it is not contiguous,
    /// after checking that every element it reaches lies in a stored, complete storage record.
    private static func locate(_ tensor: TensorReference, key: String, in archive: ZipArchive, records: [String: ZipArchive.Entry],
                               folder: String) throws -> (offset: Int, byteCount: Int, strides: [Int]?) {
        let path = archive.file.path
        func bad(_ reason: String) -> WeightError { .badTensorData(path: path, key: key, reason: reason) }

        let recordName = "data/" + tensor.storage.key
        guard let record = records[folder + recordName] else { throw bad("its storage '\(recordName)' is missing from the archive") }
        let recordRange = try archive.dataRange(of: record)
        let storageElementSize = tensor.storage.element?.byteSize ?? 1
        guard let storage = checkedByteCount(shape: [tensor.storage.count], elementSize: storageElementSize),
              storage.bytes == recordRange.count else {
            throw bad("its storage '\(recordName)' holds \(recordRange.count) bytes, but the pickle declares \(tensor.storage.count) elements of \(storageElementSize) bytes (truncated or corrupt)")
        }
        let elementSize = tensor.element.byteSize
        guard let size = checkedByteCount(shape: tensor.shape, elementSize: elementSize) else {
            throw bad("shape \(tensor.shape) has a negative dimension or is too large")
        }
        guard tensor.strides.count == tensor.shape.count, tensor.strides.allSatisfy({ $0 >= 0 }) else {
            throw bad("strides \(tensor.strides) do not fit shape \(tensor.shape)")
        }
        guard let end = viewEnd(offset: tensor.offset, shape: tensor.shape, strides: tensor.strides),
              let endByte = checkedByteCount(shape: [end], elementSize: elementSize), endByte.bytes <= recordRange.count else {
            throw bad("offset \(tensor.offset), shape \(tensor.shape) and strides \(tensor.strides) reach outside its storage '\(recordName)' (\(recordRange.count / elementSize) elements)")
        }
        // A zero stride repeats elements; the copy of such a view may not outgrow the whole file.
        guard size.bytes <= archive.file.byteCount else {
            throw bad("its strides \(tensor.strides) repeat elements into \(size.bytes) bytes, more than the file holds")
        }
        let strides = isRowMajor(shape: tensor.shape, strides: tensor.strides) ? nil : tensor.strides
        return (recordRange.lowerBound + tensor.offset * elementSize, size.bytes, strides)
    }
}

/// One past the last storage element a view reaches, `offset + 1 + Σ (size - 1) · stride` (just
/// `offset` if it has no elements), or nil if negative or past `Int`: a pickle can claim any numbers.
private func viewEnd(offset: Int, shape: [Int], strides: [Int]) -> Int? {
    guard offset >= 0 else { return nil }
    if shape.contains(0) { return offset }
    var last = offset
    for (size, stride) in zip(shape, strides) {
        let (step, stepOverflow) = (size - 1).multipliedReportingOverflow(by: stride)
        let (sum, sumOverflow) = last.addingReportingOverflow(step)
        guard !stepOverflow, !sumOverflow else { return nil }
        last = sum
    }
    let (end, overflow) = last.addingReportingOverflow(1)
    return overflow ? nil : end
}

/// Whether a view's elements are consecutive in row-major order. Axes of length 1 are never stepped
/// over, so their strides do not matter. `shape` has passed `checkedByteCount`, so no product overflows.
private func isRowMajor(shape: [Int], strides: [Int]) -> Bool {
    if shape.contains(0) { return true }
    var expected = 1
    for (size, stride) in zip(shape, strides).reversed() {
        if size != 1 && stride != expected { return false }
        expected *= size
    }
    return true
}
