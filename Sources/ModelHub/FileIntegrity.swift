// Is a weight file on disk whole? Cheap checks by format (a truncated copy is the usual damage), the
// size the hub gave when we downloaded it, and, on request, the SHA-256 the hub names it by.
import Foundation

public enum FileCondition: Equatable, Sendable {
    case present
    case missing
    case corrupt(reason: String)
}

/// What the hub said about a file we downloaded, kept beside the model folder in
/// `<model-dir>/.cache/uso/<local path>.json` (huggingface_hub keeps the same for `local_dir` downloads).
public struct DownloadRecord: Codable, Equatable, Sendable {
    public var repository: String
    public var revision: String
    public var commit: String?
    /// Lowercase hex SHA-256 for LFS files; nil for small git files, which the hub names by git's SHA-1.
    public var sha256: String?
    public var size: UInt64

    static func recordURL(forLocalPath localPath: String, in modelDirectory: URL) -> URL {
        modelDirectory.appendingPathComponent(".cache/uso").appendingPathComponent(localPath + ".json")
    }

    static func load(forLocalPath localPath: String, in modelDirectory: URL) -> DownloadRecord? {
        let url = recordURL(forLocalPath: localPath, in: modelDirectory)
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(DownloadRecord.self, from: data)
    }

    func save(forLocalPath localPath: String, in modelDirectory: URL) throws {
        let url = Self.recordURL(forLocalPath: localPath, in: modelDirectory)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

enum FileIntegrity {
    /// What is known in advance about a file: its size and hash, when a record or the cache's blob name says.
    struct Expectation {
        var size: UInt64?
        var sha256: String?
    }

    static func check(_ url: URL, expecting expectation: Expectation = Expectation(), verifyHash: Bool) -> FileCondition {
        guard let size = regularFileSize(url) else { return .missing }
        guard size > 0 else { return .corrupt(reason: "the file is empty") }
        if let expectedSize = expectation.size, expectedSize != size {
            return .corrupt(reason: "\(size) bytes on disk, the hub's file has \(expectedSize)")
        }
        do {
            if let problem = try formatProblem(url, size: size) { return .corrupt(reason: problem) }
            if verifyHash, let expected = expectation.sha256 {
                let actual = try SHA256.hexDigest(ofFileAt: url)
                if actual != expected { return .corrupt(reason: "SHA-256 is \(actual), expected \(expected)") }
            }
        } catch {
            return .corrupt(reason: "unreadable: \(error.localizedDescription)")
        }
        return .present
    }

    /// The size of a regular file (following symlinks, as the HF cache's snapshots are), nil if there is none.
    static func regularFileSize(_ url: URL) -> UInt64? {
        var info = stat()
        guard stat(url.path, &info) == 0, (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) else { return nil }
        return UInt64(info.st_size)
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// A reason the file cannot be a whole file of its format, judged from its header and tail.
    static func formatProblem(_ url: URL, size: UInt64) throws -> String? {
        switch url.pathExtension.lowercased() {
        case "safetensors": return try safetensorsProblem(url, size: size)
        case "bin", "pt", "pth": return try pytorchArchiveProblem(url, size: size)
        case "json":
            guard size < 64 << 20 else { return nil }
            let data = try Data(contentsOf: url)
            return (try? JSONSerialization.jsonObject(with: data)) == nil ? "not valid JSON" : nil
        default: return nil
        }
    }

    /// safetensors: an 8-byte little-endian header length, a JSON header whose largest data offset must
    /// end exactly at the end of the file.
    private static func safetensorsProblem(_ url: URL, size: UInt64) throws -> String? {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let lengthBytes = try handle.read(upToCount: 8) ?? Data()
        guard lengthBytes.count == 8 else { return "shorter than a safetensors header" }
        let headerLength = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard headerLength <= min(size - 8, 100 << 20) else { return "safetensors header length \(headerLength) does not fit the file" }
        let header = try handle.read(upToCount: Int(headerLength)) ?? Data()
        guard let entries = (try? JSONSerialization.jsonObject(with: header)) as? [String: Any] else {
            return "safetensors header is not a JSON object"
        }
        let dataEnd = entries.values.compactMap { ($0 as? [String: Any])?["data_offsets"] as? [NSNumber] }
            .compactMap { $0.last?.uint64Value }.max() ?? 0
        let available = size - 8 - headerLength
        if dataEnd != available {
            return "truncated or padded: the header describes \(dataEnd) bytes of tensor data, the file holds \(available)"
        }
        return nil
    }

    /// PyTorch checkpoints are zip archives (torch >= 1.6, ends with an end-of-central-directory record)
    /// or, from older torch, a bare pickle stream (starts with the PROTO opcode 0x80), which has no cheap check.
    private static func pytorchArchiveProblem(_ url: URL, size: UInt64) throws -> String? {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let magic = try handle.read(upToCount: 4) ?? Data()
        if magic.first == 0x80 { return nil }
        guard magic == Data([0x50, 0x4B, 0x03, 0x04]) else { return "neither a zip archive nor a pickle stream" }
        // The record is 22 bytes plus a comment of at most 65535 bytes.
        let tailLength = min(size, 22 + 65535)
        try handle.seek(toOffset: size - tailLength)
        let tail = [UInt8](try handle.read(upToCount: Int(tailLength)) ?? Data())
        let signature: [UInt8] = [0x50, 0x4B, 0x05, 0x06]
        guard tail.count >= 22 else { return "truncated zip archive" }
        for start in stride(from: tail.count - 22, through: 0, by: -1) where Array(tail[start..<start + 4]) == signature {
            return nil
        }
        return "truncated zip archive (no end-of-central-directory record)"
    }
}
