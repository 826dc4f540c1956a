import XCTest
@testable import Tokenizers

/// ftfy's behaviour on single examples (expected values from ftfy 6.3.1); the corpus test covers the rest.
final class TextFixerTests: XCTestCase {
    private func fixed(_ text: String) -> String {
        String(String.UnicodeScalarView(TextFixer.fixText(Array(text.unicodeScalars))))
    }

    private func encodingFixed(_ text: String) -> String {
        String(String.UnicodeScalarView(Mojibake.fixEncoding(Array(text.unicodeScalars))))
    }

    func testFtfyDocumentationExamples() {
        XCTAssertEqual(fixed("âœ” No problems"), "✔ No problems")
        XCTAssertEqual(fixed("&macr;\\_(ã\u{83}\u{84})_/&macr;"), "¯\\_(ツ)_/¯")
        XCTAssertEqual(fixed("Broken text&hellip; it&#x2019;s ﬂubberiﬁc!"), "Broken text… it's flubberific!")
        XCTAssertEqual(fixed("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES")
        XCTAssertEqual(fixed("Ｕﾀｰﾝ"), "Uターン")
    }

    func testMojibakeOfUTF8ReadAsWindows1252OrLatin1() {
        XCTAssertEqual(encodingFixed("cafÃ©"), "café")
        XCTAssertEqual(encodingFixed("â€œ"), "“")
        XCTAssertEqual(encodingFixed("l’Ã©tÃ©"), "l’été")  // a run of mojibake inside good text
        XCTAssertEqual(encodingFixed("voilÃ le travail"), "voilà le travail")  // 0xA0 that became a space
        XCTAssertEqual(encodingFixed("it\u{92}s"), "it’s")  // a C1 control meant as Windows-1252
        XCTAssertEqual(fixed("â€œ"), "\"")  // then the quote is uncurled
    }

    func testHTMLEntitiesOnlyWithoutAngleBrackets() {
        XCTAssertEqual(fixed("P&EACUTE;REZ &#128512; &#59;"), "PÉREZ 😀 &#59;")
        XCTAssertEqual(fixed("Tom &amp; Jerry < 3"), "Tom &amp; Jerry < 3")
        XCTAssertEqual(fixed("&amp;\n<\n&amp;"), "&\n<\n&amp;")  // from the first '<' on, entities stay
    }

    func testControlsLineBreaksAndEscapes() {
        XCTAssertEqual(fixed("a\r\nb\u{2028}c\rd"), "a\nb\nc\nd")
        XCTAssertEqual(fixed("\u{1B}[31mred\u{1B}[0m"), "red")
        XCTAssertEqual(fixed("zero\u{0}width\u{FEFF}"), "zerowidth")
        XCTAssertEqual(fixed("ﬁ ǅ ĳ e\u{301}"), "fi Dž ij é")
    }
}
