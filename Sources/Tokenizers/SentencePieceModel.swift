// A SentencePiece unigram model as its two file forms describe it: `spiece.model` (the ModelProto
// protobuf) and Hugging Face's `tokenizer.json` (converted from it: same pieces, scores and charsmap).
import Foundation

struct SentencePieceModel {
    /// ModelProto.SentencePiece.Type.
    enum PieceKind: UInt64 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    struct Piece {
        let text: String
        let score: Float
        let kind: PieceKind
    }

    /// NormalizerSpec: the rules and the three flags the encoder reads.
    struct Normalization {
        var charsmap: PrecompiledCharsmap?
        var addDummyPrefix = true
        var removeExtraWhitespaces = true
        var escapeWhitespaces = true
    }

    var pieces: [Piece]
    var normalization: Normalization

    func id(of text: String) -> Int? {
        pieces.firstIndex { $0.text == text }
    }
}

// MARK: spiece.model

extension SentencePieceModel {
    /// Parses the ModelProto fields the encoder uses: pieces (1), trainer_spec (2: model type and the
    /// options that change encoding) and normalizer_spec (3). Unknown fields are skipped.
    init(sentencePieceModel url: URL) throws {
        let data = [UInt8](try readTokenizerFile(url))
        do {
            var reader = ProtobufReader(data[...])
            var pieces: [Piece] = []
            var normalization = Normalization()
            while let field = try reader.nextField() {
                switch field.number {
                case 1:
                    try ProtobufReader.require(.lengthDelimited, for: field)
                    pieces.append(try Self.parsePiece(reader.lengthDelimited(), index: pieces.count))
                case 2:
                    try ProtobufReader.require(.lengthDelimited, for: field)
                    try Self.checkTrainerSpec(reader.lengthDelimited(), path: url.path)
                case 3:
                    try ProtobufReader.require(.lengthDelimited, for: field)
                    normalization = try Self.parseNormalizerSpec(reader.lengthDelimited())
                default:
                    try reader.skip(field.wireType)
                }
            }
            self.init(pieces: pieces, normalization: normalization)
        } catch let error as ModelFileError {
            throw TokenizerError.malformed(path: url.path, reason: error.reason)
        }
        try validate(path: url.path)
    }

    private static func parsePiece(_ bytes: ArraySlice<UInt8>, index: Int) throws -> Piece {
        var reader = ProtobufReader(bytes)
        var text: String?
        var score: Float = 0
        var kind = PieceKind.normal
        while let field = try reader.nextField() {
            switch field.number {
            case 1:
                try ProtobufReader.require(.lengthDelimited, for: field)
                guard let decoded = String(bytes: try reader.lengthDelimited(), encoding: .utf8) else {
                    throw ModelFileError(reason: "piece \(index) is not UTF-8")
                }
                text = decoded
            case 2:
                try ProtobufReader.require(.fixed32, for: field)
                score = try reader.float()
            case 3:
                try ProtobufReader.require(.varint, for: field)
                let raw = try reader.varint()
                guard let decoded = PieceKind(rawValue: raw) else { throw ModelFileError(reason: "piece \(index) has unknown type \(raw)") }
                kind = decoded
            default:
                try reader.skip(field.wireType)
            }
        }
        guard let text else { throw ModelFileError(reason: "piece \(index) has no text") }
        return Piece(text: text, score: score, kind: kind)
    }

    /// Only unigram models without byte fallback or suffix whitespace are what T5 uses and what we encode.
    private static func checkTrainerSpec(_ bytes: ArraySlice<UInt8>, path: String) throws {
        var reader = ProtobufReader(bytes)
        while let field = try reader.nextField() {
            switch (field.number, field.wireType) {
            case (3, .varint):
                let modelType = try reader.varint()
                if modelType != 1 { throw TokenizerError.unsupported(path: path, feature: "model type \(modelType) (only unigram, 1)") }
            case (24, .varint):
                if try reader.varint() != 0 { throw TokenizerError.unsupported(path: path, feature: "treat_whitespace_as_suffix") }
            case (35, .varint):
                if try reader.varint() != 0 { throw TokenizerError.unsupported(path: path, feature: "byte_fallback") }
            default:
                try reader.skip(field.wireType)
            }
        }
    }

    private static func parseNormalizerSpec(_ bytes: ArraySlice<UInt8>) throws -> Normalization {
        var reader = ProtobufReader(bytes)
        var normalization = Normalization()
        while let field = try reader.nextField() {
            switch field.number {
            case 2:
                try ProtobufReader.require(.lengthDelimited, for: field)
                let blob = try reader.lengthDelimited()
                normalization.charsmap = blob.isEmpty ? nil : try PrecompiledCharsmap(blob)
            case 3, 4, 5:
                try ProtobufReader.require(.varint, for: field)
                let flag = try reader.varint() != 0
                switch field.number {
                case 3: normalization.addDummyPrefix = flag
                case 4: normalization.removeExtraWhitespaces = flag
                default: normalization.escapeWhitespaces = flag
                }
            default:
                try reader.skip(field.wireType)
            }
        }
        return normalization
    }
}

// MARK: tokenizer.json

