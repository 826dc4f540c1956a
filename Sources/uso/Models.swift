// `uso models`: what each model type has on this machine, and where.
import ArgumentParser
import Foundation
import ModelLayout
import ModelHub

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, per model type, which weight files are present, missing or damaged, and where.",
        discussion: """
            Looks where `uso generate` and `uso download` look: the reference's variables (environment or
            ./.env), --model-dir, then the Hugging Face cache. Exits with 1 when --model-type is given and
            that model type is incomplete.
            """)

    @Option(help: "Folder with the weights in the reference downloader's layout.")
    var modelDir = "./weights"

    @Option(help: "List only this model type.", transform: parseModelType)
    var modelType: ModelType?

    @Flag(help: "Also re-hash files whose SHA-256 is known (slow for the large files).")
    var verify = false

    func run() throws {
        let environment = HubEnvironment.current()
        let store = ModelStore(modelDirectory: environment.url(forPath: modelDir), environment: environment)
        let inventories = (modelType.map { [$0] } ?? ModelType.allCases).map {
            store.inventory(for: $0, verifyHashes: verify)
        }
        print(inventories.map { $0.listing() }.joined(separator: "\n\n"))
        if modelType != nil, inventories.contains(where: { !$0.isComplete }) {
            throw ExitCode.failure
        }
    }
}
