// Converted DiT weights kept on disk, so that only the first run of a precision pays for the cast.
import Foundation
import Layers

/// A folder of DiT checkpoints already cast for a precision (fp8, int8), each a safetensors file in
/// the layout `FluxDiT` reads, named by a content key of its source: the source's path, size and
/// modification time, a hash of its first mebibyte (the whole safetensors header of a FLUX file),
/// the precision and the conversion's version. A later run maps the file instead of casting 24 GB.
///
/// A source that changed gets a new key, so its old entry is never used (and is removed when the
/// new one is written); an entry that does not open as a whole, valid file with its key is deleted
/// and rebuilt. Files are written under a temporary name and renamed when complete.
public struct ConvertedWeightCache: Sendable {
    public let directory: URL
    /// Bumped whenever the conversion's output changes, so old entries stop matching.
    static let version = "1"

    public init(directory: URL) { self.directory = directory }

    /// The DiT's base weights at `path` for `precision`: a cached conversion when the precision
    /// casts, written now if missing. When the cache cannot be written (a read-only or full folder)
    /// the source is returned as is (`FluxDiT` then converts in memory) and `warn` says why.
    public func weights(at path: String, precision: FluxPrecision, warn: (String) -> Void) throws -> WeightSource {
        let source = try openWeights(path: path)
        guard let cast = precision.weightCast else { return source }
        let key = try contentKey(of: path, precision: precision)
        let entry = entryURL(for: path, precision: precision, key: key)
        if let cached = validEntry(entry, key: key) { return cached }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try write(PreparedFluxWeights(base: source, merges: [:], mergedType: nil, cast: cast), to: entry,
                      metadata: ["uso_cache_key": key, "source": path, "precision": precision.rawValue])
            removeStaleEntries(besides: entry, for: path, precision: precision)
            return try SafetensorsFile(path: entry.path)
        } catch {
            warn("could not keep the \(precision.rawValue) weights in \(directory.path) (\(error)); converting in memory instead")
            return source
        }
    }

    /// The file an entry lives in: `<source name>.<precision>.<key hash>.safetensors`.
    func entryURL(for path: String, precision: FluxPrecision, key: String) -> URL {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return directory.appendingPathComponent("\(name).\(precision.rawValue).\(fnv1a(Array(key.utf8)).hex).safetensors")
    }

    private func contentKey(of path: String, precision: FluxPrecision) throws -> String {
        let url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        guard let handle = FileHandle(forReadingAtPath: url.path) else { throw WeightError.unreadable(path: path, reason: "cannot open") }
        defer { try? handle.close() }
        let head = try handle.read(upToCount: 1 << 20) ?? Data()
        return "v\(Self.version)|\(precision.rawValue)|\(url.path)|\(size)|\(modified)|\(fnv1a(Array(head)).hex)"
    }

    /// The entry if it opens as a valid safetensors file made for `key`; otherwise it is removed.
    private func validEntry(_ entry: URL, key: String) -> WeightSource? {
        guard FileManager.default.fileExists(atPath: entry.path) else { return nil }
        if let file = try? SafetensorsFile(path: entry.path), file.metadata["uso_cache_key"] == key { return file }
        try? FileManager.default.removeItem(at: entry)
        return nil
    }

    private func write(_ weights: WeightSource, to entry: URL, metadata: [String: String]) throws {
        let entries = try weights.keys.sorted().map { key -> (key: String, info: TensorInfo) in
            guard let info = weights.info(key) else { throw WeightError.missingKey(key) }
            return (key, info)
        }
        try writeSafetensors(streaming: entries, to: entry.path, metadata: metadata) { try weights.tensor($0) }
    }

    private func removeStaleEntries(besides entry: URL, for path: String, precision: FluxPrecision) {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let prefix = "\(name).\(precision.rawValue)."
        let siblings = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for sibling in siblings where sibling.hasPrefix(prefix) && sibling.hasSuffix(".safetensors") && sibling != entry.lastPathComponent {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(sibling))
        }
    }
}

/// FNV-1a, 64 bits: a change detector for keys and file heads, not a cryptographic hash.
private func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
}

private extension UInt64 {
    var hex: String { String(self, radix: 16) }
}
