// ftfy's `fix_encoding`: text whose UTF-8 bytes were decoded with a single-byte code page ("mojibake",
// `cafÃ©` for `café`) is encoded back with that code page and decoded as UTF-8 again, but only when ftfy's
// heuristic (MojibakeHeuristic) says the text looks broken, and only where the bytes are UTF-8 then.

/// A single-byte code page as ftfy uses it: bytes 0x00-0x7F are ASCII, the upper half comes from a table.
struct SingleByteEncoding: Equatable {
    let name: String
    /// ftfy's "sloppy" codecs: byte 0x1A stands for U+FFFD (a character already lost), so U+001A has no byte.
    let isSloppy: Bool
    /// The characters of bytes 0x80...0xFF (ftfy's sloppy codecs give unassigned bytes the Latin-1 character).
    let upperHalf: [UInt16]
    private let byteOf: [Unicode.Scalar: UInt8]

    init(name: String, isSloppy: Bool, upperHalf: [UInt16]) {
        precondition(upperHalf.count == 128)
        self.name = name
        self.isSloppy = isSloppy
        self.upperHalf = upperHalf
        var byteOf: [Unicode.Scalar: UInt8] = [:]
        for byte in 0...UInt8.max {
            byteOf[Self.decode(byte, upperHalf: upperHalf, isSloppy: isSloppy)] = byte
        }
        self.byteOf = byteOf
    }

    func decode(_ byte: UInt8) -> Unicode.Scalar { Self.decode(byte, upperHalf: upperHalf, isSloppy: isSloppy) }

    private static func decode(_ byte: UInt8, upperHalf: [UInt16], isSloppy: Bool) -> Unicode.Scalar {
        if byte >= 0x80 { return Unicode.Scalar(upperHalf[Int(byte) - 0x80])! }
        return isSloppy && byte == 0x1A ? "\u{FFFD}" : Unicode.Scalar(byte)
    }

    /// The bytes of `text`, or nil if a character has none here.
    func encode(_ text: [Unicode.Scalar]) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        for scalar in text {
            guard let byte = byteOf[scalar] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// One code page each: the name tells them apart.
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.name == rhs.name }

    static let latin1 = SingleByteEncoding(name: "latin-1", isSloppy: false, upperHalf: Array(0x80...0xFF))

    /// The code pages ftfy tries, in its order (tables in FtfyTables.swift).
    static let triedByFtfy = [latin1, windows1252, windows1251, windows1250, windows1253, windows1254,
                              windows1257, iso8859_2, macRoman, cp437]
}

enum Mojibake {
    /// ftfy's `fix_encoding`: single fixing steps until the text stops changing.
    static func fixEncoding(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = text
        while true {
            let fixed = fixOneStep(text)
            if fixed == text { return text }
            text = fixed
        }
    }

    /// ftfy's `fix_c1_controls`: C1 control characters (U+0080-U+009F, never meant) read as the Windows-1252
    /// characters of the same bytes, as web browsers do.
    static func fixC1Controls(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { isC1Control($0) ? SingleByteEncoding.windows1252.decode(UInt8($0.value)) : $0 }
    }

    private static func isC1Control(_ scalar: Unicode.Scalar) -> Bool { (0x80...0x9F).contains(scalar.value) }

    private static func fixOneStep(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard !text.allSatisfy(\.isASCII), MojibakeHeuristic.isBad(text) else { return text }

        // The likeliest story: UTF-8 read with a single-byte code page. The first that gives UTF-8 back wins.
        var possible: [SingleByteEncoding] = []
        for encoding in SingleByteEncoding.triedByFtfy {
            guard var bytes = encoding.encode(text) else { continue }
            possible.append(encoding)
            // Not for MacRoman, where an en dash before a space would look like a lost 0xA0.
            if encoding != .macRoman && spaceForA0.occurs(in: bytes) { bytes = restoringA0(bytes) }
            if encoding.isSloppy { bytes = replaceLossySequences.replacingMatches(in: bytes) { _ in [0xEF, 0xBF, 0xBD] } }
            if let decoded = decodeUTF8(bytes) { return decoded }
        }

        // Mojibake mixed with text that is fine: fix the runs that look like UTF-8 one by one.
        let fixedRuns = decodeInconsistentUTF8(text)
        if fixedRuns != text { return fixedRuns }

        // Latin-1 and Windows-1252 are easily confused: text with C1 controls was meant as Windows-1252.
        if possible.contains(.latin1) {
            if possible.contains(.windows1252) { return text }
            if let fixed = latin1AsStrictWindows1252(text), fixed != text { return fixed }
        }
        return text.contains(where: isC1Control) ? fixC1Controls(text) : text
    }

