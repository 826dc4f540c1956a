// One denoising step of the DiT at a chosen size, timed per block type (for `uso-bench`).
import Layers
import Foundation

/// Time spent in each part of a DiT call.
final class StageTimes: @unchecked Sendable {
    var doubleBlocks: Duration = .zero
    var singleBlocks: Duration = .zero
}

public enum FluxStepBenchmark {
    /// The sizes of one generation: target image, optional content reference, style images.
    public struct Scenario: Sendable, CustomStringConvertible {
        public var width: Int
        public var height: Int
        /// Pixel size of the content reference; nil for none.
        public var referenceWidth: Int?
        public var referenceHeight: Int?
        /// Each style image adds 192 tokens (the projector's 3 × 64) in USO; `styleTokensPerImage`
        /// follows the loaded model.
        public var styleImages: Int
        public var styleTokensPerImage: Int
        public var textTokens: Int

        public init(width: Int, height: Int, referenceWidth: Int? = nil, referenceHeight: Int? = nil, styleImages: Int = 0,
                    styleTokensPerImage: Int = 192, textTokens: Int = 512) {
            self.width = width
            self.height = height
            self.referenceWidth = referenceWidth
            self.referenceHeight = referenceHeight
            self.styleImages = styleImages
            self.styleTokensPerImage = styleTokensPerImage
            self.textTokens = textTokens
        }

        public var description: String {
            let reference = referenceWidth.map { "\($0)x\(referenceHeight ?? $0) reference" } ?? "no reference"
            return "\(width)x\(height), \(reference), \(styleImages) style image(s), \(textTokens) text tokens"
        }
    }

    public struct Result: Sendable, CustomStringConvertible {
        public let scenario: Scenario
        /// Tokens in the attention sequence: style + text + image + reference.
        public let sequenceLength: Int
        /// One-off work per generation (txt_in, img_in of the reference, vector_in, RoPE tables).
        public let prepareSeconds: Double
        public let stepSeconds: Double
        public let doubleBlockSeconds: Double
        public let singleBlockSeconds: Double
        /// Multiply-adds counted as 2 FLOPs: linear layers, attention (4·N²·hidden per block), run-time LoRA.
        public let stepFLOPs: Double
        public var gflopsPerSecond: Double { stepFLOPs / stepSeconds / 1e9 }
        /// The process's peak resident set (VmHWM) after the step.
        public let peakResidentBytes: Int
        /// CPU seconds of the process over the step's wall seconds (2.0 = both of two cores busy).
        public let cpuUtilisation: Double

        public var description: String {
            String(format: "%@: N=%d, step %.2f s (double blocks %.2f s, single blocks %.2f s, other %.2f s), prepare %.2f s, %.1f TFLOP, %.1f GFLOP/s, CPU %.0f%%, peak RSS %.2f GB",
                   scenario.description, sequenceLength, stepSeconds, doubleBlockSeconds, singleBlockSeconds,
                   stepSeconds - doubleBlockSeconds - singleBlockSeconds, prepareSeconds, stepFLOPs / 1e12, gflopsPerSecond, 100 * cpuUtilisation,
                   Double(peakResidentBytes) / 1e9)
        }
    }

    /// Runs `prepare` and one `velocity` call on seeded random inputs of the scenario's sizes.
    public static func run(_ dit: FluxDiT, scenario: Scenario, seed: UInt64 = 0) throws -> Result {
        let config = dit.config
        var random = SplitMix64(seed: seed)
        func noise(_ shape: [Int]) -> Tensor {
            Tensor((0..<shape.reduce(1, *)).map { _ in random.nextSignedUnit() }, shape: shape, dtype: dit.precision.activationType)
        }
        let latentHeight = 2 * (scenario.height / 16), latentWidth = 2 * (scenario.width / 16)
        var references: [FluxReference] = []
        if let width = scenario.referenceWidth {
            let height = scenario.referenceHeight ?? width
            let sizes = [(height: 2 * (height / 16), width: 2 * (width / 16))]
            let positions = FluxPositions.references(latentSizes: sizes, targetLatentHeight: latentHeight, targetLatentWidth: latentWidth, mode: .diagonal)
            references = [FluxReference(tokens: noise([positions[0].count, config.inChannels]), positions: positions[0])]
        }
        let styleCount = scenario.styleImages * scenario.styleTokensPerImage
        let conditioning = FluxConditioning(
            text: noise([scenario.textTokens, config.contextDim]), pooled: noise([config.vectorDim]),
            styleTokens: styleCount > 0 ? noise([styleCount, config.hiddenSize]) : nil,
            imagePositions: FluxPositions.image(latentHeight: latentHeight, latentWidth: latentWidth), references: references)
        let image = noise([conditioning.imagePositions.count, config.inChannels])

        let prepareStart = ContinuousClock.now
        let context = try dit.prepare(conditioning)
        let stepStart = ContinuousClock.now, cpuStart = processCPUSeconds()
        let stages = StageTimes()
        _ = try dit.velocity(image: image, timestep: 0.9, guidance: config.guidanceEmbed ? 4 : nil, context: context, stages: stages)
        let stepEnd = ContinuousClock.now, cpuEnd = processCPUSeconds()

        let textLength = scenario.textTokens + styleCount
        let imageLength = image.shape[0] + references.reduce(0) { $0 + $1.tokens.shape[0] }
        return Result(scenario: scenario, sequenceLength: textLength + imageLength,
                      prepareSeconds: seconds(prepareStart.duration(to: stepStart)), stepSeconds: seconds(stepStart.duration(to: stepEnd)),
                      doubleBlockSeconds: seconds(stages.doubleBlocks), singleBlockSeconds: seconds(stages.singleBlocks),
                      stepFLOPs: stepFLOPs(config: config, runtimeLoRARank: dit.lora?.mode == .runtime ? dit.lora?.rank : nil,
                                           textLength: textLength, imageLength: imageLength, targetLength: image.shape[0]),
                      peakResidentBytes: peakResidentBytes(),
                      cpuUtilisation: (cpuEnd - cpuStart) / max(seconds(stepStart.duration(to: stepEnd)), 1e-9))
    }

    /// User + system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let time = { (t: timeval) in Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return time(usage.ru_utime) + time(usage.ru_stime)
    }

    /// FLOPs of one `velocity` call (spec §9.3's accounting).
    static func stepFLOPs(config c: FluxConfig, runtimeLoRARank: Int?, textLength: Int, imageLength: Int, targetLength: Int) -> Double {
        let h = Double(c.hiddenSize), mlp = Double(c.mlpHiddenSize), n = Double(textLength + imageLength)
        let streamWeights = h * 3 * h + h * h + 2 * h * mlp  // qkv, proj, mlp per token
        let attention = 4 * n * n * h
        let double = 2 * n * streamWeights + attention
        let single = 2 * n * (h * (3 * h + mlp) + (h + mlp) * h) + attention
        var lora = 0.0
        if let rank = runtimeLoRARank {
            let r = Double(rank)
            lora = Double(c.doubleBlockCount) * 2 * n * r * ((h + 3 * h) + (h + h))
                + Double(c.singleBlockCount) * 2 * n * r * ((h + 3 * h) + (h + mlp + h))
        }
        let edges = 2 * Double(targetLength) * Double(c.inChannels + c.outChannels) * h
        return Double(c.doubleBlockCount) * double + Double(c.singleBlockCount) * single + lora + edges
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    /// VmHWM from /proc/self/status (0 where it is not available).
    static func peakResidentBytes() -> Int { ProcessMemory.peakBytes ?? 0 }
}
