import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import WebServer

/// What a client gets from the server on the wire, beyond what the API tests see: the Host check,
/// refusals before a body is read, and the limits on connections, idle time and uploads.
final class ConnectionLimitTests: XCTestCase {
    private func port(_ client: any TestClientProtocol) throws -> Int {
        try XCTUnwrap(client.port)
    }

    private static let jobJSON = #"{"prompt":"a cat","steps":1}"#

    private static func post(host: String, origin: String? = nil, body: String = jobJSON) -> String {
        "POST /api/jobs HTTP/1.1\r\nHost: \(host)\r\n" + (origin.map { "Origin: \($0)\r\n" } ?? "")
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    private static func get(_ path: String, host: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n"
    }

    // MARK: Host

    /// DNS rebinding: a page on evil.example, its name pointed at 127.0.0.1, sends `Host: evil.example`
    /// with a matching Origin. Every route refuses it; the server's own names work.
    func testRequestsForAnotherHostAreRefused() async throws {
        try await TestServer(configure: { $0.allowedHosts = ["uso.lan"] }).run { client in
            let port = try self.port(client)
            let evil = "evil.example:\(port)"
            for request in [Self.post(host: evil, origin: "http://\(evil)"), Self.get("/api/jobs", host: evil),
                            Self.get("/", host: evil), Self.get("/health", host: evil), Self.get("/nowhere", host: evil)] {
                let connection = try RawConnection(port: port)
                try connection.send(request)
                let response = try connection.response()
                XCTAssertEqual(response.status, 421, request)
                XCTAssertTrue(response.text.contains("does not answer to the host 'evil.example"), response.text)
                XCTAssertTrue(response.text.contains("--allowed-host"), response.text)
            }
            for host in ["127.0.0.1:\(port)", "localhost:\(port)", "LOCALHOST.:\(port)", "[::1]:\(port)", "uso.lan:\(port)"] {
                let connection = try RawConnection(port: port)
                try connection.send(Self.get("/health", host: host))
                XCTAssertEqual(try connection.response().status, 200, host)
            }
            let connection = try RawConnection(port: port)
            try connection.send(Self.post(host: "127.0.0.1:\(port)", origin: "http://127.0.0.1:\(port)"))
            XCTAssertEqual(try connection.response().status, 202)
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            XCTAssertEqual(history.count, 1)
        }
    }

    func testAllowedHostNames() {
        let loopback = AllowedHosts(boundHost: "127.0.0.1", extra: ["Uso.Lan"])
        for host in ["127.0.0.1", "127.0.0.1:7860", "localhost:7860", "[::1]:7860", "uso.lan", "USO.LAN:80"] {
            XCTAssertTrue(loopback.accepts(host), host)
        }
        for host in [nil, "", "evil.example", "evil.example:7860", "127.0.0.1.evil.example", "192.168.1.2:7860", "[::2]"] {
            XCTAssertFalse(loopback.accepts(host), host ?? "nil")
        }
        // On every address, any address literal is fine (DNS rebinding needs a name); names still are not.
        let everywhere = AllowedHosts(boundHost: "0.0.0.0", extra: [])
        for host in ["192.168.1.2:7860", "[fe80::1]:7860", "localhost", "127.0.0.1"] {
            XCTAssertTrue(everywhere.accepts(host), host)
        }
        XCTAssertFalse(everywhere.accepts("evil.example:7860"))
        let lan = AllowedHosts(boundHost: "192.168.1.2", extra: [])
        XCTAssertTrue(lan.accepts("192.168.1.2:7860"))
        XCTAssertFalse(lan.accepts("localhost:7860"), "a LAN address is not reached as localhost")
    }

    // MARK: Bodies

    /// A declared Content-Length over the limit is answered 413 at once, without waiting for the body,
    /// and the connection ends (the body is not read).
    func testDeclaredOversizeBodyIsRefusedBeforeItIsSent() async throws {
        let limits = UploadLimits(maxImageBytes: 1 << 10, maxImagePixels: 64 * 64)
        try await TestServer(uploads: limits).run { client in
            let connection = try RawConnection(port: try self.port(client))
            try connection.send("POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(limits.maxRequestBytes + 1)\r\n\r\n")
            let response = try connection.response(timeout: 5)
            XCTAssertEqual(response.status, 413)
            XCTAssertTrue(response.text.contains("more than the limit of \(limits.maxRequestBytes) bytes"), response.text)
            XCTAssertEqual(response.headers["connection"], "close")
            XCTAssertTrue(connection.closesWithin(5))
            assertStatus(try await client.get("/health"), .ok)
        }
    }

    /// With one upload slot, a second submission while the first body is still arriving gets 503.
    func testConcurrentUploadsAreCapped() async throws {
        let server = try TestServer(configure: { $0.maxConcurrentUploads = 1 })
        try await server.run { client in
            let port = try self.port(client)
            let slow = try RawConnection(port: port)
            try slow.send("POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          + "Content-Length: 1000\r\n\r\n{\"prompt\":")
            try await waitUntil { server.server.uploadSlots.inUse == 1 }

            let refused = try await client.postJSON(["prompt": "x", "steps": 1])
            assertStatus(refused, .serviceUnavailable)
            XCTAssertEqual(refused.headers[.retryAfter], "5")
            XCTAssertTrue(errorMessage(refused)?.contains("1 job submissions are being received") ?? false)

            // The slow upload completes: it is accepted, and its slot frees.
            try slow.send(String(repeating: " ", count: 987) + "\"\"}")
            XCTAssertEqual(try slow.response().status, 202)
            try await waitUntil { server.server.uploadSlots.inUse == 0 }
            assertStatus(try await client.postJSON(["prompt": "x", "steps": 1]), .accepted)
        }
    }

    // MARK: Connections

    /// A request head that never completes, and a body that stalls, are cut after the idle timeout.
    func testIdleConnectionsAreClosed() async throws {
        try await TestServer(configure: { $0.idleTimeout = .milliseconds(300) }).run { client in
            let port = try self.port(client)
            let halfHead = try RawConnection(port: port)
            try halfHead.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            let stalledBody = try RawConnection(port: port)
            try stalledBody.send("POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 + "Content-Length: 100\r\n\r\n{\"prompt\"")
            XCTAssertTrue(halfHead.closesWithin(5))
            XCTAssertTrue(stalledBody.closesWithin(5))
            // A connection that keeps to time is served.
            let prompt = try RawConnection(port: port)
            try prompt.send(Self.get("/health", host: "127.0.0.1"))
            XCTAssertEqual(try prompt.response().status, 200)
        }
    }

    /// Beyond the connection limit a new connection waits, unserved, until another closes.
    func testConnectionsAreCapped() async throws {
        XCTAssertEqual(ServerConfiguration().maxConnections, 64)
        let server = try TestServer(configure: { $0.maxConnections = 2 })
        try await server.runAsServe { port in
            var open: [RawConnection] = []
            for _ in 0..<2 {
                let connection = try RawConnection(port: port)
                try connection.send(Self.get("/health", host: "127.0.0.1"))
                XCTAssertEqual(try connection.response().status, 200)
                open.append(connection)
            }
            let third = try RawConnection(port: port)
            try third.send(Self.get("/health", host: "127.0.0.1"))
            XCTAssertThrowsError(try third.response(timeout: 0.5), "served beyond the limit")
            open.removeFirst()
            XCTAssertEqual(try third.response(timeout: 5).status, 200)
        }
    }
}

extension TestServer {
    /// Runs the application as `uso serve` does and gives `body` its port. (HummingbirdTesting rebuilds
    /// the configuration and drops the connection limit, so that test cannot use it.)
    func runAsServe(_ body: (Int) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application { port in continuation.yield(port) }
        let running = Task { try await app.run() }
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: outputRoot)
        }
        var iterator = ports.makeAsyncIterator()
        let outcome: Result<Void, Error>
        if let port = await iterator.next() {
            do { outcome = .success(try await body(port)) } catch { outcome = .failure(error) }
        } else {
            outcome = .failure(TestFailure("the server did not start"))
        }
        running.cancel()
        _ = await running.result
        try outcome.get()
    }
}

/// Polls `condition` every 10 ms for at most `timeout` seconds.
func waitUntil(timeout: Double = 5, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        guard Date() < deadline else { throw TestFailure("condition not met within \(timeout) s") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}
