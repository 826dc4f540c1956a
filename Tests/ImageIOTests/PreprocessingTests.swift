import XCTest
@testable import ImageIO

final class PreprocessingTests: XCTestCase {
    /// Real example images of the reference through `preprocess_ref` (Lanczos to the long side,
    /// centre crop to multiples of 16), after decoding them as Pillow does (no EXIF rotation).
    func testContentReferenceMatchesTheReference() throws {
        let cases = Fixtures.cases("preprocess")
        XCTAssertEqual(cases.count, 4)
        for entry in cases {
            let file = try XCTUnwrap(entry["file"] as? String)
            let image = try ImageFile.read(Fixtures.url(file), options: ImageDecodingOptions(applyEXIFOrientation: false))
            let content = try Preprocessing.contentReference(image, longSide: try XCTUnwrap(entry["longSide"] as? Int))
            let expected = try ImageFile.read(Fixtures.url(try XCTUnwrap(entry["content"] as? String)))
            XCTAssertEqual([content.width, content.height], [expected.width, expected.height], file)
            XCTAssertTrue(content.width % 16 == 0 && content.height % 16 == 0)
            let comparison = ByteComparison(content.pixels, expected.pixels)
            XCTAssertEqual(comparison.mismatches, 0, "\(file): \(comparison)")
        }
    }

    /// SigLIP pixel values: Pillow BICUBIC 384x384 (squashed), then the processor's rescale and
    /// normalisation, whose per-level values the fixture took from the real SiglipImageProcessor.
    func testSiglipPixelValuesMatchTheProcessor() throws {
        let table = try Fixtures.floats(try XCTUnwrap(Fixtures.tensors["siglip"] as? String))
        XCTAssertEqual(table.count, 256)
        let entry = try XCTUnwrap(Fixtures.cases("preprocess").first { $0["siglip384"] != nil })
        let image = try ImageFile.read(Fixtures.url(try XCTUnwrap(entry["file"] as? String)), options: ImageDecodingOptions(applyEXIFOrientation: false))
        let resized = try ImageFile.read(Fixtures.url(try XCTUnwrap(entry["siglip384"] as? String)))
        let values = try Preprocessing.siglipPixelValues(image)
        XCTAssertEqual(values.count, 3 * 384 * 384)
        let plane = 384 * 384
        var mismatches = 0
        for index in 0..<plane {
            for channel in 0..<3 where values[channel * plane + index].bitPattern != table[Int(resized.pixels[index * 3 + channel])].bitPattern {
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testSignedUnitValuesMatchToTensorTimesTwoMinusOne() throws {
        let table = try Fixtures.floats(try XCTUnwrap(Fixtures.tensors["signedUnit"] as? String))
        let ramp = try RGBImage(width: 256, height: 1, pixels: (0..<256).flatMap { [UInt8($0), UInt8(255 - $0), UInt8($0)] })
        let values = Preprocessing.signedUnitValues(ramp)
        XCTAssertEqual(values[0..<256].map(\.bitPattern), table.map(\.bitPattern))  // R plane
        XCTAssertEqual(values[256..<512].map(\.bitPattern), table.reversed().map(\.bitPattern))  // G plane
    }

    /// clamp, 127.5 * (x + 1) in float32, truncation: bytes equal torch's on edge values.
    func testImageFromDecodedMatchesTorch() throws {
        let decoded = try XCTUnwrap(Fixtures.tensors["decoded"] as? [String: Any])
        let values = try Fixtures.floats(try XCTUnwrap(decoded["values"] as? String))
        let width = try XCTUnwrap(decoded["width"] as? Int)
        let image = try Preprocessing.imageFromDecoded(values, width: width, height: 1)
        XCTAssertEqual(image.pixels, try Fixtures.bytes(try XCTUnwrap(decoded["expected"] as? String)))
        let nan = try Preprocessing.imageFromDecoded([.nan, 1, -1], width: 1, height: 1)
        XCTAssertEqual(nan.pixels, [0, 255, 0])
        assertImageError(try Preprocessing.imageFromDecoded([0, 0], width: 1, height: 1), "short tensor") {
            $0 == .decodedTensorShape(count: 2, width: 1, height: 1)
        }
    }

    /// The spec's worked example: 1000x667 -> 512x341 -> crop 512x336 starting at row 2.
    func testContentReferenceSizeArithmetic() throws {
        let landscape = try RGBImage(width: 1000, height: 667, red: 10, green: 20, blue: 30)
        let content = try Preprocessing.contentReference(landscape)
        XCTAssertEqual([content.width, content.height], [512, 336])
        let portrait = try RGBImage(width: 300, height: 1000, red: 1, green: 2, blue: 3)
        let tall = try Preprocessing.contentReference(portrait, longSide: 512)
        XCTAssertEqual([tall.width, tall.height], [144, 512])  // int(512/1000*300) = 153 -> 144
        let placeholder = try RGBImage(width: 16, height: 16, red: 0, green: 0, blue: 0)
        XCTAssertEqual(try Preprocessing.contentReference(placeholder), placeholder)
        let sliver = try RGBImage(width: 2000, height: 20, red: 0, green: 0, blue: 0)
        assertImageError(try Preprocessing.contentReference(sliver), "2000x20") {
            $0 == .referenceTooSmall(width: 2000, height: 20, longSide: 512)
        }
    }
}