    /// Latin-1 text (C1 controls included) read as Windows-1252; nil if a byte is unassigned there.
    private static func latin1AsStrictWindows1252(_ text: [Unicode.Scalar]) -> [Unicode.Scalar]? {
        var result: [Unicode.Scalar] = []
        for scalar in text {
            guard isC1Control(scalar) else {
                result.append(scalar)
                continue
            }
            let decoded = SingleByteEncoding.windows1252.decode(UInt8(scalar.value))
            guard decoded != scalar else { return nil }  // the sloppy table keeps unassigned bytes as they were
            result.append(decoded)
        }
        return result
    }

    // MARK: Bytes

    private typealias BytePattern = SequencePattern<UInt8>
    private static let continuation = BytePattern.bytes(0x80...0xBF)

    /// UTF-8 sequences that are whole again if a space goes back to being 0xA0 (which a Windows-1252 program
    /// turned into a space), limited to lead bytes whose characters are likely (ftfy's ALTERED_UTF8_RE).
    private static let spaceForA0: BytePattern = {
        let space = BytePattern.bytes(0x20)
        let likelyContinuation = BytePattern.bytes(0x80...0x84, 0x86...0x9F, 0xA1...0xBF)
        return BytePattern(alternatives: [
            [BytePattern.bytes(0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9), space],
            [BytePattern.bytes(0xE2, 0xE3), space, likelyContinuation],
            [BytePattern.bytes(0xE0...0xE3), likelyContinuation, space],
            [BytePattern.bytes(0xF0), space, continuation, continuation],
            [BytePattern.bytes(0xF0), continuation, space, continuation],
            [BytePattern.bytes(0xF0), continuation, continuation, space],
        ])
    }()

    /// ftfy's `restore_byte_a0`. First `Ã ` alone: nearly always "à" then a space ("Ã la mode"), so it gets
    /// its 0xA0 and keeps the space, except before another space and the Portuguese "às", "àquele/a", "àquilo".
    private static func restoringA0(_ bytes: [UInt8]) -> [UInt8] {
        let exceptions = [" ", "quele", "quela", "quilo", "s "].map { Array($0.utf8) }
        var withAGrave: [UInt8] = []
        var position = 0
        while position < bytes.count {
            if bytes[position] == 0xC3, position + 1 < bytes.count, bytes[position + 1] == 0x20,
               !exceptions.contains(where: { bytes[(position + 2)...].starts(with: $0) }) {
                withAGrave += [0xC3, 0xA0, 0x20]
                position += 2
            } else {
                withAGrave.append(bytes[position])
                position += 1
            }
        }
        return spaceForA0.replacingMatches(in: withAGrave) { match in match.map { $0 == 0x20 ? 0xA0 : $0 } }
    }

    /// UTF-8 (or CESU-8) sequences with bytes lost to U+FFFD (byte 0x1A in the sloppy codecs) or, once a
    /// sequence, to '?': each becomes U+FFFD's UTF-8 (ftfy's `replace_lossy_sequences`).
    private static let replaceLossySequences: BytePattern = {
        let lost = BytePattern.bytes(0x1A)
        let lostOrQuestion = BytePattern.bytes(0x1A, 0x3F)
        let continuationOrLost = BytePattern.bytes(0x1A...0x1A, 0x80...0xBF)
        let anyOfThem = BytePattern.bytes(0x1A...0x1A, 0x3F...0x3F, 0x80...0xBF)
        let ed = BytePattern.bytes(0xED)
        let highSurrogate = BytePattern.bytes(0xA0...0xAF), lowSurrogate = BytePattern.bytes(0xB0...0xBF)
        let lead3 = BytePattern.bytes(0xE0...0xEF), lead4 = BytePattern.bytes(0xF0...0xF4)
        return BytePattern(alternatives: [
            [BytePattern.bytes(0xC2...0xDF), lost],
            [BytePattern.bytes(0xC2...0xC3), BytePattern.bytes(0x3F)],
            [ed, highSurrogate, lostOrQuestion, ed, lowSurrogate, anyOfThem],
            [ed, highSurrogate, anyOfThem, ed, lowSurrogate, lostOrQuestion],
            [lead3, lostOrQuestion, continuationOrLost],
            [lead3, continuationOrLost, lostOrQuestion],
            [lead4, lostOrQuestion, continuationOrLost, continuationOrLost],
            [lead4, continuationOrLost, lostOrQuestion, continuationOrLost],
            [lead4, continuationOrLost, continuationOrLost, lostOrQuestion],
            [lost],
        ])
    }()

