// Fixtures written by tools/fixtures/tokenizers.py from transformers 4.43.3 or 4.46.3 (see that script).
import Foundation
import XCTest
@testable import Tokenizers

enum TokenizerFixtures {
    /// Tests/Fixtures/tokenizers, found from this file's path.
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/tokenizers")
    }()

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// One fixture string's expected output from the reference tokenizer.
    struct Expected: Decodable {
        /// Unpadded ids (HF's padded output is these followed only by padding).
        let ids: [Int]
        let truncated: Bool
        /// HF's spelling of the same tokens (only in the real-vocabulary fixtures).
        let tokens: [String]?
        /// T5TokenizerFast's ids, present only where they differ from the slow (reference) tokenizer.
        let fastIds: [Int]?
    }

    static let texts: [String] = load("texts.json")
    /// The CLIP ftfy corpus: texts.json's strings and text aimed at each of ftfy's fixes.
    static let ftfyTexts: [String] = load("clip-ftfy-texts.json")

    static func expected(_ name: String) -> [Expected] { load(name) }

    private static func load<T: Decodable>(_ name: String) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
        } catch {
            fatalError("cannot read fixture \(name): \(error)")
        }
    }

    /// Encodes every fixture string and compares ids (padded), pieces and the truncation flag.
    /// Returns how many strings matched exactly; failures are reported for the first few mismatches.
    @discardableResult
    static func assertMatches(_ tokenizer: TextTokenizer, _ fixture: String, texts: [String] = texts, padId: Int,
                              file: StaticString = #filePath, line: UInt = #line) -> Int {
        let expected = expected(fixture)
        XCTAssertEqual(expected.count, texts.count, "fixture \(fixture) does not cover texts.json", file: file, line: line)
        var exact = 0
        var reported = 0
        for (text, expected) in zip(texts, expected) {
            let result = tokenizer.encode(text)
            let paddedIds = expected.ids + Array(repeating: padId, count: tokenizer.maxLength - expected.ids.count)
            let matches = result.ids == paddedIds && result.truncated == expected.truncated
                && (expected.tokens == nil || expected.tokens == result.pieces)
            if matches {
                exact += 1
            } else if reported < 5 {
                reported += 1
                XCTFail("\(fixture): \(text.debugDescription.prefix(120)): expected \(expected.ids) \(expected.tokens ?? []) "
                        + "truncated \(expected.truncated), got \(result.ids.prefix(result.length)) \(result.pieces) "
                        + "truncated \(result.truncated)", file: file, line: line)
            }
        }
        XCTAssertEqual(exact, texts.count, "\(fixture): \(exact) of \(texts.count) strings exact", file: file, line: line)
        print("\(fixture): \(exact) of \(texts.count) strings exact")
        return exact
    }
}
