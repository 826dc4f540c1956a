import ArgumentParser
import Foundation
import ImageIO
import Pipeline

/// `uso generate`: the reference's `inference.py`, with both spellings of its options.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images from a prompt, an optional content image and any number of style images.",
        discussion: """
        Inputs follow the reference: --image-paths takes the content image first ("" for none), then the style images. --content and --style say the same more plainly.

        The reference's spellings work too: --num_steps as --num-steps, and its booleans as HfArgumentParser takes them: --offload, --offload true|false|yes|no|1|0, --no_only_lora. --hf_download is accepted; the weights always come from `uso download`.

        Settings are taken in this order: built-in defaults (the reference's, or those a model folder recommends in its uso-defaults.json, as the bundled model does), then the metadata of --from IMAGE.png, then the flags given. Without --model-dir the bundled default model is used.

        Exit status: 0 when every image was written, 1 when one failed (the others are still made), 64 for a usage error (bad settings or unreadable images, found before any model loads), 130 when cancelled with Ctrl-C (nothing is left half-written).

        Examples:
          uso generate --prompt "A corgi." --content dog.jpg --style ink.webp
          uso generate --prompt "" --image-paths subject.png style.webp
          uso generate --eval-json-path batch.json --save-path out/
        """)

    @OptionGroup(title: "Inputs") var inputs: InputOptions
    @OptionGroup(title: "Sampling") var sampling: SamplingOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    @Flag(name: .customLong("hf-download"), inversion: .prefixedNo,
          help: "Accepted as the reference's flag; uso never downloads while generating (use `uso download`).")
    var hfDownload = false

    mutating func validate() throws {
        if inputs.prompt == nil && inputs.evalJSONPath == nil && inputs.from == nil {
            throw ValidationError("give --prompt (it may be \"\"), --eval-json-path or --from")
        }
        if !inputs.imagePaths.isEmpty && (inputs.content != nil || !inputs.styles.isEmpty) {
            throw ValidationError("use either --image-paths or --content/--style, not both")
        }
        if output.imagesPerPrompt < 1 { throw ValidationError("--num-images-per-prompt must be at least 1") }
    }

    func run() async throws {
        let terminal = Terminal()
        if hfDownload { terminal.status("--hf_download: nothing is downloaded here; the weights come from `uso download`") }
        let jobs: [BatchEntry]
        do {
            jobs = try batchEntries().map { try $0.checked() }
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
        let generator: USOPipeline
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
                // The output size is settled in the entry; the pipeline's own instruct-edit sizing
                // assumes FLUX's base of 1024 whatever the model set.
                var request = entry.request
                request.instructEdit = false
                request.seed = entry.request.seed &+ UInt64(j)
                do {
                    let result = try generator.generate(request, cancellation: cancellation) { terminal.progress($0) }
                    let url = try output.save(result, record: record(entry, generator: generator), entry: entry,
                                              index: index, imageIndex: j)
                    terminal.finished("wrote \(url.path) (\(String(format: "%.1f", result.seconds)) s: \(result.timings))")
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

    /// What the config file and the PNG metadata say about an entry's run.
    private func record(_ entry: BatchEntry, generator: USOPipeline) -> RunRecord {
        var record = RunRecord(request: entry.request, savePath: output.savePath ?? output.writer().directory.path)
        record.evalJSONPath = inputs.evalJSONPath
        record.imagesPerPrompt = output.imagesPerPrompt
        record.concatRefs = output.concatRefs
        record.guidanceGiven = sampling.guidance != nil
        record.offload = model.offload
        record.checkpointPath = model.checkpointPath
        record.loraRank = model.recordedLoRARank(generator, onlyLoRA: entry.request.onlyLoRA)
        record.hfDownload = hfDownload
        return record
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
    /// The entry's `save_dir` (reference: the file stem, which may name subfolders), if any.
    var saveName: String?
    /// Names the entry in error messages ("entry 2"); nil for the single request of the flags.
    var label: String?

    /// The entry with its images read and its settings checked against them, the output size of an
    /// instruct edit settled: what would otherwise fail only after a model has loaded.
    func checked() throws -> BatchEntry {
        let prefix = label.map { "\($0): " } ?? ""
        var contentSize: (width: Int, height: Int)?
        for (index, path) in request.imagePaths.enumerated() where !path.isEmpty {
            let image: RGBImage
            do {
                image = try ImageFile.read(URL(fileURLWithPath: path))
            } catch {
                throw CommandFailure(message: prefix + GenerationError.unreadableImage(path: path, reason: "\(error)").description)
            }
            if index == 0 { contentSize = (image.width, image.height) }
        }
        do {
            try request.validate(contentImageSize: contentSize)
        } catch let invalid as InvalidSetting {
            throw CommandFailure(message: prefix + "\(invalid.setting.flag) \(invalid.requirement)")
        }
        var entry = self
        (entry.request.width, entry.request.height) = request.outputSize(contentImageSize: contentSize)
        return entry
    }
}

extension InvalidSetting.Setting {
    /// How a user of `uso generate` changes this setting.
    var flag: String {
        switch self {
        case .width: "--width"
        case .height: "--height"
        case .steps: "--num-steps"
        case .guidance: "--guidance"
        case .contentReferenceSize: "--content-ref"
        case .sizeBase: "the model folder's uso-defaults.json width"
        case .contentImage: "the content image (--content, or the first --image-paths entry)"
        }
    }
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

    @Option(name: .customLong("style"), help: "A style image (repeat for more).")
    var styles: [String] = []

    @Option(name: [.customLong("eval-json-path"), .customLong("eval_json_path")],
            help: "A JSON list of {prompt, image_paths, save_dir?}; paths relative to the file.")
    var evalJSONPath: String?

    @Option(name: .customLong("from"), help: "Re-run with the settings stored in a PNG made by uso.")
    var from: String?
}

struct SamplingOptions: ParsableArguments {
    private typealias Default = EffectiveDefault

    @Option(name: .customLong("width"),
            help: ArgumentHelp("Output width (floored to a multiple of 16). \(Default.text(\.width, \.width))"))
    var width: Int?
    @Option(name: .customLong("height"),
            help: ArgumentHelp("Output height (floored to a multiple of 16). \(Default.text(\.height, \.height))"))
    var height: Int?
    @Option(name: [.customLong("num-steps"), .customLong("num_steps")],
            help: ArgumentHelp("Denoising steps. \(Default.text(\.steps, \.steps))"))
    var steps: Int?
    @Option(name: .customLong("guidance"),
            help: ArgumentHelp("Distilled guidance value, 0 to 100. \(Default.text(\.guidance, \.guidance))"))
    var guidance: Double?
    // Unconditional: "-1" is a value here, not a short option.
    @Option(name: .customLong("seed"), parsing: .unconditional,
            help: ArgumentHelp("Noise seed (image j of a prompt uses seed + j); negative seeds wrap as in torch (-1 is 2^64-1). \(Default.text(\.seed, \.seed))"),
            transform: { try SamplingOptions.seed($0) })
    var seed: UInt64?
    @Option(name: .customLong("pe"), help: "Position offset of content tokens: d, h, w or o. Default d.")
    var positionOffset: GenerationRequest.PositionOffset?
    @Option(name: [.customLong("content-ref"), .customLong("content_ref")],
            help: ArgumentHelp("Long side of the content image in pixels. \(Default.text(\.contentReferenceSize, \.contentReference))"))
    var contentReference: Int?
    @Flag(name: .customLong("instruct-edit"), inversion: .prefixedNo,
          help: "Output size from the content image: its size × the model's base side (1024 for FLUX.1-dev) / --content-ref.")
    var instructEdit: Bool?
    @Flag(name: .customLong("sample-posterior"),
          help: "Sample the content latent from the VAE posterior with the seed (the reference samples unseeded); default is its mean.")
    var samplePosterior = false
    @Option(name: [.customLong("step-cache"), .customLong("step_cache")],
            help: "Skip the DiT's later blocks where a step changes little: off (every block, as the reference), balanced or fast. Default off.")
    var stepCache: StepCachePreset?

    func apply(to request: inout GenerationRequest) {
        if let width { request.width = width }
        if let height { request.height = height }
        if let steps { request.steps = steps }
        if let guidance { request.guidance = guidance }
        if let seed { request.seed = seed }
        if let contentReference { request.contentReferenceSize = contentReference }
        if let positionOffset { request.positionOffset = positionOffset }
        if let instructEdit { request.instructEdit = instructEdit }
        if samplePosterior { request.samplePosterior = true }
        if let stepCache { request.stepCache = stepCache }
    }

    private static func seed(_ text: String) throws -> UInt64 {
        guard let seed = GenerationRequest.torchSeed(text) else {
            throw ValidationError("--seed must be an integer from -9223372036854775808 to 18446744073709551615, got '\(text)'")
        }
        return seed
    }
}

/// The default shown in help: the reference's, and the bundled model's own where it differs
/// ("Default: 1024, or the model set's own (bundled uso-mini: 128).").
enum EffectiveDefault {
    private static let reference = GenerationRequest(prompt: "")
    private static let bundled = (try? ModelLocation.bundledDefault()).flatMap(ModelDefaults.load)

    static func text<Value: Equatable>(_ field: KeyPath<GenerationRequest, Value>, _ modelField: KeyPath<ModelDefaults, Value?>) -> String {
        let value = reference[keyPath: field]
        guard let own = bundled?[keyPath: modelField], own != value else {
            return "Default: \(value), or the model set's own."
        }
        return "Default: \(value), or the model set's own (bundled uso-mini: \(own))."
    }
}

extension GenerationRequest.PositionOffset: ExpressibleByArgument {}
extension GenerationRequest.ModelType: ExpressibleByArgument {}
extension GenerationRequest.ComputeType: ExpressibleByArgument {}
extension StepCachePreset: ExpressibleByArgument {}
extension DiTWeights: ExpressibleByArgument {}