    /// Python's strict UTF-8 decoder widened as ftfy's "utf-8-variants" codec is: CESU-8 surrogate pairs
    /// and Java's 0xC0 0x80 for U+0000 decode too (ftfy uses it only when 0xED or 0xC0 occurs, but without
    /// those bytes the two decoders agree). Nil where the bytes are not such UTF-8.
    private static func decodeUTF8(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        var scalars: [Unicode.Scalar] = []
        var runStart = 0
        func appendRun(upTo end: Int) -> Bool {
            guard let run = String(validating: bytes[runStart..<end], as: UTF8.self) else { return false }
            scalars += run.unicodeScalars
            return true
        }
        var position = 0
        while position < bytes.count {
            guard let (scalar, length) = variantSequence(in: bytes, at: position) else {
                position += 1
                continue
            }
            guard appendRun(upTo: position) else { return nil }
            scalars.append(scalar)
            position += length
            runStart = position
        }
        return appendRun(upTo: bytes.count) ? scalars : nil
    }

    private static func variantSequence(in bytes: [UInt8], at start: Int) -> (Unicode.Scalar, Int)? {
        if bytes[start] == 0xC0, start + 1 < bytes.count, bytes[start + 1] == 0x80 { return ("\u{0}", 2) }
        guard bytes.count - start >= 6, bytes[start] == 0xED, bytes[start + 3] == 0xED,
              (0xA0...0xAF).contains(bytes[start + 1]), (0x80...0xBF).contains(bytes[start + 2]),
              (0xB0...0xBF).contains(bytes[start + 4]), (0x80...0xBF).contains(bytes[start + 5]) else { return nil }
        let high = UInt32(bytes[start + 1] & 0x0F) << 16 | UInt32(bytes[start + 2] & 0x3F) << 10
        let low = UInt32(bytes[start + 4] & 0x0F) << 6 | UInt32(bytes[start + 5] & 0x3F)
        return (Unicode.Scalar(0x10000 + (high | low))!, 6)
    }

    // MARK: Runs of mojibake inside good text

    private typealias CharacterPattern = SequencePattern<Unicode.Scalar>
    private static let strictContinuation = Set(utf8ContinuationStrictCharacters.unicodeScalars)

    /// A UTF-8 lead byte's character then its continuation bytes' (a space may stand for 0xA0).
    private static let utf8Lookalike: CharacterPattern = {
        let continuation = CharacterPattern.characters(utf8ContinuationCharacters)
        return CharacterPattern(alternatives: [
            [CharacterPattern.characters(utf8FirstOf2Characters), continuation],
            [CharacterPattern.characters(utf8FirstOf3Characters), continuation, continuation],
            [CharacterPattern.characters(utf8FirstOf4Characters), continuation, continuation, continuation],
        ])
    }()

    /// The length of a run of UTF-8 lookalikes at `start` (ftfy's UTF8_DETECTOR_RE), 0 if none. A run must
    /// not continue a garble (follow a strict continuation character), lest a few characters of it get fixed.
    private static func lookalikeRunLength(in text: [Unicode.Scalar], at start: Int) -> Int {
        if start > 0 && strictContinuation.contains(text[start - 1]) { return 0 }
        var end = start
        while let length = utf8Lookalike.matchLength(in: text, at: end) { end += length }
        return end - start
    }

    /// ftfy's `decode_inconsistent_utf8`: each run that looks like UTF-8 and bad is fixed on its own.
    private static func decodeInconsistentUTF8(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        var position = 0
        while position < text.count {
            let length = lookalikeRunLength(in: text, at: position)
            guard length > 0 else {
                result.append(text[position])
                position += 1
                continue
            }
            let run = Array(text[position..<position + length])
            // Shorter than the whole text, so that this cannot recurse forever.
            result += run.count < text.count && MojibakeHeuristic.isBad(run) ? fixEncoding(run) : run
            position += length
        }
        return result
    }
}
