// Finds the files a model type needs. Per component, the places looked at, in order:
//   1. the reference's environment variables (FLUX_DEV, AE, T5, ... from the environment or `.env`),
//   2. `--model-dir` in the reference downloader's layout (FLUX.1-dev/, USO/uso_flux_v1.0/, t5-xxl/, ...),
//   3. the Hugging Face cache (`models--owner--name/snapshots/<commit>/`, refs/<revision> first).
// The first place where every file of the component is whole wins.
import Foundation
import ModelLayout

public enum FileSource: Equatable, Sendable, CustomStringConvertible {
    case environment(variable: String)
    case modelDirectory
    case huggingFaceCache(commit: String)

    public var description: String {
        switch self {
        case .environment(let variable): return "$\(variable)"
        case .modelDirectory: return "model dir"
        case .huggingFaceCache(let commit): return "HF cache @\(commit.prefix(8))"
        }
    }
}

/// One place a component may be: its file (`.file` components) or folder (`.folder` components).
public struct CandidateLocation: Sendable {
    public let source: FileSource
    public let location: URL
    /// Per required file, where it would be and its condition there.
    public let files: [(file: RequiredFile, url: URL, condition: FileCondition)]

    public var isComplete: Bool { files.allSatisfy { $0.condition == .present } }
}

/// One required file's state: where it was found (or damaged), and through which source.
public struct FileStatus: Sendable {
    public let file: RequiredFile
    public let condition: FileCondition
    public let url: URL?
    public let source: FileSource?
}

public struct ComponentResolution: Sendable {
    public let spec: ComponentSpec
    /// Every place looked at, in order of preference.
    public let candidates: [CandidateLocation]
    /// The repository's folder in the HF cache, looked at even when it holds no snapshot.
    public let huggingFaceCacheFolder: URL

    /// The first place where every file is present.
    public var resolved: CandidateLocation? { candidates.first(where: \.isComplete) }
    public var isComplete: Bool { resolved != nil }

    /// `--model-dir`'s place, where `uso download` puts what is missing.
    public var modelDirectoryCandidate: CandidateLocation? { candidates.first { $0.source == .modelDirectory } }

    /// Per file: where it was found, or the first place it is damaged, or missing everywhere.
    public var fileStatuses: [FileStatus] {
        if let resolved {
            return resolved.files.map { FileStatus(file: $0.file, condition: .present, url: $0.url, source: resolved.source) }
        }
        return spec.files.enumerated().map { index, file -> FileStatus in
            let places = candidates.map { (source: $0.source, entry: $0.files[index]) }
            if let found = places.first(where: { $0.entry.condition == .present }) {
                return FileStatus(file: file, condition: .present, url: found.entry.url, source: found.source)
            }
            if let damaged = places.first(where: { $0.entry.condition != .missing }) {
                return FileStatus(file: file, condition: damaged.entry.condition, url: damaged.entry.url, source: damaged.source)
            }
            return FileStatus(file: file, condition: .missing, url: nil, source: nil)
        }
    }
}

public struct ModelInventory: Sendable {
    public let modelType: ModelType
    public let modelDirectory: URL
    public let components: [ComponentResolution]

    public var isComplete: Bool { components.allSatisfy(\.isComplete) }
    public func component(_ component: ModelComponent) -> ComponentResolution? {
        components.first { $0.spec.component == component }
    }
}

/// Where the pipeline loads each component from.
public struct ResolvedModelPaths: Sendable {
    public let modelType: ModelType
    /// flux1-dev.safetensors (or the schnell / Krea-dev transformer).
    public let diffusionTransformer: URL
    /// ae.safetensors.
    public let autoencoder: URL
    /// Folders in `from_pretrained` layout.
    public let t5Directory: URL
    public let clipDirectory: URL
    public let siglipDirectory: URL
    /// dit_lora.safetensors and projector.safetensors.
    public let lora: URL
    public let projector: URL
    /// Where each component was found.
    public let sources: [ModelComponent: FileSource]
}

/// Thrown by `ModelStore.resolve` when a file is missing or damaged; its description is the report.
public struct ModelFilesUnavailable: Error, CustomStringConvertible {
    public let inventory: ModelInventory

    public var description: String {
        inventory.listing() + "\nrun `uso download --model-type \(inventory.modelType.rawValue) --model-dir "
            + "\(inventory.modelDirectory.path)` to fetch what is missing"
    }
}

public struct ModelStore: Sendable {
    public let modelDirectory: URL
    public let environment: HubEnvironment

    public init(modelDirectory: URL, environment: HubEnvironment) {
        self.modelDirectory = modelDirectory.standardizedFileURL
        self.environment = environment
    }

    /// The paths the pipeline loads, or `ModelFilesUnavailable` naming every missing or damaged file.
    public static func resolve(modelType: ModelType, modelDir: URL,
                               environment: HubEnvironment = .current()) throws -> ResolvedModelPaths {
        try ModelStore(modelDirectory: modelDir, environment: environment).resolve(modelType)
    }

    public func resolve(_ modelType: ModelType) throws -> ResolvedModelPaths {
        let inventory = inventory(for: modelType)
        var locations: [ModelComponent: URL] = [:]
        var sources: [ModelComponent: FileSource] = [:]
        for component in inventory.components {
            guard let resolved = component.resolved else { throw ModelFilesUnavailable(inventory: inventory) }
            locations[component.spec.component] = resolved.location
            sources[component.spec.component] = resolved.source
        }
        func location(_ component: ModelComponent) throws -> URL {
            guard let url = locations[component] else { throw ModelFilesUnavailable(inventory: inventory) }
            return url
        }
        return ResolvedModelPaths(
            modelType: modelType,
            diffusionTransformer: try location(.diffusionTransformer), autoencoder: try location(.autoencoder),
            t5Directory: try location(.t5), clipDirectory: try location(.clip), siglipDirectory: try location(.siglip),
            lora: try location(.lora), projector: try location(.projector), sources: sources)
    }

