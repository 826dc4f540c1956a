// CLIP's text clean-up and pre-tokenizer as transformers 4.46.3's CLIPTokenizer runs them when ftfy is not
// installed (the reference's environment): BERT's BasicTokenizer(strip_accents=False,
// do_split_on_punc=False), then CLIP's regex split. Python semantics (code points, str.lower, the
// Unicode 14 database of Python 3.11's unicodedata) are reproduced on Unicode scalars.
import Foundation

enum CLIPTextCleanup {
    /// BasicTokenizer.tokenize joined by single spaces: control characters dropped, whitespace unified,
    /// CJK ideographs spaced out, NFC, split on whitespace, each word lower-cased.
    static func clean(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for scalar in text {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isBERTWhitespace(scalar) {
                cleaned.append(" ")
            } else if isCJKIdeograph(scalar) {
                cleaned.append(contentsOf: [" ", scalar, " "])
            } else {
                cleaned.append(scalar)
            }
        }
        let composed = String(cleaned).precomposedStringWithCanonicalMapping.unicodeScalars
        let words = composed.split(whereSeparator: isPythonWhitespace).map { pythonLowercased(Array($0)) }
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
        let isOther = { (scalar: Unicode.Scalar) in !isPythonWhitespace(scalar) && !isLetter(scalar) && !isNumber(scalar) }
        return text[start...].prefix(while: isOther).count
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

    // MARK: Python's str.lower()

    /// Full lower-case mapping per code point, with Python's Final_Sigma rule for U+03A3.
    static func pythonLowercased(_ word: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var lowered: [Unicode.Scalar] = []
        for (index, scalar) in word.enumerated() {
            if scalar.value == 0x03A3 {
                lowered.append(isFinalSigma(word, at: index) ? "\u{03C2}" : "\u{03C3}")
            } else {
                lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return lowered
    }

    /// Final_Sigma: a cased letter before (skipping case-ignorables), and none after.
    private static func isFinalSigma(_ word: [Unicode.Scalar], at index: Int) -> Bool {
        let isCaseIgnorable = { (scalar: Unicode.Scalar) in scalar.properties.isCaseIgnorable }
        guard let before = word[..<index].reversed().first(where: { !isCaseIgnorable($0) }),
              before.properties.isCased else { return false }
        guard let after = word[(index + 1)...].first(where: { !isCaseIgnorable($0) }) else { return true }
        return !after.properties.isCased
    }

    // MARK: Character classes (transformers' _is_control, _is_whitespace, _is_chinese_char)

    /// Category C* except tab, newline and carriage return. Code points that Python 3.11's Unicode 14
    /// database does not know (category Cn there) count as control, whatever newer tables say.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        guard let age = scalar.properties.age, age.major < 14 || (age.major == 14 && age.minor == 0) else { return true }
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
