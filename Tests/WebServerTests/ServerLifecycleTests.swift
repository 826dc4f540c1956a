import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import XCTest
@testable import WebServer

/// Starting, logging and the size of the history.
final class ServerLifecycleTests: XCTestCase {
    /// The history list cuts long prompts (a hundred jobs stay small); the job's own endpoint keeps all.
    func testHistoryListCutsLongPrompts() async throws {
        try await TestServer().run { client in
            let long = String(repeating: "a painting of a lighthouse, ", count: 300)  // 8,400 characters
            let accepted = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": long, "steps": 1]))
            let short = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "a cat", "steps": 1]))
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            let listed = try XCTUnwrap(history.first { $0.id == accepted.id })
            XCTAssertEqual(listed.parameters.prompt, String(long.prefix(JobSnapshot.listedPromptLength)))
            XCTAssertEqual(listed.promptTruncated, true)
            XCTAssertNil(history.first { $0.id == short.id }?.promptTruncated)
            XCTAssertEqual(history.first { $0.id == short.id }?.parameters.prompt, "a cat")
            let whole = try decode(JobSnapshot.self, from: try await client.get("/api/jobs/\(accepted.id)"))
            XCTAssertEqual(whole.parameters.prompt, long)
            XCTAssertNil(whole.promptTruncated)

            let limit = SubmissionBody.maxPromptLength
            assertStatus(try await client.postJSON(["prompt": String(repeating: "é", count: limit), "steps": 1]), .accepted)
            struct Info: Decodable { let maxPromptLength: Int }
            let info = try decode(Info.self, from: try await client.get("/api/info"))
            XCTAssertEqual(info.maxPromptLength, limit)
        }
    }

    /// `uso serve` with its output in a file or pipe: the start-up line arrives while the server runs.
    func testStartupLineIsFlushedWhenStdoutIsNotATerminal() async throws {
        let server = try TestServer().server
        defer { server.stop() }
        var pipe: [Int32] = [0, 0]
        XCTAssertEqual(Glibc.pipe(&pipe), 0)
        fflush(stdout)
        let savedStdout = dup(STDOUT_FILENO)
        dup2(pipe[1], STDOUT_FILENO)
        // As for a file or pipe from the start: full buffering, no flush at a line's end.
        setvbuf(stdout, nil, _IOFBF, Int(BUFSIZ))
        let running = Task { try await server.run { _, port in print("test server listening on \(port)") } }
        let line = readLine(from: pipe[0], timeout: 10)
        running.cancel()
        _ = await running.result
        fflush(stdout)
        dup2(savedStdout, STDOUT_FILENO)
        setvbuf(stdout, nil, _IOLBF, Int(BUFSIZ))
        [savedStdout, pipe[0], pipe[1]].forEach { close($0) }
        XCTAssertTrue(line?.hasPrefix("test server listening on ") ?? false, line ?? "nothing arrived")
    }

    func testUnwritableSavePathStopsTheServerAtStart() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("uso-serve-not-a-folder-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var configuration = ServerConfiguration()
        configuration.outputRoot = file.appendingPathComponent("outputs")
        XCTAssertThrowsError(try USOWebServer(configuration: configuration) { TestGenerator() }) { error in
            let message = "\(error)"
            XCTAssertEqual(message, "cannot write results to \(file.path)/outputs (--save-path): not a directory; "
                           + "choose a writable folder")
        }
    }

    /// A client that goes away while sending its job is the client's business: logged, not as an error.
    func testClientDroppingMidBodyIsNotLoggedAsAnError() async throws {
        let records = LogRecords()
        var logger = Logger(label: "uso-test") { _ in RecordingLogHandler(records: records) }
        logger.logLevel = .trace
        let server = try TestServer(logger: logger)
        try await server.run { client in
            let connection = try RawConnection(port: try XCTUnwrap(client.port))
            try connection.send("POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                + "Content-Length: 1000\r\n\r\n{\"prompt\":")
            try await waitUntil { server.server.uploadSlots.inUse == 1 }
            _ = consume connection
            try await waitUntil { records.messages(atLeast: .debug).contains { $0.contains("client went away") } }
            try await waitUntil { server.server.uploadSlots.inUse == 0 }
            XCTAssertEqual(records.messages(atLeast: .warning), [])
            assertStatus(try await client.get("/health"), .ok)
        }
    }
}

/// One line from `descriptor`, or nil after `timeout` seconds.
private func readLine(from descriptor: Int32, timeout: Double) -> String? {
    let deadline = Date().addingTimeInterval(timeout)
    var bytes: [UInt8] = []
    while Date() < deadline {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 50) > 0 else { continue }
        var byte: UInt8 = 0
        guard read(descriptor, &byte, 1) == 1 else { return nil }
        if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
    return nil
}

final class LogRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(Logger.Level, String)] = []

    func add(_ level: Logger.Level, _ message: String) { lock.withLock { entries.append((level, message)) } }

    func messages(atLeast level: Logger.Level) -> [String] {
        lock.withLock { entries.filter { $0.0 >= level }.map(\.1) }
    }
}

struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.add(event.level, event.message.description)
    }
}
