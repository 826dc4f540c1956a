// The settings the downloader and the model store read: the process environment over a `.env` file
// (python-dotenv's default: variables already set win), with the Hugging Face conventions for the
// endpoint, the token and the cache folder (as huggingface_hub reads them).
import Foundation

public struct HubEnvironment: Sendable {
    /// Process variables laid over the `.env` file's.
    public var variables: [String: String]
    /// Relative paths in variables are taken from here, as the reference's `os.getenv` paths are.
    public var currentDirectory: URL
    public var homeDirectory: URL

    public static let defaultEndpoint = "https://huggingface.co"

    public init(variables: [String: String], currentDirectory: URL, homeDirectory: URL) {
        self.variables = variables
        self.currentDirectory = currentDirectory
        self.homeDirectory = homeDirectory
    }

    /// The running process's environment plus `.env` in the current directory, if there is one.
    public static func current() -> HubEnvironment {
        let currentDirectory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        let home = FileManager.default.homeDirectoryForCurrentUser
        return loading(dotEnvIn: currentDirectory, over: ProcessInfo.processInfo.environment,
                       currentDirectory: currentDirectory, homeDirectory: home)
    }

    /// `processVariables` laid over the variables of `directory/.env` (an unreadable file counts as absent).
    public static func loading(dotEnvIn directory: URL, over processVariables: [String: String],
                               currentDirectory: URL, homeDirectory: URL) -> HubEnvironment {
        let dotEnvURL = directory.appendingPathComponent(".env")
        let fileVariables = (try? String(contentsOf: dotEnvURL, encoding: .utf8)).map(DotEnv.parse) ?? [:]
        return HubEnvironment(variables: fileVariables.merging(processVariables) { _, process in process },
                              currentDirectory: currentDirectory, homeDirectory: homeDirectory)
    }

    /// A non-empty variable's value.
    public func value(_ name: String) -> String? {
        guard let value = variables[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// A path from a variable or a flag: `~` expanded, relative paths taken from the current directory.
    public func url(forPath path: String) -> URL {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory.appendingPathComponent(String(path.dropFirst(2))) }
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
        return currentDirectory.appendingPathComponent(path).standardizedFileURL
    }

    /// `HF_ENDPOINT` without a trailing slash, else https://huggingface.co.
    public var endpoint: String {
        var base = value("HF_ENDPOINT") ?? Self.defaultEndpoint
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// huggingface_hub's HF_HOME: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
    public var huggingFaceHome: URL {
        if let home = value("HF_HOME") { return url(forPath: home) }
        if let cache = value("XDG_CACHE_HOME") { return url(forPath: cache).appendingPathComponent("huggingface") }
        return homeDirectory.appendingPathComponent(".cache/huggingface")
    }

    /// The hub cache (`models--owner--name/snapshots/<commit>/...`): `$HF_HUB_CACHE`, else `HF_HOME/hub`.
    public var huggingFaceCache: URL {
        if let cache = value("HF_HUB_CACHE") { return url(forPath: cache) }
        return huggingFaceHome.appendingPathComponent("hub")
    }

    /// Where DiT weights converted for a low-memory precision are kept: `$USO_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/uso/converted`, else `~/.cache/uso/converted`.
    public var convertedWeightsDirectory: URL {
        if let folder = value("USO_CACHE_DIR") { return url(forPath: folder) }
        let cache = value("XDG_CACHE_HOME").map(url(forPath:)) ?? homeDirectory.appendingPathComponent(".cache")
        return cache.appendingPathComponent("uso/converted")
    }

    public struct Token: Sendable, Equatable {
        public let value: String
        /// Where it came from, for messages ("--token", "HF_TOKEN", "/root/.cache/huggingface/token").
        public let source: String
    }

    /// The first token found in: the `--token` flag, `HF_TOKEN` (process or `.env`), the legacy
    /// `HUGGING_FACE_HUB_TOKEN`, then the token file `huggingface-cli login` writes.
    public func token(explicit: String? = nil) -> Token? {
        if let explicit = explicit?.trimmingCharacters(in: .whitespacesAndNewlines), !explicit.isEmpty {
            return Token(value: explicit, source: "--token")
        }
        for name in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
            if let value = value(name) { return Token(value: value, source: name) }
        }
        let tokenFile = value("HF_TOKEN_PATH").map(url(forPath:)) ?? huggingFaceHome.appendingPathComponent("token")
        if let contents = try? String(contentsOf: tokenFile, encoding: .utf8) {
            let value = contents.trimmingCharacters(in: .whitespacesAndNewlines)
            if !value.isEmpty { return Token(value: value, source: tokenFile.path) }
        }
        return nil
    }
}

/// A `.env` file: `KEY=value` lines, `export` prefixes, `#` comments, single- or double-quoted values.
public enum DotEnv {
    public static func parse(_ text: String) -> [String: String] {
        var variables: [String: String] = [:]
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { continue }
            variables[key] = unquoted(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces))
        }
        return variables
    }

    private static func unquoted(_ value: String) -> String {
        if let quote = value.first, quote == "\"" || quote == "'",
           let closing = value.dropFirst().firstIndex(of: quote) {
            let inner = String(value[value.index(after: value.startIndex)..<closing])
            return quote == "\"" ? inner.replacingOccurrences(of: "\\n", with: "\n") : inner
        }
        // An unquoted value ends at a comment that follows whitespace.
        if let comment = value.range(of: " #") {
            return value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
        }
        return value
    }
}