    /// Every place looked at for every component of `modelType`. `verifyHashes` re-hashes files whose
    /// SHA-256 is known (our download records, the HF cache's blob names): slow for the 24 GB transformer.
    public func inventory(for modelType: ModelType, verifyHashes: Bool = false) -> ModelInventory {
        ModelInventory(modelType: modelType, modelDirectory: modelDirectory,
                       components: ModelCatalog.components(for: modelType).map {
                           resolution(of: $0, verifyHashes: verifyHashes)
                       })
    }

    func resolution(of spec: ComponentSpec, verifyHashes: Bool) -> ComponentResolution {
        var locations: [(FileSource, URL)] = spec.environmentVariables.compactMap { variable in
            environment.value(variable).map { (FileSource.environment(variable: variable), environment.url(forPath: $0)) }
        }
        switch spec.shape {
        case .file: locations.append((.modelDirectory, modelDirectory.appendingPathComponent(spec.files[0].localPath)))
        case .folder(let directory): locations.append((.modelDirectory, modelDirectory.appendingPathComponent(directory)))
        }
        locations += huggingFaceSnapshots(of: spec.repository).map { commit, snapshot -> (FileSource, URL) in
            switch spec.shape {
            case .file: return (.huggingFaceCache(commit: commit), snapshot.appendingPathComponent(spec.files[0].repositoryPath))
            case .folder: return (.huggingFaceCache(commit: commit), snapshot)
            }
        }
        let candidates = locations.map { source, location in
            CandidateLocation(source: source, location: location, files: spec.files.map { file in
                let url: URL
                switch spec.shape {
                case .file: url = location
                case .folder: url = location.appendingPathComponent(file.repositoryPath)
                }
                let condition = FileIntegrity.check(url, expecting: expectation(for: url), verifyHash: verifyHashes)
                return (file, url, condition)
            })
        }
        return ComponentResolution(spec: spec, candidates: candidates,
                                   huggingFaceCacheFolder: huggingFaceCacheFolder(of: spec.repository))
    }

    /// Snapshots of `repository` in the HF cache: the one `refs/<revision>` names first, then the others.
    func huggingFaceCacheFolder(of repository: HubRepository) -> URL {
        environment.huggingFaceCache.appendingPathComponent("models--" + repository.id.replacingOccurrences(of: "/", with: "--"))
    }

    func huggingFaceSnapshots(of repository: HubRepository) -> [(commit: String, url: URL)] {
        let repositoryFolder = huggingFaceCacheFolder(of: repository)
        let snapshots = repositoryFolder.appendingPathComponent("snapshots")
        let commits = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots.path)) ?? []).sorted()
        let preferred = (try? String(contentsOf: repositoryFolder.appendingPathComponent("refs/\(repository.revision)"),
                                     encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let ordered = commits.filter { $0 == preferred } + commits.filter { $0 != preferred }
        return ordered.map { ($0, snapshots.appendingPathComponent($0)) }
    }

    /// The size and hash a file should have: from our download record when it lies in the model folder,
    /// from its blob's name when it is an HF cache link (LFS blobs are named by their SHA-256).
    func expectation(for url: URL) -> FileIntegrity.Expectation {
        let modelPrefix = modelDirectory.path + "/"
        if url.path.hasPrefix(modelPrefix),
           let record = DownloadRecord.load(forLocalPath: String(url.path.dropFirst(modelPrefix.count)), in: modelDirectory) {
            return FileIntegrity.Expectation(size: record.size, sha256: record.sha256)
        }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: url.path) {
            let blobName = (target as NSString).lastPathComponent
            if blobName.count == 64, blobName.allSatisfy(\.isHexDigit) {
                return FileIntegrity.Expectation(size: nil, sha256: blobName.lowercased())
            }
        }
        return FileIntegrity.Expectation()
    }
}

extension ModelInventory {
    /// The `uso models` listing: per file, present (and where), missing (and where it was looked for) or damaged.
    public func listing() -> String {
        let missingCount = components.flatMap(\.fileStatuses).filter { $0.condition == .missing }.count
        let damagedCount = components.flatMap(\.fileStatuses).filter {
            if case .corrupt = $0.condition { return true } else { return false }
        }.count
        var lines = [isComplete ? "\(modelType.rawValue): complete"
            : "\(modelType.rawValue): incomplete (\(missingCount) missing, \(damagedCount) damaged)"]
        for component in components {
            let name = component.spec.component.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
            for status in component.fileStatuses {
                let file = status.file.localPath
                switch status.condition {
                case .present:
                    lines.append("  present  \(name) \(file) -> \(status.url?.path ?? "?") [\(status.source.map { "\($0)" } ?? "")]")
                case .missing:
                    lines.append("  missing  \(name) \(file)")
                case .corrupt(let reason):
                    lines.append("  damaged  \(name) \(file) -> \(status.url?.path ?? "?"): \(reason)")
                }
            }
            if !component.isComplete {
                var places = component.candidates.map { "\($0.location.path) (\($0.source))" }
                if !component.candidates.contains(where: { if case .huggingFaceCache = $0.source { true } else { false } }) {
                    places.append("\(component.huggingFaceCacheFolder.path) (HF cache, no snapshot)")
                }
                lines.append("           looked in: " + places.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }
}
