// CLIP's tokenizer as the reference calls it: transformers' slow CLIPTokenizer for
// openai/clip-vit-large-patch14 (vocab.json + merges.txt), padding="max_length", truncation=True, 77 tokens,
// text cleaned with ftfy as in the reference's environment (CLIPTextCleanup.Mode).
import Foundation

public final class CLIPTokenizer: TextTokenizer, @unchecked Sendable {
    public static let defaultMaxLength = 77
    /// transformers reads at most this many merges: CLIP's 49,152-symbol budget minus 256 bytes and 2 specials.
    static let mergeLimit = 49_152 - 256 - 2
    static let startOfText = "<|startoftext|>"
    static let endOfText = "<|endoftext|>"

    public let maxLength: Int
    public let startOfTextId: Int
    /// Also the padding id: the reference's tokenizer pads with `<|endoftext|>`.
    public let endOfTextId: Int
    public let cleanup: CLIPTextCleanup.Mode
    private let bpe: ByteLevelBPE
    private let tokenStrings: [Int: String]
    private let splitter: AddedTokenSplitter

    /// Loads the Hugging Face layout: `vocab.json` (symbol -> id) and `merges.txt`.
    public convenience init(vocabularyFile: URL, mergesFile: URL, maxLength: Int = defaultMaxLength,
                            cleanup: CLIPTextCleanup.Mode = .ftfy) throws {
        let merges = try Self.readMerges(mergesFile)
        let vocabulary = try Self.readVocabulary(vocabularyFile)
        try self.init(vocabulary: vocabulary, merges: merges, source: vocabularyFile.path, maxLength: maxLength,
                      cleanup: cleanup)
    }

    /// Loads the merges alone; the vocabulary is derived as CLIP builds it: the 256 byte symbols, the same
    /// with `</w>`, every merge joined, then `<|startoftext|>` and `<|endoftext|>`.
    public convenience init(mergesFile: URL, maxLength: Int = defaultMaxLength, cleanup: CLIPTextCleanup.Mode = .ftfy) throws {
        let merges = try Self.readMerges(mergesFile)
        var symbols = byteLevelAlphabet.map { String($0.symbol) }
        symbols += symbols.map { $0 + "</w>" }
        symbols += merges.map { $0.first + $0.second }
        symbols += [Self.startOfText, Self.endOfText]
        var vocabulary: [String: Int] = [:]
        for (id, symbol) in symbols.enumerated() { vocabulary[symbol] = id }  // a repeated symbol keeps its last id
        try self.init(vocabulary: vocabulary, merges: merges, source: mergesFile.path, maxLength: maxLength,
                      cleanup: cleanup)
    }

    /// A model folder: `vocab.json` + `merges.txt`, or `merges.txt` alone.
    public convenience init(directory: URL, maxLength: Int = defaultMaxLength, cleanup: CLIPTextCleanup.Mode = .ftfy) throws {
        let vocabulary = directory.appendingPathComponent("vocab.json")
        let merges = directory.appendingPathComponent("merges.txt")
        if FileManager.default.fileExists(atPath: vocabulary.path) {
            try self.init(vocabularyFile: vocabulary, mergesFile: merges, maxLength: maxLength, cleanup: cleanup)
        } else {
            try self.init(mergesFile: merges, maxLength: maxLength, cleanup: cleanup)
        }
    }

