// A download in progress: `<file>.incomplete` on disk plus the SHA-256 of the bytes written so far, so
// that a resumed download hashes only the new bytes (the 24 GB transformer is not read twice).
import Foundation
import NIOCore

final class PartialDownload {
    let url: URL
    private(set) var bytesOnDisk: UInt64 = 0
    private var hasher = SHA256()
    /// How many leading bytes of the file `hasher` has seen.
    private var hashedBytes: UInt64 = 0
    private var descriptor: Int32 = -1

    init(url: URL) {
        self.url = url
    }

    deinit {
        closeDescriptor()
    }

    /// Opens the partial file for appending. A partial longer than the expected file cannot be a prefix
    /// of it and is started over.
    func prepare(expectedSize: UInt64) throws {
        let existing = FileIntegrity.regularFileSize(url) ?? 0
        if descriptor < 0 {
            descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            guard descriptor >= 0 else { throw fileSystemError("cannot open for writing") }
            // Two `uso download` runs must not append to the same partial file.
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                closeDescriptor()
                throw HubError.fileSystem(path: url.path, reason: "another download is writing this file")
            }
        }
        if existing > expectedSize {
            try restart()
            return
        }
        bytesOnDisk = existing
        if hashedBytes != existing {
            hasher = SHA256()
            do {
                try hasher.update(contentsOf: url, upTo: existing)
            } catch {
                throw HubError.fileSystem(path: url.path, reason: "cannot read the partial download: \(error.localizedDescription)")
            }
            hashedBytes = existing
        }
    }

    /// Empties the file: the server sent the whole file instead of the rest.
    func restart() throws {
        guard ftruncate(descriptor, 0) == 0 else { throw fileSystemError("cannot truncate") }
        bytesOnDisk = 0
        hasher = SHA256()
        hashedBytes = 0
    }

    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == ENOSPC || errno == EDQUOT {
                        throw HubError.diskFull(partialFile: url.path, bytesWritten: bytesOnDisk)
                    }
                    throw fileSystemError("write failed")
                }
                hasher.update(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + written]))
                offset += written
                bytesOnDisk += UInt64(written)
                hashedBytes = bytesOnDisk
            }
        }
    }

    /// The lowercase hex SHA-256 of the whole partial file.
    func finishHash() -> String {
        var final = hasher
        return final.finalize().hexString
    }

    /// Flushes and renames onto `destination`, replacing a damaged file there.
    func moveIntoPlace(at destination: URL) throws {
        guard fsync(descriptor) == 0 else { throw fileSystemError("cannot flush") }
        closeDescriptor()
        guard rename(url.path, destination.path) == 0 else {
            throw HubError.fileSystem(path: destination.path, reason: "cannot move the download into place: "
                                      + String(cString: strerror(errno)))
        }
    }

    /// Deletes the partial file (its content failed verification).
    func discard() {
        closeDescriptor()
        unlink(url.path)
        bytesOnDisk = 0
        hasher = SHA256()
        hashedBytes = 0
    }

    private func closeDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    private func fileSystemError(_ what: String) -> HubError {
        HubError.fileSystem(path: url.path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
}
