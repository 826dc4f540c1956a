import ArgumentParser
import Foundation
import ImageIO
import Pipeline

/// `uso generate`: the reference's `inference.py`, with both spellings of its options.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images from a prompt, an optional content image and up to two style images.",
        discussion: """
        Inputs follow the reference: --image-paths takes the content image first ("" for none), then the style images. --content and --style say the same more plainly.

        Settings are taken in this order: built-in defaults (the reference's, or those a model folder recommends in its uso-defaults.json, as the bundled model does), then the metadata of --from IMAGE.png, then the flags given. Without --model-dir the bundled default model is used.

        Exit status: 0 when every image was written, 1 when one failed (the others are still made), 64 for a usage error, 130 when cancelled with Ctrl-C (nothing is left half-written).

        Examples:
          uso generate --prompt "A corgi." --content dog.jpg --style ink.webp
          uso generate --prompt "" --image-paths subject.png style.webp
          uso generate --eval-json-path batch.json --save-path out/
        """)

    @OptionGroup(title: "Inputs") var inputs: InputOptions
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    mutating func validate() throws {
        if inputs.prompt == nil && inputs.evalJSONPath == nil && inputs.from == nil {
            throw ValidationError("give --prompt (it may be \"\"), --eval-json-path or --from")
        }
        if !inputs.imagePaths.isEmpty && (inputs.content != nil || !inputs.styles.isEmpty) {
            throw ValidationError("use either --image-paths or --content/--style, not both")
        }
        if inputs.styles.count > 2 { throw ValidationError("at most two --style images") }
        if sampling.instructEdit && inputs.evalJSONPath == nil && inputs.from == nil
            && inputs.content == nil && (inputs.imagePaths.first ?? "").isEmpty {
            throw ValidationError("--instruct-edit sizes the output from the content image: give --content (or a first --image-paths entry)")
        }
        if let steps = sampling.steps, !(1...1000).contains(steps) { throw ValidationError("--num-steps must be 1...1000") }
        for (name, value) in [("--width", sampling.width), ("--height", sampling.height)] {
            if let value, !(16...4096).contains(value) { throw ValidationError("\(name) must be 16...4096 pixels") }
        }
        if let size = sampling.contentReference, !(16...2048).contains(size) { throw ValidationError("--content-ref must be 16...2048") }
        if output.imagesPerPrompt < 1 { throw ValidationError("--num-images-per-prompt must be at least 1") }
    }

    func run() async throws {
        let terminal = Terminal()
        let jobs: [BatchEntry]
        do {
            jobs = try batchEntries()
        } catch let error as CommandFailure {
            terminal.error(error.message)
            throw ExitCode(64)
        }
        if let first = jobs.first?.request, !first.instructEdit, first.width % 16 != 0 || first.height % 16 != 0 {
            let aligned = first.latentAlignedSize
            terminal.status("\(first.width)x\(first.height) is not a multiple of 16; generating \(aligned.width)x\(aligned.height) as the reference does")
        }
        let cancellation = CancellationFlag()
        let interrupt = InterruptHandler { cancellation.cancel() }
        defer { interrupt.restore() }
        let generator: ImageGenerator
        do {
            terminal.status("loading model from \(model.resolvedDescription)")
            generator = try model.makeGenerator(imageCount: jobs.count * output.imagesPerPrompt)
            try output.writer().checkWritable()
        } catch {
            terminal.error("\(error)")
            throw ExitCode.failure
        }

        var failures = 0
        for (index, entry) in jobs.enumerated() {
            for j in 0..<output.imagesPerPrompt {
                var request = entry.request
                request.seed = entry.request.seed &+ UInt64(j)
                do {
                    let result = try generator.generate(request, cancellation: cancellation) { terminal.progress($0) }
                    let url = try output.save(result, entry: entry, index: index, imageIndex: j, baseRequest: entry.request,
                                              guidanceGiven: sampling.guidance != nil, inputs: inputs, model: model)
                    terminal.finished("wrote \(url.path) (\(String(format: "%.1f", result.seconds)) s)")
                } catch GenerationError.cancelled {
                    terminal.error("cancelled; nothing was written for the unfinished image")
                    throw ExitCode(130)
                } catch {
                    failures += 1
                    terminal.error((entry.label.map { "\($0): " } ?? "") + "\(error)")
                }
            }
        }
        if failures > 0 { throw ExitCode.failure }
    }

    /// The requests to run: one from the flags, or one per entry of the batch file.
    func batchEntries() throws -> [BatchEntry] {
        var base = GenerationRequest(prompt: inputs.prompt ?? "")
        if let directory = try? model.directory(), let defaults = ModelDefaults.load(from: directory) {
            defaults.apply(to: &base)
        }
        if let from = inputs.from { base = try RequestMetadata.request(fromImage: from) }
        if let evalPath = inputs.evalJSONPath {
            return try BatchFile.entries(at: evalPath).map { item in
                var request = base
                request.prompt = item.prompt
                let positional = GenerationRequest(prompt: item.prompt, imagePaths: item.imagePaths)
                request.contentImage = positional.contentImage
                request.styleImages = positional.styleImages
                sampling.apply(to: &request)
                model.apply(to: &request)
                return BatchEntry(request: request, saveName: item.saveName, label: item.label)
            }
        }
        if let prompt = inputs.prompt { base.prompt = prompt }
        if !inputs.imagePaths.isEmpty {
            let positional = GenerationRequest(prompt: base.prompt, imagePaths: inputs.imagePaths)
            base.contentImage = positional.contentImage
            base.styleImages = positional.styleImages
        }
        if let content = inputs.content { base.contentImage = content.isEmpty ? nil : content }
        if !inputs.styles.isEmpty { base.styleImages = inputs.styles }
        sampling.apply(to: &base)
        model.apply(to: &base)
        return [BatchEntry(request: base, saveName: nil, label: nil)]
    }
}

