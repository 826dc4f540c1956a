// The one kind of regular expression ftfy's byte and character rules need: an alternation of fixed-length
// sequences of one-element classes, e.g. `[\xc2\xc3][ ]|[\xe2\xe3][ ][\x80-\xbf]`.

struct SequencePattern<Element>: Sendable {
    typealias Class = @Sendable (Element) -> Bool

    /// Tried in order at each position, as Python's `re` tries an alternation: the first that matches wins.
    let alternatives: [[Class]]

    /// The length of the first alternative that matches at `start`, if any.
    func matchLength(in elements: [Element], at start: Int) -> Int? {
        alternatives.first { alternative in
            start + alternative.count <= elements.count
                && zip(alternative, elements[start...]).allSatisfy { matches, element in matches(element) }
        }?.count
    }

    /// `re.search`: whether the pattern matches anywhere.
    func occurs(in elements: [Element]) -> Bool {
        elements.indices.contains { matchLength(in: elements, at: $0) != nil }
    }

    /// `re.sub`: every match, left to right and not overlapping, replaced by `replacement(match)`.
    func replacingMatches(in elements: [Element], with replacement: (ArraySlice<Element>) -> [Element]) -> [Element] {
        var result: [Element] = []
        var position = 0
        while position < elements.count {
            if let length = matchLength(in: elements, at: position) {
                result += replacement(elements[position..<position + length])
                position += length
            } else {
                result.append(elements[position])
                position += 1
            }
        }
        return result
    }
}

extension SequencePattern where Element == UInt8 {
    /// A byte class of single bytes, e.g. `bytes(0xC2, 0xC3)`.
    static func bytes(_ members: UInt8...) -> Class { { members.contains($0) } }

    /// A byte class of ranges, e.g. `bytes(0x80...0x84, 0x86...0x9F)`.
    static func bytes(_ ranges: ClosedRange<UInt8>...) -> Class { { byte in ranges.contains { $0.contains(byte) } } }
}

extension SequencePattern where Element == Unicode.Scalar {
    /// A class of the characters listed, e.g. `characters("ÂÃ")`.
    static func characters(_ members: String) -> Class {
        let set = Set(members.unicodeScalars)
        return { set.contains($0) }
    }

    /// One single-character class for each character of `text`, matching it literally.
    static func literal(_ text: String) -> [Class] {
        text.unicodeScalars.map { expected in { $0 == expected } }
    }
}
