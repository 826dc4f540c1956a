// `uso download`: fetch, verify and place the weights a model type needs (reference: weights/downloader.py).
import ArgumentParser
import Foundation
import ModelLayout
import ModelHub

struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download and verify the weights a model type needs.",
        discussion: """
            Files already found are not downloaded again. For each component uso looks, in order, at the
            reference's variables (FLUX_DEV, FLUX_DEV_FP8, FLUX_SCHNELL, FLUX_KREA_DEV, AE, T5, CLIP, LORA,
            PROJECTION_MODEL, SIGLIP_PATH; from the environment or ./.env), at --model-dir, and at the
            Hugging Face cache (HF_HOME). Missing files go to --model-dir in the reference downloader's layout.
            Token: --token, then HF_TOKEN (environment or .env), then the file `huggingface-cli login` writes.
            HF_ENDPOINT changes the hub's address. An interrupted download resumes where it stopped.
            """)

    @Option(help: "flux-dev, flux-dev-fp8, flux-schnell or flux-krea-dev.", transform: parseModelType)
    var modelType: ModelType = .fluxDev

    @Option(help: "Folder that receives the weights.")
    var modelDir = "./weights"

    @Option(help: "Hugging Face access token (FLUX.1-dev is gated).")
    var token: String?

    @Option(help: "Files downloaded at the same time (1-16).")
    var jobs = 3

    @Flag(help: "Ask the hub for sizes and show what would be downloaded, without downloading.")
    var dryRun = false

    func validate() throws {
        guard (1...16).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 16") }
    }

    func run() async throws {
        let environment = HubEnvironment.current()
        let store = ModelStore(modelDirectory: environment.url(forPath: modelDir), environment: environment)
        let client = HubClient(endpoint: environment.endpoint, token: environment.token(explicit: token))
        let downloader = ModelDownloader(store: store, client: client, concurrency: jobs)
        let outcome: Result<ModelInventory?, Error>
        do {
            outcome = .success(try await fetchMissing(with: downloader))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        switch outcome {
        case .success(let inventory?) where !inventory.isComplete:
            printError("downloaded, but some files are still not usable:\n\(inventory.listing())")
            throw ExitCode.failure
        case .success:
            return
        case .failure(let error as HubError):
            printError("error: \(error)")
            throw ExitCode.failure
        case .failure(let error):
            throw error
        }
    }

    /// Returns the inventory after downloading, or nil when nothing was downloaded.
    private func fetchMissing(with downloader: ModelDownloader) async throws -> ModelInventory? {
        let plan = downloader.plan(for: modelType)
        for component in plan.inventory.components {
            if let found = component.resolved {
                print("found \(component.spec.component.rawValue): \(found.location.path) [\(found.source)]")
            }
        }
        if plan.downloads.isEmpty {
            print("\(modelType.rawValue): every file is present.")
            return nil
        }
        let prepared = try await downloader.prepare(plan)
        for download in prepared.downloads {
            let size = download.metadata.map { "\(ByteCount($0.size))" } ?? "?"
            let resume = download.partialBytes > 0 ? ", resuming at \(ByteCount(download.partialBytes))" : ""
            print("\(dryRun ? "would download" : "to download") \(download.file.localPath) from "
                  + "\(download.repository.id) (\(size)\(resume))")
        }
        print("\(prepared.downloads.count) files, \(ByteCount(prepared.remainingBytes)) to fetch into "
              + "\(downloader.store.modelDirectory.path)")
        if dryRun { return nil }
        fflush(stdout)  // the plan before the progress display on stderr
        let inventory = try await downloader.run(prepared, observer: TerminalProgress())
        if inventory.isComplete { print("\(modelType.rawValue): every file is present.") }
        return inventory
    }
}

/// `--model-type` values are the reference's names; anything else is a usage error (exit 64).
func parseModelType(_ value: String) throws -> ModelType {
    guard let modelType = ModelType(rawValue: value) else {
        let choices = ModelType.allCases.map(\.rawValue).joined(separator: ", ")
        throw ValidationError("unknown model type '\(value)'; choose one of: \(choices)")
    }
    return modelType
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
