// A Hugging Face hub of our own on 127.0.0.1: the resolve endpoint with the hub's headers and errors,
// a storage host (the same server reached as "localhost", so it is another origin) serving LFS blobs
// with Range support, and switches to misbehave: cut connections, corrupt bytes, rate-limit, fail.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
@testable import ModelHub
@testable import ModelLayout

final class MockHub: @unchecked Sendable {
    struct File {
        var content: [UInt8]
        var isLFS: Bool
        var sha256: String { SHA256.hash(content).hexString }
    }

    struct LoggedRequest {
        let method: String
        let authority: String
        let path: String
        let range: String?
        let authorization: String?
        let status: Int
    }

    static let commit = "5f8a1ec2b7d04c3aa9e6f1b2c3d4e5f60718293a"

    private let lock = NSLock()
    private var files: [String: File] = [:]          // "owner/name/path"
    private var log: [LoggedRequest] = []
    private var task: Task<Void, Error>?
    private(set) var port = 0

    // Misbehaviour, per "owner/name/path"; counters count down per request.
    var requiredToken: String?
    var gatedRepositories: Set<String> = []
    private var rateLimited: [String: (remaining: Int, retryAfter: String)] = [:]
    private var serverErrors: [String: Int] = [:]
    private var connectionCuts: [String: (remaining: Int, afterBytes: Int)] = [:]
    private var corruptions: [String: Int] = [:]
    private var announcedSizes: [String: UInt64] = [:]
    private var unannouncedLengths: Set<String> = []

    var hubBase: String { "http://127.0.0.1:\(port)" }

    // MARK: Set-up

    func add(_ repository: String, _ path: String, content: [UInt8], isLFS: Bool? = nil) {
        lock.withLock {
            // As on the hub: weights and SentencePiece models are LFS files, configs and vocabularies git files.
            let lfsByDefault = ["safetensors", "bin", "model"].contains((path as NSString).pathExtension)
            files["\(repository)/\(path)"] = File(content: content, isLFS: isLFS ?? lfsByDefault)
        }
    }

    /// Adds every file of `specs` with small, well-formed content of the right format.
    func addFiles(of specs: [ComponentSpec], size: Int = 3000) {
        for spec in specs {
            for file in spec.files {
                add(spec.repository.id, file.repositoryPath, content: Self.sampleContent(for: file.repositoryPath, size: size))
            }
        }
    }

    func file(_ repository: String, _ path: String) -> File? { lock.withLock { files["\(repository)/\(path)"] } }

    func rateLimit(_ key: String, times: Int, retryAfter: String) { lock.withLock { rateLimited[key] = (times, retryAfter) } }
    func failWithServerError(_ key: String, times: Int) { lock.withLock { serverErrors[key] = times } }
    func cutConnection(_ key: String, times: Int, afterBytes: Int) { lock.withLock { connectionCuts[key] = (times, afterBytes) } }
    func corrupt(_ key: String, times: Int) { lock.withLock { corruptions[key] = times } }
    func announceSize(_ key: String, _ size: UInt64) { lock.withLock { announcedSizes[key] = size } }
    /// Sends the file's body chunked, without Content-Length.
    func omitContentLength(_ key: String) { lock.withLock { _ = unannouncedLengths.insert(key) } }

    var requests: [LoggedRequest] { lock.withLock { log } }

