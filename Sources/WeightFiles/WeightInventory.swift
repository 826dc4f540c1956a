/// What a weight source holds, tensor by tensor, with totals: the content of `uso inspect`.
public struct WeightInventory: Sendable, Encodable, Equatable {
    public struct Entry: Sendable, Encodable, Equatable {
        public let name: String
        /// The engine's dtype name, or the file's own name for a skipped type (`I64`, `int64`).
        public let dtype: String
        public let shape: [Int]
        public let parameters: Int
        public let bytes: Int
        /// False for tensors of a type uso does not compute with (see `SkippedTensor`).
        public let loadable: Bool
    }

    public let format: String
    public let tensors: [Entry]
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.parameters } }
    public var byteCount: Int { tensors.reduce(0) { $0 + $1.bytes } }

    public init(_ source: WeightSource) {
        format = switch source {
        case is SafetensorsFile: "safetensors"
        case is TorchCheckpoint: "PyTorch checkpoint"
        case let sharded as ShardedWeights: "sharded set of \(sharded.shards.count) files"
        default: String(describing: type(of: source))
        }
        // Sizes were validated when the source was opened, so these products cannot overflow.
        let loadable = source.keys.compactMap { key in
            source.info(key).map { info in
                let count = info.shape.reduce(1, *)
                return Entry(name: key, dtype: info.dtype.rawValue, shape: info.shape, parameters: count,
                             bytes: count * info.dtype.byteSize, loadable: true)
            }
        }
        let skipped = source.skippedTensors.map {
            Entry(name: $0.key, dtype: $0.storedType, shape: $0.shape, parameters: $0.shape.reduce(1, *),
                  bytes: $0.byteCount, loadable: false)
        }
        tensors = (loadable + skipped).sorted { $0.name < $1.name }
    }

    enum CodingKeys: String, CodingKey { case format, tensors, parameterCount, byteCount }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(format, forKey: .format)
        try container.encode(tensors, forKey: .tensors)
        try container.encode(parameterCount, forKey: .parameterCount)
        try container.encode(byteCount, forKey: .byteCount)
    }
}
