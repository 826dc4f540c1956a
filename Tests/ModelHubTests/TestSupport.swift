import Foundation
import XCTest
@testable import ModelHub
@testable import ModelLayout

/// A fresh folder under the system temp directory, removed when the test ends.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("uso-hub-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// An environment rooted in `root`: current directory `root/work`, home `root/home` (so no real token
/// file or HF cache of the machine leaks in).
func makeEnvironment(root: URL, variables: [String: String] = [:]) throws -> HubEnvironment {
    let work = root.appendingPathComponent("work", isDirectory: true)
    let home = root.appendingPathComponent("home", isDirectory: true)
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
    return HubEnvironment(variables: variables, currentDirectory: work, homeDirectory: home)
}

func write(_ bytes: [UInt8], to url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(bytes).write(to: url)
}

/// Puts `files` (repository path -> bytes) into a fake HF cache the way huggingface_hub lays it out:
/// blobs named by SHA-256, snapshot entries as relative symlinks, refs/main naming the commit.
func populateHuggingFaceCache(_ cache: URL, repository: String, commit: String, files: [String: [UInt8]],
                              writeRef: Bool = true) throws {
    let folder = cache.appendingPathComponent("models--" + repository.replacingOccurrences(of: "/", with: "--"))
    let blobs = folder.appendingPathComponent("blobs")
    let snapshot = folder.appendingPathComponent("snapshots/\(commit)")
    try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
    for (path, bytes) in files {
        let digest = SHA256.hash(bytes).hexString
        try Data(bytes).write(to: blobs.appendingPathComponent(digest))
        let link = snapshot.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        let depth = path.split(separator: "/").count + 1
        let target = String(repeating: "../", count: depth) + "blobs/\(digest)"
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target)
    }
    if writeRef {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: folder.appendingPathComponent("refs/main"))
    }
}

/// The lines a HubClient reports (its `notice`), in order.
final class NoticeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    var lines: [String] { lock.withLock { stored } }

    func append(_ line: String) { lock.withLock { stored.append(line) } }
}

/// A loopback port nothing listens on (its socket is closed at once), so a connection to it is refused.
func refusingPort() throws -> Int {
    try LoopbackSocket(backlog: 1).port
}

/// A listening TCP socket on 127.0.0.1 that never accepts; closed when released.
final class LoopbackSocket {
    let descriptor: Int32
    let port: Int

    init(backlog: Int32) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> Bool in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        listen(descriptor, backlog)
    }

    deinit { close(descriptor) }

    /// Starts a connection to this socket without waiting for it (it fills the accept queue).
    func connectWithoutWaiting() -> Int32 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = fcntl(client, F_SETFL, O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return client
    }
}

/// Runs `operation`, failing with a TestTimeout if it takes longer than `seconds`.
func withTimeout<T: Sendable>(_ seconds: Double, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw TestTimeout(seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "did not finish within \(seconds) s" }
}
