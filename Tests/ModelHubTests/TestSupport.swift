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
