import XCTest
@testable import ModelHub
@testable import ModelLayout

final class ModelStoreTests: XCTestCase {
    /// Writes every file of `modelType` under `modelDirectory` in the reference downloader's layout.
    private func populateModelDirectory(_ modelDirectory: URL, for modelType: ModelType) throws {
        for spec in ModelCatalog.components(for: modelType) {
            for file in spec.files {
                try write(MockHub.sampleContent(for: file.repositoryPath, size: 64),
                          to: modelDirectory.appendingPathComponent(file.localPath))
            }
        }
    }

    func testCatalogMatchesReferenceLayout() {
        let paths = ModelCatalog.components(for: .fluxDev).flatMap(\.files).map(\.localPath)
        XCTAssertEqual(paths, [
            "FLUX.1-dev/flux1-dev.safetensors", "FLUX.1-dev/ae.safetensors",
            "t5-xxl/config.json", "t5-xxl/spiece.model", "t5-xxl/tokenizer_config.json",
            "t5-xxl/special_tokens_map.json", "t5-xxl/pytorch_model.bin",
            "clip-vit-l14/config.json", "clip-vit-l14/vocab.json", "clip-vit-l14/merges.txt",
            "clip-vit-l14/tokenizer_config.json", "clip-vit-l14/special_tokens_map.json", "clip-vit-l14/pytorch_model.bin",
            "siglip/config.json", "siglip/preprocessor_config.json", "siglip/model.safetensors",
            "USO/uso_flux_v1.0/dit_lora.safetensors", "USO/uso_flux_v1.0/projector.safetensors",
        ])
        XCTAssertEqual(ModelCatalog.components(for: .fluxDevFP8).flatMap(\.files), ModelCatalog.components(for: .fluxDev).flatMap(\.files))
        XCTAssertEqual(ModelCatalog.components(for: .fluxSchnell)[0].files[0].localPath, "FLUX.1-schnell/flux1-schnell.safetensors")
        XCTAssertEqual(ModelCatalog.components(for: .fluxKreaDev)[0].files[0].localPath, "FLUX.1-Krea-dev/flux1-krea-dev.safetensors")
        XCTAssertTrue(ModelCatalog.components(for: .fluxDev)[0].repository.isGated)
    }

    func testEmptyModelDirectoryReportsEveryFileMissing() throws {
        let root = try makeTemporaryDirectory(self)
        let environment = try makeEnvironment(root: root)
        let modelDirectory = root.appendingPathComponent("weights")
        XCTAssertThrowsError(try ModelStore.resolve(modelType: .fluxDev, modelDir: modelDirectory, environment: environment)) { error in
            guard let unavailable = error as? ModelFilesUnavailable else { return XCTFail("\(error)") }
            let text = unavailable.description
            XCTAssertTrue(text.contains("flux-dev: incomplete (18 missing, 0 damaged)"), text)
            XCTAssertTrue(text.contains("missing  T5             t5-xxl/spiece.model"), text)
            XCTAssertTrue(text.contains("uso download --model-type flux-dev"), text)
        }
    }

    func testResolvesFromModelDirectory() throws {
        let root = try makeTemporaryDirectory(self)
        let modelDirectory = root.appendingPathComponent("weights")
        try populateModelDirectory(modelDirectory, for: .fluxDev)
        let paths = try ModelStore.resolve(modelType: .fluxDev, modelDir: modelDirectory, environment: try makeEnvironment(root: root))
        XCTAssertEqual(paths.diffusionTransformer.path, modelDirectory.appendingPathComponent("FLUX.1-dev/flux1-dev.safetensors").path)
        XCTAssertEqual(paths.t5Directory.path, modelDirectory.appendingPathComponent("t5-xxl").path)
        XCTAssertEqual(paths.projector.path, modelDirectory.appendingPathComponent("USO/uso_flux_v1.0/projector.safetensors").path)
        XCTAssertEqual(paths.sources[.siglip], .modelDirectory)
        // flux-dev-fp8 reads the same files; schnell needs its own transformer.
        XCTAssertNoThrow(try ModelStore.resolve(modelType: .fluxDevFP8, modelDir: modelDirectory, environment: try makeEnvironment(root: root)))
        XCTAssertThrowsError(try ModelStore.resolve(modelType: .fluxSchnell, modelDir: modelDirectory, environment: try makeEnvironment(root: root)))
    }