    /// Well-formed tiny files: safetensors with a consistent header, a zip-framed .bin, JSON, text.
    static func sampleContent(for path: String, size: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        switch (path as NSString).pathExtension {
        case "safetensors":
            var header = Array("{\"w\":{\"dtype\":\"U8\",\"shape\":[\(size)],\"data_offsets\":[0,\(size)]}}".utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            let length = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64($0))) }
            return length + header + payload
        case "bin":
            return [0x50, 0x4B, 0x03, 0x04] + payload + [0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)
        case "json":
            return Array("{\"name\": \"\(path)\", \"padding\": \"\(String(repeating: "x", count: size))\"}".utf8)
        default:
            return Array((String(repeating: "token ", count: size / 6) + path).utf8)
        }
    }

    // MARK: Server

    func start() async throws {
        let router = CallbackResponder<BasicRequestContext> { request, _ in self.respond(to: request) }
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            responder: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "mock-hub", factory: { _ in SwiftLogNoOpLogHandler() }))
        task = Task { try await app.run() }
        for await port in portStream {
            self.port = port
            break
        }
    }

    func stop() async {
        task?.cancel()
        _ = await task?.result
    }

    private func respond(to request: Request) -> Response {
        let path = request.uri.path
        let method = request.method == .head ? "HEAD" : request.method.rawValue
        let range = request.headers[.range]
        let authorization = request.headers[.authorization]
        let response: Response
        if path.hasPrefix("/storage/") {
            response = storageResponse(sha256: String(path.dropFirst("/storage/".count)), range: range,
                                       isHead: request.method == .head)
        } else {
            response = resolveResponse(path: path, authorization: authorization, range: range,
                                       isHead: request.method == .head, authority: request.head.authority ?? "")
        }
        lock.withLock {
            log.append(LoggedRequest(method: method, authority: request.head.authority ?? "", path: path, range: range,
                                     authorization: authorization, status: Int(response.status.code)))
        }
        return response
    }

    /// /{owner}/{name}/resolve/{revision}/{path...}
    private func resolveResponse(path: String, authorization: String?, range: String?, isHead: Bool,
                                 authority: String) -> Response {
        let parts = path.split(separator: "/", maxSplits: 4).map(String.init)
        guard parts.count == 5, parts[2] == "resolve" else { return error(.notFound, code: "RepoNotFound") }
        let repository = "\(parts[0])/\(parts[1])"
        let filePath = parts[4].removingPercentEncoding ?? parts[4]
        let key = "\(repository)/\(filePath)"

        if let requiredToken, authorization != "Bearer \(requiredToken)" {
            return error(.unauthorized, code: nil, message: "Invalid credentials in Authorization header")
        }
        if gatedRepositories.contains(repository) {
            return error(.forbidden, code: "GatedRepo",
                         message: "Access to model \(repository) is restricted and you are not in the authorized list.")
        }
        if let limited = lock.withLock({ Self.countDown(&rateLimited, key, remaining: \.remaining) }) {
            var headers = HTTPFields()
            headers[.retryAfter] = limited.retryAfter
            headers[.contentLength] = "0"
            return Response(status: .tooManyRequests, headers: headers)
        }
        if lock.withLock({ Self.countDown(&serverErrors, key, remaining: \.self) }) != nil {
            return error(.serviceUnavailable, code: nil)
        }
        guard let file = file(repository, filePath) else { return error(.notFound, code: "EntryNotFound") }
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Repo-Commit")!] = Self.commit
        if file.isLFS {
            let size = lock.withLock { announcedSizes[key] } ?? UInt64(file.content.count)
            headers[.eTag] = "\"\(String(file.sha256.prefix(40)))\""
            headers[HTTPField.Name("X-Linked-Etag")!] = "\"\(file.sha256)\""
            headers[HTTPField.Name("X-Linked-Size")!] = String(size)
            // The storage host: same server, other origin, as the hub's CDN is.
            headers[.location] = "http://localhost:\(port)/storage/\(file.sha256)"
            headers[.contentLength] = "0"
            return Response(status: .found, headers: headers)
        }
        headers[.eTag] = "\"\(String(file.sha256.prefix(40)))\""
        return body(file.content, key: key, range: range, isHead: isHead, headers: headers)
    }

    private func storageResponse(sha256: String, range: String?, isHead: Bool) -> Response {
        guard let match = lock.withLock({ files.first { $0.value.sha256 == sha256 } }) else {
            return error(.notFound, code: nil)
        }
        return body(match.value.content, key: match.key, range: range, isHead: isHead, headers: HTTPFields())
    }

    /// The file's bytes from the requested offset, with 206 + Content-Range for a Range request.
    private func body(_ content: [UInt8], key: String, range: String?, isHead: Bool, headers: HTTPFields) -> Response {
        var headers = headers
        var bytes = content
        if !isHead, lock.withLock({ Self.countDown(&corruptions, key, remaining: \.self) }) != nil {
            bytes[bytes.count / 2] ^= 0xFF
        }
        var start = 0
        var status = HTTPResponse.Status.ok
        if let range, range.hasPrefix("bytes="), let offset = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
            guard offset < bytes.count else { return error(.rangeNotSatisfiable, code: nil) }
            start = offset
            status = .partialContent
            headers[.contentRange] = "bytes \(offset)-\(bytes.count - 1)/\(bytes.count)"
        }
        let slice = Array(bytes[start...])
        headers[.acceptRanges] = "bytes"
        if !isHead, lock.withLock({ unannouncedLengths.contains(key) }) {
            return Response(status: status, headers: headers, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(bytes: slice))
                try await writer.finish(nil)
            })
        }
        headers[.contentLength] = String(slice.count)
        if isHead { return Response(status: status, headers: headers) }
        if let cut = lock.withLock({ Self.countDown(&connectionCuts, key, remaining: \.remaining) }) {
            // Send part of the body, then fail: the server closes the connection mid-file.
            let sent = Array(slice.prefix(cut.afterBytes))
            return Response(status: status, headers: headers, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(bytes: sent))
                throw CancellationError()
            })
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: slice)))
    }

    private func error(_ status: HTTPResponse.Status, code: String?, message: String? = nil) -> Response {
        var headers = HTTPFields()
        if let code { headers[HTTPField.Name("X-Error-Code")!] = code }
        if let message { headers[HTTPField.Name("X-Error-Message")!] = message }
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers)
    }

    /// Takes one from a per-key counter (call with the lock held); returns the entry when it was still positive.
    private static func countDown<Value>(_ table: inout [String: Value], _ key: String,
                                         remaining: WritableKeyPath<Value, Int>) -> Value? {
        guard var entry = table[key], entry[keyPath: remaining] > 0 else { return nil }
        entry[keyPath: remaining] -= 1
        table[key] = entry
        return entry
    }
}
