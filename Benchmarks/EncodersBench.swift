// `uso-bench encoders`: the full-size conditioners: T5-XXL on a 512-token prompt, CLIP-L on 77
// tokens, SigLIP so400m + the USO projector on one style image.
import Foundation
import StyleEncoder
import TensorEngine
import TextEncoders
import WeightFiles

enum EncodersBench {
    static let usage = "uso-bench encoders --weights DIR [--only t5,clip,siglip]"

    /// DIR holds t5-xxl/, clip-vit-l14/, siglip/ and USO/uso_flux_v1.0/projector.safetensors (the
    /// layout tools/fixtures/conditioners.py --full-size writes).
    static func run(_ arguments: BenchArguments) throws {
        let directory = try arguments.required("--weights")
        let selected = Set((arguments.string("--only") ?? "t5,clip,siglip").split(separator: ",").map(String.init))
        let unknown = selected.subtracting(["t5", "clip", "siglip"])
        guard unknown.isEmpty else { throw BenchError.usage("unknown encoder(s) \(unknown.sorted()); choose from t5, clip, siglip") }
        let hint = "make them with python3 tools/fixtures/conditioners.py --full-size DIR"
        print("uso-bench encoders: \(directory), \(machineLoad())")

        // Each model lives only inside its stage, so its memory is released before the next one
        // loads, as the pipeline does; the peak is reset before each stage.
        if selected.contains("t5") {
            let folder = try existingFile(["\(directory)/t5-xxl"], hint: hint)
            try measure("T5-XXL encode 512 tokens") {
                let model = try T5Encoder(weights: try openWeights(path: folder), configJSON: configJSON(folder), computeType: .bf16)
                return { _ = try model(tokenIDs: syntheticPrompt(length: 512, vocabulary: model.config.vocabularySize, end: 1)) }
            }
        }
        if selected.contains("clip") {
            let folder = try existingFile(["\(directory)/clip-vit-l14"], hint: hint)
            try measure("CLIP-L encode 77 tokens") {
                let model = try CLIPTextModel(weights: try openWeights(path: folder), configJSON: configJSON(folder), computeType: .bf16)
                // CLIP's prompt: <|startoftext|> … <|endoftext|>, the end token having the highest id.
                let ids = [49406] + syntheticPrompt(length: 76, vocabulary: 49406, end: 49407)
                return { _ = try model(tokenIDs: ids).pooled }
            }
        }
        if selected.contains("siglip") {
            let folder = try existingFile(["\(directory)/siglip"], hint: hint)
            let projectorFile = try existingFile(["\(directory)/USO/uso_flux_v1.0/projector.safetensors"], hint: hint)
            try measure("SigLIP + projector, 1 style image") {
                let tower = try SigLIPVisionTower(weights: try openWeights(path: folder), configJSON: configJSON(folder), computeType: .f32)
                let projector = try StyleProjector(weights: try openWeights(path: projectorFile), computeType: .bf16)
                let encoder = try StyleEncoder(visionTower: tower, projector: projector)
                let side = tower.config.imageSize
                let pixels = Tensor((0..<3 * side * side).map { sinf(Float($0) * 0.001) }, shape: [3, side, side])
                return { _ = try encoder.styleTokens(for: [pixels]) }
            }
        }
    }

    /// Times `load` (which returns the encoding to time) and the encoding; prints both with the
    /// stage's peak resident set.
    private static func measure(_ stage: String, _ load: () throws -> () throws -> Void) throws {
        ProcessMemory.resetPeak()
        let (encode, loadSeconds) = try timed(load)
        let (_, encodeSeconds) = try timed(encode)
        let peak = (ProcessMemory.peakBytes ?? 0)
        print(String(format: "%@: load %.1f s, encode %.1f s, peak RSS %@", stage, loadSeconds, encodeSeconds, gigabytes(peak)))
        print(String(format: "| %@ | %.1f | %.1f | %@ | %@ |", stage, loadSeconds, encodeSeconds, gigabytes(peak), machineLoad()))
    }

    /// `length` ids ending in `end`: the cost of an encoder does not depend on which ids they are.
    private static func syntheticPrompt(length: Int, vocabulary: Int, end: Int) -> [Int] {
        (0..<length - 1).map { 3 + ($0 * 7919) % (vocabulary - 3) } + [end]
    }

    private static func configJSON(_ folder: String) -> Data? {
        try? Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent("config.json"))
    }
}
