import Foundation
import TensorEngine

/// The files a model folder may hold its weights in, in order of preference (safetensors first, as
/// Hugging Face's loaders do).
public let modelFolderWeightFiles = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"]

/// Opens whatever holds a model's weights: a `.safetensors` file, a PyTorch `.bin` checkpoint, a
/// sharded set's `*.index.json`, or a model folder. In a folder the first present of
/// `modelFolderWeightFiles` is used.
public func openWeights(path: String) throws -> WeightSource {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw WeightError.fileNotFound(path: path) }
    guard isFolder.boolValue else { return try openWeightFile(path: path) }

    let preferred = modelFolderWeightFiles
    let folder = URL(fileURLWithPath: path)
    if let name = preferred.first(where: { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }) {
        return try openWeightFile(path: folder.appendingPathComponent(name).path)
    }
    let present = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
        .filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".bin") || $0.hasSuffix(".index.json") }.sorted()
    let found = present.isEmpty ? "no weight files" : "found \(present.joined(separator: ", ")); pass one of them"
    throw WeightError.unsupportedFormat(path: path, reason: "the folder holds none of \(preferred.joined(separator: ", ")) (\(found))")
}

/// One file: `*.index.json` is a sharded set, any other is told by its content.
private func openWeightFile(path: String) throws -> WeightSource {
    if path.hasSuffix(".index.json") { return try ShardedWeights(indexPath: path) }
    return try openWeightFile(MappedFile(path: path))
}

/// A mapped file by its structure; one that is no known format is read as safetensors, whose
/// errors then say what is wrong with it.
func openWeightFile(_ file: MappedFile) throws -> WeightSource {
    switch WeightFileFormat(of: file) {
    case .torchZip, .legacyTorchPickle: try TorchCheckpoint(file: file)
    case .safetensors, nil: try SafetensorsFile(file: file)
    }
}

/// The single-file formats, told apart by structure rather than by one byte: a safetensors file
/// starts with its header length, a u64 whose low byte can be anything, 0x80 (pickle's PROTO) too.
enum WeightFileFormat {
    /// torch.save since PyTorch 1.6: a zip archive.
    case torchZip
    /// A u64 header length that fits the file, then the JSON header's `{`.
    case safetensors
    /// torch.save before 1.6: a bare pickle, PROTO 2–5 then another opcode.
    case legacyTorchPickle

    init?(of file: MappedFile) {
        func byte(_ offset: Int) -> UInt8? { file.littleEndian(UInt8.self, at: offset) }
        if file.littleEndian(UInt32.self, at: 0) == ZipArchive.localHeaderSignature {
            self = .torchZip
        } else if let headerLength = file.littleEndian(UInt64.self, at: 0), headerLength > 0,
                  headerLength <= UInt64(file.byteCount - 8), byte(8) == UInt8(ascii: "{") {
            self = .safetensors
        } else if byte(0) == 0x80, let protocolVersion = byte(1), (2...5).contains(protocolVersion),
                  let next = byte(2), pickleOpcodes.contains(next) {
            self = .legacyTorchPickle
        } else {
            return nil
        }
    }
}

/// A sharded set: `model.safetensors.index.json` (or `pytorch_model.bin.index.json`) maps each
/// tensor to the shard file beside it that holds it. Every shard is opened (headers only) and must
/// hold exactly the tensors the index assigns to it.
public final class ShardedWeights: WeightSource, @unchecked Sendable {
    public let indexPath: String
    public let keys: [String]
    public let skippedTensors: [SkippedTensor]
    /// The shards in file-name order.
    public let shards: [WeightSource]
    private let shardOfKey: [String: WeightSource]

    private struct Index: Decodable {
        let weightMap: [String: String]
        enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
    }

    public init(indexPath: String) throws {
        self.indexPath = indexPath
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: indexPath))
        } catch {
            if !FileManager.default.fileExists(atPath: indexPath) { throw WeightError.fileNotFound(path: indexPath) }
            throw WeightError.unreadable(path: indexPath, reason: error.localizedDescription)
        }
        let index: Index
        do {
            index = try JSONDecoder().decode(Index.self, from: data)
        } catch {
            throw WeightError.malformedHeader(path: indexPath, reason: "not a shard index with a weight_map of names to files (\(summary(of: error)))")
        }
        let folder = URL(fileURLWithPath: indexPath).deletingLastPathComponent()
        var shardsByName: [String: WeightSource] = [:]
        for name in Set(index.weightMap.values).sorted() {
            // Shards are files beside the index; a path out of the folder is not a shard.
            guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
                throw WeightError.malformedHeader(path: indexPath, reason: "shard '\(name)' is not a file name beside the index")
            }
            let shardPath = folder.appendingPathComponent(name).path
            if shardPath.hasSuffix(".index.json") {
                throw WeightError.malformedHeader(path: indexPath, reason: "shard '\(name)' is itself an index")
            }
            shardsByName[name] = try openWeightFile(path: shardPath)
        }

        var shardOfKey: [String: WeightSource] = [:]
        var skipped: [SkippedTensor] = []
        for (name, shard) in shardsByName {
            let assigned = Set(index.weightMap.filter { $0.value == name }.keys)
            let held = Set(shard.keys).union(shard.skippedTensors.map(\.key))
            if let missing = assigned.subtracting(held).min() {
                throw WeightError.badTensorData(path: shard.pathForMessages, key: missing, reason: "the index assigns it to this shard, which does not hold it")
            }
            if let unlisted = held.subtracting(assigned).min() {
                throw WeightError.badTensorData(path: shard.pathForMessages, key: unlisted, reason: "the shard holds it but the index \(index.weightMap[unlisted].map { "assigns it to \($0)" } ?? "does not list it")")
            }
            for key in shard.keys { shardOfKey[key] = shard }
            skipped += shard.skippedTensors
        }
        self.shardOfKey = shardOfKey
        self.keys = shardOfKey.keys.sorted()
        self.skippedTensors = skipped.sorted { $0.key < $1.key }
        self.shards = shardsByName.sorted { $0.key < $1.key }.map(\.value)
    }

    public func info(_ key: String) -> TensorInfo? { shardOfKey[key]?.info(key) }

    public func tensor(_ key: String) throws -> Tensor {
        guard let shard = shardOfKey[key] else {
            if let other = shards.first(where: { $0.skippedTensors.contains { $0.key == key } }) { return try other.tensor(key) }
            throw WeightError.missingKey(key)
        }
        return try shard.tensor(key)
    }
}

extension WeightSource {
    /// The file behind this source, for messages.
    var pathForMessages: String {
        switch self {
        case let file as SafetensorsFile: file.path
        case let checkpoint as TorchCheckpoint: checkpoint.path
        case let sharded as ShardedWeights: sharded.indexPath
        default: String(describing: type(of: self))
        }
    }
}
