// The downloader against MockHub on 127.0.0.1: the hub's headers, redirects, errors and failures.
import NIOCore
import XCTest
@testable import ModelHub
@testable import ModelLayout

final class HubDownloadTests: XCTestCase {
    private var hub: MockHub!
    private var clients: [HubClient] = []
    /// Short delays so the retry tests stay fast.
    private let fastRetry = RetryPolicy(maximumAttempts: 4, initialDelay: 0.01, maximumDelay: 0.05)

    private let usoRepository = HubRepository("bytedance-research/USO")
    private let loraPath = "uso_flux_v1.0/dit_lora.safetensors"
    private var loraKey: String { "bytedance-research/USO/\(loraPath)" }

    override func setUp() async throws {
        hub = MockHub()
        try await hub.start()
    }

    override func tearDown() async throws {
        for client in clients { try await client.shutdown() }
        clients = []
        await hub.stop()
    }

    private func makeClient(endpoint: String? = nil, token: String? = nil, retry: RetryPolicy? = nil,
                            connectTimeout: TimeAmount = HubClient.defaultConnectTimeout,
                            notices: NoticeLog = NoticeLog()) -> HubClient {
        let client = HubClient(endpoint: endpoint ?? hub.hubBase,
                               token: token.map { HubEnvironment.Token(value: $0, source: "--token") },
                               retry: retry ?? fastRetry, connectTimeout: connectTimeout, notice: { notices.append($0) })
        clients.append(client)
        return client
    }

    private func addLoRA(size: Int = 64_000) -> [UInt8] {
        let content = MockHub.sampleContent(for: loraPath, size: size)
        hub.add(usoRepository.id, loraPath, content: content)
        return content
    }

    // MARK: Whole model type

    func testDownloadsAWholeModelTypeIntoTheReferenceLayout() async throws {
        let root = try makeTemporaryDirectory(self)
        let modelDirectory = root.appendingPathComponent("weights")
        hub.requiredToken = "hf_secret"
        hub.addFiles(of: ModelCatalog.components(for: .fluxDev))
        let store = ModelStore(modelDirectory: modelDirectory, environment: try makeEnvironment(root: root))
        let downloader = ModelDownloader(store: store, client: makeClient(token: "hf_secret"), concurrency: 3)
        var lines: [String] = []
        let progress = TerminalProgress(interactive: false) { lines.append($0) }

        let inventory = try await downloader.download(.fluxDev, observer: progress)

        XCTAssertTrue(inventory.isComplete, inventory.listing())
        for spec in ModelCatalog.components(for: .fluxDev) {
            for file in spec.files {
                let onDisk = [UInt8](try Data(contentsOf: modelDirectory.appendingPathComponent(file.localPath)))
                XCTAssertEqual(onDisk, hub.file(spec.repository.id, file.repositoryPath)?.content, file.localPath)
                XCTAssertFalse(FileManager.default.fileExists(atPath: modelDirectory.appendingPathComponent(file.localPath).path + ".incomplete"))
            }
        }
        XCTAssertEqual(lines.count, 18, "one plain line per file when stderr is not a terminal")
        XCTAssertTrue(lines.contains { $0.hasPrefix("downloaded USO/uso_flux_v1.0/dit_lora.safetensors (") }, "\(lines)")
        let record = try XCTUnwrap(DownloadRecord.load(forLocalPath: "FLUX.1-dev/ae.safetensors", in: modelDirectory))
        XCTAssertEqual(record.sha256, hub.file("black-forest-labs/FLUX.1-dev", "ae.safetensors")?.sha256)
        XCTAssertEqual(record.commit, MockHub.commit)

        // The token goes to the hub, never to the storage host the LFS files are redirected to.
        let requests = hub.requests
        XCTAssertTrue(requests.filter { $0.path.contains("/resolve/") }.allSatisfy { $0.authorization == "Bearer hf_secret" })
        let storageRequests = requests.filter { $0.path.hasPrefix("/storage/") }
        XCTAssertEqual(storageRequests.count, 8, "one GET per LFS file (2 flux, spiece, 2 .bin, siglip, 2 USO)")
        XCTAssertTrue(storageRequests.allSatisfy { $0.authorization == nil && $0.authority.hasPrefix("localhost") })

        // Everything is present now: a second run makes no request.
        let before = hub.requests.count
        let again = try await downloader.download(.fluxDev)
        XCTAssertTrue(again.isComplete)
        XCTAssertEqual(hub.requests.count, before)
        XCTAssertNoThrow(try store.resolve(.fluxDev))
    }

