// Timing the autoencoder at the sizes the pipeline uses (a 512² content reference; 512² and 1024²
// outputs), for the `uso-bench` executable and the project's figures.
import Foundation
import Layers

/// One timed stage: wall-clock seconds and the process's peak resident memory during it.
public struct AutoencoderTiming: Sendable, CustomStringConvertible {
    public let stage: String
    public let seconds: Double
    /// `VmHWM` after the stage (reset before it where the kernel allows; otherwise the process peak).
    public let peakResidentBytes: Int?
    /// How the stage ran (e.g. "whole" or the tile layout).
    public let detail: String

    public var description: String {
        let peak = peakResidentBytes.map { String(format: "%.2f GB", Double($0) / 1e9) } ?? "n/a"
        return String(format: "%@: %.2f s, peak RSS %@ (%@)", stage, seconds, peak, detail)
    }
}

/// Loads `checkpoint` (a FLUX `ae.safetensors`, real or random) and times: encode 512×512, decode
/// 512×512, decode 1024×1024 (each stage optional through `stages`). Inputs are a smooth synthetic
/// image and latent, so random and real weights alike can be timed. Each result is also passed to
/// `report` as soon as it is measured.
public func benchmarkAutoencoder(checkpoint: String, dtype: DType = .f32,
                                 stages: Set<AutoencoderBenchmarkStage> = Set(AutoencoderBenchmarkStage.allCases),
                                 tiling: DecodeTiling = .automatic(),
                                 report: (AutoencoderTiming) -> Void = { print($0) }) throws -> [AutoencoderTiming] {
    let model = try Autoencoder(contentsOf: checkpoint, dtype: dtype)
    let f = model.config.downsamplingFactor
    var results: [AutoencoderTiming] = []
    func measure(_ stage: String, detail: String, _ body: () throws -> Tensor) rethrows {
        MemoryStatus.resetPeakResident()
        let start = DispatchTime.now()
        let output = try body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let timing = AutoencoderTiming(stage: "\(stage) → \(output.shape)", seconds: seconds,
                                       peakResidentBytes: MemoryStatus.peakResidentBytes(), detail: detail)
        report(timing)
        results.append(timing)
    }
    if stages.contains(.encode512) {
        let image = syntheticPattern(channels: model.config.imageChannels, height: 512, width: 512)
        try measure("encode 512×512", detail: "posterior mean") { try model.encode(image) }
    }
    for (stage, side) in [(AutoencoderBenchmarkStage.decode512, 512), (.decode1024, 1024)] where stages.contains(stage) {
        let latent = syntheticPattern(channels: model.config.latentChannels, height: side / f, width: side / f)
        let layout = try model.tileLayout(for: tiling, latentHeight: side / f, latentWidth: side / f)
        let detail = layout.map { layout in
            let rows = layout.spans(side / f), columns = layout.spans(side / f)
            return "\(rows.count)×\(columns.count) tiles of \(rows[0].count)×\(columns[0].count) latent px, overlap ≥ \(layout.overlap)"
        } ?? "whole"
        try measure("decode \(side)×\(side)", detail: detail) { try model.decode(latent, tiling: tiling) }
    }
    return results
}

public enum AutoencoderBenchmarkStage: String, CaseIterable, Sendable {
    case encode512, decode512, decode1024
}

/// A smooth deterministic pattern in [-1, 1], `[channels, height, width]`.
func syntheticPattern(channels: Int, height: Int, width: Int) -> Tensor {
    var values = [Float](repeating: 0, count: channels * height * width)
    for c in 0..<channels { for y in 0..<height { for x in 0..<width {
        values[(c * height + y) * width + x] = sinf(Float(x) * 0.05 * Float(c + 1) + Float(y) * 0.03) * cosf(Float(y) * 0.02 + Float(c))
    } } }
    return Tensor(values, shape: [channels, height, width])
}
