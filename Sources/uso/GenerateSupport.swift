import ArgumentParser
import Foundation
import ImageIO
import Pipeline
import FluxDiT
import ModelLayout
import WeightFiles
#if canImport(Glibc)
import Glibc
#endif

struct ModelOptions: ParsableArguments {
    @Option(name: [.customLong("model-type"), .customLong("model_type")],
            help: "flux-dev, flux-dev-fp8, flux-schnell or flux-krea-dev. Default flux-dev.")
    var modelType: GenerationRequest.ModelType?

    @Option(name: .customLong("model-dir"),
            help: "A folder laid out as the reference's downloader leaves it (see `uso models`); the reference's .env variables (FLUX_DEV, AE, T5, CLIP, LORA, PROJECTION_MODEL, SIGLIP_PATH) move single parts. Default: the bundled model.")
    var modelDirectory: String?

    @Option(name: .customLong("dtype"), help: "Compute precision: bf16 (as the reference) or f32. Default bf16.")
    var computeType: GenerationRequest.ComputeType?

    @Flag(name: .customLong("offload"), inversion: .prefixedNo,
          help: "Release the DiT before each decode (lowest peak memory; reloads it for every image). Always so for a single image; the encoders are always released after their stage.")
    var offload = false

    @Flag(name: .customLong("only-lora"), inversion: .prefixedNo,
          help: "Apply the USO LoRA and projector (the reference's default).")
    var onlyLoRA: Bool?

    @Flag(name: .customLong("use-siglip"), inversion: .prefixedNo,
          help: "Use the style images (the reference's default).")
    var useSiglip: Bool?

    @Option(name: [.customLong("dit-weights"), .customLong("dit_weights")],
            help: "How the DiT holds its weights: bf16 (as stored, the reference), int8 (one byte a parameter, int8 products) or auto: bf16 when it fits in memory, else int8. Default auto.")
    var ditWeights: DiTWeights?

    @Option(name: [.customLong("lora-rank"), .customLong("lora_rank")], help: "Expected LoRA rank (checked against the file). Default: the file's.")
    var loraRank: Int?

    @Option(name: [.customLong("ckpt-path"), .customLong("ckpt_path")], help: "Accepted for compatibility; unused, as in the reference.")
    var checkpointPath: String?

    func apply(to request: inout GenerationRequest) {
        if let modelType { request.modelType = modelType }
        if let computeType { request.computeType = computeType }
        if let onlyLoRA { request.onlyLoRA = onlyLoRA }
        if let useSiglip { request.useSiglip = useSiglip }
        if let ditWeights { request.ditWeights = ditWeights }
    }

    var resolvedDescription: String { modelDirectory ?? "the bundled default model" }

    /// The model folder: --model-dir, else the bundled default.
    func directory() throws -> URL {
        try modelDirectory.map { URL(fileURLWithPath: $0) } ?? ModelLocation.bundledDefault()
    }

    /// The pipeline; `imageCount` 1 (nothing to reuse the DiT for) releases it before decoding as --offload does.
    func makeGenerator(imageCount: Int? = nil) throws -> USOPipeline {
        let location = try ModelLocation.resolve(modelDirectory: modelDirectory, modelType: modelType ?? .fluxDev)
        let pipeline = try USOPipeline(location: location, expectedLoRARank: loraRank)
        pipeline.releasesTransformerBeforeDecoding = offload || imageCount == 1
        pipeline.convertedWeights = ConvertedWeightCache(directory: HubEnvironment.current().convertedWeightsDirectory)
        pipeline.notice = { printError("note: \($0)") }
        return pipeline
    }

    /// The `lora_rank` of the config file: the rank of the LoRA used (the pipeline refuses a
    /// --lora-rank that differs from it), else the one given or the reference's default.
    func recordedLoRARank(_ pipeline: USOPipeline, onlyLoRA: Bool) -> Int {
        let used = onlyLoRA ? Self.rank(ofLoRAAt: pipeline.location.lora) : nil
        return used ?? loraRank ?? RunRecord(request: GenerationRequest(prompt: ""), savePath: "").loraRank
    }

