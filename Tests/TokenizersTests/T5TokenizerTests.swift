import Foundation
import XCTest
@testable import Tokenizers

final class T5TokenizerTests: XCTestCase {
    /// The real T5 v1.1 vocabulary in tokenizer.json form, shared by the tests.
    static let real = Result { try T5Tokenizer(tokenizerJSON: TokenizerFixtures.url("t5-tokenizer.json")) }

    func testTokenizerJSONMatchesTheSlowReferenceTokenizerOnEveryFixtureString() throws {
        TokenizerFixtures.assertMatches(try Self.real.get(), "expected-t5.json", padId: 0)
    }

    func testFastTokenizerDiffersFromTheReferenceOnlyAroundWhitespaceAndSpecialTokens() throws {
        // T5TokenizerFast keeps a trailing "▁" and re-adds </s>; we follow the slow tokenizer the reference
        // uses. Check the fixture records such differences, and that ours are the slow ones there.
        let tokenizer = try Self.real.get()
        let expected = TokenizerFixtures.expected("expected-t5.json")
        let differing = zip(TokenizerFixtures.texts, expected).filter { $0.1.fastIds != nil }
        XCTAssertFalse(differing.isEmpty)
        for (text, entry) in differing {
            XCTAssertNotEqual(tokenizer.encode(text).ids.prefix(entry.fastIds?.count ?? 0), entry.fastIds?[...], text)
        }
        // A reference prompt with a trailing space (reference-examples/7style_subject).
        let speech = tokenizer.encode("The man gave an impassioned speech on the podium. ")
        XCTAssertEqual(speech.ids.prefix(speech.length), [37, 388, 1891, 46, 256, 26249, 15, 26, 5023, 30, 8, 22828, 5, 1])
    }

    func testSentencePieceModelMatchesTheSlowTokenizerOnEveryFixtureString() throws {
        let tokenizer = try T5Tokenizer(sentencePieceModel: TokenizerFixtures.url("small-t5/spiece.model"))
        TokenizerFixtures.assertMatches(tokenizer, "expected-t5-small.json", padId: 0)
    }

    /// The real spiece.model is not in the repository; point USO_T5_SPIECE at one to check it too.
    func testRealSentencePieceModelWhenAvailable() throws {
        guard let path = ProcessInfo.processInfo.environment["USO_T5_SPIECE"] else {
            throw XCTSkip("set USO_T5_SPIECE to a T5 v1.1 spiece.model to run this test")
        }
        let tokenizer = try T5Tokenizer(sentencePieceModel: URL(fileURLWithPath: path))
        TokenizerFixtures.assertMatches(tokenizer, "expected-t5.json", padId: 0)
    }

