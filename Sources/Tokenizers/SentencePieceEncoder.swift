// SentencePiece's encoding of one piece of text with a unigram model (sentencepiece 0.2.0:
// Normalizer::Normalize, unigram Model::EncodeOptimized, and SentencePieceProcessor's merging of
// consecutive unknown pieces), on UTF-8 bytes as SentencePiece works.

struct SentencePieceEncoder {
    /// sentencepiece's kUnkPenalty: an unknown character scores this much below the worst piece.
    private static let unknownPenalty: Float = 10
    private static let spaceSymbol = Array("\u{2581}".utf8)

    private let normalization: SentencePieceModel.Normalization
    private let pieceTexts: [String]
    private let scores: [Float]
    private let trie: PieceTrie
    private let unknownId: Int
    private let unknownScore: Float

    init(model: SentencePieceModel) {
        normalization = model.normalization
        pieceTexts = model.pieces.map(\.text)
        scores = model.pieces.map(\.score)
        var trie = PieceTrie()
        // The lattice only offers normal pieces; control, unknown, byte and unused pieces never match text.
        for (id, piece) in model.pieces.enumerated() where piece.kind == .normal {
            trie.insert(Array(piece.text.utf8), id: id)
        }
        self.trie = trie
        unknownId = model.pieces.firstIndex { $0.kind == .unknown } ?? 0
        let worstScore = model.pieces.filter { $0.kind == .normal }.map(\.score).min() ?? 0
        unknownScore = worstScore - Self.unknownPenalty
    }

    /// Ids and piece strings of `text`; a run of unknown characters is one unknown piece spelled by its text.
    func encode(_ text: [UInt8]) -> [(id: Int, piece: String)] {
        let normalized = normalize(text[...])
        var result: [(id: Int, piece: String)] = []
        var previousWasUnknown = false
        for (range, id) in bestSegmentation(normalized) {
            let surface = String(decoding: normalized[range], as: UTF8.self)
            let isUnknown = id == unknownId
            if isUnknown && previousWasUnknown {
                result[result.count - 1].piece += surface
            } else {
                result.append((id, isUnknown ? surface : pieceTexts[id]))
            }
            previousWasUnknown = isUnknown
        }
        return result
    }

    // MARK: Normalisation

    /// Normalizer::Normalize: rules from the charsmap, leading/trailing/repeated spaces removed, a dummy
    /// `▁` prefix, spaces escaped as `▁`.
    func normalize(_ input: ArraySlice<UInt8>) -> [UInt8] {
        var rest = input
        if normalization.removeExtraWhitespaces {
            while !rest.isEmpty {
                let (replacement, consumed) = normalizePrefix(rest)
                guard replacement.elementsEqual([0x20]) else { break }
                rest = rest.dropFirst(consumed)
            }
        }
        guard !rest.isEmpty else { return [] }
        let space: [UInt8] = normalization.escapeWhitespaces ? Self.spaceSymbol : [0x20]
        var output: [UInt8] = []
        output.reserveCapacity(rest.count * 2)
        if normalization.addDummyPrefix { output += space }
        var previousWasSpace = normalization.removeExtraWhitespaces
        while !rest.isEmpty {
            var (replacement, consumed) = normalizePrefix(rest)
            if previousWasSpace { replacement = replacement.drop { $0 == 0x20 } }
            if let last = replacement.last {
                for byte in replacement {
                    if byte == 0x20 { output += space } else { output.append(byte) }
                }
                previousWasSpace = last == 0x20
            }
            rest = rest.dropFirst(consumed)
            if !normalization.removeExtraWhitespaces { previousWasSpace = false }
        }
        if normalization.removeExtraWhitespaces {
            while output.count >= space.count, output.suffix(space.count).elementsEqual(space) {
                output.removeLast(space.count)
            }
        }
        return output
    }

    /// The replacement of the longest rule at the start of `input`, or its first character unchanged.
    private func normalizePrefix(_ input: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, Int) {
        if let match = normalization.charsmap?.longestMatch(input) { return match }
        let length = min(utf8SequenceLength(input[input.startIndex]), input.count)
        return (input.prefix(length), length)
    }

    // MARK: Viterbi

    /// The highest-scoring segmentation into pieces (ties keep the first candidate found, scanning start
    /// positions left to right and pieces shortest first); scores add up in Float as sentencepiece does.
    private func bestSegmentation(_ text: [UInt8]) -> [(range: Range<Int>, id: Int)] {
        struct BestPath {
            var id = -1
            var score: Float = 0
            var start = -1
        }
        var best = [BestPath](repeating: BestPath(), count: text.count + 1)
        var start = 0
        while start < text.count {
            let scoreSoFar = best[start].score
            let characterLength = min(utf8SequenceLength(text[start]), text.count - start)
            var coversOneCharacter = false
            func offer(end: Int, id: Int, score: Float) {
                let candidate = score + scoreSoFar
                if best[end].start == -1 || candidate > best[end].score {
                    best[end] = BestPath(id: id, score: candidate, start: start)
                }
            }
            trie.forEachPrefix(of: text, from: start) { end, id in
                offer(end: end, id: id, score: scores[id])
                if end - start == characterLength { coversOneCharacter = true }
            }
            if !coversOneCharacter { offer(end: start + characterLength, id: unknownId, score: unknownScore) }
            start += characterLength
        }
        var segments: [(range: Range<Int>, id: Int)] = []
        var end = text.count
        while end > 0 {
            let node = best[end]
            segments.append((node.start..<end, node.id))
            end = node.start
        }
        return segments.reversed()
    }
}

/// The length of the UTF-8 sequence a lead byte starts (sentencepiece's OneCharLen: 1 for stray bytes).
func utf8SequenceLength(_ leadByte: UInt8) -> Int {
    switch leadByte >> 4 {
    case 0xC, 0xD: 2
    case 0xE: 3
    case 0xF: 4
    default: 1
    }
}

/// A byte trie over the pieces, to enumerate the pieces that start at a position.
struct PieceTrie {
    private var children: [UInt64: Int32] = [:]  // (node << 8 | byte) -> child node
    private var pieceAtNode: [Int32] = [-1]

    mutating func insert(_ bytes: [UInt8], id: Int) {
        var node: Int32 = 0
        for byte in bytes {
            let key = UInt64(node) << 8 | UInt64(byte)
            if let child = children[key] {
                node = child
            } else {
                let child = Int32(pieceAtNode.count)
                pieceAtNode.append(-1)
                children[key] = child
                node = child
            }
        }
        pieceAtNode[Int(node)] = Int32(id)
    }

    /// Calls `body(end, id)` for every piece equal to `text[start..<end]`, shortest first.
    func forEachPrefix(of text: [UInt8], from start: Int, _ body: (Int, Int) -> Void) {
        var node: Int32 = 0
        for position in start..<text.count {
            guard let child = children[UInt64(node) << 8 | UInt64(text[position])] else { return }
            node = child
            let id = pieceAtNode[Int(node)]
            if id >= 0 { body(position + 1, Int(id)) }
        }
    }
}
