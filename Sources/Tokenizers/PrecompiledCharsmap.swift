// SentencePiece's precompiled normalisation rules (normalizer_spec.precompiled_charsmap, also the
// "Precompiled" normalizer of tokenizer.json): a darts-clone double-array trie over UTF-8 input whose
// values point into a blob of NUL-terminated replacement strings.

struct PrecompiledCharsmap {
    private let units: [UInt32]
    private let replacements: [UInt8]

    /// Layout: little-endian UInt32 trie size in bytes, the trie's units, then the replacement strings.
    init(_ blob: ArraySlice<UInt8>) throws {
        let bytes = Array(blob)
        guard bytes.count >= 4 else { throw ModelFileError(reason: "precompiled charsmap shorter than its header") }
        let trieSize = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        guard trieSize % 4 == 0, trieSize >= 4, trieSize < bytes.count - 4 else {
            throw ModelFileError(reason: "precompiled charsmap trie size \(trieSize) does not fit its \(bytes.count) bytes")
        }
        units = stride(from: 4, to: 4 + trieSize, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
        replacements = Array(bytes[(4 + trieSize)...])
    }

    /// The longest rule matching the start of `input`: its replacement and how many input bytes it consumes.
    /// (darts-clone's commonPrefixSearch; a corrupt trie ends the search instead of reading out of bounds.)
    func longestMatch(_ input: ArraySlice<UInt8>) -> (replacement: ArraySlice<UInt8>, consumed: Int)? {
        var best: (valueOffset: Int, consumed: Int)?
        var node = Int(Self.offset(units[0]))
        for (index, byte) in input.enumerated() {
            node ^= Int(byte)
            guard node < units.count else { break }
            let unit = units[node]
            guard Self.label(unit) == UInt32(byte) else { break }
            node ^= Int(Self.offset(unit))
            if Self.hasLeaf(unit), node < units.count {
                best = (Int(units[node] & 0x7FFF_FFFF), index + 1)
            }
        }
        guard let best, best.valueOffset < replacements.count else { return nil }
        let end = replacements[best.valueOffset...].firstIndex(of: 0) ?? replacements.endIndex
        return (replacements[best.valueOffset..<end], best.consumed)
    }

    private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    private static func label(_ unit: UInt32) -> UInt32 { unit & (1 << 31 | 0xFF) }
    private static func offset(_ unit: UInt32) -> UInt32 { (unit >> 10) << ((unit & (1 << 9)) >> 6) }
}
