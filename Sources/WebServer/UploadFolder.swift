import Foundation

/// A folder of the server's own under the system temp directory, holding uploaded references
/// under names the server makes (`<job id>-content.png`, `<job id>-style1.webp`): nothing a client
/// sends becomes part of a path. Removed when the server stops; named `uso-serve-<pid>-<uuid>` so
/// that the next server can remove the folders of servers that were killed.
final class UploadFolder: @unchecked Sendable {
    static let prefix = "uso-serve-"
    let url: URL

    init(parent: URL = FileManager.default.temporaryDirectory) throws {
        Self.removeAbandoned(in: parent)
        url = parent.appendingPathComponent("\(Self.prefix)\(getpid())-\(UUID().uuidString.lowercased())")
        do {
            // Owner-only: other users of the machine need not see what was uploaded.
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw APIError(.internalServerError, "cannot create the upload folder \(url.path): \(error.localizedDescription)")
        }
    }

    /// Removes this user's `uso-serve-<pid>-<uuid>` folders whose process no longer exists. They all
    /// predate this server's own folder; folders of running servers and other names are left alone.
    static func removeAbandoned(in parent: URL) {
        let files = FileManager.default
        for name in (try? files.contentsOfDirectory(atPath: parent.path)) ?? [] where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UUID(uuidString: String(parts[1])) != nil else { continue }
            let folder = parent.appendingPathComponent(name)
            let owner = (try? files.attributesOfItem(atPath: folder.path))?[.ownerAccountID] as? NSNumber
            // ESRCH: no such process (EPERM would mean it exists, under another user).
            guard owner?.uint32Value == getuid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? files.removeItem(at: folder)
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
