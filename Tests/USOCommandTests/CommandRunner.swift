import Foundation
import XCTest

/// Runs the real `uso` executable that SwiftPM built next to the test bundle, as a user would.
struct CommandRunner {
    struct Outcome {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The package root (for DefaultModel/ and Tests/Fixtures/).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `uso` in the build products folder: the folder holding the test bundle (`….xctest`).
    static func executable() throws -> URL {
        let candidates = [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .flatMap { [$0.deletingLastPathComponent(), $0] }
        for folder in candidates {
            let binary = folder.appendingPathComponent("uso")
            if FileManager.default.isExecutableFile(atPath: binary.path) { return binary }
        }
        throw MissingExecutable(searched: candidates.map(\.path))
    }

    struct MissingExecutable: Error, CustomStringConvertible {
        var searched: [String]
        var description: String { "the uso executable was not found beside the test bundle (looked in \(searched)); run `swift build` first" }
    }

    /// A fresh empty folder, removed when the test ends.
    static func temporaryFolder(_ test: XCTestCase) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("uso-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    /// The tiny settings every generating test uses so that a run takes seconds in a debug build.
    static let tinySettings = ["--width", "32", "--height", "32", "--num-steps", "2", "--content-ref", "32"]

    var arguments: [String]
    var currentDirectory: URL?
    var environment: [String: String] = [:]

    init(_ arguments: [String], in currentDirectory: URL? = nil) {
        self.arguments = arguments
        self.currentDirectory = currentDirectory
    }

    /// Runs to completion.
    func run() throws -> Outcome {
        let process = try start()
        process.process.waitUntilExit()
        return process.outcome()
    }

    /// Starts the process; the caller waits (and may interrupt it first).
    func start() throws -> RunningCommand {
        let process = Process()
        process.executableURL = try Self.executable()
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        var inherited = ProcessInfo.processInfo.environment
        inherited.removeValue(forKey: "USO_DEFAULT_MODEL")
        process.environment = inherited.merging(environment) { _, new in new }
        let running = RunningCommand(process: process)
        try process.run()
        return running
    }
}

/// A started `uso` whose output is collected as it arrives.
final class RunningCommand: @unchecked Sendable {
    let process: Process
    private let lock = NSLock()
    private var output = Data(), errors = Data()
    private let outputPipe = Pipe(), errorPipe = Pipe()

    init(process: Process) {
        self.process = process
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        process.standardInput = FileHandle.nullDevice
        outputPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            self?.lock.withLock { self?.output.append(chunk) }
        }
        errorPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            self?.lock.withLock { self?.errors.append(chunk) }
        }
    }

    var standardErrorSoFar: String { lock.withLock { String(decoding: errors, as: UTF8.self) } }

    /// Waits until standard error contains `text` (true) or the process ends or time runs out (false).
    func waitForStandardError(containing text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if standardErrorSoFar.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return standardErrorSoFar.contains(text)
    }

    /// The exit status and all output, once the process has ended.
    func outcome() -> CommandRunner.Outcome {
        process.waitUntilExit()
        outputPipe.fileHandleForReading.readabilityHandler = nil
        errorPipe.fileHandleForReading.readabilityHandler = nil
        let restOut = outputPipe.fileHandleForReading.readDataToEndOfFile()
        let restErr = errorPipe.fileHandleForReading.readDataToEndOfFile()
        return lock.withLock {
            output.append(restOut)
            errors.append(restErr)
            return CommandRunner.Outcome(status: process.terminationStatus,
                                         standardOutput: String(decoding: output, as: UTF8.self),
                                         standardError: String(decoding: errors, as: UTF8.self))
        }
    }
}