    /// Rows of a `down.weight`, as the DiT's loader reads the rank; nil when the file cannot be read.
    private static func rank(ofLoRAAt url: URL) -> Int? {
        guard let weights = try? openWeights(path: url.path),
              let key = weights.keys.sorted().first(where: { $0.hasSuffix(".down.weight") }) else { return nil }
        return weights.info(key)?.shape.first
    }
}

struct OutputOptions: ParsableArguments {
    @Option(name: [.customLong("save-path"), .customLong("save_path")],
            help: "Output folder; files are named {i}_{j}.png as the reference does. Default: outputs/YYYY-MM-DD/.")
    var savePath: String?

    @Option(name: [.customLong("num-images-per-prompt"), .customLong("num_images_per_prompt")],
            help: "Images per prompt (seed, seed+1, …).")
    var imagesPerPrompt = 1

    @Flag(name: .customLong("concat-refs"), inversion: .prefixedNo, help: "Also save [result | references] side by side.")
    var concatRefs = false

    /// The folder results go to: --save-path, else outputs/YYYY-MM-DD/.
    func writer() -> OutputWriter {
        savePath.map { OutputWriter(directory: URL(fileURLWithPath: $0)) } ?? OutputWriter.dated()
    }

    /// Writes one result as `{save_dir}_{j}` (the entry's name, in either folder), as `{i}_{j}` with
    /// --save-path as the reference does, else as the dated folder's next number; returns the PNG's location.
    func save(_ result: GenerationResult, record: RunRecord, entry: BatchEntry, index: Int, imageIndex: Int) throws -> URL {
        let writer = writer()
        let stem: String
        if let name = entry.saveName {
            stem = "\(name)_\(imageIndex)"
        } else if savePath != nil {
            stem = "\(index)_\(imageIndex)"
        } else {
            stem = try writer.nextStem(seed: result.request.seed)
        }
        let url = try writer.write(result, record: record, stem: stem)
        if concatRefs {
            let references = entry.request.imagePaths.filter { !$0.isEmpty }
            let strip = try sideBySide(result.image, references: references)
            try ImageFile.write(strip, to: writer.directory.appendingPathComponent(stem + "_concat.png"), as: .png())
        }
        return url
    }

    /// The result followed by each reference image scaled to its height.
    private func sideBySide(_ image: RGBImage, references: [String]) throws -> RGBImage {
        var parts = [image]
        for path in references {
            let reference = try ImageFile.read(URL(fileURLWithPath: path))
            let width = max(1, reference.width * image.height / max(reference.height, 1))
            parts.append(try reference.resized(width: width, height: image.height, filter: .lanczos))
        }
        let totalWidth = parts.map(\.width).reduce(0, +)
        var pixels = [UInt8](repeating: 0, count: totalWidth * image.height * 3)
        var x0 = 0
        for part in parts {
            for y in 0..<image.height {
                let source = y * part.width * 3, destination = (y * totalWidth + x0) * 3
                pixels.replaceSubrange(destination..<(destination + part.width * 3), with: part.pixels[source..<(source + part.width * 3)])
            }
            x0 += part.width
        }
        return try RGBImage(width: totalWidth, height: image.height, pixels: pixels)
    }
}

/// The reference's batch file: a JSON list of {prompt, image_paths, save_dir?}, paths relative to it.
enum BatchFile {
    struct Item {
        var prompt: String
        var imagePaths: [String]
        var saveName: String?
        var label: String
    }

    static func entries(at path: String) throws -> [Item] {
        let url = URL(fileURLWithPath: path)
        guard let data = try? Data(contentsOf: url) else {
            throw CommandFailure(message: "cannot read the batch file \(path)")
        }
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw CommandFailure(message: "\(path) must hold a JSON list of {\"prompt\", \"image_paths\"} objects")
        }
        let base = url.deletingLastPathComponent()
        return try list.enumerated().map { index, value in
            let object = value as? [String: Any] ?? [:]
            let prompt = object["prompt"] as? String ?? ""
            let paths = (object["image_paths"] as? [String] ?? []).map { $0.isEmpty || $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).path }
            let saveName = object["save_dir"] as? String
            do {
                try saveName.map(OutputWriter.checkRelativeName)
            } catch {
                throw CommandFailure(message: "entry \(index): save_dir \(error)")
            }
            return Item(prompt: prompt, imagePaths: paths, saveName: saveName, label: "entry \(index)")
        }
    }
}

