import Foundation
import ImageIO

/// Saves results as the CLI and the server both do: a PNG with the run's parameters in its text
/// chunks and the reference's config JSON beside it, each written to a temporary name and renamed.
public struct OutputWriter: Sendable {
    public let directory: URL

    /// `outputs/YYYY-MM-DD/` under `root` (local date).
    public static func dated(root: URL = URL(fileURLWithPath: "outputs"), date: Date = Date()) -> OutputWriter {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return OutputWriter(directory: root.appendingPathComponent(formatter.string(from: date)))
    }

    public init(directory: URL) { self.directory = directory }

    /// A file stem not yet used in the folder: `0001-3407`, `0002-3408`, …
    public func nextStem(seed: UInt64) throws -> String {
        try Self.createDirectory(directory)
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let highest = existing.compactMap { name -> Int? in Int(name.prefix(while: { $0.isNumber })) }.max() ?? 0
        return String(format: "%04d-%llu", highest + 1, seed)
    }

    /// Checks a file name given from outside (a batch file's `save_dir`): it may name subfolders, as
    /// the reference creates them, but must stay inside the folder.
    public static func checkRelativeName(_ name: String) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.hasPrefix("/"), !parts.contains("..") else {
            throw GenerationError.invalidRequest("\"\(name)\" leads outside the output folder; name a file or subfolder inside it (no leading / and no ..)")
        }
    }

    /// Writes `stem.png` and `stem.json` (a stem may name subfolders, made as needed); returns the PNG's URL.
    @discardableResult
    public func write(_ result: GenerationResult, record: RunRecord, stem: String) throws -> URL {
        let png = directory.appendingPathComponent(stem + ".png"), json = directory.appendingPathComponent(stem + ".json")
        try Self.createDirectory(png.deletingLastPathComponent())
        let text = record.pngMetadata(seedUsed: result.request.seed, sizeGenerated: (result.image.width, result.image.height),
                                      software: "uso").map { PNGTextEntry(key: $0.key, text: $0.value) }
        do {
            try ImageFile.write(result.image, to: png, as: .png(text: text))
            try ImageFile.writeAtomically(Data(record.referenceConfigJSON.utf8), to: json)
        } catch {
            throw GenerationError.outputNotWritable(path: directory.path, reason: "\(error)")
        }
        return png
    }

    /// Creates the folder and checks that files can be made in it, so a run fails before it
    /// spends minutes on an image it cannot save.
    public func checkWritable() throws {
        try Self.createDirectory(directory)
        guard FileManager.default.isWritableFile(atPath: directory.path) else {
            throw GenerationError.outputNotWritable(path: directory.path, reason: "permission denied")
        }
    }

    private static func createDirectory(_ folder: URL) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw GenerationError.outputNotWritable(path: folder.path, reason: error.localizedDescription)
        }
    }
}
