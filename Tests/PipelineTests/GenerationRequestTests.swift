import XCTest
import ImageIO
@testable import Pipeline

/// The request model's shared rules: seeds, accepted ranges, the instruct-edit output size.
final class GenerationRequestTests: XCTestCase {
    func testSeedsWrapAsTorchManualSeed() {
        XCTAssertEqual(GenerationRequest.torchSeed("-1"), UInt64.max)
        XCTAssertEqual(GenerationRequest.torchSeed("18446744073709551615"), UInt64.max)
        XCTAssertEqual(GenerationRequest.torchSeed("-9223372036854775808"), 1 << 63)
        XCTAssertEqual(GenerationRequest.torchSeed("3407"), 3407)
        XCTAssertNil(GenerationRequest.torchSeed("18446744073709551616"))
        XCTAssertNil(GenerationRequest.torchSeed("-9223372036854775809"))
        XCTAssertNil(GenerationRequest.torchSeed("1.5"))
    }

    func testGuidanceMustBeFiniteAndInRange() throws {
        for bad in [Double.nan, .infinity, -.infinity, 1e308, -1, 100.5] {
            var request = GenerationRequest(prompt: "p")
            request.guidance = bad
            XCTAssertThrowsError(try request.validate(), "\(bad)") { error in
                let invalid = error as? InvalidSetting
                XCTAssertEqual(invalid?.setting, .guidance)
                XCTAssertTrue(invalid?.requirement.contains("finite number from 0 to 100") == true, "\(error)")
            }
        }
        for good in [0, 1, 4, 100.0] {
            var request = GenerationRequest(prompt: "p")
            request.guidance = good
            XCTAssertNoThrow(try request.validate())
        }
    }

    func testOtherSettingsNameWhatToChange() {
        func refusal(_ change: (inout GenerationRequest) -> Void, contentImageSize: (Int, Int)? = nil) -> InvalidSetting? {
            var request = GenerationRequest(prompt: "p", contentImage: "c.png")
            change(&request)
            do {
                try request.validate(contentImageSize: contentImageSize)
                return nil
            } catch {
                return error as? InvalidSetting
            }
        }
        XCTAssertEqual(refusal { $0.width = 15 }?.setting, .width)
        XCTAssertEqual(refusal { $0.height = 4097 }?.setting, .height)
        XCTAssertEqual(refusal { $0.steps = 0 }?.setting, .steps)
        XCTAssertEqual(refusal { $0.contentReferenceSize = 8 }?.setting, .contentReferenceSize)
        XCTAssertEqual(refusal { $0.sizeBase = 0 }?.setting, .sizeBase)
        XCTAssertEqual(refusal { $0.contentImage = nil; $0.instructEdit = true }?.setting, .contentImage)
        // 1000x10 at a long side of 512 keeps a short side of 5 pixels: cropped to nothing.
        XCTAssertEqual(refusal({ _ in }, contentImageSize: (1000, 10))?.setting, .contentImage)
        // An instruct edit of 128x64 at content_ref 64 and a base of 16: 64x32 scaled by 1/4 is 16x8.
        XCTAssertEqual(refusal({ $0.instructEdit = true; $0.contentReferenceSize = 64; $0.sizeBase = 16 },
                               contentImageSize: (128, 64))?.setting, .height)
        XCTAssertNil(refusal({ $0.instructEdit = true }, contentImageSize: (96, 80)))
    }

    /// The reference scales by 1024 / content_ref (its model's side); the bundled uso-mini is made
    /// at 128, so an instruct edit there must scale by 128 / content_ref, as the page's "keep size".
    func testInstructEditSizeFollowsTheModelSetsBase() throws {
        var reference = GenerationRequest(prompt: "", contentImage: "c.png")
        reference.instructEdit = true
        XCTAssertEqual(reference.outputSize(contentImageSize: (1024, 768)).width, 1024)
        XCTAssertEqual(reference.outputSize(contentImageSize: (1024, 768)).height, 768)

        var mini = reference
        let defaults = try XCTUnwrap(ModelDefaults.load(from: RepositoryPaths.defaultModel))
        defaults.apply(to: &mini)
        XCTAssertEqual(mini.sizeBase, 128)
        mini.contentReferenceSize = 32
        // 96x80 -> long side 32: 32 x int(32/96*80) = 32x26, cropped to 32x16; x 128/32.
        XCTAssertEqual(mini.outputSize(contentImageSize: (96, 80)).width, 128)
        XCTAssertEqual(mini.outputSize(contentImageSize: (96, 80)).height, 64)

        mini.instructEdit = false
        mini.width = 40
        XCTAssertEqual(mini.outputSize(contentImageSize: (96, 80)).width, 40, "without instruct edit the size is as given")
    }

    /// The size rule's preprocessed content size is the one `Preprocessing.contentReference` makes.
    func testPreprocessedSizeMatchesThePreprocessing() throws {
        for (width, height, longSide) in [(96, 80, 32), (80, 96, 48), (300, 200, 128), (16, 16, 512), (640, 100, 200), (33, 33, 40)] {
            let image = try RGBImage(width: width, height: height, red: 10, green: 20, blue: 30)
            let prepared = try Preprocessing.contentReference(image, longSide: longSide)
            let size = GenerationRequest.preprocessedContentSize(imageWidth: width, imageHeight: height, longSide: longSide)
            XCTAssertEqual([size.width, size.height], [prepared.width, prepared.height], "\(width)x\(height) at \(longSide)")
        }
    }
}
