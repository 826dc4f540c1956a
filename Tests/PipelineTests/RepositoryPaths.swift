import Foundation

/// Where the pipeline tests find the repository's bundled model and fixtures.
enum RepositoryPaths {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let defaultModel = root.appendingPathComponent("DefaultModel")

    static func fixtures(_ name: String) -> URL { root.appendingPathComponent("Tests/Fixtures/\(name)") }
}