    /// Files found through `.env` and in the HF cache are used as they are: no request reaches the hub.
    func testReusesDotEnvPathsAndHuggingFaceCacheWithoutRequests() async throws {
        let root = try makeTemporaryDirectory(self)
        let work = root.appendingPathComponent("work")
        let hfHome = root.appendingPathComponent("hf")
        var dotEnv = "HF_HOME=\(hfHome.path)\n"
        for spec in ModelCatalog.components(for: .fluxDev) {
            let contents = Dictionary(uniqueKeysWithValues: spec.files.map {
                ($0.repositoryPath, MockHub.sampleContent(for: $0.repositoryPath, size: 40))
            })
            switch spec.component {
            case .diffusionTransformer, .autoencoder:
                let path = "elsewhere/\(spec.files[0].fileName)"
                try write(contents[spec.files[0].repositoryPath]!, to: work.appendingPathComponent(path))
                dotEnv += "\(spec.environmentVariables[0])=./\(path)\n"
            default:
                try populateHuggingFaceCache(hfHome.appendingPathComponent("hub"), repository: spec.repository.id,
                                             commit: "abc123", files: contents)
            }
        }
        try Data(dotEnv.utf8).write(to: work.appendingPathComponent(".env"))
        hub.addFiles(of: ModelCatalog.components(for: .fluxDev))
        let environment = HubEnvironment.loading(dotEnvIn: work, over: [:], currentDirectory: work,
                                                 homeDirectory: root.appendingPathComponent("home"))
        let store = ModelStore(modelDirectory: root.appendingPathComponent("weights"), environment: environment)
        let downloader = ModelDownloader(store: store, client: makeClient())

        let plan = downloader.plan(for: .fluxDev)
        XCTAssertTrue(plan.downloads.isEmpty)
        let inventory = try await downloader.download(.fluxDev)
        XCTAssertTrue(inventory.isComplete)
        XCTAssertEqual(hub.requests.count, 0)
        let paths = try store.resolve(.fluxDev)
        XCTAssertEqual(paths.sources[.diffusionTransformer], .environment(variable: "FLUX_DEV"))
        XCTAssertEqual(paths.sources[.clip], .huggingFaceCache(commit: "abc123"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("weights").path))
    }

    // MARK: One file

    func testMetadataFromTheHubsHeaders() async throws {
        let content = addLoRA()
        hub.add(usoRepository.id, "README.md", content: Array("# USO".utf8))
        let client = makeClient()
        let lfs = try await client.metadata(of: usoRepository, path: loraPath)
        XCTAssertEqual(lfs, RemoteFileMetadata(size: UInt64(content.count), sha256: SHA256.hash(content).hexString,
                                               etag: SHA256.hash(content).hexString, commit: MockHub.commit))
        let small = try await client.metadata(of: usoRepository, path: "README.md")
        XCTAssertEqual(small.size, 5)
        XCTAssertNil(small.sha256, "git files are named by a SHA-1, which is not checked")
        // HEAD requests do not follow the redirect to the storage host.
        XCTAssertFalse(hub.requests.contains { $0.path.hasPrefix("/storage/") })
    }

