/// Token sequences a text encoder cannot take. Weight problems are `WeightError`s and config.json
/// problems `ModelConfigError`s.
public enum TextEncoderError: Error, Equatable, CustomStringConvertible {
    case emptySequence(model: String)
    case sequenceTooLong(model: String, length: Int, maximum: Int)
    case tokenOutOfRange(model: String, id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .emptySequence(let model): "\(model): no tokens to encode"
        case .sequenceTooLong(let model, let length, let maximum): "\(model): \(length) tokens, at most \(maximum) fit (tokenize with truncation)"
        case .tokenOutOfRange(let model, let id, let vocabularySize): "\(model): token id \(id) outside the vocabulary of \(vocabularySize)"
        }
    }
}

/// Token ids checked against the model's limits before they index a table.
func checkTokens(_ ids: [Int], model: String, vocabularySize: Int, maximumLength: Int?) throws {
    guard !ids.isEmpty else { throw TextEncoderError.emptySequence(model: model) }
    if let maximumLength, ids.count > maximumLength {
        throw TextEncoderError.sequenceTooLong(model: model, length: ids.count, maximum: maximumLength)
    }
    if let bad = ids.first(where: { $0 < 0 || $0 >= vocabularySize }) {
        throw TextEncoderError.tokenOutOfRange(model: model, id: bad, vocabularySize: vocabularySize)
    }
}
