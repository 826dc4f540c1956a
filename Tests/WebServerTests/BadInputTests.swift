import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import WebServer

/// Every kind of bad submission gets a 4xx with a JSON error naming the problem, and the server
/// keeps serving.
final class BadInputTests: XCTestCase {
    private func assertRefused(_ response: TestResponse, _ status: HTTPResponse.Status, _ words: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, String(buffer: response.body), file: file, line: line)
        guard let message = errorMessage(response) else {
            return XCTFail("no JSON error body: \(String(buffer: response.body))", file: file, line: line)
        }
        for word in words {
            XCTAssertTrue(message.contains(word), "'\(message)' does not mention '\(word)'", file: file, line: line)
        }
    }

    func testBadJSONSubmissions() async throws {
        let limits = UploadLimits(maxImageBytes: 64 << 10, maxImagePixels: 512 * 512)
        try await TestServer(uploads: limits).run { client in
            let png = try pngData(width: 32, height: 32).base64EncodedString()
            let cases: [(fields: [String: Any], status: HTTPResponse.Status, words: [String])] = [
                (["seed": 1], .badRequest, ["prompt", "required"]),
                (["prompt": 5], .badRequest, ["prompt", "string"]),
                (["prompt": "x", "colour": "red"], .badRequest, ["unknown field 'colour'"]),
                (["prompt": "x", "width": -512], .badRequest, ["width", "-512"]),
                (["prompt": "x", "height": 0], .badRequest, ["height"]),
                (["prompt": "x", "width": 100000], .badRequest, ["width"]),
                (["prompt": "x", "width": 64.5], .badRequest, ["width"]),
                (["prompt": "x", "steps": 0], .badRequest, ["steps", "from 1 to 50"]),
                (["prompt": "x", "steps": 1000], .badRequest, ["steps", "1000"]),
                (["prompt": "x", "steps": "many"], .badRequest, ["steps", "many"]),
                (["prompt": "x", "guidance": 99], .badRequest, ["guidance"]),
                (["prompt": "x", "seed": -2], .badRequest, ["seed"]),
                (["prompt": "x", "seed": 1.5], .badRequest, ["seed"]),
                (["prompt": "x", "contentReferenceSize": 8], .badRequest, ["contentReferenceSize"]),
                (["prompt": "x", "keepInputSize": "maybe"], .badRequest, ["keepInputSize"]),
                (["prompt": "x", "keepInputSize": true], .badRequest, ["content image"]),
                (["prompt": "x", "styleImages": [png, png, png]], .badRequest, ["at most 2"]),
                (["prompt": "x", "contentImage": [png, png]], .badRequest, ["one image"]),
                (["prompt": "x", "contentImage": ["nested": 1]], .badRequest, ["'contentImage' holds an object", "not objects"]),
                (["prompt": "x", "width": "0x4"], .badRequest, ["'width' must be a decimal number", "0x4"]),
                (["prompt": "x", "seed": "0x10"], .badRequest, ["'seed' must be a decimal number"]),
                (["prompt": "x", "guidance": "nan"], .badRequest, ["'guidance' must be a decimal number"]),
                (["prompt": String(repeating: "a", count: SubmissionBody.maxPromptLength + 1)], .badRequest,
                 ["'prompt' is 10001 characters long", "the limit is 10000"]),
                (["prompt": "x", "contentImage": Data("just some text, not a picture".utf8).base64EncodedString()],
                 .unsupportedMediaType, ["contentImage", "not an image"]),
                (["prompt": "x", "styleImages": [Data("GIF89a......".utf8).base64EncodedString()]],
                 .unsupportedMediaType, ["styleImages[0]", "GIF"]),
                (["prompt": "x", "contentImage": try Self.pngHeader(width: 100_000, height: 100_000).base64EncodedString()],
                 .contentTooLarge, ["100000x100000", "limit"]),
                (["prompt": "x", "contentImage": try pngData(width: 600, height: 600).base64EncodedString()],
                 .contentTooLarge, ["limit"]),
                (["prompt": "x", "contentImage": Data(count: 70 << 10).base64EncodedString()], .contentTooLarge, ["bytes"]),
                (["prompt": "x", "contentImage": try Self.pngHeader(width: 64, height: 64).base64EncodedString()],
                 .badRequest, ["contentImage", "PNG"]),
            ]
            for (fields, status, words) in cases {
                let response = try await client.postJSON(fields)
                assertRefused(response, status, words)
            }
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            XCTAssertTrue(history.isEmpty, "no refused submission may become a job")
            assertStatus(try await client.get("/health"), .ok)
        }
    }

    func testBadBodiesAndMultipart() async throws {
        try await TestServer().run { client in
            func post(_ body: String, contentType: String) async throws -> TestResponse {
                try await client.execute(uri: "/api/jobs", method: .post, headers: [.contentType: contentType],
                                         body: ByteBuffer(string: body))
            }
            assertRefused(try await post("{\"prompt\": ", contentType: "application/json"), .badRequest, ["JSON"])
            assertRefused(try await post("[1, 2]", contentType: "application/json"), .badRequest, ["JSON object"])
            assertRefused(try await post("prompt=x", contentType: "application/x-www-form-urlencoded"),
                          .unsupportedMediaType, ["multipart/form-data"])
            assertRefused(try await client.execute(uri: "/api/jobs", method: .post), .unsupportedMediaType, ["application/json"])
            assertRefused(try await post("--x\r\nno headers end", contentType: "multipart/form-data; boundary=x"),
                          .badRequest, ["multipart"])
            assertRefused(try await post("anything", contentType: "multipart/form-data"), .badRequest, ["boundary"])

            var twice = MultipartBody()
            twice.field("prompt", "a")
            twice.field("prompt", "b")
            assertRefused(try await client.postMultipart(twice.finished()), .badRequest, ["'prompt'", "more than once"])

            var notImage = MultipartBody()
            notImage.field("prompt", "a")
            notImage.file("contentImage", Data("#!/bin/sh\necho hi\n".utf8), filename: "x.png")
            assertRefused(try await client.postMultipart(notImage.finished()), .unsupportedMediaType, ["not an image"])

            var negative = MultipartBody()
            negative.field("prompt", "a")
            negative.field("width", "-16")
            assertRefused(try await client.postMultipart(negative.finished()), .badRequest, ["width", "-16"])

            // A browser's empty file input is "no image", not an error.
            var empty = MultipartBody()
            empty.field("prompt", "a")
            empty.field("steps", "1")
            empty.file("contentImage", Data(), filename: "")
            assertStatus(try await client.postMultipart(empty.finished()), .accepted)

            assertRefused(try await client.get("/api/jobs/unknown"), .notFound, ["no job"])
            let put = try await client.execute(uri: "/api/jobs", method: .put)
            assertRefused(put, .methodNotAllowed, ["PUT is not allowed on /api/jobs", "GET, POST"])
            XCTAssertEqual(put.headers[.allow], "GET, POST")
            assertRefused(try await client.execute(uri: "/api/nowhere", method: .put), .notFound, ["no such endpoint"])
            assertStatus(try await client.get("/health"), .ok)
        }
    }

    /// Bodies that are not plain JSON get a 400 that says what is wrong, quickly.
    func testMalformedJSONIsNamedPrecisely() async throws {
        try await TestServer().run { client in
            func post(_ body: Data) async throws -> TestResponse {
                try await client.execute(uri: "/api/jobs", method: .post, headers: [.contentType: "application/json"],
                                         body: ByteBuffer(bytes: body))
            }
            func post(_ body: String) async throws -> TestResponse { try await post(Data(body.utf8)) }

            // 511 nested arrays: refused at the 33rd level, before anything is decoded.
            let deep = #"{"prompt":"x","styleImages":"# + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "}"
            let started = Date()
            assertRefused(try await post(deep), .badRequest, ["nested deeper than 32 levels"])
            XCTAssertLessThan(Date().timeIntervalSince(started), 0.5)
            assertRefused(try await post(#"{"prompt":"a","steps":2,"prompt":"b"}"#), .badRequest,
                          ["the key \"prompt\" is given more than once"])
            assertRefused(try await post(#"{"prompt":"x","width":0x4}"#), .badRequest, ["not valid JSON", "found 'x' at byte 23"])
            assertRefused(try await post(#"{"prompt":"x","width":1e309}"#), .badRequest, ["the number 1e309 is out of range"])
            assertRefused(try await post(#"{"prompt":"\ud800 x"}"#), .badRequest, ["\\uD800 is a lone UTF-16 surrogate"])
            assertRefused(try await post(Data(#"{"prompt":"caf"#.utf8) + Data([0xE9]) + Data(#""}"#.utf8)), .badRequest,
                          ["not valid UTF-8"])
            assertRefused(try await post(#"{"prompt":"x"} {}"#), .badRequest, ["after the JSON value"])

            // 32 levels (the object and 31 arrays) are read; what is inside is then judged as a field.
            let nested = #"{"prompt":"x","styleImages":"# + String(repeating: "[", count: 31) + String(repeating: "]", count: 31) + "}"
            assertRefused(try await post(nested), .badRequest, ["styleImages[0]"])
            // A surrogate pair is one character.
            assertStatus(try await post(#"{"prompt":"\ud83d\ude00","steps":1}"#), .accepted)

            var multipart = MultipartBody()
            multipart.field("prompt", "x")
            multipart.field("width", "0x40")
            assertRefused(try await client.postMultipart(multipart.finished()), .badRequest, ["'width' must be a decimal number"])
            var latin1 = Data("--b0undary\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\ncaf".utf8)
            latin1.append(0xE9)
            latin1.append(Data("\r\n--b0undary--\r\n".utf8))
            assertRefused(try await client.execute(uri: "/api/jobs", method: .post,
                                                   headers: [.contentType: "multipart/form-data; boundary=b0undary"],
                                                   body: ByteBuffer(bytes: latin1)),
                          .badRequest, ["'prompt' is not valid UTF-8"])
        }
    }

    func testRequestBodyOverTheLimitIsRefused() async throws {
        let limits = UploadLimits(maxImageBytes: 1 << 10, maxImagePixels: 64 * 64)
        try await TestServer(uploads: limits).run { client in
            let huge = String(repeating: "A", count: limits.maxRequestBytes + 1)
            let response = try await client.execute(uri: "/api/jobs", method: .post, headers: [.contentType: "application/json"],
                                                    body: ByteBuffer(string: "{\"prompt\":\"\(huge)\"}"))
            assertRefused(response, .contentTooLarge, ["too large"])
            assertStatus(try await client.get("/health"), .ok)
        }
    }

    /// A PNG signature and IHDR claiming `width` x `height`, and no image data.
    private static func pngHeader(width: Int, height: Int) throws -> Data {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        for value in [width, height] { bytes += (0..<4).map { UInt8((value >> (8 * (3 - $0))) & 0xFF) } }
        bytes += [8, 2, 0, 0, 0, 0, 0, 0, 0]  // 8-bit RGB, then a (wrong) CRC
        return Data(bytes)
    }
}
