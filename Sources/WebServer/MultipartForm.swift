import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One part of a `multipart/form-data` body (RFC 7578): its field name, the file name a browser
/// sent (which the server never uses as a path), and its bytes.
struct MultipartPart: Equatable {
    var name: String
    var filename: String?
    var data: Data
}

/// A strict `multipart/form-data` parser: a malformed body is an error naming what is wrong,
/// never a guess.
enum MultipartForm {
    struct FormatError: Error, Equatable, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The boundary from a `Content-Type: multipart/form-data; boundary=...` header.
    static func boundary(contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                ? String(pair[1].dropFirst().dropLast()) : pair[1]
            // RFC 2046: 1 to 70 characters.
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    static func parse(_ body: Data, boundary: String) throws -> [MultipartPart] {
        let bytes = [UInt8](body)
        let delimiter = Array("--\(boundary)".utf8)
        let crlf: [UInt8] = [13, 10]
        guard var position = find(delimiter, in: bytes, from: 0)?.upperBound else {
            throw FormatError("the multipart body does not contain its boundary")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" closes the body, CRLF opens a part.
            if bytes[position...].starts(with: [45, 45]) { return parts }
            guard bytes[position...].starts(with: crlf) else {
                throw FormatError("a multipart boundary is not followed by a line break")
            }
            position += 2
            guard let headerEnd = find(crlf + crlf, in: bytes, from: position) else {
                throw FormatError("a multipart part has no end to its headers")
            }
            let headers = String(decoding: bytes[position..<headerEnd.lowerBound], as: UTF8.self)
            let contentStart = headerEnd.upperBound
            guard let next = find(crlf + delimiter, in: bytes, from: contentStart) else {
                throw FormatError("the multipart body ends inside a part (no closing boundary)")
            }
            parts.append(try part(headers: headers, data: Data(bytes[contentStart..<next.lowerBound])))
            position = next.upperBound
        }
    }

    /// The first occurrence of `pattern` at or after `start`; memchr for candidates, then memcmp
    /// (image uploads are megabytes, and this stays fast in debug builds too).
    private static func find(_ pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Range<Int>? {
        guard let first = pattern.first, start <= bytes.count else { return nil }
        return bytes.withUnsafeBytes { haystack -> Range<Int>? in
            pattern.withUnsafeBytes { needle -> Range<Int>? in
                guard let base = haystack.baseAddress, let needleBase = needle.baseAddress else { return nil }
                var offset = start
                while haystack.count - offset >= pattern.count {
                    guard let hit = memchr(base + offset, Int32(first), haystack.count - offset - pattern.count + 1) else { return nil }
                    let candidate = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + candidate, needleBase, pattern.count) == 0 { return candidate..<candidate + pattern.count }
                    offset = candidate + 1
                }
                return nil
            }
        }
    }

    private static func part(headers: String, data: Data) throws -> MultipartPart {
        for line in headers.components(separatedBy: "\r\n") {
            let header = line.split(separator: ":", maxSplits: 1)
            guard header.count == 2, header[0].trimmingCharacters(in: .whitespaces).lowercased() == "content-disposition" else {
                continue
            }
            let parameters = dispositionParameters(String(header[1]))
            guard let name = parameters["name"], !name.isEmpty else {
                throw FormatError("a multipart part has no field name")
            }
            return MultipartPart(name: name, filename: parameters["filename"], data: data)
        }
        throw FormatError("a multipart part has no Content-Disposition header")
    }

    /// `form-data; name="prompt"; filename="a.png"` -> ["name": "prompt", "filename": "a.png"].
    private static func dispositionParameters(_ value: String) -> [String: String] {
        var parameters: [String: String] = [:]
        var rest = Substring(value)
        while let semicolon = rest.firstIndex(of: ";") {
            rest = rest[rest.index(after: semicolon)...].drop(while: { $0 == " " })
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            if rest.first == "\"" {
                // Quoted string: browsers escape `"` as %22, so the next quote closes it.
                let inner = rest.dropFirst()
                let close = inner.firstIndex(of: "\"") ?? inner.endIndex
                parameters[key] = String(inner[..<close])
                rest = close < inner.endIndex ? inner[inner.index(after: close)...] : ""
            } else {
                let end = rest.firstIndex(of: ";") ?? rest.endIndex
                parameters[key] = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
        }
        return parameters
    }
}
