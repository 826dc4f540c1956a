// ftfy 6.3's `fix_text` with its default configuration: what transformers' CLIPTokenizer runs on every
// prompt when ftfy is installed, as it is in the reference's environment (openai/CLIP depends on it).
import Foundation

enum TextFixer {
    /// ftfy fixes a line at a time (with its "\n"), a very long line in pieces of this many characters.
    private static let maxSegmentLength = 1_000_000

    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var fixed: [Unicode.Scalar] = []
        var unescapesHTML = true
        var start = 0
        while start < text.count {
            let lineEnd = text[start...].firstIndex(of: "\n").map { $0 + 1 } ?? text.count
            let segment = Array(text[start..<min(lineEnd, start + maxSegmentLength)])
            // A '<' means the text may be real HTML, whose entities ftfy then keeps, here and in later lines.
            if segment.contains("<") { unescapesHTML = false }
            fixed += fixSegment(segment, unescapesHTML: unescapesHTML)
            start += segment.count
        }
        return fixed
    }

    /// ftfy's fixes in its order, repeated until the text stops changing. (Its `fix_surrogates` has nothing
    /// to do here: Swift text holds no lone surrogates.)
    private static func fixSegment(_ segment: [Unicode.Scalar], unescapesHTML: Bool) -> [Unicode.Scalar] {
        var text = segment
        while true {
            let before = text
            if unescapesHTML { text = unescapeHTML(text) }
            text = Mojibake.fixEncoding(text)
            text = Mojibake.fixC1Controls(text)
            text = replacing(in: text, latinLigatures)
            text = replacing(in: text, characterWidths)
            text = uncurlQuotes(text)
            text = fixLineBreaks(text)
            text = removeTerminalEscapes(text)
            text.removeAll(where: isUnwantedControl)
            text = pythonNFC(text)
            if text == before { return text }
        }
    }

    private static func replacing(in text: [Unicode.Scalar], _ table: [Unicode.Scalar: String]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(text.count)
        for scalar in text {
            if let replacement = table[scalar] { result += replacement.unicodeScalars } else { result.append(scalar) }
        }
        return result
    }

    // MARK: HTML entities

    private static let htmlEntities: [String: String] = {
        var entities: [String: String] = [:]
        for line in htmlEntityTable.split(separator: "\n") {
            let fields = line.split(separator: " ")
            let scalars = fields.dropFirst().map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
            entities[String(fields[0])] = String(String.UnicodeScalarView(scalars))
        }
        return entities
    }()

    /// ftfy's `unescape_html`: each `&#?[0-9A-Za-z]{1,24};` that is a known entity or a numeric reference
    /// is decoded; the rest stays as written (so "this&not that" stays).
    private static func unescapeHTML(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        var position = 0
        while position < text.count {
            if let length = referenceLength(in: text, at: position) {
                let reference = text[position..<position + length]
                let body = String(String.UnicodeScalarView(reference.dropFirst().dropLast()))
                let decoded = body.first == "#" ? numericReference(body.dropFirst()) : htmlEntities[body]
                result += decoded.map { Array($0.unicodeScalars) } ?? Array(reference)
                position += length
            } else {
                result.append(text[position])
                position += 1
            }
        }
        return result
    }

    /// The length of `&#?[0-9A-Za-z]{1,24};` at `start`, if it is there.
    private static func referenceLength(in text: [Unicode.Scalar], at start: Int) -> Int? {
        guard text[start] == "&" else { return nil }
        var end = start + 1
        if end < text.count && text[end] == "#" { end += 1 }
        let nameStart = end
        while end < text.count && end - nameStart < 24 && isASCIIAlphanumeric(text[end]) { end += 1 }
        guard end > nameStart, end < text.count, text[end] == ";" else { return nil }
        return end + 1 - start
    }

    /// `&#…;` as Python's `html.unescape` decodes it when the whole reference is digits (or `x` and hex
    /// digits): HTML5's replacements for invalid numbers, nothing for forbidden ones. Nil (keep it as
    /// written) otherwise, and where the result holds a ';', as ftfy requires.
    private static func numericReference(_ body: Substring) -> String? {
        let isHex = body.first == "x" || body.first == "X"
        let digits = isHex ? body.dropFirst() : body
        let radix = isHex ? 16 : 10
        guard !digits.isEmpty, digits.allSatisfy({ ($0.hexDigitValue ?? radix) < radix }) else { return nil }
        // Digits past what UInt32 holds are beyond U+10FFFF either way.
        let value = UInt32(digits, radix: radix) ?? UInt32.max
        let decoded: String
        switch value {
        case 0, 0xD800...0xDFFF, 0x110000...: decoded = "\u{FFFD}"
        case 0x0D: decoded = "\r"
        case 0x80...0x9F: decoded = String(SingleByteEncoding.windows1252.decode(UInt8(value)))
        case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0xFDD0...0xFDEF: decoded = ""
        case _ where value & 0xFFFE == 0xFFFE: decoded = ""
        default: decoded = String(Unicode.Scalar(value)!)
        }
        return decoded == ";" ? nil : decoded
    }

    // MARK: Character fixes

    /// Ligatures of Latin letters (copy-paste glitches) and the digraphs kept for legacy encodings; ﬅ keeps
    /// its long s, and ŉ its apostrophe (which `uncurlQuotes` then straightens).
    private static let latinLigatures: [Unicode.Scalar: String] = [
        "\u{132}": "IJ", "\u{133}": "ij", "\u{149}": "\u{2BC}n", "\u{1F1}": "DZ", "\u{1F2}": "Dz", "\u{1F3}": "dz",
        "\u{1C4}": "D\u{17D}", "\u{1C5}": "D\u{17E}", "\u{1C6}": "d\u{17E}", "\u{1C7}": "LJ", "\u{1C8}": "Lj",
        "\u{1C9}": "lj", "\u{1CA}": "NJ", "\u{1CB}": "Nj", "\u{1CC}": "nj", "\u{FB00}": "ff", "\u{FB01}": "fi",
        "\u{FB02}": "fl", "\u{FB03}": "ffi", "\u{FB04}": "ffl", "\u{FB05}": "\u{17F}t", "\u{FB06}": "st",
    ]

    /// Full-width and half-width forms (U+FF01-U+FFEF) as their NFKC, and the ideographic space as a space.
    private static let characterWidths: [Unicode.Scalar: String] = {
        var widths: [Unicode.Scalar: String] = ["\u{3000}": " "]
        for value in UInt32(0xFF01)...0xFFEF {
            let form = String(Unicode.Scalar(value)!)
            let normal = form.precomposedStringWithCompatibilityMapping
            if !normal.unicodeScalars.elementsEqual(form.unicodeScalars) { widths[Unicode.Scalar(value)!] = normal }
        }
        return widths
    }()

    private static func uncurlQuotes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { scalar in
            switch scalar.value {
            case 0x02BC, 0x2018...0x201B: "'"
            case 0x201C...0x201F: "\""
            default: scalar
            }
        }
    }

    /// CRLF, CR, U+2028, U+2029 and NEL each become "\n".
    private static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        for (index, scalar) in text.enumerated() {
            switch scalar {
            case "\r" where index + 1 < text.count && text[index + 1] == "\n": continue
            case "\r", "\u{2028}", "\u{2029}", "\u{85}": result.append("\n")
            default: result.append(scalar)
            }
        }
        return result
    }

    /// ANSI terminal escapes: ESC `[`, digits (any script's, as `re`'s `\d`) and `;`, then a letter.
    private static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        var position = 0
        while position < text.count {
            if text[position] == "\u{1B}", position + 1 < text.count, text[position + 1] == "[" {
                let parameters = text[(position + 2)...].prefix { $0 == ";" || isPythonDecimalDigit($0) }
                let end = position + 2 + parameters.count
                if end < text.count && isASCIILetter(text[end]) {
                    position = end + 1
                    continue
                }
            }
            result.append(text[position])
            position += 1
        }
        return result
    }

    /// Control characters with no visible effect: C0 except tab, line feed, form feed and carriage return,
    /// DEL, the deprecated Arabic format controls, the byte order mark, interlinear annotations and U+FFFC.
    /// (C1 controls are clues to mojibake and handled there; joiners, bidi marks and tags are kept.)
    private static func isASCIILetter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }

    private static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        isASCIILetter(scalar) || ("0"..."9").contains(scalar)
    }

    private static func isUnwantedControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: true
        default: false
        }
    }
}
