import XCTest
@testable import ModelHub

final class SHA256Tests: XCTestCase {
    private func hex(_ text: String) -> String { SHA256.hash(Array(text.utf8)).hexString }

    // FIPS 180-4 example vectors (NIST CSRC "SHA256.pdf") and the empty message.
    func testKnownVectors() {
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)).hexString,
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Padding edge cases: 55, 56, 63, 64 and 65 bytes need one or two final blocks (values from Python's hashlib).
    func testPaddingBoundaries() {
        let expected = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
            65: "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0",
        ]
        for (length, digest) in expected {
            XCTAssertEqual(hex(String(repeating: "a", count: length)), digest, "\(length) bytes")
        }
    }

    /// Fed in uneven pieces, the streaming hasher gives the one-shot digest (value from Python's hashlib).
    func testIncrementalUpdatesMatchOneShot() {
        let message = (0..<1000).map { UInt8(($0 * 7 + 3) % 256) }
        let expected = "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"
        XCTAssertEqual(SHA256.hash(message).hexString, expected)
        for pieceLength in [1, 3, 63, 64, 65, 200] {
            var hasher = SHA256()
            var start = 0
            while start < message.count {
                let end = min(start + pieceLength, message.count)
                hasher.update(message[start..<end])
                start = end
            }
            XCTAssertEqual(hasher.finalize().hexString, expected, "pieces of \(pieceLength)")
        }
    }

    func testFileDigest() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("abc".utf8).write(to: url)
        XCTAssertEqual(try SHA256.hexDigest(ofFileAt: url),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