/// `--from`: the request `uso generate` stored in a PNG's text chunks.
enum RequestMetadata {
    static func request(fromImage path: String) throws -> GenerationRequest {
        let entries: [PNGTextEntry]
        do {
            entries = try ImageFile.readPNGText(URL(fileURLWithPath: path))
        } catch {
            throw CommandFailure(message: "--from \(path): \(error)")
        }
        let text = Dictionary(entries.map { ($0.key, $0.text) }, uniquingKeysWith: { first, _ in first })
        guard let request = RunRecord.request(fromPNGText: text) else {
            throw CommandFailure(message: "--from \(path): this PNG holds no uso settings (was it made by uso generate?)")
        }
        return request
    }
}

/// HfArgumentParser's boolean forms (`--offload`, `--offload false`, `--offload=yes`, `--no_only_lora`,
/// underscores for dashes), rewritten into the `--flag` / `--no-flag` the parser declares.
enum ReferenceBooleans {
    /// The booleans of `inference.py`, each declared with `inversion: .prefixedNo`.
    static let names: Set<String> = ["offload", "only-lora", "use-siglip", "concat-refs", "instruct-edit", "hf-download"]

    static func normalized(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { return result + arguments[(index - 1)...] }
            guard argument.hasPrefix("--") else { result.append(argument); continue }
            let parts = argument.dropFirst(2).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            var name = parts[0].replacingOccurrences(of: "_", with: "-"), negated = false
            if name.hasPrefix("no-") && names.contains(String(name.dropFirst(3))) {
                name = String(name.dropFirst(3))
                negated = true
            }
            guard names.contains(name) else { result.append(argument); continue }
            var value = true
            if parts.count == 2 {
                // An unknown word is left for the parser to refuse.
                guard let given = Self.value(String(parts[1])) else { result.append(argument); continue }
                value = given
            } else if index < arguments.count, let given = Self.value(arguments[index]) {
                value = given
                index += 1
            }
            result.append(value != negated ? "--\(name)" : "--no-\(name)")
        }
        return result
    }

    /// `transformers.hf_argparser.string_to_bool`.
    private static func value(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "yes", "true", "t", "y", "1": true
        case "no", "false", "f", "n", "0": false
        default: nil
        }
    }
}

/// Progress and messages on standard error: a live line on a terminal, plain lines otherwise.
final class Terminal: @unchecked Sendable {
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastStage: GenerationStage?

    func status(_ message: String) { write("uso: \(message)\n") }
    func error(_ message: String) { write((interactive ? "\r\u{1B}[K" : "") + "error: \(message)\n") }
    func finished(_ message: String) { write((interactive ? "\r\u{1B}[K" : "") + message + "\n") }

    func progress(_ p: GenerationProgress) {
        guard interactive else {
            if p.stage != lastStage { write("  \(p.stage.rawValue)\n"); lastStage = p.stage }
            return
        }
        var line = "\r\u{1B}[K  \(p.stage.rawValue)"
        if p.stage == .denoising && p.totalSteps > 0 {
            let width = 24, filled = width * p.step / p.totalSteps
            line += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            line += " step \(p.step)/\(p.totalSteps)"
            if p.step > 0 { line += String(format: ", %.2f s/step", p.elapsedSeconds / Double(p.step)) }
            if let eta = p.etaSeconds { line += String(format: ", ETA %.0f s", eta) }
        }
        write(line)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// Turns Ctrl-C into a cancellation request; a second Ctrl-C exits at once.
final class InterruptHandler {
    private let source: DispatchSourceSignal

    init(_ onInterrupt: @escaping @Sendable () -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        var seen = false
        source.setEventHandler {
            if seen { exit(130) }
            seen = true
            onInterrupt()
        }
        source.resume()
    }

    func restore() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
