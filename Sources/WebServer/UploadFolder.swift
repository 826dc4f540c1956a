import Foundation

/// A folder of the server's own under the system temp directory, holding uploaded references
/// under names the server makes (`<job id>-content.png`, `<job id>-style1.webp`): nothing a client
/// sends becomes part of a path. Removed when the server stops.
final class UploadFolder: @unchecked Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("uso-serve-\(UUID().uuidString.lowercased())")
        do {
            // Owner-only: other users of the machine need not see what was uploaded.
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw APIError(.internalServerError, "cannot create the upload folder \(url.path): \(error.localizedDescription)")
        }
    }

    /// Writes the submission's references; `jobID` is server-generated.
    func store(_ submission: JobSubmission, jobID: String) throws -> (content: URL?, styles: [URL]) {
        let content = try submission.contentImage.map { try write($0, name: "\(jobID)-content") }
        let styles = try submission.styleImages.enumerated().map { index, image in
            try write(image, name: "\(jobID)-style\(index + 1)")
        }
        return (content, styles)
    }

    /// Deletes files of this folder (anything else is left alone).
    func remove(_ files: [URL]) {
        for file in files where file.deletingLastPathComponent().standardizedFileURL.path == url.standardizedFileURL.path {
            try? FileManager.default.removeItem(at: file)
        }
    }

    func removeAll() {
        try? FileManager.default.removeItem(at: url)
    }

    private func write(_ image: ValidatedImage, name: String) throws -> URL {
        // The extension comes from the sniffed format, never from the uploaded file name.
        let file = url.appendingPathComponent("\(name).\(image.info.format.rawValue)")
        do {
            try image.data.write(to: file, options: .atomic)
        } catch {
            throw APIError(.internalServerError, "cannot store the uploaded image: \(error.localizedDescription)")
        }
        return file
    }
}
