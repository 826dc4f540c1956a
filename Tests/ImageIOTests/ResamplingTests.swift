import XCTest
@testable import ImageIO

final class ResamplingTests: XCTestCase {
    /// Pillow's `resize` with every filter: down, up, one axis only, odd sizes, 1x1, extreme
    /// aspect ratios (5x97 -> 3x200 and 40x7), tiny sources.
    func testMatchesPillowResizeByteForByte() throws {
        let cases = Fixtures.cases("resize")
        XCTAssertEqual(cases.count, 96)
        let filters: [String: ResamplingFilter] = ["nearest": .nearest, "box": .box, "bilinear": .bilinear,
                                                   "hamming": .hamming, "bicubic": .bicubic, "lanczos": .lanczos]
        var sources: [String: RGBImage] = [:]
        var worst = 0, mismatchedBytes = 0, totalBytes = 0
        for entry in cases {
            let sourcePath = try XCTUnwrap(entry["source"] as? String)
            let source = try sources[sourcePath] ?? RGBImage(width: try XCTUnwrap(entry["sourceWidth"] as? Int),
                                                             height: try XCTUnwrap(entry["sourceHeight"] as? Int),
                                                             pixels: Fixtures.bytes(sourcePath))
            sources[sourcePath] = source
            let filterName = try XCTUnwrap(entry["filter"] as? String)
            let width = try XCTUnwrap(entry["width"] as? Int), height = try XCTUnwrap(entry["height"] as? Int)
            let resized = try source.resized(width: width, height: height, filter: try XCTUnwrap(filters[filterName]))
            let comparison = ByteComparison(resized.pixels, try Fixtures.bytes(try XCTUnwrap(entry["expected"] as? String)))
            XCTAssertEqual(comparison.mismatches, 0, "\(filterName) \(source.width)x\(source.height) -> \(width)x\(height): \(comparison)")
            worst = max(worst, comparison.maxDifference)
            mismatchedBytes += comparison.mismatches
            totalBytes += comparison.count
        }
        print("resize vs Pillow: max difference \(worst), \(mismatchedBytes) of \(totalBytes) bytes differ")
    }

    func testSameSizeIsIdentityAndBadSizesThrow() throws {
        let image = try RGBImage(width: 3, height: 2, pixels: Array(0..<18))
        XCTAssertEqual(try image.resized(width: 3, height: 2, filter: .lanczos), image)
        assertImageError(try image.resized(width: 0, height: 2, filter: .bicubic), "zero width") {
            $0 == .invalidSize(width: 0, height: 2)
        }
        assertImageError(try RGBImage(width: 3, height: 2, pixels: [1, 2, 3]), "short buffer") {
            $0 == .pixelCountMismatch(width: 3, height: 2, count: 3)
        }
    }

    /// A constant image stays constant under every filter (weights are normalised).
    func testConstantImageStaysConstant() throws {
        let gray = try RGBImage(width: 19, height: 7, red: 200, green: 17, blue: 99)
        for filter in ResamplingFilter.allCases {
            let resized = try gray.resized(width: 5, height: 30, filter: filter)
            XCTAssertEqual(resized, try RGBImage(width: 5, height: 30, red: 200, green: 17, blue: 99), "\(filter)")
        }
    }
}
