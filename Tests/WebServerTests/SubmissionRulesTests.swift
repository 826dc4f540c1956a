import Foundation
import Pipeline
import XCTest
@testable import WebServer

/// The API applies the request model's rules, as `uso generate` does, and the page offers more
/// than two style slots.
final class SubmissionRulesTests: XCTestCase {
    private func submission(_ fields: [String: SubmittedValue]) throws -> JobSubmission {
        try JobSubmission(fields: fields, capabilities: testCapabilities, limits: .default)
    }

    /// A content image whose short side would be cropped to nothing is refused up front (it used to
    /// be queued and fail in the generator).
    func testContentImageCroppedToNothingIsABadRequest() throws {
        let thin = SubmittedValue.file(try pngData(width: 300, height: 16))
        XCTAssertThrowsError(try submission(["prompt": .text(""), "contentImage": thin])) { error in
            let apiError = error as? APIError
            XCTAssertEqual(apiError?.status, .badRequest, "\(error)")
            XCTAssertTrue(apiError?.message.contains("'contentImage' is 300x16 pixels") == true, "\(error)")
        }
    }

    func testNonFiniteGuidanceIsABadRequest() throws {
        for text in ["nan", "inf", "-inf", "1e308"] {
            XCTAssertThrowsError(try submission(["prompt": .text("p"), "guidance": .text(text)]), text) { error in
                XCTAssertEqual((error as? APIError)?.status, .badRequest, "\(error)")
                XCTAssertTrue((error as? APIError)?.message.contains("'guidance'") == true, "\(error)")
            }
        }
    }

    /// "Keep input size" is the request model's instruct-edit size with the server's base, incl. the
    /// reference's 16x16 placeholder, which preprocessing passes unchanged.
    func testKeepInputSizeIsTheRequestModelsEditSize() throws {
        for (width, height, contentReference) in [(300, 200, 128), (96, 80, 64), (16, 16, 128)] {
            let content = try XCTUnwrap(try submission(["prompt": .text(""), "contentImage": .file(try pngData(width: width, height: height))])
                .contentImage)
            let kept = JobSubmission.keptSize(content, contentReferenceSize: contentReference, capabilities: testCapabilities)
            let edit = GenerationRequest.editSize(contentImageWidth: width, contentImageHeight: height,
                                                  contentReferenceSize: contentReference, sizeBase: testCapabilities.keepSizeBase)
            let aligned = [edit.width, edit.height].map { max(testCapabilities.minSide, $0 / 16 * 16) }
            XCTAssertEqual([kept.width, kept.height], aligned, "\(width)x\(height) at \(contentReference)")
        }
    }

    /// Two style slots, and a button that adds more (up to the server's maxStyleImages); the form
    /// sends every style slot, not a fixed two.
    func testPageOffersMoreStyleSlots() {
        XCTAssertTrue(Page.html.contains(#"id="add-style""#))
        XCTAssertTrue(Page.html.contains("styleSlots().length >= state.caps.maxStyleImages"))
        XCTAssertTrue(Page.html.contains(#"for (const slot of styleSlots()) if (state.slots[slot]) form.append("styleImages""#))
        XCTAssertFalse(Page.html.contains(#"["style1", "style2"]"#))
    }

    /// The step cache is a setting of the API and a control of the page, off unless asked for.
    func testStepCacheIsChosenByNameAndOffByDefault() throws {
        XCTAssertEqual(try submission(["prompt": .text("p")]).parameters.stepCache, .off)
        XCTAssertEqual(try submission(["prompt": .text("p"), "stepCache": .text("fast")]).parameters.stepCache, .fast)
        XCTAssertThrowsError(try submission(["prompt": .text("p"), "stepCache": .text("turbo")])) { error in
            XCTAssertEqual((error as? APIError)?.status, .badRequest, "\(error)")
            XCTAssertTrue((error as? APIError)?.message.contains("balanced") == true, "\(error)")
        }
        XCTAssertTrue(Page.html.contains(#"form.append("stepCache", $("step-cache").value)"#))
    }
}
