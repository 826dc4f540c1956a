import Foundation
import XCTest
@testable import ImageIO

final class EncodingTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("uso-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func sample() throws -> RGBImage {
        try ImageFile.read(Fixtures.url("decode/png_rgb8.png"))
    }

    private func meanAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) -> Double {
        Double(zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.pixels.count)
    }

    func testPNGRoundTripWithTextMetadata() throws {
        let image = try sample()
        let text = [PNGTextEntry(key: "parameters", text: "a cat\nSteps: 25, Seed: 3407, Size: 1024x1024"),
                    PNGTextEntry(key: "uso", text: #"{"prompt": "un café ☕", "seed": 3407}"#),  // not Latin-1 -> iTXt
                    PNGTextEntry(key: "Comment", text: "Latin-1 only: é ü ß")]
        let url = directory.appendingPathComponent("out.png")
        try ImageFile.write(image, to: url, as: .png(text: text))
        XCTAssertEqual(try ImageFile.read(url), image)
        XCTAssertEqual(try ImageFile.readPNGText(url), text)
        let data = try Data(contentsOf: url)
        XCTAssertNotNil(data.range(of: Data("iTXtuso".utf8)), "non-Latin-1 text goes to iTXt")
        XCTAssertNotNil(data.range(of: Data("tEXtparameters".utf8)), "A1111 reads a tEXt 'parameters' chunk")
    }

    /// tEXt, iTXt and zTXt chunks written by Pillow.
    func testReadsPillowTextChunks() throws {
        let entry = try XCTUnwrap(Fixtures.manifest["pngText"] as? [String: Any])
        let expected = try XCTUnwrap(entry["entries"] as? [[String]]).map { PNGTextEntry(key: $0[0], text: $0[1]) }
        XCTAssertEqual(try ImageFile.readPNGText(Fixtures.url(try XCTUnwrap(entry["file"] as? String))), expected)
        assertImageError(try ImageFile.readPNGText(Fixtures.url("decode/jpeg_420.jpg")), "JPEG") {
            if case .unsupportedFormat = $0 { true } else { false }
        }
        assertImageError(try ImageFile.readPNGText(Fixtures.url("errors/truncated.png")), "truncated") { $0 == .truncated(format: .png) }
    }

    func testInvalidTextKeysAreRejected() throws {
        for key in ["", " lead", "trail ", "two  spaces", String(repeating: "k", count: 80), "snow☃"] {
            assertImageError(try ImageFile.encode(try sample(), as: .png(text: [PNGTextEntry(key: key, text: "x")])), key) {
                $0 == .invalidMetadataKey(key)
            }
        }
    }

    func testJPEGAndWebPEncodeAndDecodeBack() throws {
        let image = try ImageFile.read(Fixtures.url("decode/webp_lossless.webp"))  // smooth 41x29
        let jpeg = try ImageFile.decode(ImageFile.encode(image, as: .jpeg(quality: 95)))
        XCTAssertEqual([jpeg.width, jpeg.height], [41, 29])
        XCTAssertLessThan(meanAbsoluteDifference(jpeg, image), 4)
        let lossless = try ImageFile.decode(ImageFile.encode(image, as: .webp(lossless: true)))
        XCTAssertEqual(lossless, image)
        let lossy = try ImageFile.decode(ImageFile.encode(image, as: .webp(quality: 90)))
        XCTAssertLessThan(meanAbsoluteDifference(lossy, image), 4)
        assertImageError(try ImageFile.encode(image, as: .jpeg(quality: 101)), "quality") { $0 == .invalidQuality(101) }
    }

    /// A failed write leaves neither a partial image nor a temporary file, and never replaces a
    /// good file with a bad one.
    func testWritesAreAtomic() throws {
        let image = try sample()
        let url = directory.appendingPathComponent("result.png")
        try ImageFile.write(image, to: url, as: .png())
        let before = try Data(contentsOf: url)

        // Encoding fails: the existing file is untouched.
        XCTAssertThrowsError(try ImageFile.write(image, to: url, as: .jpeg(quality: -1)))
        XCTAssertEqual(try Data(contentsOf: url), before)

        // The final rename fails (a directory is in the way): the temporary file is removed.
        let blocked = directory.appendingPathComponent("blocked.png")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("child"), withIntermediateDirectories: true)
        assertImageError(try ImageFile.write(image, to: blocked, as: .png()), "rename onto a directory") {
            if case .writeFailed = $0 { true } else { false }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(), ["blocked.png", "result.png"])

        // The directory does not exist: nothing is created.
        let missing = directory.appendingPathComponent("no/such/dir/out.png")
        assertImageError(try ImageFile.write(image, to: missing, as: .png()), "missing directory") {
            if case .writeFailed = $0 { true } else { false }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("no").path))

        // Overwriting works and replaces the contents whole.
        let other = try RGBImage(width: 5, height: 4, red: 1, green: 2, blue: 3)
        try ImageFile.write(other, to: url, as: .png())
        XCTAssertEqual(try ImageFile.read(url), other)
    }
}
