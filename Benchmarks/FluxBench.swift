// `uso-bench flux`: one denoising step of the full-size DiT (random weights in the real layout).
import Foundation
import TensorEngine
import FluxDiT
import WeightFiles

enum FluxBench {
    static let usage = "uso-bench flux --weights DIR [--fp8] [--size 256|512] [--lora merged|runtime|none]"

    /// DIR is a model folder in the reference's layout, or a FLUX.1-dev folder holding
    /// flux1-dev.safetensors (and dit_lora.safetensors, or with ../USO/uso_flux_v1.0/ beside it).
    static func run(_ arguments: BenchArguments) throws {
        let directory = try arguments.required("--weights")
        let size = try arguments.integer("--size", default: 512, allowed: [256, 512])
        let precision: FluxPrecision = arguments.flag("--fp8") ? .fp8 : .bf16
        let loraChoice = arguments.string("--lora") ?? "default"
        guard ["default", "merged", "runtime", "none"].contains(loraChoice) else {
            throw BenchError.usage("--lora takes merged, runtime or none, not \(loraChoice)")
        }
        let hint = "make it with python3 tools/bench/make_full_flux.py"
        let checkpoint = try existingFile(["\(directory)/flux1-dev.safetensors", "\(directory)/FLUX.1-dev/flux1-dev.safetensors"], hint: hint)
        let loraPath = loraChoice == "none" ? nil : try existingFile(
            ["\(directory)/dit_lora.safetensors", "\(directory)/USO/uso_flux_v1.0/dit_lora.safetensors",
             "\(directory)/../USO/uso_flux_v1.0/dit_lora.safetensors"], hint: hint)

        print("uso-bench flux: \(precision) at \(size)x\(size), \(machineLoad())")
        let options = FluxLoadOptions(precision: precision, loraMode: LoRAMode(rawValue: loraChoice))
        let (dit, loadSeconds) = try timed {
            try FluxDiT(weights: try openWeights(path: checkpoint), lora: try loraPath.map { try openWeights(path: $0) }, options: options)
        }
        let loraText = dit.lora.map { "rank \($0.rank) \($0.mode)" } ?? "none"
        print(String(format: "load: %.1f s, LoRA %@, resident %@, peak %@", loadSeconds, loraText,
                     gigabytes((ProcessMemory.residentBytes ?? 0)), gigabytes((ProcessMemory.peakBytes ?? 0))))

        // The USO case: a content reference as large as the image and one style image's tokens.
        let scenario = FluxStepBenchmark.Scenario(width: size, height: size, referenceWidth: size, referenceHeight: size,
                                                  styleImages: 1, styleTokensPerImage: 192, textTokens: 512)
        let result = try FluxStepBenchmark.run(dit, scenario: scenario, seed: 0)
        // The peak over load and step (Result.peakResidentBytes is read after the step only).
        let peak = (ProcessMemory.peakBytes ?? 0)
        print(result)
        print("peak RSS (load + step): \(gigabytes(peak))")
        let c = dit.config
        print(String(format: "per block: double %.2f s, single %.2f s", result.doubleBlockSeconds / Double(c.doubleBlockCount),
                     result.singleBlockSeconds / Double(c.singleBlockCount)))
        // One markdown row for docs/benchmarks.md.
        print(String(format: "| %@ | %dx%d | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f | %@ | %@ |",
                     precision.rawValue, size, size, result.sequenceLength, loadSeconds, result.stepSeconds,
                     result.doubleBlockSeconds, result.singleBlockSeconds,
                     result.doubleBlockSeconds / Double(c.doubleBlockCount), result.singleBlockSeconds / Double(c.singleBlockCount),
                     result.stepFLOPs / 1e12, result.gflopsPerSecond, gigabytes(peak), machineLoad()))
    }
}
