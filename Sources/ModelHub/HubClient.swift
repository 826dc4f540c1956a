// The Hugging Face hub's file protocol, as huggingface_hub speaks it:
//   HEAD {endpoint}/{repo}/resolve/{revision}/{path}  -> X-Repo-Commit, ETag, and for LFS files
//        a 302 to the storage host carrying X-Linked-Etag (the SHA-256) and X-Linked-Size;
//   GET  the same URL, following redirects to the storage host (without the Authorization header),
//        with `Range: bytes=N-` to resume (206 + Content-Range; a 200 means start over).
import AsyncHTTPClient
import Foundation
import ModelLayout
import NIOCore
import NIOHTTP1

public struct RetryPolicy: Sendable {
    /// Tries per request for 429, 5xx and dropped connections. A download that made progress starts counting again.
    public var maximumAttempts = 6
    /// Backoff: initialDelay · 2^(attempt-1), at most maximumDelay; a 429's Retry-After wins when given.
    public var initialDelay = 1.0
    public var maximumDelay = 60.0
    public var maximumRetryAfter = 300.0
    /// Downloads whose SHA-256 does not match are deleted and fetched again this many times in all.
    public var checksumAttempts = 2

    public init(maximumAttempts: Int = 6, initialDelay: Double = 1.0, maximumDelay: Double = 60.0,
                maximumRetryAfter: Double = 300.0, checksumAttempts: Int = 2) {
        self.maximumAttempts = maximumAttempts
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maximumRetryAfter = maximumRetryAfter
        self.checksumAttempts = checksumAttempts
    }

    func backoff(afterAttempt attempt: Int) -> Double {
        min(maximumDelay, initialDelay * pow(2, Double(max(0, attempt - 1))))
    }
}

/// What the hub says about one file before it is downloaded.
public struct RemoteFileMetadata: Sendable, Equatable {
    public let size: UInt64
    /// Lowercase hex SHA-256 for LFS files (the hub's X-Linked-Etag); nil for small git-stored files.
    public let sha256: String?
    public let etag: String?
    public let commit: String?
}

public final class HubClient: @unchecked Sendable {
    public let endpoint: String
    public let token: HubEnvironment.Token?
    public let retry: RetryPolicy
    private let http: HTTPClient
    private let hubOrigin: Origin?
    /// A hub that takes longer than this to accept a connection is not coming: say so early.
    public static let defaultConnectTimeout: TimeAmount = .seconds(10)
    private let connectTimeout: TimeAmount
    /// Time to wait for a response's headers; the body is then only bounded by the read timeout.
    private let headTimeout: TimeAmount = .seconds(60)
    private let userAgent = "uso-download/1.0"
    /// One-line reports of what the client is doing while no byte has arrived yet: connecting, retrying.
    private let notice: @Sendable (String) -> Void
    private let lock = NSLock()
    private var hasAnnouncedConnecting = false