    private init(vocabulary: [String: Int], merges: [(first: String, second: String)], source: String, maxLength: Int,
                 cleanup: CLIPTextCleanup.Mode) throws {
        precondition(maxLength >= 2, "a CLIP sequence needs room for its start and end tokens")
        func id(of symbol: String) throws -> Int {
            guard let id = vocabulary[symbol] else {
                throw TokenizerError.malformed(path: source, reason: "the vocabulary has no symbol '\(symbol)'")
            }
            return id
        }
        var mergeTable: [UInt64: ByteLevelBPE.Merge] = [:]
        for (rank, merge) in merges.enumerated() {
            // A merge of symbols outside the vocabulary can never apply (every symbol is a byte or a merge result).
            guard let first = vocabulary[merge.first], let second = vocabulary[merge.second] else { continue }
            let result = try id(of: merge.first + merge.second)
            mergeTable[ByteLevelBPE.pairKey(first, second)] = ByteLevelBPE.Merge(rank: rank, result: result)
        }
        var byteSymbol = [Int](repeating: 0, count: 256)
        var finalByteSymbol = [Int](repeating: 0, count: 256)
        for (byte, symbol) in byteLevelAlphabet {
            byteSymbol[Int(byte)] = try id(of: String(symbol))
            finalByteSymbol[Int(byte)] = try id(of: String(symbol) + "</w>")
        }
        self.maxLength = maxLength
        self.cleanup = cleanup
        startOfTextId = try id(of: Self.startOfText)
        endOfTextId = try id(of: Self.endOfText)
        bpe = ByteLevelBPE(byteSymbol: byteSymbol, finalByteSymbol: finalByteSymbol, merges: mergeTable,
                           wholeWords: [Array(Self.startOfText.utf8): startOfTextId, Array(Self.endOfText.utf8): endOfTextId])
        tokenStrings = Dictionary(vocabulary.map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        splitter = AddedTokenSplitter([
            AddedToken(content: Self.startOfText, id: startOfTextId, stripsWhitespaceBefore: false, stripsWhitespaceAfter: false),
            AddedToken(content: Self.endOfText, id: endOfTextId, stripsWhitespaceBefore: false, stripsWhitespaceAfter: false),
        ])
    }

    public func encode(_ text: String) -> TokenizedText {
        var ids: [Int] = []
        for segment in splitter.split(text) {
            switch segment {
            case .token(let token):
                ids.append(token.id)
            case .text(let scalars):
                for word in CLIPTextCleanup.preTokenize(CLIPTextCleanup.clean(scalars, mode: cleanup)) {
                    ids += bpe.encode(word: Array(String(String.UnicodeScalarView(word)).utf8))
                }
            }
        }
        let room = maxLength - 2
        let kept = [startOfTextId] + ids.prefix(room) + [endOfTextId]
        return TokenizedText(ids: kept + Array(repeating: endOfTextId, count: maxLength - kept.count),
                             pieces: kept.map { tokenStrings[$0] ?? "" }, truncated: ids.count > room)
    }

    // MARK: Files

    /// merges.txt as transformers reads it: the text stripped, split into lines, the first line (the
    /// `#version` header) skipped, at most `mergeLimit` lines, each two symbols separated by whitespace.
    static func readMerges(_ url: URL) throws -> [(first: String, second: String)] {
        guard let text = String(data: try readTokenizerFile(url), encoding: .utf8) else {
            throw TokenizerError.malformed(path: url.path, reason: "not UTF-8 text")
        }
        let scalars = Array(text.unicodeScalars)
        let start = scalars.firstIndex { !isPythonWhitespace($0) } ?? scalars.endIndex
        let end = (scalars.lastIndex { !isPythonWhitespace($0) } ?? start - 1) + 1
        let lines = scalars[start..<max(start, end)].split(separator: "\n", omittingEmptySubsequences: false).dropFirst().prefix(mergeLimit)
        var merges: [(first: String, second: String)] = []
        merges.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            let symbols = line.split(whereSeparator: isPythonWhitespace)
            guard symbols.count == 2 else {
                throw TokenizerError.malformed(path: url.path, reason: "line \(index + 2) is not a merge of two symbols")
            }
            merges.append((String(String.UnicodeScalarView(symbols[0])), String(String.UnicodeScalarView(symbols[1]))))
        }
        guard !merges.isEmpty else { throw TokenizerError.malformed(path: url.path, reason: "no merges") }
        return merges
    }

    static func readVocabulary(_ url: URL) throws -> [String: Int] {
        let data = try readTokenizerFile(url)
        guard let object = try? JSONSerialization.jsonObject(with: data), let entries = object as? [String: Any] else {
            throw TokenizerError.malformed(path: url.path, reason: "not a JSON object of symbol -> id")
        }
        var vocabulary: [String: Int] = [:]
        for (symbol, value) in entries {
            guard let id = value as? Int else {
                throw TokenizerError.malformed(path: url.path, reason: "the id of '\(symbol)' is not an integer")
            }
            vocabulary[symbol] = id
        }
        return vocabulary
    }
}

extension CLIPTokenizer {
    /// A byte-level piece as readable text: its symbols mapped back to bytes and decoded as UTF-8
    /// (`ðŁĺĢ</w>` → `😀·`), with the end-of-word marker shown as `·`.
    public static func readable(piece: String) -> String {
        let symbolToByte = Dictionary(uniqueKeysWithValues: byteLevelAlphabet.map { ($0.symbol, $0.byte) })
        var word = piece, suffix = ""
        if word.hasSuffix("</w>") { word.removeLast(4); suffix = "·" }
        let bytes = word.compactMap { symbolToByte[$0] }
        guard bytes.count == word.count else { return piece }
        return String(decoding: bytes, as: UTF8.self) + suffix
    }
}
