import Foundation

/// The example presets (prompt, seed, reference images) shown as cards on the page, read once
/// from the target's resource folder into memory: a request names a preset image only by a key
/// looked up in that table, never as a path.
struct PresetLibrary: Sendable {
    struct Preset: Codable, Sendable, Equatable {
        var id: String
        var usage: String
        var prompt: String
        var seed: Int
        /// Image URLs on this server (`/presets/<name>`).
        var content: String?
        var styles: [String]
    }

    let presets: [Preset]
    /// File name -> JPEG bytes.
    let images: [String: Data]

    static let empty = PresetLibrary(presets: [], images: [:])

    /// Loads from `uso_WebServer.resources/presets`. A missing folder (a binary copied without its
    /// resources) gives no presets rather than a crash.
    static func load() -> PresetLibrary {
        guard let folder = resourceFolder()?.appendingPathComponent("presets"),
              let manifest = try? Data(contentsOf: folder.appendingPathComponent("presets.json")),
              let entries = try? JSONDecoder().decode([Preset].self, from: manifest) else { return .empty }
        var images: [String: Data] = [:]
        for name in entries.flatMap({ [$0.content].compactMap { $0 } + $0.styles }) {
            images[name] = try? Data(contentsOf: folder.appendingPathComponent(name))
        }
        let presets = entries.filter { entry in
            ([entry.content].compactMap { $0 } + entry.styles).allSatisfy { images[$0] != nil }
        }.map { entry -> Preset in
            var preset = entry
            preset.content = entry.content.map { "/presets/\($0)" }
            preset.styles = entry.styles.map { "/presets/\($0)" }
            return preset
        }
        return PresetLibrary(presets: presets, images: images)
    }

    /// SwiftPM puts the resource bundle beside the executable (or the test bundle); look there
    /// without the generated `Bundle.module`, which stops the process when the folder is missing.
    private static func resourceFolder() -> URL? {
        let name = "uso_WebServer.resources"
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        let candidates = [Bundle.main.bundleURL, executable.deletingLastPathComponent(),
                          Bundle.main.bundleURL.deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent(name) }
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("presets/presets.json").path) }
    }
}
