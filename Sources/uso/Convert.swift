// `uso convert`: write the DiT's low-memory weights once, ahead of the first generation.
import ArgumentParser
import Foundation
import FluxDiT
import ModelLayout
import Pipeline
import WeightFiles

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert the DiT's weights for a low-memory precision (int8, fp8) into the cache that `uso generate` maps.",
        discussion: """
            `uso generate` converts on its first run of a precision and keeps the result; this does it ahead of
            time. The cache folder is $USO_CACHE_DIR, else $XDG_CACHE_HOME/uso/converted, else
            ~/.cache/uso/converted. An entry is keyed by the checkpoint's path, size, modification time and
            header, so a changed checkpoint is converted again, never mixed up.
            """)

    @OptionGroup var model: ModelOptions

    func run() throws {
        var request = GenerationRequest(prompt: "")
        request.ditWeights = .int8   // unless --dit-weights or --model-type flux-dev-fp8 say otherwise
        model.apply(to: &request)
        let location = try ModelLocation.resolve(modelDirectory: model.modelDirectory, modelType: request.modelType)
        let (precision, _) = DiTWeights.precision(for: request, checkpointBytes: 0)
        guard precision == .int8 || precision == .fp8 else {
            throw ValidationError("\(precision) weights are used as stored; there is nothing to convert")
        }
        let cache = ConvertedWeightCache(directory: HubEnvironment.current().convertedWeightsDirectory)
        let start = Date()
        var failure: String?
        let weights = try cache.weights(at: location.transformer.path, precision: precision) { failure = $0 }
        if let failure { throw ValidationError(failure) }
        let path = (weights as? SafetensorsFile)?.path ?? cache.directory.path
        print(String(format: "%@ weights of %@: %@ (%.0f s)", precision.rawValue, location.transformer.path, path,
                     Date().timeIntervalSince(start)))
    }
}
