// CLIP's byte-level BPE (transformers' CLIPTokenizer.bpe), on vocabulary ids instead of strings.
import Foundation

/// GPT-2/CLIP's reversible table from bytes to printable characters, in the order CLIP's vocabulary
/// lists them: printable Latin-1 bytes first (as themselves), then the rest mapped from U+0100 on.
let byteLevelAlphabet: [(byte: UInt8, symbol: Character)] = {
    let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
    var table = printable.map { (UInt8($0), Character(Unicode.Scalar(UInt8($0)))) }
    var next: UInt32 = 0x100
    for byte in 0...255 where !printable.contains(byte) {
        table.append((UInt8(byte), Character(Unicode.Scalar(next)!)))
        next += 1
    }
    return table
}()

/// Merges a word's byte symbols by rank. Symbols are vocabulary ids: every symbol is either one byte's
/// character (with `</w>` when it ends the word) or the result of a merge, and all of those are in the
/// vocabulary, so comparing ids is comparing the strings the reference compares.
final class ByteLevelBPE: @unchecked Sendable {
    struct Merge {
        let rank: Int
        let result: Int
    }

    private let byteSymbol: [Int]
    private let finalByteSymbol: [Int]
    private let merges: [UInt64: Merge]
    private var cache: [[UInt8]: [Int]]
    private let cacheLock = NSLock()

    /// - Parameters:
    ///   - byteSymbol: vocabulary id of each byte's character, indexed by byte.
    ///   - finalByteSymbol: the same with `</w>`.
    ///   - merges: pair of ids -> rank and resulting id.
    ///   - wholeWords: words that map to one id without merging (the special tokens, as CLIP's cache).
    init(byteSymbol: [Int], finalByteSymbol: [Int], merges: [UInt64: Merge], wholeWords: [[UInt8]: Int]) {
        self.byteSymbol = byteSymbol
        self.finalByteSymbol = finalByteSymbol
        self.merges = merges
        self.cache = wholeWords.mapValues { [$0] }
    }

    static func pairKey(_ first: Int, _ second: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: first)) << 32 | UInt64(UInt32(truncatingIfNeeded: second))
    }

    /// The ids of one pre-tokenized word, given as its UTF-8 bytes (the cache key: bytes, not a Swift
    /// String, whose equality would merge canonically equivalent but differently encoded words).
    func encode(word: [UInt8]) -> [Int] {
        cacheLock.lock()
        let cached = cache[word]
        cacheLock.unlock()
        if let cached { return cached }

        var symbols = word.dropLast().map { byteSymbol[Int($0)] }
        if let last = word.last { symbols.append(finalByteSymbol[Int(last)]) }
        while symbols.count > 1, let best = bestMerge(in: symbols) {
            symbols = applying(best.pair, result: best.merge.result, to: symbols)
        }

        cacheLock.lock()
        cache[word] = symbols
        cacheLock.unlock()
        return symbols
    }

    private func bestMerge(in symbols: [Int]) -> (pair: (Int, Int), merge: Merge)? {
        var best: (pair: (Int, Int), merge: Merge)?
        for index in 0..<(symbols.count - 1) {
            let pair = (symbols[index], symbols[index + 1])
            if let merge = merges[Self.pairKey(pair.0, pair.1)], merge.rank < best?.merge.rank ?? Int.max {
                best = (pair, merge)
            }
        }
        return best
    }

    /// Replaces every non-overlapping occurrence of `pair`, scanning left to right.
    private func applying(_ pair: (Int, Int), result: Int, to symbols: [Int]) -> [Int] {
        var merged: [Int] = []
        merged.reserveCapacity(symbols.count)
        var index = 0
        while index < symbols.count {
            if index + 1 < symbols.count, symbols[index] == pair.0, symbols[index + 1] == pair.1 {
                merged.append(result)
                index += 2
            } else {
                merged.append(symbols[index])
                index += 1
            }
        }
        return merged
    }
}
