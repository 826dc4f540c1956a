// ftfy's badness heuristic (`is_bad`): short character sequences far likelier to be mojibake than meant,
// such as an accented letter next to a currency sign or `Ã` before a space. Mojibake is only fixed in text
// where one occurs. The character groups are ftfy's (FtfyTables.swift); the rules follow its BADNESS_RE.

enum MojibakeHeuristic {
    /// Whether any rule matches anywhere in the text.
    static func isBad(_ text: [Unicode.Scalar]) -> Bool {
        startRule.matchLength(in: text, at: 0) != nil || rules.occurs(in: text)
    }

    private struct Group: OptionSet {
        let rawValue: UInt16
        static let common = Group(rawValue: 1 << 0)
        static let c1 = Group(rawValue: 1 << 1)
        static let bad = Group(rawValue: 1 << 2)
        static let law = Group(rawValue: 1 << 3)
        static let currency = Group(rawValue: 1 << 4)
        static let startPunctuation = Group(rawValue: 1 << 5)
        static let endPunctuation = Group(rawValue: 1 << 6)
        static let numeric = Group(rawValue: 1 << 7)
        static let kaomoji = Group(rawValue: 1 << 8)
        static let upperAccented = Group(rawValue: 1 << 9)
        static let lowerAccented = Group(rawValue: 1 << 10)
        static let upperCommon = Group(rawValue: 1 << 11)
        static let lowerCommon = Group(rawValue: 1 << 12)
        static let box = Group(rawValue: 1 << 13)

        static let accented: Group = [.upperAccented, .lowerAccented]
        static let punctuation: Group = [.startPunctuation, .endPunctuation]
    }

    private static let groupsOf: [Unicode.Scalar: Group] = {
        let members: [(Group, String)] = [
            (.common, commonCharacters), (.c1, c1Characters), (.bad, badCharacters), (.law, lawCharacters),
            (.currency, currencyCharacters), (.startPunctuation, startPunctuationCharacters),
            (.endPunctuation, endPunctuationCharacters), (.numeric, numericCharacters),
            (.kaomoji, kaomojiCharacters), (.upperAccented, upperAccentedCharacters),
            (.lowerAccented, lowerAccentedCharacters), (.upperCommon, upperCommonCharacters),
            (.lowerCommon, lowerCommonCharacters), (.box, boxCharacters),
        ]
        var groups: [Unicode.Scalar: Group] = [:]
        for (group, characters) in members {
            for scalar in characters.unicodeScalars { groups[scalar, default: []].insert(group) }
        }
        return groups
    }()

    private typealias Pattern = SequencePattern<Unicode.Scalar>

    /// A character of any of `groups`, or one of `extra`.
    private static func any(_ groups: Group, _ extra: String = "") -> Pattern.Class {
        let extras = Set(extra.unicodeScalars)
        return { scalar in !(groupsOf[scalar] ?? []).isDisjoint(with: groups) || extras.contains(scalar) }
    }

    private static func characters(_ members: String) -> Pattern.Class { Pattern.characters(members) }
    private static let lowercaseASCII = "abcdefghijklmnopqrstuvwxyz"
    private static let letterASCII = lowercaseASCII + lowercaseASCII.uppercased()

    /// `Ã` or `Â` then a space, at the very start: "à" or U+00A0 read as Windows-1252, its 0xA0 now a space.
    private static let startRule = Pattern(alternatives: [[characters("ÃÂ"), characters(" ")]])

