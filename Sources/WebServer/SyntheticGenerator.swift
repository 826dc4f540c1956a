import Foundation
import ImageIO
import Pipeline

/// A TEST AID, not a model: draws a deterministic picture from the request (a gradient keyed by
/// the seed, tinted by the mean colour of each reference image, with the prompt's hash as stripes)
/// one "denoising step" at a time, reporting progress and honouring cancellation between steps,
/// as the real pipeline does. `uso serve` uses it only when USO_SERVE_GENERATOR=synthetic is set
/// (the browser test does this to run without model weights); the API tests use it directly.
public final class SyntheticGenerator: ImageGenerator, @unchecked Sendable {
    public static let capabilities = GeneratorCapabilities(
        modelName: "synthetic test generator (not a model)", defaultSide: 256, minSide: 64, maxSide: 512, sideStep: 16,
        defaultSteps: 12, maxSteps: 50, defaultGuidance: 4, minGuidance: 1, maxGuidance: 5,
        defaultContentReferenceSize: 256, minContentReferenceSize: 64, maxContentReferenceSize: 1024,
        keepSizeBase: 256, maxStyleImages: 2)

    private let secondsPerStep: Double

    public init(secondsPerStep: Double = 0.05) {
        self.secondsPerStep = secondsPerStep
    }

    public func generate(_ request: GenerationRequest, cancellation: CancellationFlag,
                         progress: @escaping @Sendable (GenerationProgress) -> Void) throws -> GenerationResult {
        let start = Date()
        func elapsed() -> Double { Date().timeIntervalSince(start) }
        progress(GenerationProgress(stage: .encodingContent, elapsedSeconds: elapsed()))
        let tints = try request.imagePaths.filter { !$0.isEmpty }.map { try Self.meanColour(path: $0) }
        let (width, height) = request.latentAlignedSize
        guard width > 0, height > 0 else { throw GenerationError.invalidRequest("the size \(request.width)x\(request.height) is under 16 pixels") }
        guard request.steps >= 1 else { throw GenerationError.invalidRequest("steps must be at least 1") }

        for step in 1...request.steps {
            if cancellation.isCancelled { throw GenerationError.cancelled }
            Thread.sleep(forTimeInterval: secondsPerStep)
            let perStep = elapsed() / Double(step)
            progress(GenerationProgress(stage: .denoising, step: step, totalSteps: request.steps,
                                        elapsedSeconds: elapsed(), etaSeconds: perStep * Double(request.steps - step)))
        }
        progress(GenerationProgress(stage: .decoding, step: request.steps, totalSteps: request.steps, elapsedSeconds: elapsed()))
        let image = try Self.picture(width: width, height: height, seed: request.seed, prompt: request.prompt, tints: tints)
        return GenerationResult(image: image, request: request, seconds: elapsed())
    }

    private static func meanColour(path: String) throws -> [Double] {
        let image = try ImageFile.read(URL(fileURLWithPath: path))
        var sums = [0.0, 0.0, 0.0]
        for (index, value) in image.pixels.enumerated() { sums[index % 3] += Double(value) }
        return sums.map { $0 / Double(image.width * image.height) }
    }

    private static func picture(width: Int, height: Int, seed: UInt64, prompt: String, tints: [[Double]]) throws -> RGBImage {
        // FNV-1a of the prompt: deterministic across runs, unlike Hasher.
        let promptHash = prompt.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let stripes = Int(promptHash % 7) + 3
        let base = [Double(seed % 256), Double((seed / 256) % 256), Double((seed / 65536) % 256)]
        let tint = tints.isEmpty ? base : (0..<3).map { c in tints.map { $0[c] }.reduce(0, +) / Double(tints.count) }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let u = Double(x) / Double(width), v = Double(y) / Double(height)
                let stripe = (x * stripes / width + y * stripes / height) % 2 == 0 ? 1.0 : 0.8
                for c in 0..<3 {
                    let gradient = c == 0 ? u : (c == 1 ? v : 1 - u)
                    let value = (0.5 * tint[c] + 0.5 * base[c] * gradient + 64 * gradient) * stripe
                    pixels[(y * width + x) * 3 + c] = UInt8(max(0, min(255, value)))
                }
            }
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }
}
