import Foundation
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// The Host names this server answers to. A page on evil.example whose DNS name is re-pointed
/// ("rebound") at 127.0.0.1 reaches the server with `Host: evil.example`, and to the browser its
/// requests are same-origin: checking Origin alone cannot stop it, checking Host does.
struct AllowedHosts: Sendable {
    private let names: Set<String>
    /// Bound to every address (0.0.0.0, ::): any IP address is accepted, as no DNS trick can forge one.
    private let acceptsAnyAddress: Bool

    /// `boundHost` is the listen address; `extra` the `--allowed-host` names.
    init(boundHost: String, extra: [String]) {
        let bound = Self.normalized(boundHost)
        acceptsAnyAddress = ["0.0.0.0", "[::]", ""].contains(bound)
        var names = Set(extra.map(Self.normalized))
        names.insert(bound)
        if acceptsAnyAddress || bound == "localhost" || bound == "[::1]" || bound.hasPrefix("127.") {
            names.formUnion(["localhost", "127.0.0.1", "[::1]"])
        }
        self.names = names
    }

    /// `authority` is the Host header's value, e.g. `127.0.0.1:7860` or `[::1]:7860`.
    func accepts(_ authority: String?) -> Bool {
        guard let authority else { return false }
        let host = Self.normalized(Self.hostPart(of: authority))
        return names.contains(host) || (acceptsAnyAddress && Self.isAddress(host))
    }

    /// `[::1]:80` -> `[::1]`, `example.com:80` -> `example.com`.
    private static func hostPart(of authority: String) -> Substring {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") { return authority[...close] }
        return authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }

    /// Lowercase, no trailing dot; an IPv6 address in brackets, as Host writes it.
    private static func normalized(_ host: some StringProtocol) -> String {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name.contains(":") && !name.hasPrefix("[") { name = "[\(name)]" }
        return name
    }

    private static func isAddress(_ host: String) -> Bool {
        var buffer = in6_addr()
        if host.hasPrefix("[") && host.hasSuffix("]") { return inet_pton(AF_INET6, String(host.dropFirst().dropLast()), &buffer) == 1 }
        return inet_pton(AF_INET, host, &buffer) == 1
    }
}

/// Answers 421 to a request whose Host is not one of this server's names (see `AllowedHosts`).
struct HostCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedHosts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard allowed.accepts(request.head.authority) else {
            let host = request.head.authority.map { "'\($0.prefix(80))'" } ?? "(no Host header)"
            throw APIError(.misdirectedRequest, "this server does not answer to the host \(host): use its address, or "
                           + "start uso serve with --allowed-host NAME for a name of your own")
        }
        return try await next(request, context)
    }
}

/// Refuses a request whose declared Content-Length exceeds `limit` before any of the body is read.
struct DeclaredBodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw APIError.tooLarge("the request body is too large: \(declared) bytes, more than the limit of \(limit) bytes",
                                    closingConnection: true)
        }
        return try await next(request, context)
    }
}

/// Job submissions whose bodies are being read at once: each may hold tens of megabytes in memory.
final class UploadSlots: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var used = 0

    init(limit: Int) {
        self.limit = limit
    }

    var inUse: Int { lock.withLock { used } }

    /// Runs `body` in a slot, or refuses with 503 when every slot is taken.
    func withSlot<T>(_ body: () async throws -> T) async throws -> T {
        let acquired = lock.withLock {
            guard used < limit else { return false }
            used += 1
            return true
        }
        guard acquired else {
            throw APIError(.serviceUnavailable, "\(limit) job submissions are being received already; try again in a few seconds",
                           headers: [.retryAfter: "5"], closingConnection: true)
        }
        defer { lock.withLock { used -= 1 } }
        return try await body()
    }
}

/// Ends the connection after a response that says `Connection: close` (Hummingbird honours only the
/// request's header, and would read and discard the rest of a refused body). The close lingers, as
/// nginx's does: the output is shut at once, so the client reads the response and its end, and the
/// connection goes a moment later, with whatever the client still sends.
final class CloseAfterResponseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    static let linger: TimeAmount = .seconds(2)
    private var closesAfterEnd = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            closesAfterEnd = head.headerFields[.connection]?.lowercased() == "close"
        case .end where closesAfterEnd:
            context.writeAndFlush(data, promise: promise)
            context.close(mode: .output, promise: nil)
            let channel = context.channel
            context.eventLoop.scheduleTask(in: Self.linger) { channel.close(promise: nil) }
            return
        default:
            break
        }
        context.write(data, promise: promise)
    }
}
