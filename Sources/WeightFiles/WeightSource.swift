import TensorEngine

/// Name, type and shape of one stored tensor, known before its bytes are touched.
public struct TensorInfo: Sendable, Equatable {
    public let dtype: DType
    public let shape: [Int]
    public init(dtype: DType, shape: [Int]) { self.dtype = dtype; self.shape = shape }
}

/// A tensor stored in an element type uso does not compute with (int64 position ids, f64, bool).
/// Sources list it so tools can show it, but it is not among `keys`: models never need one.
public struct SkippedTensor: Sendable, Equatable {
    public let key: String
    /// The file's own name for the element type: `I64` in safetensors, `int64` in PyTorch files.
    public let storedType: String
    public let shape: [Int]
    public let byteCount: Int

    public init(key: String, storedType: String, shape: [Int], byteCount: Int) {
        self.key = key
        self.storedType = storedType
        self.shape = shape
        self.byteCount = byteCount
    }
}

/// A set of named tensors on disk (one safetensors file, a sharded set, a PyTorch checkpoint).
/// Tensors come back as views of the mapped file where the stored bytes can be used as they are.
public protocol WeightSource: AnyObject, Sendable {
    /// Every tensor name, sorted.
    var keys: [String] { get }
    func info(_ key: String) -> TensorInfo?
    func tensor(_ key: String) throws -> Tensor
    /// Tensors present in the file but not loadable as a `Tensor`, sorted by key.
    var skippedTensors: [SkippedTensor] { get }
}

extension WeightSource {
    public var skippedTensors: [SkippedTensor] { [] }
}

/// Reads a model's weights by key under a prefix and remembers which keys were taken, so that a
/// loader can report keys it never used instead of silently ignoring them.
public final class WeightReader: @unchecked Sendable {
    public let source: WeightSource
    public let prefix: String
    private let ledger: Ledger

    final class Ledger: @unchecked Sendable { var used = Set<String>() }

    public convenience init(_ source: WeightSource, prefix: String = "") {
        self.init(source, prefix: prefix, ledger: Ledger())
    }

    private init(_ source: WeightSource, prefix: String, ledger: Ledger) {
        self.source = source
        self.prefix = prefix
        self.ledger = ledger
    }

    /// The reader for a child module: `scoped("double_blocks.0")` reads `double_blocks.0.*`.
    public func scoped(_ name: String) -> WeightReader {
        WeightReader(source, prefix: fullKey(name), ledger: ledger)
    }

    public func fullKey(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func contains(_ name: String) -> Bool { source.info(fullKey(name)) != nil }

    public func info(_ name: String) -> TensorInfo? { source.info(fullKey(name)) }

    /// The tensor `name`; throws `WeightError.missingKey` if absent, `.shapeMismatch` if `shape` is
    /// given and differs.
    public func tensor(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        let key = fullKey(name)
        guard let info = source.info(key) else { throw WeightError.missingKey(key) }
        if let shape, shape != info.shape { throw WeightError.shapeMismatch(key: key, expected: shape, found: info.shape) }
        ledger.used.insert(key)
        return try source.tensor(key)
    }

    /// The shape of `name`, which must exist with `rank` axes: how configs are read off the weights.
    public func shape(_ name: String, rank: Int) throws -> [Int] {
        let key = fullKey(name)
        guard let info = source.info(key) else { throw WeightError.missingKey(key) }
        guard info.shape.count == rank else { throw WeightError.unexpectedRank(key: key, expected: rank, found: info.shape) }
        return info.shape
    }

    /// The tensor `name` if present (for keys that are optional by design).
    public func optionalTensor(_ name: String, shape: [Int]? = nil) throws -> Tensor? {
        contains(name) ? try tensor(name, shape: shape) : nil
    }

    /// Keys under this reader's prefix that no one has read.
    public func unusedKeys() -> [String] {
        let scope = prefix.isEmpty ? "" : prefix + "."
        return source.keys.filter { $0.hasPrefix(scope) && !ledger.used.contains($0) }
    }

    /// Throws `WeightError.unexpectedKeys` if any key under this prefix was not read.
    public func checkAllUsed() throws {
        let unused = unusedKeys()
        if !unused.isEmpty { throw WeightError.unexpectedKeys(unused) }
    }
}

/// Tensors held in memory under chosen keys: weights built in code, or a checkpoint with keys
/// removed, added or replaced (how tests make malformed checkpoints).
public final class InMemoryWeights: WeightSource, @unchecked Sendable {
    public let tensors: [String: Tensor]

    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }

    /// Every tensor of `source` except those `drop` rejects, plus `add` (which wins on a clash).
    public convenience init(copying source: WeightSource, dropping drop: (String) -> Bool = { _ in false },
                            adding add: [String: Tensor] = [:]) throws {
        var tensors: [String: Tensor] = [:]
        for key in source.keys where !drop(key) { tensors[key] = try source.tensor(key) }
        tensors.merge(add) { _, new in new }
        self.init(tensors)
    }

    public var keys: [String] { tensors.keys.sorted() }
    public func info(_ key: String) -> TensorInfo? { tensors[key].map { TensorInfo(dtype: $0.dtype, shape: $0.shape) } }
    public func tensor(_ key: String) throws -> Tensor {
        guard let tensor = tensors[key] else { throw WeightError.missingKey(key) }
        return tensor
    }
}