struct BatchEntry {
    var request: GenerationRequest
    /// The entry's `save_dir` (reference: the file stem), if any.
    var saveName: String?
    /// Names the entry in error messages ("entry 2"); nil for the single request of the flags.
    var label: String?
}

struct CommandFailure: Error { let message: String }

struct InputOptions: ParsableArguments {
    @Option(name: .customLong("prompt"), help: "The text prompt (\"\" keeps the content image's layout).")
    var prompt: String?

    @Option(name: [.customLong("image-paths"), .customLong("image_paths")], parsing: .upToNextOption,
            help: "Content image first (\"\" for none), then style images.")
    var imagePaths: [String] = []

    @Option(name: .customLong("content"), help: "The content (subject) image.")
    var content: String?

    @Option(name: .customLong("style"), help: "A style image (repeat for two).")
    var styles: [String] = []

    @Option(name: [.customLong("eval-json-path"), .customLong("eval_json_path")],
            help: "A JSON list of {prompt, image_paths, save_dir?}; paths relative to the file.")
    var evalJSONPath: String?

    @Option(name: .customLong("from"), help: "Re-run with the settings stored in a PNG made by uso.")
    var from: String?
}

struct SamplingOptions: ParsableArguments {
    @Option(name: .customLong("width"), help: "Output width (floored to a multiple of 16). Default 1024.")
    var width: Int?
    @Option(name: .customLong("height"), help: "Output height (floored to a multiple of 16). Default 1024.")
    var height: Int?
    @Option(name: [.customLong("num-steps"), .customLong("num_steps")], help: "Denoising steps. Default 25.")
    var steps: Int?
    @Option(name: .customLong("guidance"), help: "Distilled guidance value. Default 4.")
    var guidance: Double?
    @Option(name: .customLong("seed"), help: "Noise seed (image j of a prompt uses seed + j). Default 3407.")
    var seed: UInt64?
    @Option(name: .customLong("pe"), help: "Position offset of content tokens: d, h, w or o. Default d.")
    var positionOffset: GenerationRequest.PositionOffset?
    @Option(name: [.customLong("content-ref"), .customLong("content_ref")], help: "Long side of the content image in pixels. Default 512.")
    var contentReference: Int?
    @Flag(name: [.customLong("instruct-edit"), .customLong("instruct_edit")],
          help: "Output size from the content image: its size × 1024 / --content-ref.")
    var instructEdit = false
    @Flag(name: .customLong("sample-posterior"),
          help: "Sample the content latent from the VAE posterior with the seed (the reference samples unseeded); default is its mean.")
    var samplePosterior = false

    func apply(to request: inout GenerationRequest) {
        // The flags that a model folder's uso-defaults.json may also set are applied the same way.
        ModelDefaults(width: width, height: height, contentReference: contentReference, steps: steps,
                      guidance: guidance, seed: seed).apply(to: &request)
        if let positionOffset { request.positionOffset = positionOffset }
        if instructEdit { request.instructEdit = true }
        if samplePosterior { request.samplePosterior = true }
    }
}

extension GenerationRequest.PositionOffset: ExpressibleByArgument {}
extension GenerationRequest.ModelType: ExpressibleByArgument {}
extension GenerationRequest.ComputeType: ExpressibleByArgument {}
