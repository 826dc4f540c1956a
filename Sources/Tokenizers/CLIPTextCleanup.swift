// CLIP's text clean-up and pre-tokenizer as transformers' slow CLIPTokenizer runs them (4.43.3 and
// 4.46.3 alike). With ftfy installed, as in the reference's environment, the text goes through
// `ftfy.fix_text`, whitespace clean-up and `str.lower()`; without it, through BERT's BasicTokenizer.
// Python semantics (code points, str.lower, Unicode 14) are reproduced on Unicode scalars.
import Foundation

public enum CLIPTextCleanup {
    /// How CLIPTokenizer cleans a prompt before splitting it into words.
    public enum Mode: Sendable {
        /// `whitespace_clean(ftfy.fix_text(text)).lower()`: what the reference runs (openai/CLIP, which the
        /// reference installs, depends on ftfy). Curly quotes become straight, HTML entities, ligatures,
        /// full-width forms and mojibake are fixed, CJK runs and emoji sequences stay whole.
        case ftfy
        /// transformers' fallback without ftfy: BasicTokenizer(strip_accents=False, do_split_on_punc=False).
        /// Control characters dropped, CJK ideographs split one by one, quotes and entities left as they are.
        case basic
    }

    static func clean(_ text: [Unicode.Scalar], mode: Mode) -> [Unicode.Scalar] {
        switch mode {
        case .ftfy: pythonLowercased(collapsingWhitespace(TextFixer.fixText(text)))
        case .basic: basicClean(text)
        }
    }

    /// transformers' `whitespace_clean`: each run of White_Space (the `regex` module's `\s`) becomes one
    /// space, then `str.strip()`.
    private static func collapsingWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var collapsed: [Unicode.Scalar] = []
        collapsed.reserveCapacity(text.count)
        for scalar in text {
            if !scalar.properties.isWhitespace {
                collapsed.append(scalar)
            } else if collapsed.last != " " {
                collapsed.append(" ")
            }
        }
        let start = collapsed.firstIndex { !isPythonWhitespace($0) } ?? collapsed.endIndex
        let end = collapsed.lastIndex { !isPythonWhitespace($0) }.map { $0 + 1 } ?? start
        return Array(collapsed[start..<end])
    }

    /// BasicTokenizer.tokenize joined by single spaces: control characters dropped, whitespace unified,
    /// CJK ideographs spaced out, NFC, split on whitespace, each word lower-cased.
    private static func basicClean(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        for scalar in text {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isBERTWhitespace(scalar) {
                cleaned.append(" ")
            } else if isCJKIdeograph(scalar) {
                cleaned += [" ", scalar, " "]
            } else {
                cleaned.append(scalar)
            }
        }
        let words = pythonNFC(cleaned).split(whereSeparator: isPythonWhitespace).map { pythonLowercased(Array($0)) }
        return Array(words.joined(separator: [" "]))
    }

    /// CLIP's pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// (case-insensitive), returning the matches in order; unmatched characters (whitespace) are skipped.
    static func preTokenize(_ text: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var matches: [ArraySlice<Unicode.Scalar>] = []
        var position = 0
        while position < text.count {
            let length = matchLength(in: text, at: position)
            if length > 0 { matches.append(text[position..<position + length]) }
            position += max(length, 1)
        }
        return matches
    }

    private static let literalAlternatives: [[Unicode.Scalar]] =
        ["<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    private static func matchLength(in text: [Unicode.Scalar], at start: Int) -> Int {
        for literal in literalAlternatives where startsWithIgnoringASCIICase(text[start...], literal) {
            return literal.count
        }
        let first = text[start]
        if isLetter(first) {
            return text[start...].prefix(while: isLetter).count
        }
        if isNumber(first) { return 1 }
        return text[start...].prefix(while: isOther).count
    }

    /// `[^\s\p{L}\p{N}]` under IGNORECASE. There the `regex` module leaves out U+0345 (combining
    /// ypogegrammeni), a case variant of the letter ι, yet `[\p{L}]` does not take it either (it is no
    /// letter itself): it matches no alternative and is skipped like whitespace.
    private static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        scalar != "\u{345}" && !isPythonWhitespace(scalar) && !isLetter(scalar) && !isNumber(scalar)
    }

    private static func startsWithIgnoringASCIICase(_ text: ArraySlice<Unicode.Scalar>, _ literal: [Unicode.Scalar]) -> Bool {
        guard text.count >= literal.count else { return false }
        return zip(text, literal).allSatisfy { caseFolded($0) == $1 }
    }

    /// Simple case folding, as far as it reaches the literals' ASCII letters: A-Z, and the long s `ſ`,
    /// which the `regex` module matches to `s` (so `'ſ` is a contraction match, as in the reference).
    private static func caseFolded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x41...0x5A: Unicode.Scalar(scalar.value + 0x20)!
        case 0x017F: "s"
        default: scalar
        }
    }

    // MARK: Character classes (transformers' _is_control, _is_whitespace, _is_chinese_char)

    /// Category C* except tab, newline and carriage return. Code points that Python does not know
    /// (category Cn there) count as control, whatever newer tables say.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        guard isKnownToPython(scalar) else { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    private static func isBERTWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r"
            || scalar.properties.generalCategory == .spaceSeparator
    }

    private static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            true
        default:
            false
        }
    }

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    private static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }
}
