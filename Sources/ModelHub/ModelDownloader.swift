// `uso download`: works out which of a model type's files are missing from every place the model store
// looks, asks the hub for their sizes and hashes, checks the disk, and fetches a few at a time into
// `--model-dir` in the reference downloader's layout.
import Foundation
import ModelLayout

public struct PlannedDownload: Sendable {
    public let component: ModelComponent
    public let repository: HubRepository
    public let file: RequiredFile
    public let destination: URL
    /// Bytes already in `<destination>.incomplete` from an earlier run.
    public let partialBytes: UInt64
    /// Filled in by `ModelDownloader.prepare` from the hub.
    public var metadata: RemoteFileMetadata?

    public var remainingBytes: UInt64? {
        metadata.map { $0.size > partialBytes ? $0.size - partialBytes : $0.size }
    }
}

public struct DownloadPlan: Sendable {
    public let inventory: ModelInventory
    public var downloads: [PlannedDownload]

    public var modelType: ModelType { inventory.modelType }
    public var remainingBytes: UInt64 { downloads.reduce(0) { $0 + ($1.remainingBytes ?? 0) } }
}

/// Hears about a running download (a terminal progress display, a test).
public protocol DownloadObserver: AnyObject {
    func downloadsWillStart(_ downloads: [PlannedDownload])
    func fileProgressed(_ download: PlannedDownload, bytesOnDisk: UInt64)
    func fileFinished(_ download: PlannedDownload)
    func downloadsEnded()
}

public final class ModelDownloader: @unchecked Sendable {
    public let store: ModelStore
    public let client: HubClient
    /// Files fetched at the same time (huggingface_hub's default is 8; large files saturate a link with fewer).
    public let concurrency: Int

    public init(store: ModelStore, client: HubClient, concurrency: Int = 3) {
        self.store = store
        self.client = client
        self.concurrency = max(1, concurrency)
    }

    /// Which files to fetch (no network): for each component found complete nowhere, its files that
    /// are not whole in `--model-dir`.
    public func plan(for modelType: ModelType) -> DownloadPlan {
        let inventory = store.inventory(for: modelType)
        let downloads = inventory.components.filter { !$0.isComplete }.flatMap { component -> [PlannedDownload] in
            guard let local = component.modelDirectoryCandidate else { return [] }
            return local.files.filter { $0.condition != .present }.map { entry in
                let destination = store.modelDirectory.appendingPathComponent(entry.file.localPath)
                let partial = FileIntegrity.regularFileSize(URL(fileURLWithPath: destination.path + ".incomplete")) ?? 0
                return PlannedDownload(component: component.spec.component, repository: component.spec.repository,
                                       file: entry.file, destination: destination, partialBytes: partial)
            }
        }
        return DownloadPlan(inventory: inventory, downloads: downloads)
    }

    /// Asks the hub for each file's size and hash (fails early on 401/403/404) and checks free space.
    public func prepare(_ plan: DownloadPlan) async throws -> DownloadPlan {
        var prepared = plan
        prepared.downloads = try await boundedConcurrentMap(plan.downloads) { download in
            var withMetadata = download
            withMetadata.metadata = try await self.client.metadata(of: download.repository,
                                                                   path: download.file.repositoryPath)
            return withMetadata
        }
        let needed = prepared.remainingBytes
        if needed > 0, let available = Self.availableDiskSpace(at: store.modelDirectory), needed > available {
            throw HubError.insufficientDiskSpace(directory: store.modelDirectory.path, needed: needed, available: available)
        }
        return prepared
    }

    /// Fetches a prepared plan's files, `concurrency` at a time, and returns the inventory afterwards.
    /// The first failure cancels the others; their partial files stay for the next run.
    @discardableResult
    public func run(_ plan: DownloadPlan, observer: DownloadObserver? = nil) async throws -> ModelInventory {
        observer?.downloadsWillStart(plan.downloads)
        defer { observer?.downloadsEnded() }
        _ = try await boundedConcurrentMap(plan.downloads) { download -> Void in
            guard let metadata = download.metadata else {
                throw HubError.fileSystem(path: download.destination.path, reason: "planned without the hub's metadata")
            }
            try await self.client.download(download.repository, path: download.file.repositoryPath,
                                           metadata: metadata, to: download.destination) { bytes in
                observer?.fileProgressed(download, bytesOnDisk: bytes)
            }
            let record = DownloadRecord(repository: download.repository.id, revision: download.repository.revision,
                                        commit: metadata.commit, sha256: metadata.sha256, size: metadata.size)
            do {
                try record.save(forLocalPath: download.file.localPath, in: self.store.modelDirectory)
            } catch {
                throw HubError.fileSystem(path: download.destination.path, reason: "cannot record the download: \(error)")
            }
            observer?.fileFinished(download)
        }
        return store.inventory(for: plan.modelType)
    }

    /// Plan, prepare and run.
    @discardableResult
    public func download(_ modelType: ModelType, observer: DownloadObserver? = nil) async throws -> ModelInventory {
        try await run(try await prepare(plan(for: modelType)), observer: observer)
    }

    /// Free bytes for an unprivileged writer on the file system that holds `url` (or its nearest existing parent).
    public static func availableDiskSpace(at url: URL) -> UInt64? {
        var directory = url.standardizedFileURL
        while !FileManager.default.fileExists(atPath: directory.path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        var stats = statvfs()
        guard statvfs(directory.path, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// `transform` over `items`, at most `concurrency` at once, results in input order.
    private func boundedConcurrentMap<Input, Output>(_ items: [Input],
                                                     _ transform: @escaping (Input) async throws -> Output) async throws -> [Output] {
        try await withThrowingTaskGroup(of: (Int, Output).self) { group in
            var results = [Output?](repeating: nil, count: items.count)
            var next = 0
            func startNext() {
                let index = next
                let item = items[index]
                group.addTask { (index, try await transform(item)) }
                next += 1
            }
            while next < min(concurrency, items.count) { startNext() }
            while let (index, output) = try await group.next() {
                results[index] = output
                if next < items.count { startNext() }
            }
            return results.compactMap { $0 }
        }
    }
}