    /// The reference's `.env` variables win over --model-dir; relative paths are from the current directory.
    func testDotEnvPathsWin() throws {
        let root = try makeTemporaryDirectory(self)
        let modelDirectory = root.appendingPathComponent("weights")
        try populateModelDirectory(modelDirectory, for: .fluxDev)
        let work = root.appendingPathComponent("work")
        try write(MockHub.sampleContent(for: "x.safetensors", size: 32), to: work.appendingPathComponent("mine/lora.safetensors"))
        try Data("LORA=./mine/lora.safetensors\nFLUX_DEV=./mine/flux.safetensors\n".utf8).write(to: work.appendingPathComponent(".env"))
        let environment = HubEnvironment.loading(dotEnvIn: work, over: [:], currentDirectory: work,
                                                 homeDirectory: root.appendingPathComponent("home"))
        let paths = try ModelStore.resolve(modelType: .fluxDev, modelDir: modelDirectory, environment: environment)
        XCTAssertEqual(paths.lora.path, work.appendingPathComponent("mine/lora.safetensors").path)
        XCTAssertEqual(paths.sources[.lora], .environment(variable: "LORA"))
        // FLUX_DEV names a file that does not exist: the model folder's copy is used instead.
        XCTAssertEqual(paths.sources[.diffusionTransformer], .modelDirectory)

        // FLUX_DEV_FP8 is read first for flux-dev-fp8, FLUX_DEV after it.
        try write(MockHub.sampleContent(for: "x.safetensors", size: 32), to: work.appendingPathComponent("mine/flux.safetensors"))
        let fp8 = try ModelStore(modelDirectory: modelDirectory, environment: environment).resolve(.fluxDevFP8)
        XCTAssertEqual(fp8.sources[.diffusionTransformer], .environment(variable: "FLUX_DEV"))
    }

