// Python's string semantics, as the reference's tokenizers rely on them, on Unicode scalars. Python 3.11's
// unicodedata is Unicode 14; code points assigned later are unknown to it (no case, no category, no
// normalisation), whatever Swift's newer tables say.
import Foundation

/// Whether Python 3.11's Unicode 14 database knows the code point (assigned by Unicode 14.0).
func isKnownToPython(_ scalar: Unicode.Scalar) -> Bool {
    guard let age = scalar.properties.age else { return false }
    return age.major < 14 || (age.major == 14 && age.minor == 0)
}

/// Python's `str.isspace()` (what `strip()` and `split()` remove, and `re`'s `\s`): bidi classes WS, B, S
/// and category Zs.
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        true
    default:
        false
    }
}

/// `re`'s `\w` on a str: `str.isalnum()` (a letter or any numeric character) or `_`.
func isPythonWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
    guard isKnownToPython(scalar) else { return false }
    switch scalar.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return scalar == "_" || scalar.properties.numericType != nil
    }
}

/// `re`'s `\d` on a str: a decimal digit of any script.
func isPythonDecimalDigit(_ scalar: Unicode.Scalar) -> Bool {
    isKnownToPython(scalar) && scalar.properties.numericType == .decimal
}

/// `unicodedata.normalize("NFC", text)`. Code points Python does not know are starters that compose with
/// nothing, so the runs between them normalise independently.
func pythonNFC(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var composed: [Unicode.Scalar] = []
    composed.reserveCapacity(text.count)
    var run = String.UnicodeScalarView()
    func flush() {
        composed += String(run).precomposedStringWithCanonicalMapping.unicodeScalars
        run = String.UnicodeScalarView()
    }
    for scalar in text {
        if isKnownToPython(scalar) {
            run.append(scalar)
        } else {
            flush()
            composed.append(scalar)
        }
    }
    flush()
    return composed
}

/// `str.lower()`: the full lower-case mapping per code point, with Python's Final_Sigma rule for U+03A3.
func pythonLowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var lowered: [Unicode.Scalar] = []
    lowered.reserveCapacity(text.count)
    for (index, scalar) in text.enumerated() {
        if scalar.value == 0x03A3 {
            lowered.append(isFinalSigma(text, at: index) ? "\u{03C2}" : "\u{03C3}")
        } else if isKnownToPython(scalar) {
            lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            lowered.append(scalar)
        }
    }
    return lowered
}

/// Final_Sigma: a cased letter before (skipping case-ignorables), and none after.
private func isFinalSigma(_ text: [Unicode.Scalar], at index: Int) -> Bool {
    let isCaseIgnorable = { (scalar: Unicode.Scalar) in isKnownToPython(scalar) && scalar.properties.isCaseIgnorable }
    let isCased = { (scalar: Unicode.Scalar) in isKnownToPython(scalar) && scalar.properties.isCased }
    guard let before = text[..<index].reversed().first(where: { !isCaseIgnorable($0) }), isCased(before) else {
        return false
    }
    guard let after = text[(index + 1)...].first(where: { !isCaseIgnorable($0) }) else { return true }
    return !isCased(after)
}