    private static let rules: Pattern = {
        let arabicSecond = any([.common, .currency, .bad, .numeric, .startPunctuation], "ŸŠ®°µ»")
        let isLetterASCII = characters(letterASCII)
        return Pattern(alternatives: [
            [any(.c1)],
            [any([.bad, .accented, .box, .punctuation, .currency, .numeric, .law]), any(.bad)],
            [isLetterASCII, any([.lowerCommon, .upperCommon]), any(.bad)],
            [any(.bad), any([.accented, .box, .punctuation, .currency, .numeric, .law])],
            [any([.lowerAccented, .lowerCommon, .box, .endPunctuation, .currency, .numeric]), any(.upperAccented)],
            [any([.box, .endPunctuation, .currency, .numeric]), any(.lowerAccented)],
            [any([.lowerAccented, .box, .endPunctuation]), any(.currency)],
            [{ isPythonWhitespace($0) }, any(.upperAccented), any(.currency)],
            [any([.upperAccented, .box]), any([.numeric, .law])],
            [any([.accented, .box, .currency, .endPunctuation]), any(.startPunctuation), any(.numeric)],
            [any([.accented, .currency, .numeric, .box, .law]), any(.endPunctuation), any(.startPunctuation)],
            [any([.currency, .numeric, .box]), any(.startPunctuation)],
            [characters(lowercaseASCII), any(.upperAccented), any([.startPunctuation, .currency])],
            [any(.box), any(.kaomoji)],
            [any([.accented, .currency, .numeric, .punctuation, .law]), any(.box)],
            [any(.box), any(.endPunctuation)],
            [any(.accented), any(.punctuation), { isPythonWordCharacter($0) }],
            // The ligature œ before anything but an unaccented Latin letter.
            [characters("Œœ"), { !isLetterASCII($0) }],
            // A degree sign after a capital letter.
            [any(.upperAccented), characters("°")],
            // Common two-character Windows-1252 mojibake the rules above miss.
            [characters("ÂÃÎÐ"), any(.punctuation, "€œŠš¢£Ÿž\u{A0}\u{AD}®©°·»–—´")],
            [characters("×"), characters("²³")],
            // Arabic read as Windows-1252: its pairs are common, so four characters are needed.
            [characters("ØÙ"), arabicSecond, characters("ØÙ"), arabicSecond],
            // Windows-1252 starts of three-byte South Asian letters.
            [characters("à"), characters("²µ¹¼½¾")],
            // MacRoman mojibake.
            [characters("√"), characters("±∂†≠®™´≤≥¥µø")],
            [characters("≈"), characters("°¢")],
            [characters("‚"), characters("Ä"), characters("ìîïòôúùû†°¢π")],
            [characters("‚"), characters("âó"), characters("àä°ê")],
            // Windows-1251 mojibake: U+2000-range punctuation, then Latin-1 or Cyrillic (three characters,
            // as the pairs are common), then Windows-1251 over Latin-1 over Windows-1252 near a Latin letter.
            Pattern.literal("вЂ"),
            [characters("ВГРС"), any([.c1, .bad, .punctuation, .currency], "°µ"), characters("ВГРС")],
            Pattern.literal("ГўВЂВ") + [{ $0 != "\n" }, characters(letterASCII + " ")],
            // "à", "á" and U+00A0 read as Windows-1252 (a lower-case letter, maybe a space, `Ã`/`Â`, a space).
            [characters("Ã"), characters("\u{A0}¡")],
            [characters(lowercaseASCII), characters("ÃÂ"), characters(" ")],
            [characters(lowercaseASCII), { isPythonWhitespace($0) }, characters("ÃÂ"), characters(" ")],
            // `Â` before a character it is the encoding of, where that character is common.
            [any(.endPunctuation, lowercaseASCII + ".,?!"), characters("Â"), any(.punctuation, " ")],
            // Windows-1253 mojibake: U+2000-range punctuation, then Latin-1 or Greek.
            [characters("β"), characters("€"), characters("™\u{A0}Ά\u{AD}®°")],
            [characters("ΒΓΞΟ"), any([.c1, .bad, .punctuation, .currency], "°"), characters("ΒΓΞΟ")],
            // Windows-1257 mojibake of U+2000-range punctuation.
            Pattern.literal("ā€"),
        ])
    }()
}
