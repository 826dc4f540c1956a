// `uso-bench pipeline`: the whole USO pipeline on a full-size model folder: seconds and peak
// resident memory of each stage (content VAE encode, SigLIP + projector, T5 + CLIP, DiT load,
// denoising steps, VAE decode).
import Foundation
import TensorEngine
import ImageIO
import Pipeline
import FluxDiT

enum PipelineBench {
    static let usage = "uso-bench pipeline --model-dir DIR --size 256|512|1024 [--steps 2] [--model-type flux-dev|flux-dev-fp8] "
        + "[--dit-weights auto|bf16|int8] [--step-cache off|balanced|fast] [--cache-dir DIR] [--content IMAGE] [--style IMAGE]"

    static func run(_ arguments: BenchArguments) throws {
        let directory = try arguments.required("--model-dir")
        let size = try arguments.integer("--size", default: 512, allowed: [256, 512, 1024])
        let steps = try arguments.integer("--steps", default: 2)
        let typeName = arguments.string("--model-type") ?? "flux-dev"
        guard let modelType = GenerationRequest.ModelType(rawValue: typeName) else {
            throw BenchError.usage("--model-type takes \(GenerationRequest.ModelType.allCases.map(\.rawValue).joined(separator: "|"))")
        }
        let pipeline = try USOPipeline(location: ModelLocation(directory: URL(fileURLWithPath: directory), modelType: modelType))
        pipeline.releasesTransformerBeforeDecoding = true   // as `uso generate` does for one image
        pipeline.convertedWeights = arguments.string("--cache-dir").map { ConvertedWeightCache(directory: URL(fileURLWithPath: $0)) }
        pipeline.notice = { print("note: \($0)") }

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("uso-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let content = try arguments.string("--content") ?? writeSyntheticImage(side: size, phase: 0, in: scratch, name: "content.png")
        let style = try arguments.string("--style") ?? writeSyntheticImage(side: 384, phase: 1, in: scratch, name: "style.png")

        var request = GenerationRequest(prompt: "A cat in a garden, painted in the style of the reference image",
                                        contentImage: content, styleImages: [style])
        request.width = size
        request.height = size
        request.steps = steps
        request.modelType = modelType
        request.contentReferenceSize = min(size, 512)   // as large as the image, at most the reference's default
        request.ditWeights = try arguments.choice("--dit-weights", default: .auto)
        request.stepCache = try arguments.choice("--step-cache", default: .off)

        print("uso-bench pipeline: \(typeName) \(size)x\(size), \(steps) steps, DiT weights \(request.ditWeights), "
              + "step cache \(request.stepCache), \(directory), \(machineLoad()); \(processorName())")
        let recorder = StageRecorder()
        let result = try pipeline.generate(request, cancellation: CancellationFlag()) { recorder.record($0) }
        recorder.finish()
        for stage in recorder.stages {
            print(stage.name.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: "%8.1f s   peak RSS %@", stage.seconds, gigabytes(stage.peakBytes)))
        }
        let overall = recorder.stages.map(\.peakBytes).max() ?? 0
        print("stages: \(result.timings)")
        print(String(format: "total %.1f s, image %dx%d, peak RSS %@, %@", result.seconds, result.image.width, result.image.height,
                     gigabytes(overall), machineLoad()))
        print("| \(typeName) | \(size)x\(size) | " + recorder.stages.map { String(format: "%.1f s / %@", $0.seconds, gigabytes($0.peakBytes)) }
              .joined(separator: " | ") + String(format: " | %.1f s | %@ | %@ |", result.seconds, gigabytes(overall), machineLoad()))
    }

    /// A smooth colour pattern as a PNG (the benchmark's figures do not depend on the pixels).
    private static func writeSyntheticImage(side: Int, phase: Double, in folder: URL, name: String) throws -> String {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side { for x in 0..<side { for c in 0..<3 {
            let value = 0.5 + 0.5 * sin(Double(x) * 0.03 * Double(c + 1) + Double(y) * 0.02 + phase)
            pixels[(y * side + x) * 3 + c] = UInt8(value * 255)
        } } }
        let url = folder.appendingPathComponent(name)
        try ImageFile.write(try RGBImage(width: side, height: side, pixels: pixels), to: url, as: .png())
        return url.path
    }
}

/// Turns progress reports into stages: each stage runs from its first report to the next stage's,
/// and the process's peak resident set is reset at every boundary, so each stage has its own peak.
private final class StageRecorder: @unchecked Sendable {
    struct Stage {
        let name: String
        let seconds: Double
        let peakBytes: Int
    }

    private(set) var stages: [Stage] = []
    private var current: (name: String, start: Double)?
    private let lock = NSLock()

    func record(_ progress: GenerationProgress) {
        lock.withLock {
            // Each denoising step is its own stage; other stages by name.
            let name = progress.stage == .denoising ? (progress.step < progress.totalSteps ? "denoising step \(progress.step + 1)" : "")
                                                    : stageName(progress.stage)
            guard name != current?.name else { return }
            close(at: progress.elapsedSeconds)
            if !name.isEmpty && progress.stage != .done { current = (name, progress.elapsedSeconds) }
        }
    }

    func finish() { lock.withLock { close(at: nil) } }

    private func close(at elapsed: Double?) {
        guard let current else { return }
        let end = elapsed ?? current.start
        stages.append(Stage(name: current.name, seconds: end - current.start, peakBytes: (ProcessMemory.peakBytes ?? 0)))
        self.current = nil
        ProcessMemory.resetPeak()
    }

    private func stageName(_ stage: GenerationStage) -> String {
        switch stage {
        case .encodingContent: "VAE encode (content)"
        case .encodingStyle: "SigLIP + projector (style)"
        case .encodingPrompt: "T5 + CLIP (prompt)"
        case .loading: "DiT load"
        case .decoding: "VAE decode"
        case .denoising, .saving, .done: stage.rawValue
        }
    }
}
