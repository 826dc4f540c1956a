/// Everything that can be wrong with weight files. Each case names the file and/or tensor.
public enum WeightError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case malformedHeader(path: String, reason: String)
    /// A well-formed file in a variant uso does not read (compressed zip entries, the pre-1.6
    /// torch.save format, big-endian data, a folder without a known weight file).
    case unsupportedFormat(path: String, reason: String)
    case unknownDType(path: String, key: String, dtype: String)
    case badTensorData(path: String, key: String, reason: String)
    case unsafePickle(path: String, reason: String)
    case missingKey(String)
    case unexpectedKeys([String])
    case shapeMismatch(key: String, expected: [Int], found: [Int])
    case unexpectedRank(key: String, expected: Int, found: [Int])
    case wrongModel(expected: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "weight file not found: \(path)"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .unwritable(let path, let reason): "cannot write \(path): \(reason)"
        case .malformedHeader(let path, let reason): "\(path) is not a valid weight file: \(reason)"
        case .unsupportedFormat(let path, let reason): "\(path): unsupported weight file: \(reason)"
        case .unknownDType(let path, let key, let dtype): "\(path): tensor '\(key)' has unsupported dtype \(dtype)"
        case .badTensorData(let path, let key, let reason): "\(path): tensor '\(key)': \(reason)"
        case .unsafePickle(let path, let reason): "\(path): refusing to load the checkpoint: \(reason)"
        case .missingKey(let key): "missing weight '\(key)'"
        case .unexpectedKeys(let keys):
            "unexpected weights (\(keys.count)): \(keys.prefix(5).joined(separator: ", "))\(keys.count > 5 ? ", …" : "")"
        case .shapeMismatch(let key, let expected, let found): "weight '\(key)' has shape \(found), expected \(expected)"
        case .unexpectedRank(let key, let expected, let found): "weight '\(key)' has shape \(found), expected \(expected) axes"
        case .wrongModel(let expected, let reason): "these weights are not \(expected): \(reason)"
        }
    }
}
