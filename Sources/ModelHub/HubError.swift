// The downloader's failures, each worded as what happened and what to do next.
import Foundation
import ModelLayout

public enum HubError: Error, CustomStringConvertible, Equatable {
    /// 401: no token, or the hub did not accept it.
    case unauthorized(repository: String, tokenSource: String?)
    /// 403 on a gated repository: the account has not accepted the license.
    case gatedRepository(repository: String, tokenSource: String?)
    /// 403 for another reason (e.g. a fine-grained token without read access to the repository).
    case forbidden(repository: String, message: String?)
    case notFound(repository: String, path: String, revision: String, message: String?)
    /// A status the downloader does not retry, or still got after all retries.
    case httpStatus(code: Int, url: String, message: String?)
    case transport(url: String, reason: String)
    /// No response from `origin` (the hub, or the storage host it redirects to) after every retry.
    case unreachable(origin: String, endpoint: String, reason: String)
    case tooManyRedirects(url: String)
    case checksumMismatch(path: String, expected: String, actual: String, attempts: Int)
    /// The server sent (or announced) more than the hub's size for the file; the download was stopped there.
    case oversize(path: String, announced: UInt64, atLeast: UInt64)
    case insufficientDiskSpace(directory: String, needed: UInt64, available: UInt64)
    /// The disk filled up while writing: the partial file is kept so the next run resumes.
    case diskFull(partialFile: String, bytesWritten: UInt64)
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case .unauthorized(let repository, let tokenSource):
            let tokenText = tokenSource.map { "the token from \($0) was rejected" } ?? "no token was given"
            return "401 Unauthorized from the hub for \(repository): \(tokenText). Create a read token at "
                + "https://huggingface.co/settings/tokens and pass it with --token, set HF_TOKEN (in the "
                + "environment or .env), or run `huggingface-cli login`."
        case .gatedRepository(let repository, let tokenSource):
            let tokenText = tokenSource.map { " (token from \($0))" } ?? ""
            return "403 Forbidden: \(repository) is gated and this account\(tokenText) has not been granted access. "
                + "Visit https://huggingface.co/\(repository), log in with the token's account and accept the "
                + "license, then run the download again."
        case .forbidden(let repository, let message):
            return "403 Forbidden for \(repository)\(message.map { ": \($0)" } ?? ""). Check that the token has "
                + "read access to this repository."
        case .notFound(let repository, let path, let revision, let message):
            return "404 Not Found: \(path) at revision \(revision) of \(repository)\(message.map { " (\($0))" } ?? "")."
        case .httpStatus(let code, let url, let message):
            return "HTTP \(code) for \(url)\(message.map { ": \($0)" } ?? "")."
        case .transport(let url, let reason):
            return "could not download \(url): \(reason). Check the network (and HF_ENDPOINT), then run again; "
                + "finished bytes are kept."
        case .unreachable(let origin, let endpoint, let reason):
            let what = endpoint.hasPrefix(origin) ? "the hub at \(origin)" : "\(origin), where the hub at \(endpoint) sent the download,"
            return "cannot reach \(what): \(reason). Check the network connection, a firewall or proxy, and HF_ENDPOINT "
                + "(it is \(endpoint); unset it for \(HubEnvironment.defaultEndpoint)). Finished bytes are kept: run again."
        case .tooManyRedirects(let url):
            return "too many redirects for \(url)."
        case .checksumMismatch(let path, let expected, let actual, let attempts):
            return "\(path): SHA-256 \(actual) does not match the hub's \(expected) after \(attempts) attempts; "
                + "the damaged download was deleted. Run again, or check for a proxy that alters downloads."
        case .oversize(let path, let announced, let atLeast):
            return "\(path): the server sends at least \(atLeast) bytes, but the hub announced \(announced); the "
                + "download was stopped at the announced size and deleted. The file may have changed on the hub: run again."
        case .insufficientDiskSpace(let directory, let needed, let available):
            return "not enough disk space in \(directory): the download needs \(ByteCount(needed)), "
                + "\(ByteCount(available)) is free. Free some space or choose another --model-dir."
        case .diskFull(let partialFile, let bytesWritten):
            return "the disk filled up while writing \(partialFile) (\(ByteCount(bytesWritten)) written). "
                + "The partial file is kept: free some space and run the same command to resume."
        case .fileSystem(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

/// Byte counts for people: 1.5 GB, 335.3 MB (decimal units, as the hub shows sizes).
public struct ByteCount: CustomStringConvertible {
    public let bytes: UInt64
    public init(_ bytes: UInt64) { self.bytes = bytes }

    public var description: String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}