    func testResolvesFromHuggingFaceCacheSnapshot() throws {
        let root = try makeTemporaryDirectory(self)
        let environment = try makeEnvironment(root: root, variables: ["HF_HOME": root.appendingPathComponent("hf").path])
        let cache = environment.huggingFaceCache
        for spec in ModelCatalog.components(for: .fluxDev) {
            let files = Dictionary(uniqueKeysWithValues: spec.files.map {
                ($0.repositoryPath, MockHub.sampleContent(for: $0.repositoryPath, size: 48))
            })
            try populateHuggingFaceCache(cache, repository: spec.repository.id, commit: "c0ffee", files: files)
        }
        // An older, incomplete snapshot of the T5 repository must not be chosen.
        try populateHuggingFaceCache(cache, repository: "google/t5-v1_1-xxl", commit: "0ld", files: ["config.json": Array("{}".utf8)],
                                     writeRef: false)
        let modelDirectory = root.appendingPathComponent("weights")
        let paths = try ModelStore.resolve(modelType: .fluxDev, modelDir: modelDirectory, environment: environment)
        let t5Snapshot = cache.appendingPathComponent("models--google--t5-v1_1-xxl/snapshots/c0ffee")
        XCTAssertEqual(paths.t5Directory.path, t5Snapshot.path)
        XCTAssertEqual(paths.sources[.t5], .huggingFaceCache(commit: "c0ffee"))
        XCTAssertEqual(paths.lora.path,
                       cache.appendingPathComponent("models--bytedance-research--USO/snapshots/c0ffee/uso_flux_v1.0/dit_lora.safetensors").path)

        // With --verify, a blob whose bytes no longer match its SHA-256 name is reported as damaged.
        let store = ModelStore(modelDirectory: modelDirectory, environment: environment)
        XCTAssertTrue(store.inventory(for: .fluxDev, verifyHashes: true).isComplete)
        let blobs = cache.appendingPathComponent("models--bytedance-research--USO/blobs")
        let loraLink = cache.appendingPathComponent("models--bytedance-research--USO/snapshots/c0ffee/uso_flux_v1.0/dit_lora.safetensors")
        let blob = blobs.appendingPathComponent((try FileManager.default.destinationOfSymbolicLink(atPath: loraLink.path) as NSString).lastPathComponent)
        var bytes = [UInt8](try Data(contentsOf: blob))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: blob)
        let verified = store.inventory(for: .fluxDev, verifyHashes: true)
        XCTAssertFalse(verified.isComplete)
        guard case .corrupt(let reason)? = verified.component(.lora)?.fileStatuses.first?.condition else {
            return XCTFail("the LoRA should be damaged")
        }
        XCTAssertTrue(reason.contains("SHA-256"), reason)
        XCTAssertTrue(store.inventory(for: .fluxDev, verifyHashes: false).isComplete, "without --verify only formats are checked")
    }

    func testDamagedFilesAreReported() async throws {
        let root = try makeTemporaryDirectory(self)
        let modelDirectory = root.appendingPathComponent("weights")
        try populateModelDirectory(modelDirectory, for: .fluxDev)
        let store = ModelStore(modelDirectory: modelDirectory, environment: try makeEnvironment(root: root))

        // A truncated safetensors file (an interrupted copy).
        let ae = modelDirectory.appendingPathComponent("FLUX.1-dev/ae.safetensors")
        try Data(try Data(contentsOf: ae).dropLast(10)).write(to: ae)
        // A PyTorch zip without its end record.
        let clip = modelDirectory.appendingPathComponent("clip-vit-l14/pytorch_model.bin")
        try Data(try Data(contentsOf: clip).dropLast(22)).write(to: clip)
        // A download record that disagrees with the file's size.
        try DownloadRecord(repository: "bytedance-research/USO", revision: "main", commit: nil, sha256: nil, size: 5)
            .save(forLocalPath: "USO/uso_flux_v1.0/projector.safetensors", in: modelDirectory)
        // Broken JSON.
        try Data("{\"a\":".utf8).write(to: modelDirectory.appendingPathComponent("siglip/config.json"))

        let inventory = store.inventory(for: .fluxDev)
        let listing = inventory.listing()
        XCTAssertTrue(listing.contains("flux-dev: incomplete (0 missing, 4 damaged)"), listing)
        func reason(_ component: ModelComponent) -> String {
            for status in inventory.component(component)?.fileStatuses ?? [] {
                if case .corrupt(let reason) = status.condition { return reason }
            }
            return ""
        }
        XCTAssertTrue(reason(.autoencoder).contains("truncated"), reason(.autoencoder))
        XCTAssertTrue(reason(.clip).contains("end-of-central-directory"), reason(.clip))
        XCTAssertTrue(reason(.projector).contains("the hub's file has 5"), reason(.projector))
        XCTAssertTrue(reason(.siglip).contains("JSON"), reason(.siglip))
        XCTAssertTrue(inventory.component(.t5)?.isComplete ?? false)

        // `uso download` would fetch exactly the four damaged files.
        let client = HubClient(endpoint: "http://127.0.0.1:1", token: nil)
        let plan = ModelDownloader(store: store, client: client).plan(for: .fluxDev)
        try await client.shutdown()
        XCTAssertEqual(Set(plan.downloads.map(\.file.localPath)), [
            "FLUX.1-dev/ae.safetensors", "clip-vit-l14/pytorch_model.bin",
            "USO/uso_flux_v1.0/projector.safetensors", "siglip/config.json",
        ])
    }
}
