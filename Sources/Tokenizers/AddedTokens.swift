// Hugging Face "added tokens": special tokens matched verbatim in the raw text before any clean-up
// (transformers' PreTrainedTokenizer.tokenize, its Trie split and the AddedToken lstrip/rstrip flags).

/// A token that the raw text may spell literally, e.g. `<|endoftext|>` or `<extra_id_0>`.
struct AddedToken {
    let content: String
    let id: Int
    /// Whitespace before the token is dropped (AddedToken.lstrip).
    let stripsWhitespaceBefore: Bool
    /// Whitespace after the token is dropped (AddedToken.rstrip).
    let stripsWhitespaceAfter: Bool
}

enum TextSegment {
    case text([Unicode.Scalar])
    case token(AddedToken)
}

/// Splits text at every occurrence of an added token (leftmost, longest first) and applies the tokens'
/// whitespace stripping to their neighbours, as transformers does before tokenizing the rest.
struct AddedTokenSplitter {
    private let tokensByFirstScalar: [Unicode.Scalar: [(scalars: [Unicode.Scalar], token: AddedToken)]]

    init(_ tokens: [AddedToken]) {
        var table: [Unicode.Scalar: [(scalars: [Unicode.Scalar], token: AddedToken)]] = [:]
        for token in tokens {
            let scalars = Array(token.content.unicodeScalars)
            guard let first = scalars.first else { continue }
            table[first, default: []].append((scalars, token))
        }
        tokensByFirstScalar = table.mapValues { $0.sorted { $0.scalars.count > $1.scalars.count } }
    }

    func split(_ text: String) -> [TextSegment] {
        let scalars = Array(text.unicodeScalars)
        var segments: [TextSegment] = []
        var textStart = 0
        var position = 0
        while position < scalars.count {
            let candidates = tokensByFirstScalar[scalars[position]] ?? []
            guard let match = candidates.first(where: { scalars[position...].starts(with: $0.scalars) }) else {
                position += 1
                continue
            }
            segments.append(.text(Array(scalars[textStart..<position])))
            segments.append(.token(match.token))
            position += match.scalars.count
            textStart = position
        }
        segments.append(.text(Array(scalars[textStart...])))
        return applyingWhitespaceStripping(segments)
    }

    private func applyingWhitespaceStripping(_ segments: [TextSegment]) -> [TextSegment] {
        var segments = segments
        for index in segments.indices {
            guard case .token(let token) = segments[index] else { continue }
            if token.stripsWhitespaceAfter, index + 1 < segments.count, case .text(let after) = segments[index + 1] {
                segments[index + 1] = .text(Array(after.drop(while: isPythonWhitespace)))
            }
            if token.stripsWhitespaceBefore, index > 0, case .text(let before) = segments[index - 1] {
                segments[index - 1] = .text(Array(before.reversed().drop(while: isPythonWhitespace).reversed()))
            }
        }
        return segments
    }
}