    func testDirectoryPrefersSentencePieceModelThenTokenizerJSON() throws {
        let fromModel = try T5Tokenizer(directory: TokenizerFixtures.url("small-t5"))
        let small = TokenizerFixtures.expected("expected-t5-small.json")
        XCTAssertEqual(fromModel.encode(TokenizerFixtures.texts[0]).ids.prefix(small[0].ids.count), small[0].ids[...])

        let folder = try temporaryFolder()
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("tokenizer.json"),
                                                   withDestinationURL: TokenizerFixtures.url("t5-tokenizer.json"))
        let fromJSON = try T5Tokenizer(directory: folder)
        XCTAssertEqual(fromJSON.encode("a photo of a cat").ids.prefix(6), [3, 9, 1202, 13, 3, 9][...])
    }

    func testEmptyPromptAndTruncation() throws {
        let tokenizer = try Self.real.get()
        let empty = tokenizer.encode("")
        XCTAssertEqual(empty.ids, [1] + Array(repeating: 0, count: 511))
        XCTAssertEqual(empty.pieces, ["</s>"])
        XCTAssertFalse(empty.truncated)

        let long = tokenizer.encode(String(repeating: "cat ", count: 600))
        XCTAssertTrue(long.truncated)
        XCTAssertEqual(long.ids.count, 512)
        XCTAssertEqual(long.length, 512)
        XCTAssertEqual(long.ids.last, 1)
        XCTAssertFalse(tokenizer.encode(String(repeating: "cat ", count: 511)).truncated)
        XCTAssertTrue(tokenizer.encode(String(repeating: "cat ", count: 512)).truncated)
    }

    // MARK: Bad files

    func testMissingFilesAreTypedErrors() {
        let missing = URL(fileURLWithPath: "/nonexistent/spiece.model")
        XCTAssertThrowsError(try T5Tokenizer(sentencePieceModel: missing)) {
            XCTAssertEqual($0 as? TokenizerError, .fileNotFound(path: missing.path))
        }
        XCTAssertThrowsError(try T5Tokenizer(directory: URL(fileURLWithPath: "/nonexistent"))) {
            XCTAssertEqual($0 as? TokenizerError, .fileNotFound(path: "/nonexistent/tokenizer.json"))
        }
    }

    func testTruncatedOrGarbageModelIsMalformed() throws {
        let real = try Data(contentsOf: TokenizerFixtures.url("small-t5/spiece.model"))
        // Cut inside the last field and inside the first piece, and bytes that are no protobuf.
        for data in [real.prefix(real.count - 1), real.prefix(7), Data((0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) })] {
            let file = try temporaryFolder().appendingPathComponent("spiece.model")
            try data.write(to: file)
            XCTAssertThrowsError(try T5Tokenizer(sentencePieceModel: file)) {
                guard case .malformed(let path, _)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
                XCTAssertEqual(path, file.path)
            }
        }
    }

    func testHandWrittenModelsAreCheckedLikeSentencePieceDoes() throws {
        let pad = piece("<pad>", type: 3), eos = piece("</s>", type: 3), unk = piece("<unk>", type: 2)
        let normal = piece("\u{2581}a", score: -1)

        // A minimal valid model: no normalizer spec (identity rules, default flags).
        let tokenizer = try T5Tokenizer(sentencePieceModel: write(pad + eos + unk + normal))
        XCTAssertEqual(tokenizer.encode(" a  a b").pieces, ["\u{2581}a", "\u{2581}a", "\u{2581}b", "</s>"])
        XCTAssertEqual(tokenizer.encode(" a  a b").ids.prefix(4), [3, 3, 2, 1])

        try assertThrows(pad + eos + normal, .malformed(path: "", reason: "there must be exactly one unknown piece"))
        try assertThrows(pad + eos + unk + normal + normal, .malformed(path: "", reason: "piece '\u{2581}a' is defined twice"))
        try assertThrows(eos + unk + normal, .malformed(path: "", reason: "the model has no '<pad>' piece"))
        try assertThrows(pad + eos + unk + normal + field(2, varint(35, 1)),
                         .unsupported(path: "", feature: "byte_fallback"))
        try assertThrows(pad + eos + unk + normal + field(2, varint(3, 2)),
                         .unsupported(path: "", feature: "model type 2 (only unigram, 1)"))
        try assertThrows(pad + eos + unk + piece("x", type: 9), .malformed(path: "", reason: "piece 3 has unknown type 9"))
    }

    func testUnsupportedOrBrokenTokenizerJSON() throws {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("tokenizer.json")
        try #"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: file)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupported(path: file.path, feature: "model type BPE (only Unigram)"))
        }
        try "{not json".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: file)) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: file.path, reason: "not a tokenizer.json object with a \"model\""))
        }
        try #"{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a"]]}}"#.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: file)) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: file.path, reason: "vocab entry 1 is not [piece, score]"))
        }
    }

    // MARK: Hand-written protobuf

    private func assertThrows(_ model: [UInt8], _ expected: TokenizerError, line: UInt = #line) throws {
        let file = try write(model)
        XCTAssertThrowsError(try T5Tokenizer(sentencePieceModel: file), line: line) { error in
            let withPath: TokenizerError = switch expected {
            case .malformed(_, let reason): .malformed(path: file.path, reason: reason)
            case .unsupported(_, let feature): .unsupported(path: file.path, feature: feature)
            default: expected
            }
            XCTAssertEqual(error as? TokenizerError, withPath, line: line)
        }
    }

    private func write(_ bytes: [UInt8]) throws -> URL {
        let file = try temporaryFolder().appendingPathComponent("spiece.model")
        try Data(bytes).write(to: file)
        return file
    }

    private func piece(_ text: String, score: Float = 0, type: UInt64 = 1) -> [UInt8] {
        let scoreBits = score.bitPattern
        let scoreField: [UInt8] = [0x15] + (0..<4).map { UInt8(truncatingIfNeeded: scoreBits >> (8 * $0)) }
        return field(1, field(1, Array(text.utf8)) + scoreField + varint(3, type))
    }

    private func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        encodeVarint(number << 3 | 2) + encodeVarint(UInt64(payload.count)) + payload
    }

    private func varint(_ number: UInt64, _ value: UInt64) -> [UInt8] {
        encodeVarint(number << 3) + encodeVarint(value)
    }

    private func encodeVarint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        repeat {
            bytes.append(UInt8(value & 0x7F) | (value > 0x7F ? 0x80 : 0))
            value >>= 7
        } while value > 0
        return bytes
    }
}
