import Foundation
import XCTest
@testable import Tokenizers

final class CLIPTokenizerTests: XCTestCase {
    /// The real vocabulary, derived from CLIP's merges, shared by the tests (loading takes a moment).
    static let real = Result { try CLIPTokenizer(mergesFile: TokenizerFixtures.url("clip-bpe-merges.txt")) }
    static let realBasic = Result { try CLIPTokenizer(mergesFile: TokenizerFixtures.url("clip-bpe-merges.txt"), cleanup: .basic) }

    func testFtfyCleanupMatchesTransformersWithFtfyOnTheWholeCorpus() throws {
        let tokenizer = try Self.real.get()
        XCTAssertEqual(tokenizer.cleanup, .ftfy, "ftfy is the default: the reference's environment has it")
        XCTAssertGreaterThanOrEqual(TokenizerFixtures.ftfyTexts.count, 500)
        TokenizerFixtures.assertMatches(tokenizer, "expected-clip-ftfy.json", texts: TokenizerFixtures.ftfyTexts, padId: 49407)
    }

    func testBasicCleanupMatchesTransformersWithoutFtfy() throws {
        TokenizerFixtures.assertMatches(try Self.realBasic.get(), "expected-clip.json", padId: 49407)
    }

    func testCleanupModesDifferWhereFtfyFixesText() throws {
        let ftfy = try Self.real.get(), basic = try Self.realBasic.get()
        let cases: [(text: String, ftfy: [Int], basic: [Int])] = [
            ("it’s", [585, 568], [585, 728, 503, 338]),  // curly apostrophe: the 's contraction only after ftfy
            ("東京タワー", [48338, 21078, 105, 34941, 2429, 107, 30391],  // ftfy keeps the CJK run whole
             [27667, 365, 21078, 361, 34941, 2429, 107, 30391]),
            ("Tom &amp; Jerry", [2435, 261, 9164], [2435, 261, 6259, 282, 9164]),
            ("ﬁne", [3797], [171, 105, 223, 1422]),
            ("cafÃ©", [15304], [3471, 127, 352, 5811]),  // mojibake of "café"
        ]
        for (text, ftfyIds, basicIds) in cases {
            XCTAssertEqual(ftfy.encode(text).ids.prefix(ftfyIds.count + 2), ([49406] + ftfyIds + [49407])[...], text)
            XCTAssertEqual(basic.encode(text).ids.prefix(basicIds.count + 2), ([49406] + basicIds + [49407])[...], text)
        }
    }

    func testHuggingFaceLayoutUsesTheVocabularyFileIds() throws {
        // small-clip's vocab.json has shuffled ids, so matching proves ids (BOS/EOS too) come from the file.
        let folder = TokenizerFixtures.url("small-clip")
        let tokenizer = try CLIPTokenizer(vocabularyFile: folder.appendingPathComponent("vocab.json"),
                                          mergesFile: folder.appendingPathComponent("merges.txt"), cleanup: .basic)
        XCTAssertNotEqual(tokenizer.startOfTextId, 49406)
        TokenizerFixtures.assertMatches(tokenizer, "expected-clip-small.json", padId: tokenizer.endOfTextId)
    }

    func testDirectoryPrefersVocabularyFile() throws {
        let tokenizer = try CLIPTokenizer(directory: TokenizerFixtures.url("small-clip"), cleanup: .basic)
        let expected = TokenizerFixtures.expected("expected-clip-small.json")
        XCTAssertEqual(tokenizer.encode(TokenizerFixtures.texts[0]).ids.prefix(expected[0].ids.count), expected[0].ids[...])
    }

