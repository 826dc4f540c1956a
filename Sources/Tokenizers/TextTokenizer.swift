// The tokenizers' public surface: what the text encoders receive and what `uso tokenize` shows.
import Foundation

/// One prompt, tokenized exactly as the reference's Hugging Face tokenizer call does
/// (`padding="max_length"`, `truncation=True`, special tokens added).
public struct TokenizedText: Equatable, Sendable {
    /// Token ids, padded to the tokenizer's `maxLength`: exactly what goes into the encoder.
    public let ids: [Int]
    /// The tokens of the real (unpadded) part, spelled as Hugging Face's `tokenize()` spells them,
    /// special tokens included (CLIP: byte-level symbols like `photo</w>`; T5: pieces like `▁photo`,
    /// an unknown piece spelled by its text).
    public let pieces: [String]
    /// Whether truncation dropped part of the prompt.
    public let truncated: Bool

    /// Number of real tokens (special tokens included, padding excluded).
    public var length: Int { pieces.count }
}

public protocol TextTokenizer {
    /// Length every `TokenizedText.ids` is padded or truncated to.
    var maxLength: Int { get }
    func encode(_ text: String) -> TokenizedText
}

/// A tokenizer file that is missing, unreadable, malformed or describes something we do not support.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupported(path: String, feature: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "tokenizer file not found: \(path)"
        case .unreadable(let path, let reason): "cannot read tokenizer file \(path): \(reason)"
        case .malformed(let path, let reason): "\(path) is not a valid tokenizer file: \(reason)"
        case .unsupported(let path, let feature): "\(path) uses a tokenizer feature uso does not support: \(feature)"
        }
    }
}

/// Reads a whole tokenizer file, mapping the failure to a typed error.
func readTokenizerFile(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.fileNotFound(path: url.path) }
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadable(path: url.path, reason: error.localizedDescription)
    }
}
