import ArgumentParser
import Foundation
import ImageIO
import Pipeline
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

    @Flag(name: .customLong("offload"), help: "Release the DiT before each decode (lowest peak memory; reloads it for every image). Always so for a single image; the encoders are always released after their stage.")
    var offload = false

    @Flag(name: [.customLong("only-lora"), .customLong("only_lora")], inversion: .prefixedNo,
          help: "Apply the USO LoRA and projector (the reference's default).")
    var onlyLoRA = true

    @Flag(name: [.customLong("use-siglip"), .customLong("use_siglip")], inversion: .prefixedNo,
          help: "Use the style images (the reference's default).")
    var useSiglip = true

    @Option(name: [.customLong("lora-rank"), .customLong("lora_rank")], help: "Expected LoRA rank (checked against the file). Default 128.")
    var loraRank: Int?

    @Option(name: [.customLong("ckpt-path"), .customLong("ckpt_path")], help: "Accepted for compatibility; unused, as in the reference.")
    var checkpointPath: String?

    func apply(to request: inout GenerationRequest) {
        if let modelType { request.modelType = modelType }
        if let computeType { request.computeType = computeType }
        request.onlyLoRA = onlyLoRA
        request.useSiglip = useSiglip
    }

    var resolvedDescription: String { modelDirectory ?? "the bundled default model" }

    /// The model folder: --model-dir, else the bundled default.
    func directory() throws -> URL {
        try modelDirectory.map { URL(fileURLWithPath: $0) } ?? ModelLocation.bundledDefault()
    }

    /// The pipeline; `imageCount` 1 (nothing to reuse the DiT for) releases it before decoding as --offload does.
    func makeGenerator(imageCount: Int? = nil) throws -> ImageGenerator {
        let location = try ModelLocation.resolve(modelDirectory: modelDirectory, modelType: modelType ?? .fluxDev)
        let pipeline = try USOPipeline(location: location, expectedLoRARank: loraRank)
        pipeline.releasesTransformerBeforeDecoding = offload || imageCount == 1
        return pipeline
    }
}

struct OutputOptions: ParsableArguments {
    @Option(name: [.customLong("save-path"), .customLong("save_path")],
            help: "Output folder; files are named {i}_{j}.png as the reference does. Default: outputs/YYYY-MM-DD/.")
    var savePath: String?

    @Option(name: [.customLong("num-images-per-prompt"), .customLong("num_images_per_prompt")],
            help: "Images per prompt (seed, seed+1, …).")
    var imagesPerPrompt = 1

    @Flag(name: [.customLong("concat-refs"), .customLong("concat_refs")], help: "Also save [result | references] side by side.")
    var concatRefs = false

    /// The folder results go to: --save-path, else outputs/YYYY-MM-DD/.
    func writer() -> OutputWriter {
        savePath.map { OutputWriter(directory: URL(fileURLWithPath: $0)) } ?? OutputWriter.dated()
    }

    /// Writes one result; returns the PNG's location.
    func save(_ result: GenerationResult, entry: BatchEntry, index: Int, imageIndex: Int, baseRequest: GenerationRequest,
              guidanceGiven: Bool, inputs: InputOptions, model: ModelOptions) throws -> URL {
        let writer = writer()
        var record = RunRecord(request: baseRequest, savePath: savePath ?? writer.directory.path)
        record.evalJSONPath = inputs.evalJSONPath
        record.imagesPerPrompt = imagesPerPrompt
        record.concatRefs = concatRefs
        record.guidanceGiven = guidanceGiven
        record.offload = model.offload
        record.checkpointPath = model.checkpointPath
        if let rank = model.loraRank { record.loraRank = rank }
        let stem: String
        if savePath != nil {
            stem = "\(entry.saveName ?? String(index))_\(imageIndex)"
        } else {
            stem = try writer.nextStem(seed: result.request.seed)
        }
        var saved = result
        saved.request = result.request
        let url = try writer.write(saved, record: record, stem: stem)
        if concatRefs {
            let references = baseRequest.imagePaths.filter { !$0.isEmpty }
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
        return list.enumerated().map { index, value in
            let object = value as? [String: Any] ?? [:]
            let prompt = object["prompt"] as? String ?? ""
            let paths = (object["image_paths"] as? [String] ?? []).map { $0.isEmpty || $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).path }
            return Item(prompt: prompt, imagePaths: paths, saveName: object["save_dir"] as? String, label: "entry \(index)")
        }
    }
}

/// Requests stored in (and read back from) our PNGs' text chunks.
enum RequestMetadata {
    static func request(fromImage path: String) throws -> GenerationRequest {
        let entries: [PNGTextEntry]
        do {
            entries = try ImageFile.readPNGText(URL(fileURLWithPath: path))
        } catch {
            throw CommandFailure(message: "--from \(path): \(error)")
        }
        let fields = Dictionary(entries.map { ($0.key, $0.text) }, uniquingKeysWith: { first, _ in first })
        guard let prompt = fields["uso:prompt"] else {
            throw CommandFailure(message: "--from \(path): this PNG holds no uso settings (was it made by uso generate?)")
        }
        var request = GenerationRequest(prompt: prompt, contentImage: fields["uso:content"].flatMap { $0.isEmpty ? nil : $0 },
                                        styleImages: fields["uso:styles"].map { $0.split(separator: "\n").map(String.init) } ?? [])
        if let v = fields["uso:seed"].flatMap(UInt64.init) { request.seed = v }
        if let v = fields["uso:width"].flatMap(Int.init) { request.width = v }
        if let v = fields["uso:height"].flatMap(Int.init) { request.height = v }
        if let v = fields["uso:steps"].flatMap(Int.init) { request.steps = v }
        if let v = fields["uso:guidance"].flatMap(Double.init) { request.guidance = v }
        if let v = fields["uso:model_type"].flatMap(GenerationRequest.ModelType.init) { request.modelType = v }
        if let v = fields["uso:pe"].flatMap(GenerationRequest.PositionOffset.init) { request.positionOffset = v }
        if let v = fields["uso:content_ref"].flatMap(Int.init) { request.contentReferenceSize = v }
        if let v = fields["uso:dtype"].flatMap(GenerationRequest.ComputeType.init) { request.computeType = v }
        return request
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
