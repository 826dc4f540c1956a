import Foundation
import FluxDiT

// The request's speed settings and the rules that turn them into the model's terms.

/// How the DiT holds its weights: the one rule, for every front end, that turns a request and the
/// machine into a `FluxPrecision`.
public enum DiTWeights: String, Sendable, Codable, CaseIterable {
    /// The stored type (BF16, as the reference) when the checkpoint fits in memory with room to
    /// run, else int8.
    case auto
    /// As stored, as the reference computes (`flux-dev`).
    case bf16
    /// One byte a parameter, int8 products (uso's low-memory mode, the fastest on VNNI processors).
    case int8

    /// Memory the rest of a step needs beside the weights (activations, LoRA, encoders' leftovers).
    static let headroomBytes: UInt64 = 4 << 30

    /// The precision for `request` with a DiT checkpoint of `checkpointBytes` on a machine of
    /// `memoryBytes`, and why, when the choice was made for the user.
    public static func precision(for request: GenerationRequest, checkpointBytes: UInt64,
                                 memoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory) -> (FluxPrecision, reason: String?) {
        if request.computeType == .f32 { return (.f32, nil) }
        if request.modelType == .fluxDevFP8 { return (.fp8, nil) }
        switch request.ditWeights {
        case .bf16: return (.bf16, nil)
        case .int8: return (.int8, nil)
        case .auto:
            guard checkpointBytes + headroomBytes > memoryBytes else { return (.bf16, nil) }
            let gigabytes = { (bytes: UInt64) in String(format: "%.1f GB", Double(bytes) / 1e9) }
            return (.int8, "DiT weights in int8: the \(gigabytes(checkpointBytes)) checkpoint does not fit in "
                    + "\(gigabytes(memoryBytes)) of memory with room to run (--dit-weights bf16 to keep it as stored)")
        }
    }
}

/// How much the sampler may skip: `off` runs every block at every step, as the reference does.
public enum StepCachePreset: String, Sendable, Codable, CaseIterable {
    case off, balanced, fast

    /// The policy of a preset; nil for `off`. Measured on uso-mini at 25 steps (docs/benchmarks.md):
    /// balanced runs 15-16 of 25 evaluations in full, fast 9-10, each moving the image by under one
    /// 8-bit level on average (another seed moves it by 3.4).
    public var policy: FluxStepCache.Policy? {
        switch self {
        case .off: nil
        case .balanced: FluxStepCache.Policy(threshold: 0.08, warmupSteps: 3)
        case .fast: FluxStepCache.Policy(threshold: 0.16, warmupSteps: 2)
        }
    }
}