    func testInterruptedDownloadResumesWithRange() async throws {
        let root = try makeTemporaryDirectory(self)
        let destination = root.appendingPathComponent("USO/uso_flux_v1.0/dit_lora.safetensors")
        let partial = URL(fileURLWithPath: destination.path + ".incomplete")
        let content = addLoRA(size: 64_000)
        hub.cutConnection(loraKey, times: 1, afterBytes: 20_000)

        // First run: one attempt only, so the cut connection ends it; the partial file stays, and it
        // does not carry the final name.
        let impatient = makeClient(retry: RetryPolicy(maximumAttempts: 1, initialDelay: 0.01))
        let metadata = try await impatient.metadata(of: usoRepository, path: loraPath)
        do {
            try await impatient.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { _ in }
            XCTFail("the cut connection should have failed the download")
        } catch let error as HubError {
            guard case .transport = error else { return XCTFail("\(error)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path))
        let kept = try XCTUnwrap(FileIntegrity.regularFileSize(partial))
        XCTAssertGreaterThan(kept, 0)
        XCTAssertLessThanOrEqual(kept, 20_000)

        // Second run: resumes from the partial file's end with a Range request.
        var progress: [UInt64] = []
        try await makeClient().download(usoRepository, path: loraPath, metadata: metadata, to: destination) { progress.append($0) }
        XCTAssertEqual([UInt8](try Data(contentsOf: destination)), content)
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
        let resumed = try XCTUnwrap(hub.requests.last { $0.path.hasPrefix("/storage/") })
        XCTAssertEqual(resumed.range, "bytes=\(kept)-")
        XCTAssertEqual(resumed.status, 206)
        XCTAssertEqual(progress.first, kept)
        XCTAssertEqual(progress.last, UInt64(content.count))
    }

    func testConnectionDropIsRetriedWithinOneRun() async throws {
        let root = try makeTemporaryDirectory(self)
        let destination = root.appendingPathComponent("lora.safetensors")
        let content = addLoRA(size: 64_000)
        hub.cutConnection(loraKey, times: 2, afterBytes: 10_000)
        let client = makeClient()
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        try await client.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { _ in }
        XCTAssertEqual([UInt8](try Data(contentsOf: destination)), content)
        let ranges = hub.requests.filter { $0.path.hasPrefix("/storage/") }.map { $0.range ?? "none" }
        XCTAssertEqual(ranges.count, 3)
        XCTAssertEqual(ranges.first, "none")
        XCTAssertTrue(ranges.dropFirst().allSatisfy { $0.hasPrefix("bytes=") && $0 != "bytes=0-" }, "\(ranges)")
    }

    func testCorruptedDownloadIsRetriedThenAccepted() async throws {
        let root = try makeTemporaryDirectory(self)
        let destination = root.appendingPathComponent("lora.safetensors")
        let content = addLoRA(size: 8_000)
        hub.corrupt(loraKey, times: 1)
        let client = makeClient()
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        try await client.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { _ in }
        XCTAssertEqual([UInt8](try Data(contentsOf: destination)), content)
        XCTAssertEqual(hub.requests.filter { $0.path.hasPrefix("/storage/") }.count, 2)
    }

    func testPersistentlyCorruptedDownloadFailsClearly() async throws {
        let root = try makeTemporaryDirectory(self)
        let destination = root.appendingPathComponent("lora.safetensors")
        let content = addLoRA(size: 8_000)
        hub.corrupt(loraKey, times: 100)
        let client = makeClient()
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        do {
            try await client.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { _ in }
            XCTFail("a hash mismatch must fail")
        } catch let error as HubError {
            guard case .checksumMismatch(_, let expected, let actual, let attempts) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(expected, SHA256.hash(content).hexString)
            XCTAssertNotEqual(actual, expected)
            XCTAssertEqual(attempts, 2)
            XCTAssertTrue(error.description.contains("does not match the hub's"), error.description)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path + ".incomplete"))
    }

    func testGatedRepositoryNamesTheLicensePage() async throws {
        hub.add("black-forest-labs/FLUX.1-dev", "ae.safetensors", content: MockHub.sampleContent(for: "ae.safetensors", size: 100))
        hub.gatedRepositories = ["black-forest-labs/FLUX.1-dev"]
        do {
            _ = try await makeClient(token: "hf_ok").metadata(of: HubRepository("black-forest-labs/FLUX.1-dev", isGated: true),
                                                              path: "ae.safetensors")
            XCTFail("a gated repository must fail")
        } catch let error as HubError {
            XCTAssertEqual(error, .gatedRepository(repository: "black-forest-labs/FLUX.1-dev", tokenSource: "--token"))
            XCTAssertTrue(error.description.contains("https://huggingface.co/black-forest-labs/FLUX.1-dev"))
            XCTAssertTrue(error.description.contains("accept the license"))
        }
        XCTAssertEqual(hub.requests.count, 1, "403 is final, not retried")
    }

    func testUnauthorizedSaysHowToSetAToken() async throws {
        _ = addLoRA()
        hub.requiredToken = "hf_right"
        for (token, source) in [(nil, nil), ("hf_wrong", "--token")] as [(String?, String?)] {
            do {
                _ = try await makeClient(token: token).metadata(of: usoRepository, path: loraPath)
                XCTFail("401 expected")
            } catch let error as HubError {
                XCTAssertEqual(error, .unauthorized(repository: usoRepository.id, tokenSource: source))
                XCTAssertTrue(error.description.contains("HF_TOKEN"))
                XCTAssertTrue(error.description.contains("--token"))
            }
        }
    }

    func testMissingFileIs404() async throws {
        do {
            _ = try await makeClient().metadata(of: usoRepository, path: "no/such.safetensors")
            XCTFail("404 expected")
        } catch let error as HubError {
            guard case .notFound(let repository, let path, "main", _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(repository, usoRepository.id)
            XCTAssertEqual(path, "no/such.safetensors")
        }
    }

    func testRateLimitHonoursRetryAfterAndServerErrorsAreRetried() async throws {
        let root = try makeTemporaryDirectory(self)
        let content = addLoRA(size: 5_000)
        hub.rateLimit(loraKey, times: 1, retryAfter: "1")
        hub.failWithServerError(loraKey, times: 1)
        let client = makeClient()
        let started = Date()
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 1.0, "waited for Retry-After")
        XCTAssertLessThan(elapsed, 5.0)
        XCTAssertEqual(hub.requests.map(\.status), [429, 503, 302])
        try await client.download(usoRepository, path: loraPath, metadata: metadata, to: root.appendingPathComponent("f")) { _ in }
        XCTAssertEqual([UInt8](try Data(contentsOf: root.appendingPathComponent("f"))), content)

        // When the hub keeps answering 429, the error says so after the last attempt.
        hub.rateLimit(loraKey, times: 100, retryAfter: "0")
        do {
            _ = try await client.metadata(of: usoRepository, path: loraPath)
            XCTFail("429 forever must fail")
        } catch let error as HubError {
            guard case .httpStatus(429, _, _) = error else { return XCTFail("\(error)") }
        }
    }

    /// A disk that fills up mid-download: the partial file is linked to /dev/full, where every write fails
    /// with ENOSPC. The download stops at once (no retry) and says the partial file is kept.
    func testDiskFullStopsAndKeepsThePartialFile() async throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("needs /dev/full") }
        let root = try makeTemporaryDirectory(self)
        let destination = root.appendingPathComponent("lora.safetensors")
        try FileManager.default.createSymbolicLink(atPath: destination.path + ".incomplete", withDestinationPath: "/dev/full")
        _ = addLoRA(size: 8_000)
        let client = makeClient()
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        do {
            try await client.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { _ in }
            XCTFail("writing to a full disk must fail")
        } catch let error as HubError {
            guard case .diskFull(let partial, 0) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(partial, destination.path + ".incomplete")
            XCTAssertTrue(error.description.contains("partial file is kept"), error.description)
        }
        XCTAssertEqual(hub.requests.filter { $0.path.hasPrefix("/storage/") }.count, 1, "a full disk is not retried")
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path))
    }

    func testInsufficientDiskSpaceStopsBeforeDownloading() async throws {
        let root = try makeTemporaryDirectory(self)
        hub.addFiles(of: ModelCatalog.components(for: .fluxDev))
        // The hub announces a transformer larger than any disk.
        hub.announceSize("black-forest-labs/FLUX.1-dev/flux1-dev.safetensors", 1 << 60)
        let store = ModelStore(modelDirectory: root.appendingPathComponent("weights"), environment: try makeEnvironment(root: root))
        do {
            try await ModelDownloader(store: store, client: makeClient()).download(.fluxDev)
            XCTFail("the disk check must fail")
        } catch let error as HubError {
            guard case .insufficientDiskSpace(_, let needed, let available) = error else { return XCTFail("\(error)") }
            XCTAssertGreaterThan(needed, available)
            XCTAssertTrue(error.description.contains("not enough disk space"))
        }
        XCTAssertFalse(hub.requests.contains { $0.method == "GET" }, "nothing is downloaded")
    }

    // MARK: Reaching the hub

    /// A hub address where nothing listens: the download fails within seconds (not minutes), after saying
    /// where it connects and each retry, with an error naming the endpoint and what to check.
    func testUnreachableHubFailsFastNamingTheEndpoint() async throws {
        let endpoint = "http://127.0.0.1:\(try refusingPort())"
        let notices = NoticeLog()
        let client = makeClient(endpoint: endpoint, notices: notices)
        let repository = usoRepository, path = loraPath
        let started = Date()
        do {
            _ = try await withTimeout(20) { try await client.metadata(of: repository, path: path) }
            XCTFail("nothing listens there")
        } catch let error as HubError {
            guard case .unreachable(endpoint, endpoint, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.lowercased().contains("connection refused"), reason)
            XCTAssertTrue(error.description.contains("cannot reach the hub at \(endpoint)"), error.description)
            XCTAssertTrue(error.description.contains("HF_ENDPOINT"), error.description)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        let lines = notices.lines
        XCTAssertEqual(lines.first, "connecting to \(endpoint) …")
        XCTAssertEqual(lines.filter { $0.contains("retrying in") }.count, fastRetry.maximumAttempts - 1, "\(lines)")
    }

    /// A hub that accepts no connection (its accept queue is full): the connect timeout ends each try.
    func testConnectTimeoutIsShortAndSaysSo() async throws {
        XCTAssertLessThanOrEqual(HubClient.defaultConnectTimeout, .seconds(10))
        let listener = try LoopbackSocket(backlog: 0)
        let queued = (0..<4).map { _ in listener.connectWithoutWaiting() }
        defer { queued.forEach { close($0) } }
        let endpoint = "http://127.0.0.1:\(listener.port)"
        let client = makeClient(endpoint: endpoint, retry: RetryPolicy(maximumAttempts: 2, initialDelay: 0.01),
                                connectTimeout: .milliseconds(300))
        let repository = usoRepository, path = loraPath
        do {
            _ = try await withTimeout(20) { try await client.metadata(of: repository, path: path) }
            XCTFail("the hub accepts no connection")
        } catch let error as HubError {
            guard case .unreachable(_, _, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(reason, "no connection within 0.3s")
        }
    }

    /// 503, then the file: the client retries after a backoff and says why on its notice line.
    func testServerErrorIsRetriedAndSaidSo() async throws {
        let content = addLoRA(size: 5_000)
        hub.failWithServerError(loraKey, times: 1)
        hub.rateLimit(loraKey, times: 1, retryAfter: "0")
        let notices = NoticeLog()
        let client = makeClient(notices: notices)
        let metadata = try await client.metadata(of: usoRepository, path: loraPath)
        XCTAssertEqual(metadata.size, UInt64(content.count))
        XCTAssertEqual(hub.requests.map(\.status), [429, 503, 302])
        let lines = notices.lines
        XCTAssertEqual(lines.count, 3, "\(lines)")
        XCTAssertEqual(lines.first, "connecting to \(hub.hubBase) …")
        XCTAssertTrue(lines[1].hasPrefix("\(loraPath): the hub is rate-limiting requests (429); retrying in "), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("\(loraPath): the hub answered 503; retrying in "), lines[2])
        XCTAssertTrue(lines[2].hasSuffix("(try 3 of \(fastRetry.maximumAttempts))"), lines[2])
    }

    /// A server sending more than the hub announced: nothing beyond the announced size is written, the
    /// error gives the server's count, and no file is left, under the final name or the partial one.
    func testOversizeStopsAtTheAnnouncedSize() async throws {
        for chunked in [false, true] {
            let root = try makeTemporaryDirectory(self)
            let destination = root.appendingPathComponent("lora.safetensors")
            let size = UInt64(addLoRA(size: 64_000).count)
            hub.announceSize(loraKey, 10_000)
            if chunked { hub.omitContentLength(loraKey) }
            let client = makeClient()
            let metadata = try await client.metadata(of: usoRepository, path: loraPath)
            XCTAssertEqual(metadata.size, 10_000)
            var progress: [UInt64] = []
            do {
                try await client.download(usoRepository, path: loraPath, metadata: metadata, to: destination) { progress.append($0) }
                XCTFail("a body longer than announced must fail")
            } catch let error as HubError {
                guard case .oversize(destination.path, 10_000, let atLeast) = error else { return XCTFail("\(error)") }
                if chunked {
                    XCTAssertGreaterThan(atLeast, 10_000)
                    XCTAssertLessThanOrEqual(atLeast, size)
                } else {
                    XCTAssertEqual(atLeast, size, "the response's Content-Length")
                }
                XCTAssertTrue(error.description.contains("at least \(atLeast) bytes"), error.description)
            }
            XCTAssertLessThanOrEqual(progress.max() ?? 0, 10_000, "never more than announced on disk")
            XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path))
            XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path + ".incomplete"))
        }
    }
}
