import Foundation
import XCTest
@testable import ImageIO

final class DecodingTests: XCTestCase {
    /// Every PNG colour type and bit depth, JPEG (4:2:0, 4:4:4, progressive, gray, CMYK) and WebP
    /// (lossy, lossless, alpha, animated) against Pillow's `convert("RGB")`, byte for byte.
    func testDecodesLikePillowConvertRGB() throws {
        let cases = Fixtures.cases("decode")
        XCTAssertGreaterThan(cases.count, 30)
        for entry in cases {
            let file = try XCTUnwrap(entry["file"] as? String)
            let image = try ImageFile.decode(Fixtures.data(file), options: ImageDecodingOptions(applyEXIFOrientation: false))
            XCTAssertEqual(image.width, entry["width"] as? Int, file)
            XCTAssertEqual(image.height, entry["height"] as? Int, file)
            let comparison = ByteComparison(image.pixels, try Fixtures.bytes(try XCTUnwrap(entry["expected"] as? String)))
            XCTAssertEqual(comparison.mismatches, 0, "\(file): \(comparison)")
        }
    }

    /// EXIF orientations 1-8 (JPEG) and 6 (WebP) applied as Pillow's `ImageOps.exif_transpose`.
    func testAppliesEXIFOrientationLikeExifTranspose() throws {
        let oriented = Fixtures.cases("decode").filter { $0["oriented"] != nil }
        XCTAssertEqual(oriented.count, 9)
        for entry in oriented {
            let file = try XCTUnwrap(entry["file"] as? String)
            let expected = try XCTUnwrap(entry["oriented"] as? [String: Any])
            let image = try ImageFile.read(Fixtures.url(file))
            XCTAssertEqual(image.width, expected["width"] as? Int, file)
            XCTAssertEqual(image.height, expected["height"] as? Int, file)
            XCTAssertEqual(image.pixels, try Fixtures.bytes(try XCTUnwrap(expected["expected"] as? String)), file)
        }
    }

    func testErrorsAreTypedAndClear() throws {
        let cases = Fixtures.cases("errors")
        XCTAssertEqual(cases.count, 9)
        for entry in cases {
            let file = try XCTUnwrap(entry["file"] as? String)
            let kind = try XCTUnwrap(entry["error"] as? String)
            assertImageError(try ImageFile.read(Fixtures.url(file)), file) { error in
                switch (kind, error) {
                case ("truncated", .truncated), ("tooLarge", .tooLarge), ("emptyImage", .emptyImage),
                     ("corrupt", .corrupt), ("notAnImage", .notAnImage), ("unsupportedFormat", .unsupportedFormat): true
                default: false
                }
            }
        }
    }

    func testErrorMessagesNameTheFileAndTheProblem() throws {
        do {
            _ = try ImageFile.read(Fixtures.url("errors/huge_30000x30000.png"))
            XCTFail("expected an error")
        } catch let error as ImageError {
            XCTAssertEqual(error.underlying, .tooLarge(width: 30000, height: 30000, limit: 8192 * 8192))
            XCTAssertTrue(error.description.contains("huge_30000x30000.png"), error.description)
            XCTAssertTrue(error.description.contains("30000x30000"), error.description)
        }
        assertImageError(try ImageFile.read(Fixtures.url("does/not/exist.png")), "missing file") {
            if case .unreadableFile = $0 { true } else { false }
        }
    }

    func testPixelLimitIsAnOption() throws {
        let data = try Fixtures.data("decode/png_rgb8.png")  // 23x17
        XCTAssertNoThrow(try ImageFile.decode(data, options: ImageDecodingOptions(maxPixelCount: 23 * 17)))
        for file in ["decode/png_rgb8.png", "decode/jpeg_420.jpg", "decode/webp_lossy.webp"] {
            assertImageError(try ImageFile.decode(Fixtures.data(file), options: ImageDecodingOptions(maxPixelCount: 100)), file) {
                if case .tooLarge = $0 { true } else { false }
            }
        }
    }

    func testHeaderIsReadWithoutDecoding() throws {
        let huge = try ImageInfo(data: Fixtures.data("errors/huge_30000x30000.png"))
        XCTAssertEqual(huge, ImageInfo(format: .png, width: 30000, height: 30000))
        XCTAssertEqual(try ImageInfo(data: Fixtures.data("decode/jpeg_progressive.jpg")), ImageInfo(format: .jpeg, width: 41, height: 29))
        XCTAssertEqual(try ImageInfo(data: Fixtures.data("decode/webp_animated.webp")), ImageInfo(format: .webp, width: 30, height: 20))
    }

    /// The format comes from the bytes: a JPEG named .png decodes as JPEG.
    func testFormatIsSniffedNotTakenFromTheName() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uso-sniff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let misnamed = directory.appendingPathComponent("photo.png")
        try Fixtures.data("decode/jpeg_444.jpg").write(to: misnamed)
        XCTAssertEqual(try ImageFile.read(misnamed), try ImageFile.read(Fixtures.url("decode/jpeg_444.jpg")))
    }

    func testOutputFormatFromFileExtension() {
        XCTAssertEqual(["out.PNG", "a.jpg", "b.jpeg", "c.webp"].map { ImageFormat(fileExtension: URL(fileURLWithPath: $0).pathExtension) },
                       [.png, .jpeg, .jpeg, .webp])
        XCTAssertNil(ImageFormat(fileExtension: "gif"))
    }

    func testReferenceDoesNotRotateButWeDoByDefault() throws {
        let file = Fixtures.url("decode/jpeg_orientation6.jpg")  // stored 24x16, shown 16x24
        let stored = try ImageFile.read(file, options: ImageDecodingOptions(applyEXIFOrientation: false))
        let shown = try ImageFile.read(file)
        XCTAssertEqual([stored.width, stored.height, shown.width, shown.height], [24, 16, 16, 24])
        XCTAssertEqual(stored.oriented(.rotated90Clockwise), shown)
    }
}

final class DamagedFileTests: XCTestCase {
    /// Every decode fixture cut short at nine points and with bytes overwritten at random: each
    /// attempt decodes (damage libjpeg and libpng tolerate, as Pillow does) or throws an
    /// ImageError — never crashes, never returns a malformed image.
    func testDamagedFilesNeverCrash() throws {
        var generator = SplitMix64(seed: 3407)
        var outcomes = (decoded: 0, refused: 0)
        for entry in Fixtures.cases("decode") {
            let original = try [UInt8](Fixtures.data(try XCTUnwrap(entry["file"] as? String)))
            var variants = (1...9).map { Array(original.prefix(original.count * $0 / 10)) }
            for _ in 0..<10 {
                var damaged = original
                for _ in 0..<4 {
                    damaged[Int(generator.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                variants.append(damaged)
            }
            for variant in variants {
                do {
                    let image = try ImageFile.decode(Data(variant))
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                    outcomes.decoded += 1
                } catch is ImageError {
                    outcomes.refused += 1
                }
            }
        }
        print("damaged files: \(outcomes.decoded) decoded, \(outcomes.refused) refused with an ImageError")
        XCTAssertGreaterThan(outcomes.refused, 300)
    }
}

/// A small deterministic generator for test data.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
