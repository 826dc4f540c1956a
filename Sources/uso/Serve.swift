import ArgumentParser
import Foundation
import Pipeline
import WebServer

/// `uso serve`: the web page and HTTP API (docs/openapi.yaml), one generation at a time.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a web page and a JSON API for generation, with a job queue and live progress.",
        discussion: """
        Open http://127.0.0.1:7860/ in a browser. The server listens on loopback only unless --host \
        says otherwise; with --host 0.0.0.0 set a --token (or USO_SERVE_TOKEN), which every /api/ \
        request must then send as 'Authorization: Bearer <token>'.

        Jobs run one at a time; --queue-size bounds the unfinished jobs (running + waiting), and a \
        submission beyond it is answered 503 with Retry-After. Results are written as `uso generate` \
        writes them: <save-path>/YYYY-MM-DD/NNNN-SEED.png with metadata, and the config JSON beside it. \
        The API is described in docs/openapi.yaml.

        Test aid: with the environment variable USO_SERVE_GENERATOR=synthetic the server runs a \
        synthetic test generator instead of a model (patterns, not images of anything); the browser \
        test in tools/e2e uses it to run without weights.
        """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 7860

    @Option(name: .customLong("allowed-host"),
            help: "Another name the server is reached by (the Host header), e.g. behind a proxy; repeatable.")
    var allowedHosts: [String] = []

    @Option(help: "Require 'Authorization: Bearer <token>' on the API (default: $USO_SERVE_TOKEN, else none).")
    var token: String?

    @Option(name: .customLong("queue-size"), help: "Unfinished jobs (running + waiting) accepted at once.")
    var queueSize = 8

    @Option(name: .customLong("max-upload-mb"), help: "Largest reference image file, in MiB.")
    var maxUploadMiB = 20

    @Option(name: .customLong("max-upload-pixels"), help: "Largest reference image, in pixels (width x height).")
    var maxUploadPixels = 4096 * 4096

    @Option(name: .customLong("save-path"), help: "Folder for results; each day gets its own subfolder.")
    var savePath = "outputs"

    @OptionGroup(title: "Model") var model: ModelOptions

    mutating func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if !(1...1000).contains(queueSize) { throw ValidationError("--queue-size must be 1...1000") }
        if !(1...1024).contains(maxUploadMiB) { throw ValidationError("--max-upload-mb must be 1...1024") }
        if !(1...(1 << 28)).contains(maxUploadPixels) { throw ValidationError("--max-upload-pixels must be 1...268435456") }
        if let token, token.isEmpty { throw ValidationError("--token must not be empty") }
    }

    func run() async throws {
        let (factory, capabilities) = try generatorChoice()
        var template = GenerationRequest(prompt: "")
        model.apply(to: &template)
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.allowedHosts = allowedHosts
        configuration.token = token ?? ProcessInfo.processInfo.environment["USO_SERVE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.queueCapacity = queueSize
        configuration.uploads = UploadLimits(maxImageBytes: maxUploadMiB << 20, maxImagePixels: maxUploadPixels)
        configuration.outputRoot = URL(fileURLWithPath: savePath)
        configuration.capabilities = capabilities

        let server = try USOWebServer(configuration: configuration, requestTemplate: template, generator: factory)
        let isLoopback = ["127.0.0.1", "localhost", "::1"].contains(host)
        if !isLoopback && configuration.token == nil {
            printError("warning: listening on \(host) without a token: anyone who can reach this port can run jobs")
        }
        try await server.run { host, port in
            let shown = host.contains(":") ? "[\(host)]" : host
            print("uso serve: \(capabilities.modelName) on http://\(shown):\(port)/ (Ctrl-C stops)")
        }
    }

    /// The generator behind the server and what it accepts.
    private func generatorChoice() throws -> (GeneratorFactory, GeneratorCapabilities) {
        if ProcessInfo.processInfo.environment["USO_SERVE_GENERATOR"] == "synthetic" {
            return ({ SyntheticGenerator() }, SyntheticGenerator.capabilities)
        }
        // The USO pipeline, loaded on the first job and kept. The form's ranges and defaults are the
        // reference demo's, or the model folder's recommended settings (the bundled uso-mini's 128 px).
        let directory: URL
        do {
            directory = try model.directory()
            _ = try ModelLocation.resolve(modelDirectory: model.modelDirectory, modelType: model.modelType ?? .fluxDev)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        var capabilities = GeneratorCapabilities.reference
        capabilities.modelName = model.modelDirectory == nil ? "uso-mini (bundled)" : "\(model.modelType ?? .fluxDev) + USO"
        if let defaults = ModelDefaults.load(from: directory) {
            if let side = defaults.width ?? defaults.height {
                capabilities.defaultSide = side
                capabilities.minSide = min(capabilities.minSide, 16)
            }
            if let steps = defaults.steps { capabilities.defaultSteps = steps }
            if let guidance = defaults.guidance { capabilities.defaultGuidance = guidance }
            if let size = defaults.contentReference {
                capabilities.defaultContentReferenceSize = size
                capabilities.keepSizeBase = size
            }
        }
        let model = self.model
        return ({ try model.makeGenerator() }, capabilities)
    }
}