extension SentencePieceModel {
    /// Reads a Unigram tokenizer.json as the description of the SentencePiece model it was converted from:
    /// `model.vocab` (pieces and scores), `model.unk_id`, the Precompiled charsmap, the Metaspace
    /// pre-tokenizer (dummy prefix, `▁`) and the `" {2,}"` Replace rule (extra whitespace removal).
    /// Pieces listed as special added tokens are control symbols, as in the protobuf.
    /// Returns the model and the added tokens (content, id).
    static func fromTokenizerJSON(_ url: URL) throws -> (model: SentencePieceModel, addedTokens: [(content: String, id: Int)]) {
        let data = try readTokenizerFile(url)
        let path = url.path
        func malformed(_ reason: String) -> TokenizerError { .malformed(path: path, reason: reason) }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let model = root["model"] as? [String: Any] else {
            throw malformed("not a tokenizer.json object with a \"model\"")
        }
        guard model["type"] as? String == "Unigram" else {
            throw TokenizerError.unsupported(path: path, feature: "model type \(model["type"] ?? "none") (only Unigram)")
        }
        if model["byte_fallback"] as? Bool == true { throw TokenizerError.unsupported(path: path, feature: "byte_fallback") }
        guard let vocab = model["vocab"] as? [Any], let unknownId = model["unk_id"] as? Int else {
            throw malformed("the Unigram model needs \"vocab\" and \"unk_id\"")
        }

        var addedTokens: [(content: String, id: Int)] = []
        for entry in root["added_tokens"] as? [Any] ?? [] {
            guard let token = entry as? [String: Any], let content = token["content"] as? String, let id = token["id"] as? Int else {
                throw malformed("an added token lacks \"content\" or \"id\"")
            }
            if token["special"] as? Bool ?? false { addedTokens.append((content, id)) }
        }
        let controlIds = Set(addedTokens.map(\.id))

        var pieces: [Piece] = []
        pieces.reserveCapacity(vocab.count)
        for (id, entry) in vocab.enumerated() {
            guard let pair = entry as? [Any], pair.count == 2, let text = pair[0] as? String, let score = pair[1] as? Double else {
                throw malformed("vocab entry \(id) is not [piece, score]")
            }
            let kind: PieceKind = id == unknownId ? .unknown : controlIds.contains(id) ? .control : .normal
            pieces.append(Piece(text: text, score: Float(score), kind: kind))
        }

        var normalization = Normalization(charsmap: nil, addDummyPrefix: false, removeExtraWhitespaces: false, escapeWhitespaces: false)
        for normalizer in flattened(root["normalizer"], key: "normalizers") {
            switch normalizer["type"] as? String {
            case "Precompiled":
                guard let encoded = normalizer["precompiled_charsmap"] as? String, let blob = Data(base64Encoded: encoded) else {
                    throw malformed("the Precompiled normalizer's charsmap is not base64")
                }
                do { normalization.charsmap = try PrecompiledCharsmap([UInt8](blob)[...]) } catch let error as ModelFileError {
                    throw malformed(error.reason)
                }
            case "Replace" where ((normalizer["pattern"] as? [String: Any])?["Regex"] as? String) == " {2,}":
                normalization.removeExtraWhitespaces = true
            default:
                throw TokenizerError.unsupported(path: path, feature: "normalizer \(normalizer["type"] ?? "?")")
            }
        }
        for preTokenizer in flattened(root["pre_tokenizer"], key: "pretokenizers") {
            guard preTokenizer["type"] as? String == "Metaspace", preTokenizer["replacement"] as? String == "\u{2581}" else {
                throw TokenizerError.unsupported(path: path, feature: "pre-tokenizer \(preTokenizer["type"] ?? "?")")
            }
            normalization.escapeWhitespaces = true
            let prependScheme = preTokenizer["prepend_scheme"] as? String
            normalization.addDummyPrefix = preTokenizer["add_prefix_space"] as? Bool ?? (prependScheme != nil && prependScheme != "never")
        }

        let result = SentencePieceModel(pieces: pieces, normalization: normalization)
        try result.validate(path: path)
        return (result, addedTokens)
    }

    /// A component that is null, a single object, or a Sequence of objects under `key`.
    private static func flattened(_ component: Any?, key: String) -> [[String: Any]] {
        guard let object = component as? [String: Any] else { return [] }
        if object["type"] as? String == "Sequence" {
            return (object[key] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        }
        return [object]
    }
}

// MARK: Validation (what SentencePiece refuses at load)

extension SentencePieceModel {
    func validate(path: String) throws {
        func malformed(_ reason: String) -> TokenizerError { .malformed(path: path, reason: reason) }
        guard !pieces.isEmpty else { throw malformed("no pieces") }
        var seen = Set<[UInt8]>()
        for (id, piece) in pieces.enumerated() {
            guard !piece.text.isEmpty else { throw malformed("piece \(id) is empty") }
            guard seen.insert(Array(piece.text.utf8)).inserted else { throw malformed("piece '\(piece.text)' is defined twice") }
            if piece.kind == .userDefined {
                throw TokenizerError.unsupported(path: path, feature: "user-defined piece '\(piece.text)'")
            }
        }
        guard pieces.filter({ $0.kind == .unknown }).count == 1 else { throw malformed("there must be exactly one unknown piece") }
        guard pieces.contains(where: { $0.kind == .normal }) else { throw malformed("no normal pieces") }
    }
}
