// `uso-bench flux`: one denoising step of the full-size DiT (random weights in the real layout).
import Foundation
import TensorEngine
import FluxDiT
import WeightFiles

enum FluxBench {
    static let usage = "uso-bench flux --weights DIR [--precision bf16|fp8|int8] [--size 256|512|1024] [--lora merged|runtime|none] [--cache-dir DIR] [--torch]"

    /// DIR is a model folder in the reference's layout, or a FLUX.1-dev folder holding
    /// flux1-dev.safetensors (and dit_lora.safetensors, or with ../USO/uso_flux_v1.0/ beside it).
    /// `--cache-dir` keeps fp8/int8 conversions there (the second run maps them); `--torch` times
    /// PyTorch's double and single blocks (bf16, then f32) at the same token counts in the same run.
    static func run(_ arguments: BenchArguments) throws {
        let directory = try arguments.required("--weights")
        let size = try arguments.integer("--size", default: 512, allowed: [256, 512, 1024])
        let precisionName = arguments.flag("--fp8") ? "fp8" : arguments.string("--precision") ?? "bf16"
        guard let precision = FluxPrecision(rawValue: precisionName), precision != .f32 else {
            throw BenchError.usage("--precision takes bf16, fp8 or int8, not \(precisionName)")
        }
        let loraChoice = arguments.string("--lora") ?? "default"
        guard ["default", "merged", "runtime", "none"].contains(loraChoice) else {
            throw BenchError.usage("--lora takes merged, runtime or none, not \(loraChoice)")
        }
        let hint = "make it with python3 tools/bench/make_full_flux.py"
        let checkpoint = try existingFile(["\(directory)/flux1-dev.safetensors", "\(directory)/FLUX.1-dev/flux1-dev.safetensors"], hint: hint)
        let loraPath = loraChoice == "none" ? nil : try existingFile(
            ["\(directory)/dit_lora.safetensors", "\(directory)/USO/uso_flux_v1.0/dit_lora.safetensors",
             "\(directory)/../USO/uso_flux_v1.0/dit_lora.safetensors"], hint: hint)

        print("uso-bench flux: \(precision) at \(size)x\(size), \(machineLoad()); \(processorName())")
        let options = FluxLoadOptions(precision: precision, loraMode: LoRAMode(rawValue: loraChoice))
        let cache = arguments.string("--cache-dir").map { ConvertedWeightCache(directory: URL(fileURLWithPath: $0)) }
        let (dit, loadSeconds) = try timed {
            let weights = try cache?.weights(at: checkpoint, precision: precision) { print("warning: \($0)") }
                ?? openWeights(path: checkpoint)
            return try FluxDiT(weights: weights, lora: try loraPath.map { try openWeights(path: $0) }, options: options)
        }
        let loraText = dit.lora.map { "rank \($0.rank) \($0.mode)" } ?? "none"
        print(String(format: "load: %.1f s, LoRA %@, resident %@, peak %@", loadSeconds, loraText,
                     gigabytes((ProcessMemory.residentBytes ?? 0)), gigabytes((ProcessMemory.peakBytes ?? 0))))

        // The USO case: one style image's tokens and a content reference of the image's size, at most
        // 512 px (the reference's --content_ref default).
        let referenceSize = min(size, 512)
        let scenario = FluxStepBenchmark.Scenario(width: size, height: size, referenceWidth: referenceSize,
                                                  referenceHeight: referenceSize, styleImages: 1, styleTokensPerImage: 192,
                                                  textTokens: 512)
        let result = try FluxStepBenchmark.run(dit, scenario: scenario, seed: 0)
        // The peak over load and step (Result.peakResidentBytes is read after the step only).
        let peak = (ProcessMemory.peakBytes ?? 0)
        print(result)
        print("peak RSS (load + step): \(gigabytes(peak))")
        let c = dit.config
        print(String(format: "per block: double %.2f s, single %.2f s", result.doubleBlockSeconds / Double(c.doubleBlockCount),
                     result.singleBlockSeconds / Double(c.singleBlockCount)))
        var torchColumns = "| | "
        if arguments.flag("--torch") {
            let textTokens = scenario.textTokens + scenario.styleImages * scenario.styleTokensPerImage
            let imageTokens = result.sequenceLength - textTokens
            torchColumns = "| "
            for dtype in ["bf16", "f32"] {
                let torch = try torchBlocks(text: textTokens, image: imageTokens, dtype: dtype)
                let torchStep = Double(c.doubleBlockCount) * torch.double + Double(c.singleBlockCount) * torch.single
                print(String(format: "PyTorch %@ %@ blocks at %d + %d tokens: double %.2f s, single %.2f s, so %.1f s a step; uso / PyTorch speed: %.2fx",
                             torch.version, dtype, textTokens, imageTokens, torch.double, torch.single, torchStep, torchStep / result.stepSeconds))
                torchColumns += String(format: "%@ %.1f s: **%.2f** | ", dtype, torchStep, torchStep / result.stepSeconds)
            }
        }
        // One markdown row for docs/benchmarks.md.
        print(String(format: "| %@ | %dx%d | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.0f | %.0f%% %@%@ | %@ |",
                     precision.rawValue, size, size, result.sequenceLength, loadSeconds, result.stepSeconds,
                     result.doubleBlockSeconds, result.singleBlockSeconds,
                     result.doubleBlockSeconds / Double(c.doubleBlockCount), result.singleBlockSeconds / Double(c.singleBlockCount),
                     result.stepFLOPs / 1e12, result.gflopsPerSecond, 100 * result.cpuUtilisation, torchColumns,
                     gigabytes(peak), machineLoad()))
    }

    /// tools/bench/torch_flux_blocks.py's timings of one double and one single block.
    static func torchBlocks(text: Int, image: Int, dtype: String) throws -> (double: Double, single: Double, version: String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../tools/bench/torch_flux_blocks.py").standardized.path
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--text", "\(text)", "--image", "\(image)", "--dtype", dtype]
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let double = json["double"] as? Double, let single = json["single"] as? Double else {
            throw BenchError.usage("tools/bench/torch_flux_blocks.py failed (needs CPU torch: pip install -r tools/requirements.txt)")
        }
        return (double, single, json["torch"] as? String ?? "?")
    }
}