    func testKnownPromptAndEmptyPrompt() throws {
        let tokenizer = try Self.real.get()
        let cat = tokenizer.encode("a photo of a cat")
        XCTAssertEqual(cat.ids, [49406, 320, 1125, 539, 320, 2368, 49407] + Array(repeating: 49407, count: 70))
        XCTAssertEqual(cat.pieces, ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", "<|endoftext|>"])
        XCTAssertFalse(cat.truncated)
        let empty = tokenizer.encode("")
        XCTAssertEqual(empty.ids, [49406] + Array(repeating: 49407, count: 76))
        XCTAssertEqual(empty.length, 2)
    }

    func testTruncationKeepsTheEndToken() throws {
        let tokenizer = try Self.real.get()
        let long = tokenizer.encode(String(repeating: "cat ", count: 100))
        XCTAssertTrue(long.truncated)
        XCTAssertEqual(long.ids.count, 77)
        XCTAssertEqual(long.length, 77)
        XCTAssertEqual(long.ids.first, 49406)
        XCTAssertEqual(long.ids.last, 49407)
        XCTAssertEqual(Set(long.ids[1..<76]), [2368])
        // Exactly 75 text tokens fit without truncation.
        XCTAssertFalse(tokenizer.encode(String(repeating: "cat ", count: 75)).truncated)
        XCTAssertTrue(tokenizer.encode(String(repeating: "cat ", count: 76)).truncated)
    }

    func testCustomMaxLength() throws {
        let tokenizer = try CLIPTokenizer(mergesFile: TokenizerFixtures.url("clip-bpe-merges.txt"), maxLength: 5)
        let result = tokenizer.encode("a photo of a cat")
        XCTAssertEqual(result.ids, [49406, 320, 1125, 539, 49407])
        XCTAssertTrue(result.truncated)
    }

    // MARK: Bad files

    func testMissingFilesAreTypedErrors() {
        let missing = URL(fileURLWithPath: "/nonexistent/merges.txt")
        XCTAssertThrowsError(try CLIPTokenizer(mergesFile: missing)) {
            XCTAssertEqual($0 as? TokenizerError, .fileNotFound(path: missing.path))
        }
        XCTAssertThrowsError(try CLIPTokenizer(directory: URL(fileURLWithPath: "/nonexistent"))) {
            XCTAssertEqual($0 as? TokenizerError, .fileNotFound(path: missing.path))
        }
    }

    func testCorruptMergesAreTypedErrors() throws {
        try assertMalformed(merges: "#version: 0.2\ni n\nthis line has three\n", reason: "line 3 is not a merge of two symbols")
        try assertMalformed(merges: "#version: 0.2\n", reason: "no merges")
        try assertMalformed(mergesData: Data([0x23, 0x0A, 0xFF, 0xFE, 0x20, 0x61]), reason: "not UTF-8 text")
    }

    func testCorruptVocabularyIsATypedError() throws {
        let folder = try temporaryFolder()
        let merges = folder.appendingPathComponent("merges.txt")
        try "#version: 0.2\ni n\n".write(to: merges, atomically: true, encoding: .utf8)
        let vocabulary = folder.appendingPathComponent("vocab.json")

        try "[1, 2]".write(to: vocabulary, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: vocabulary.path, reason: "not a JSON object of symbol -> id"))
        }
        try #"{"a": "one"}"#.write(to: vocabulary, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: vocabulary.path, reason: "the id of 'a' is not an integer"))
        }
        // A vocabulary without the merge result "in".
        try #"{"i": 0, "n": 1}"#.write(to: vocabulary, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: vocabulary.path, reason: "the vocabulary has no symbol 'in'"))
        }
    }

    private func assertMalformed(merges: String, reason: String, line: UInt = #line) throws {
        try assertMalformed(mergesData: Data(merges.utf8), reason: reason, line: line)
    }

    private func assertMalformed(mergesData: Data, reason: String, line: UInt = #line) throws {
        let file = try temporaryFolder().appendingPathComponent("merges.txt")
        try mergesData.write(to: file)
        XCTAssertThrowsError(try CLIPTokenizer(mergesFile: file), line: line) {
            XCTAssertEqual($0 as? TokenizerError, .malformed(path: file.path, reason: reason), line: line)
        }
    }
}

extension XCTestCase {
    /// A fresh folder, removed when the test ends.
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("uso-tokenizers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
