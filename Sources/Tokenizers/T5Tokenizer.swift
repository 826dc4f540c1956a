// T5's tokenizer as the reference calls it: transformers' slow T5Tokenizer for google/t5-v1_1-xxl
// (sentencepiece, legacy behaviour, 100 <extra_id_N> sentinels), padding="max_length", truncation=True,
// 512 tokens, `</s>` appended.
import Foundation

public final class T5Tokenizer: TextTokenizer, @unchecked Sendable {
    public static let defaultMaxLength = 512
    /// transformers' T5Tokenizer default `extra_ids`.
    static let sentinelCount = 100

    public let maxLength: Int
    public let endOfSequenceId: Int
    public let paddingId: Int
    private let encoder: SentencePieceEncoder
    private let splitter: AddedTokenSplitter

    /// Loads SentencePiece's `spiece.model` (the file the reference downloads).
    public convenience init(sentencePieceModel url: URL, maxLength: Int = defaultMaxLength) throws {
        let model = try SentencePieceModel(sentencePieceModel: url)
        // transformers numbers the sentinels after the pieces, <extra_id_0> last.
        let sentinels = (0..<Self.sentinelCount).map { ("<extra_id_\($0)>", model.pieces.count + Self.sentinelCount - 1 - $0) }
        try self.init(model: model, sentinels: sentinels, source: url.path, maxLength: maxLength)
    }

    /// Loads Hugging Face's `tokenizer.json` (Unigram) and encodes as the slow tokenizer does.
    public convenience init(tokenizerJSON url: URL, maxLength: Int = defaultMaxLength) throws {
        let (model, addedTokens) = try SentencePieceModel.fromTokenizerJSON(url)
        let sentinels = addedTokens.filter { $0.content.hasPrefix("<extra_id_") }
        try self.init(model: model, sentinels: sentinels, source: url.path, maxLength: maxLength)
    }

    /// A model folder: `spiece.model`, or else `tokenizer.json`.
    public convenience init(directory: URL, maxLength: Int = defaultMaxLength) throws {
        let sentencePiece = directory.appendingPathComponent("spiece.model")
        if FileManager.default.fileExists(atPath: sentencePiece.path) {
            try self.init(sentencePieceModel: sentencePiece, maxLength: maxLength)
        } else {
            try self.init(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"), maxLength: maxLength)
        }
    }

    private init(model: SentencePieceModel, sentinels: [(content: String, id: Int)], source: String, maxLength: Int) throws {
        precondition(maxLength >= 1, "a T5 sequence needs room for its end token")
        func id(of piece: String) throws -> Int {
            guard let id = model.id(of: piece) else {
                throw TokenizerError.malformed(path: source, reason: "the model has no '\(piece)' piece")
            }
            return id
        }
        self.maxLength = maxLength
        endOfSequenceId = try id(of: "</s>")
        paddingId = try id(of: "<pad>")
        let unknownId = try id(of: "<unk>")
        encoder = SentencePieceEncoder(model: model)
        // The special tokens keep their surrounding whitespace; the sentinels swallow it (lstrip/rstrip).
        splitter = AddedTokenSplitter(
            [("<pad>", paddingId), ("</s>", endOfSequenceId), ("<unk>", unknownId)].map {
                AddedToken(content: $0.0, id: $0.1, stripsWhitespaceBefore: false, stripsWhitespaceAfter: false)
            } + sentinels.map {
                AddedToken(content: $0.content, id: $0.id, stripsWhitespaceBefore: true, stripsWhitespaceAfter: true)
            })
    }

    public func encode(_ text: String) -> TokenizedText {
        var tokens: [(id: Int, piece: String)] = []
        for segment in splitter.split(text) {
            switch segment {
            case .token(let token):
                tokens.append((token.id, token.content))
            case .text(let scalars) where !scalars.isEmpty:
                tokens += encoder.encode(Array(String(String.UnicodeScalarView(scalars)).utf8))
            case .text:
                break
            }
        }
        // transformers truncates to leave room for `</s>`, then adds it unless the text already ends with it.
        let endsWithEOS = { (tokens: ArraySlice<(id: Int, piece: String)>) in tokens.last?.id == self.endOfSequenceId }
        let untruncatedLength = tokens.count + (endsWithEOS(tokens[...]) ? 0 : 1)
        var kept = tokens.count + 1 > maxLength ? tokens.prefix(maxLength - 1) : tokens[...]
        if !endsWithEOS(kept) { kept.append((endOfSequenceId, "</s>")) }
        let ids = kept.map(\.id)
        return TokenizedText(ids: ids + Array(repeating: paddingId, count: maxLength - ids.count),
                             pieces: kept.map(\.piece), truncated: untruncatedLength > maxLength)
    }
}
