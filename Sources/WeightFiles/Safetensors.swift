import Foundation
import TensorEngine
#if canImport(Glibc)
import Glibc
#endif

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the data. The file is mapped, not read, and the header
/// is validated completely before any tensor is handed out.
public final class SafetensorsFile: WeightSource, @unchecked Sendable {
    public let path: String
    public let metadata: [String: String]
    private let table: MappedTensorTable

    /// The reference implementation refuses headers above 100 MB; so do we, rather than copying
    /// gigabytes of a file that is not safetensors at all.
    static let maximumHeaderLength = 100_000_000

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        guard let declaredLength = file.littleEndian(UInt64.self, at: 0) else {
            throw WeightError.malformedHeader(path: path, reason: "shorter than the 8-byte header length")
        }
        guard declaredLength <= UInt64(file.byteCount - 8) else {
            throw WeightError.malformedHeader(path: path, reason: "header length \(declaredLength) runs past the end of the file (\(file.byteCount) bytes)")
        }
        let headerLength = Int(declaredLength)
        guard headerLength <= Self.maximumHeaderLength else {
            throw WeightError.malformedHeader(path: path, reason: "header length \(headerLength) exceeds the 100 MB limit")
        }
        let header = try SafetensorsHeader.decode(file.bytes(8..<8 + headerLength), path: path)
        let dataStart = 8 + headerLength
        let dataLength = file.byteCount - dataStart

        var entries: [String: StoredTensor] = [:]
        var skipped: [SkippedTensor] = []
        var ranges: [(key: String, range: Range<Int>)] = []
        for (key, entry) in header.tensors {
            guard let elementSize = safetensorsElementSize[entry.dtype] else {
                throw WeightError.unknownDType(path: path, key: key, dtype: entry.dtype)
            }
            guard let size = checkedByteCount(shape: entry.shape, elementSize: elementSize) else {
                throw WeightError.badTensorData(path: path, key: key, reason: "shape \(entry.shape) has a negative dimension or is too large")
            }
            let (begin, end) = (entry.dataOffsets[0], entry.dataOffsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw WeightError.badTensorData(path: path, key: key, reason: "byte range [\(begin), \(end)] lies outside the data (\(dataLength) bytes)")
            }
            guard end - begin == size.bytes else {
                throw WeightError.badTensorData(path: path, key: key, reason: "\(end - begin) bytes for shape \(entry.shape) of \(entry.dtype) (expected \(size.bytes))")
            }
            ranges.append((key, begin..<end))
            if let dtype = DType(rawValue: entry.dtype) {
                entries[key] = StoredTensor(info: TensorInfo(dtype: dtype, shape: entry.shape), offset: dataStart + begin)
            } else {
                skipped.append(SkippedTensor(key: key, storedType: entry.dtype, shape: entry.shape, byteCount: size.bytes))
            }
        }
        let nonEmpty = ranges.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (previous, next) in zip(nonEmpty, nonEmpty.dropFirst()) where previous.range.upperBound > next.range.lowerBound {
            throw WeightError.badTensorData(path: path, key: next.key, reason: "its bytes \(next.range) overlap those of '\(previous.key)' \(previous.range)")
        }
        self.metadata = header.metadata
        table = MappedTensorTable(file: file, entries: entries, skipped: skipped)
    }

    public var keys: [String] { table.keys }
    public var skippedTensors: [SkippedTensor] { table.skipped }
    public func info(_ key: String) -> TensorInfo? { table.entries[key]?.info }
    public func tensor(_ key: String) throws -> Tensor { try table.tensor(key) }
}

/// Bytes per element of every dtype the safetensors format defines with whole-byte elements. Those
/// that are not `DType`s are listed as skipped tensors; any other name is an error.
private let safetensorsElementSize: [String: Int] = [
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
]

/// The JSON header: `{"__metadata__": {string: string}, name: {dtype, shape, data_offsets}, ...}`.
/// Decoded with `JSONDecoder`, whose integers are exact: 1.5, true or 1e30 as a dimension is an error.
private struct SafetensorsHeader: Decodable {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]

        enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
    }

    struct Name: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    var metadata: [String: String] = [:]
    var tensors: [(key: String, entry: Entry)] = []

    /// Set by `decode` so per-tensor errors can name the file.
    static let pathKey = CodingUserInfoKey(rawValue: "path")!

    static func decode(_ bytes: [UInt8], path: String) throws -> SafetensorsHeader {
        let decoder = JSONDecoder()
        decoder.userInfo[pathKey] = path
        do {
            return try decoder.decode(SafetensorsHeader.self, from: Data(bytes))
        } catch let error as WeightError {
            throw error
        } catch {
            throw WeightError.malformedHeader(path: path, reason: "the header is not a JSON object (\(summary(of: error)))")
        }
    }

    init(from decoder: Decoder) throws {
        let path = decoder.userInfo[Self.pathKey] as? String ?? ""
        let container = try decoder.container(keyedBy: Name.self)
        for name in container.allKeys {
            do {
                if name.stringValue == "__metadata__" {
                    metadata = try container.decode([String: String].self, forKey: name)
                    continue
                }
                let entry = try container.decode(Entry.self, forKey: name)
                guard entry.dataOffsets.count == 2 else {
                    throw WeightError.badTensorData(path: path, key: name.stringValue, reason: "data_offsets must hold two numbers, found \(entry.dataOffsets.count)")
                }
                tensors.append((name.stringValue, entry))
            } catch let error as WeightError {
                throw error
            } catch {
                // Foundation reports 2.5 or 1e30 where an Int belongs as a parse error, not a DecodingError.
                let problem = error is DecodingError ? summary(of: error) : "a number is not a 64-bit integer: \(error)"
                if name.stringValue == "__metadata__" {
                    throw WeightError.malformedHeader(path: path, reason: "__metadata__ must map strings to strings (\(problem))")
                }
                throw WeightError.badTensorData(path: path, key: name.stringValue, reason: "malformed header entry (\(problem))")
            }
        }
    }
}

/// A one-line account of a JSON decoding failure: where, and what was wrong.
func summary(of error: Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func location(_ path: [CodingKey]) -> String {
        path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case .typeMismatch(let type, let context): return "expected \(type)\(location(context.codingPath))"
    case .valueNotFound(let type, let context): return "missing \(type)\(location(context.codingPath))"
    case .keyNotFound(let key, let context): return "missing field '\(key.stringValue)'\(location(context.codingPath))"
    case .dataCorrupted(let context):
        let underlying = context.underlyingError.map { " \($0.localizedDescription)" } ?? ""
        return context.debugDescription + underlying + location(context.codingPath)
    @unknown default: return "\(error)"
    }
}

/// Writes tensors as one `.safetensors` file (to a temporary name, then renamed into place).
public func writeSafetensors(_ tensors: [String: Tensor], to path: String, metadata: [String: String] = [:]) throws {
    let entries = tensors.keys.sorted().map { ($0, TensorInfo(dtype: tensors[$0]!.dtype, shape: tensors[$0]!.shape)) }
    try writeSafetensors(streaming: entries, to: path, metadata: metadata) { tensors[$0]! }
}
