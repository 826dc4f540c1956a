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
    /// Time to wait for a response's headers; the body is then only bounded by the read timeout.
    private let headTimeout: TimeAmount = .seconds(60)
    private let userAgent = "uso-download/1.0"

    public init(endpoint: String, token: HubEnvironment.Token?, retry: RetryPolicy = RetryPolicy(),
                readTimeout: TimeAmount = .seconds(60)) {
        self.endpoint = endpoint
        self.token = token
        self.retry = retry
        self.hubOrigin = Origin(endpoint)
        // Redirects are followed by hand so the token never reaches the storage host.
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(20), read: readTimeout),
            decompression: .disabled)
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
        return try await withRetries(url: url) {
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
                    try await fetch(url, repository: repository, path: path, into: state, onProgress: onProgress)
                }
                if state.bytesOnDisk < metadata.size {
                    throw TransientFailure.unexpectedResponse(
                        "the response ended after \(state.bytesOnDisk) of \(metadata.size) bytes")
                }
            } catch let error as HubError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let transient {
                if state.bytesOnDisk > bytesBefore { failedAttempts = 0 }
                failedAttempts += 1
                guard failedAttempts < retry.maximumAttempts else { throw Self.finalError(transient, url: url) }
                try await Task.sleep(nanoseconds: UInt64(delay(for: transient, attempt: failedAttempts) * 1e9))
                continue
            }
            guard state.bytesOnDisk == metadata.size else {
                // More bytes than announced: the file changed on the hub or the partial is foreign.
                state.discard()
                throw HubError.sizeMismatch(path: destination.path, expected: metadata.size, actual: state.bytesOnDisk)
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
                continue
            }
            try state.moveIntoPlace(at: destination)
            return
        }
    }

    /// One GET: appends the response body to the partial file, from its current size.
    private func fetch(_ url: String, repository: HubRepository, path: String, into state: PartialDownload,
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
        for try await buffer in response.body {
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

    private struct Origin: Equatable {
        let scheme: String, host: String, port: Int?
        init?(_ url: String) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                  let host = components.host?.lowercased() else { return nil }
            self.scheme = scheme
            self.host = host
            self.port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : nil)
        }
    }

    private struct Response {
        let head: HTTPClientResponse
        var body: HTTPClientResponse.Body { head.body }
    }

    private func send(_ method: HTTPMethod, url: String, headers: [(String, String)],
                      followingCrossHostRedirects: Bool) async throws -> Response {
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
            let response = try await http.execute(request, timeout: headTimeout)
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

    private func withRetries<T>(url: String, _ operation: () async throws -> T) async throws -> T {
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
                guard attempt < retry.maximumAttempts else { throw Self.finalError(transient, url: url) }
                try await Task.sleep(nanoseconds: UInt64(delay(for: transient, attempt: attempt) * 1e9))
            }
        }
    }

    private func delay(for error: Error, attempt: Int) -> Double {
        if case TransientFailure.rateLimited(let retryAfter?) = error { return min(retryAfter, retry.maximumRetryAfter) }
        return retry.backoff(afterAttempt: attempt)
    }

    private static func finalError(_ error: Error, url: String) -> HubError {
        switch error {
        case TransientFailure.rateLimited:
            return .httpStatus(code: 429, url: url, message: "still rate-limited after retries; wait and run again")
        case TransientFailure.serverError(let code, let message):
            return .httpStatus(code: code, url: url, message: message ?? "the hub kept failing; try again later")
        case TransientFailure.unexpectedResponse(let reason):
            return .transport(url: url, reason: reason)
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
}