    /// `notice` gets the lines that say what the client is waiting for (stderr by default).
    public init(endpoint: String, token: HubEnvironment.Token?, retry: RetryPolicy = RetryPolicy(),
                connectTimeout: TimeAmount = HubClient.defaultConnectTimeout, readTimeout: TimeAmount = .seconds(60),
                notice: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.endpoint = endpoint
        self.token = token
        self.retry = retry
        self.hubOrigin = Origin(endpoint)
        self.connectTimeout = connectTimeout
        self.notice = notice
        // Redirects are followed by hand so the token never reaches the storage host.
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: connectTimeout, read: readTimeout),
            decompression: .disabled)
        // A failed connection fails the request at once: the pool would otherwise retry in silence until the
        // request's deadline; `withRetries` retries and says so.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    public func resolveURL(_ repository: HubRepository, path: String) -> String {
        let escapedPath = path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
            .joined(separator: "/")
        let revision = repository.revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? repository.revision
        return "\(endpoint)/\(repository.id)/resolve/\(revision)/\(escapedPath)"
    }

    // MARK: Metadata

    public func metadata(of repository: HubRepository, path: String) async throws -> RemoteFileMetadata {
        let url = resolveURL(repository, path: path)
        return try await withRetries(url: url, path: path) {
            // Like huggingface_hub: follow only same-host redirects (renamed repositories); the 302 to the
            // storage host already carries the linked headers.
            let response = try await self.send(.HEAD, url: url, headers: [], followingCrossHostRedirects: false)
            try self.throwForHubStatus(response.head, repository: repository, path: path, url: url)
            let headers = response.head.headers
            let linkedEtag = headers.first(name: "X-Linked-Etag").map(Self.normalizedEtag)
            let etag = headers.first(name: "ETag").map(Self.normalizedEtag)
            guard let size = (headers.first(name: "X-Linked-Size") ?? headers.first(name: "Content-Length"))
                .flatMap(UInt64.init) else {
                throw HubError.httpStatus(code: Int(response.head.status.code), url: url,
                                          message: "the hub sent no file size")
            }
            let hashCandidate = linkedEtag ?? etag
            let sha256 = hashCandidate.flatMap { $0.count == 64 && $0.allSatisfy(\.isHexDigit) ? $0.lowercased() : nil }
            return RemoteFileMetadata(size: size, sha256: sha256, etag: linkedEtag ?? etag,
                                      commit: headers.first(name: "X-Repo-Commit"))
        }
    }

    static func normalizedEtag(_ value: String) -> String {
        var etag = value.trimmingCharacters(in: .whitespaces)
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        return etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    // MARK: Download

    /// Downloads `path` of `repository` to `destination` through `destination.incomplete`, resuming a
    /// partial file, verifying size and SHA-256, then renaming into place. `onProgress` gets the bytes
    /// of the file on disk so far (it goes down when a download has to start over).
    public func download(_ repository: HubRepository, path: String, metadata: RemoteFileMetadata, to destination: URL,
                         onProgress: @escaping (UInt64) -> Void) async throws {
        let url = resolveURL(repository, path: path)
        let partial = URL(fileURLWithPath: destination.path + ".incomplete")
        do {
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(),
                                                    withIntermediateDirectories: true)
        } catch {
            throw HubError.fileSystem(path: destination.deletingLastPathComponent().path, reason: error.localizedDescription)
        }
        let state = PartialDownload(url: partial)
        var failedAttempts = 0
        var checksumFailures = 0
        while true {
            try Task.checkCancellation()
            let bytesBefore = state.bytesOnDisk
            do {
                try state.prepare(expectedSize: metadata.size)
                onProgress(state.bytesOnDisk)
                if state.bytesOnDisk < metadata.size {
                    try await fetch(url, repository: repository, path: path, size: metadata.size, into: state,
                                    onProgress: onProgress)
                }
                if state.bytesOnDisk < metadata.size {
                    throw TransientFailure.unexpectedResponse(
                        "the response ended after \(state.bytesOnDisk) of \(metadata.size) bytes")
                }
            } catch let error as HubError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let oversize as Oversize {
                // More bytes than announced: the file changed on the hub or the server is wrong.
                state.discard()
                throw HubError.oversize(path: destination.path, announced: metadata.size, atLeast: oversize.atLeast)
            } catch let transient {
                if state.bytesOnDisk > bytesBefore { failedAttempts = 0 }
                failedAttempts += 1
                try await pause(after: transient, attempt: failedAttempts, url: url, path: path)
                continue
            }
            let digest = state.finishHash()
            if let expected = metadata.sha256, digest != expected {
                state.discard()
                onProgress(0)
                checksumFailures += 1
                guard checksumFailures < retry.checksumAttempts else {
                    throw HubError.checksumMismatch(path: destination.path, expected: expected, actual: digest,
                                                    attempts: checksumFailures)
                }
                notice("\(path): the SHA-256 does not match the hub's; downloading it again")
                continue
            }
            try state.moveIntoPlace(at: destination)
            return
        }
    }

    /// A body longer than the file's announced `size`: nothing beyond the size is written.
    private struct Oversize: Error { let atLeast: UInt64 }

    /// One GET: appends the response body to the partial file, from its current size, up to `size`.
    private func fetch(_ url: String, repository: HubRepository, path: String, size: UInt64, into state: PartialDownload,
                       onProgress: (UInt64) -> Void) async throws {
        let offset = state.bytesOnDisk
        var headers: [(String, String)] = []
        if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
        let response = try await send(.GET, url: url, headers: headers, followingCrossHostRedirects: true)
        switch response.head.status.code {
        case 200:
            if offset > 0 { try state.restart() }
        case 206:
            let start = response.head.headers.first(name: "Content-Range").flatMap(Self.contentRangeStart)
            guard start == offset else {
                try state.restart()
                throw TransientFailure.unexpectedResponse("Content-Range does not start at byte \(offset)")
            }
        case 416:
            // Only asked for while the partial is shorter than the file: the partial does not belong to it.
            try state.restart()
            throw TransientFailure.unexpectedResponse("the hub refused to resume at byte \(offset)")
        default:
            try throwForHubStatus(response.head, repository: repository, path: path, url: url)
            throw TransientFailure.unexpectedResponse("status \(response.head.status.code)")
        }
        let start = state.bytesOnDisk
        if let length = response.head.headers.first(name: "Content-Length").flatMap(UInt64.init), start + length > size {
            throw Oversize(atLeast: start + length)
        }
        for try await buffer in response.body {
            let end = state.bytesOnDisk + UInt64(buffer.readableBytes)
            guard end <= size else { throw Oversize(atLeast: end) }
            try state.append(buffer)
            onProgress(state.bytesOnDisk)
        }
    }

    /// "bytes 100-199/200" -> 100.
    static func contentRangeStart(_ value: String) -> UInt64? {
        let parts = value.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == "/" })
        guard parts.count >= 2, parts[0].lowercased() == "bytes" else { return nil }
        return UInt64(parts[1])
    }

    // MARK: HTTP

    private struct Origin: Equatable, CustomStringConvertible {
        let scheme: String, host: String, port: Int?
        init?(_ url: String) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                  let host = components.host?.lowercased() else { return nil }
            self.scheme = scheme
            self.host = host
            self.port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : nil)
        }

        var description: String {
            let isDefaultPort = (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
            return "\(scheme)://\(host)" + (port.map { isDefaultPort ? "" : ":\($0)" } ?? "")
        }
    }

    private struct Response {
        let head: HTTPClientResponse
        var body: HTTPClientResponse.Body { head.body }
    }

    private func send(_ method: HTTPMethod, url: String, headers: [(String, String)],
                      followingCrossHostRedirects: Bool) async throws -> Response {
        announceConnecting()
        var currentURL = url
        for _ in 0..<10 {
            var request = HTTPClientRequest(url: currentURL)
            request.method = method
            request.headers.add(name: "User-Agent", value: userAgent)
            request.headers.add(name: "Accept-Encoding", value: "identity")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let token, let origin = Origin(currentURL), origin == hubOrigin {
                request.headers.add(name: "Authorization", value: "Bearer \(token.value)")
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: headTimeout)
            } catch let error as HTTPClientError where error == .cancelled {
                throw CancellationError()
            } catch {
                throw TransientFailure.noResponse(origin: Origin(currentURL)?.description ?? currentURL,
                                                  reason: describeConnectionFailure(error))
            }
            guard [301, 302, 303, 307, 308].contains(response.status.code),
                  let location = response.headers.first(name: "Location"),
                  let target = URL(string: location, relativeTo: URL(string: currentURL))?.absoluteString else {
                return Response(head: response)
            }
            let sameOrigin = Origin(target) == Origin(currentURL)
            guard sameOrigin || followingCrossHostRedirects else { return Response(head: response) }
            // Drain the small redirect body so the connection can be reused.
            for try await _ in response.body {}
            currentURL = target
        }
        throw HubError.tooManyRedirects(url: url)
    }

    /// Turns the hub's error statuses into HubError (final) or TransientFailure (retried).
    private func throwForHubStatus(_ response: HTTPClientResponse, repository: HubRepository, path: String,
                                   url: String) throws {
        let code = Int(response.status.code)
        guard !(200..<400).contains(code) else { return }
        let errorCode = response.headers.first(name: "X-Error-Code")
        let message = response.headers.first(name: "X-Error-Message")
        switch code {
        case 401:
            throw HubError.unauthorized(repository: repository.id, tokenSource: token?.source)
        case 403:
            if errorCode == "GatedRepo" || repository.isGated {
                throw HubError.gatedRepository(repository: repository.id, tokenSource: token?.source)
            }
            throw HubError.forbidden(repository: repository.id, message: message)
        case 404:
            throw HubError.notFound(repository: repository.id, path: path, revision: repository.revision,
                                    message: message ?? errorCode)
        case 429:
            throw TransientFailure.rateLimited(retryAfter: response.headers.first(name: "Retry-After")
                .flatMap(Self.retryAfterSeconds))
        case 500...599:
            throw TransientFailure.serverError(code: code, message: message)
        default:
            throw HubError.httpStatus(code: code, url: url, message: message)
        }
    }

    /// Retry-After as seconds or as an HTTP date.
    static func retryAfterSeconds(_ value: String) -> Double? {
        if let seconds = Double(value.trimmingCharacters(in: .whitespaces)) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    // MARK: Retries

    private func withRetries<T>(url: String, path: String, _ operation: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch let error as HubError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let transient {
                attempt += 1
                try await pause(after: transient, attempt: attempt, url: url, path: path)
            }
        }
    }

    /// Waits before the next try and says why; throws the final error once the tries are used up.
    private func pause(after error: Error, attempt: Int, url: String, path: String) async throws {
        guard attempt < retry.maximumAttempts else { throw finalError(error, url: url) }
        let seconds: Double
        if case TransientFailure.rateLimited(let retryAfter?) = error {
            seconds = min(retryAfter, retry.maximumRetryAfter)
        } else {
            seconds = retry.backoff(afterAttempt: attempt)
        }
        notice("\(path): \(Self.describe(error)); retrying in \(TerminalProgress.duration(seconds)) "
               + "(try \(attempt + 1) of \(retry.maximumAttempts))")
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }

    /// "connecting to …" before the first request, so a slow or unreachable hub is not a silent wait.
    private func announceConnecting() {
        let isFirst = lock.withLock {
            defer { hasAnnouncedConnecting = true }
            return !hasAnnouncedConnecting
        }
        if isFirst { notice("connecting to \(endpoint) …") }
    }

    private func describeConnectionFailure(_ error: Error) -> String {
        switch error as? HTTPClientError {
        case .connectTimeout?:
            "no connection within \(TerminalProgress.duration(Double(connectTimeout.nanoseconds) / 1e9))"
        case .deadlineExceeded?:
            "no response within \(TerminalProgress.duration(Double(headTimeout.nanoseconds) / 1e9))"
        default:
            // A failed connect is an IOError carrying the system's reason, e.g. "Connection refused".
            (error as? IOError).map { String(cString: strerror($0.errnoCode)).lowercased() } ?? "\(error)"
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case TransientFailure.rateLimited: "the hub is rate-limiting requests (429)"
        case TransientFailure.serverError(let code, let message): "the hub answered \(code)\(message.map { " (\($0))" } ?? "")"
        case TransientFailure.unexpectedResponse(let reason): reason
        case TransientFailure.noResponse(let origin, let reason): "no response from \(origin): \(reason)"
        default: "the connection failed: \(error)"
        }
    }

    private func finalError(_ error: Error, url: String) -> HubError {
        switch error {
        case TransientFailure.rateLimited:
            return .httpStatus(code: 429, url: url, message: "still rate-limited after retries; wait and run again")
        case TransientFailure.serverError(let code, let message):
            return .httpStatus(code: code, url: url, message: message ?? "the hub kept failing; try again later")
        case TransientFailure.unexpectedResponse(let reason):
            return .transport(url: url, reason: reason)
        case TransientFailure.noResponse(let origin, let reason):
            return .unreachable(origin: origin, endpoint: endpoint, reason: reason)
        default:
            return .transport(url: url, reason: String(describing: error))
        }
    }
}

/// Failures worth another try.
enum TransientFailure: Error {
    case rateLimited(retryAfter: Double?)
    case serverError(code: Int, message: String?)
    case unexpectedResponse(String)
    /// No response head: the connection could not be made, or nothing came back in time.
    case noResponse(origin: String, reason: String)
}
