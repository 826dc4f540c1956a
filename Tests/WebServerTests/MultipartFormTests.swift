import Foundation
import XCTest
@testable import WebServer

final class MultipartFormTests: XCTestCase {
    func testBoundaryFromContentType() {
        XCTAssertEqual(MultipartForm.boundary(contentType: "multipart/form-data; boundary=abc"), "abc")
        XCTAssertEqual(MultipartForm.boundary(contentType: "multipart/form-data; charset=utf-8; Boundary=\"a b\""), "a b")
        XCTAssertNil(MultipartForm.boundary(contentType: "multipart/form-data"))
        XCTAssertNil(MultipartForm.boundary(contentType: "multipart/form-data; boundary="))
        XCTAssertNil(MultipartForm.boundary(contentType: "multipart/form-data; boundary=" + String(repeating: "x", count: 71)))
    }

    func testPartsKeepNamesFileNamesAndBinaryBytes() throws {
        let binary = Data([0, 13, 10, 45, 45, 255, 13, 10])  // contains CRLF and "--", but not CRLF--boundary
        var body = Data("preamble\r\n--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nA cat; \"quoted\".\r\n".utf8)
        body.append(Data("--B\r\nContent-Disposition: form-data; name=\"contentImage\"; filename=\"c.png\"\r\nContent-Type: image/png\r\n\r\n".utf8))
        body.append(binary)
        body.append(Data("\r\n--B--\r\nepilogue".utf8))
        let parts = try MultipartForm.parse(body, boundary: "B")
        XCTAssertEqual(parts, [
            MultipartPart(name: "prompt", filename: nil, data: Data("A cat; \"quoted\".".utf8)),
            MultipartPart(name: "contentImage", filename: "c.png", data: binary),
        ])
    }

    func testMalformedBodiesAreErrors() {
        let malformed = [
            "no boundary here",
            "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",
            "--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",
            "--Bjunk",
        ]
        for body in malformed {
            XCTAssertThrowsError(try MultipartForm.parse(Data(body.utf8), boundary: "B"), body)
        }
        XCTAssertEqual(try MultipartForm.parse(Data("--B--".utf8), boundary: "B"), [])
    }
}
