import Foundation
import ImageIO
import TensorEngine

/// The stages of one generation, in order, as progress reports them.
public enum GenerationStage: String, Sendable, Codable {
    case loading, encodingPrompt, encodingStyle, encodingContent, denoising, decoding, saving, done
}

/// One progress report: the stage, the denoising step within it, and timing.
public struct GenerationProgress: Sendable, Codable, Equatable {
    public var stage: GenerationStage
    public var step: Int
    public var totalSteps: Int
    public var elapsedSeconds: Double
    /// Seconds left, estimated from the steps done so far (nil before the first step).
    public var etaSeconds: Double?

    public init(stage: GenerationStage, step: Int = 0, totalSteps: Int = 0, elapsedSeconds: Double = 0, etaSeconds: Double? = nil) {
        self.stage = stage
        self.step = step
        self.totalSteps = totalSteps
        self.elapsedSeconds = elapsedSeconds
        self.etaSeconds = etaSeconds
    }
}

/// Set from another thread to stop a generation at the next step.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public func cancel() { lock.withLock { cancelled = true } }
    public var isCancelled: Bool { lock.withLock { cancelled } }
}

/// A finished image and what made it.
public struct GenerationResult: Sendable {
    public var image: RGBImage
    public var request: GenerationRequest
    public var seconds: Double
    /// The final packed latent tokens before decoding, [N, 4·channels] (to locate parity differences).
    public var latentTokens: Tensor?
    /// Seconds per stage.
    public var timings: StageTimings

    public init(image: RGBImage, request: GenerationRequest, seconds: Double, latentTokens: Tensor? = nil,
                timings: StageTimings = StageTimings()) {
        self.image = image
        self.request = request
        self.seconds = seconds
        self.latentTokens = latentTokens
        self.timings = timings
    }
}

/// Anything that turns a request into an image: the USO pipeline, or a front end's test double.
public protocol ImageGenerator: AnyObject, Sendable {
    func generate(_ request: GenerationRequest, cancellation: CancellationFlag,
                  progress: @escaping @Sendable (GenerationProgress) -> Void) throws -> GenerationResult
}

public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case cancelled
    case invalidRequest(String)
    case unreadableImage(path: String, reason: String)
    case outputNotWritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .cancelled: "cancelled"
        case .invalidRequest(let reason): reason
        case .unreadableImage(let path, let reason): "cannot use the image \(path): \(reason)"
        case .outputNotWritable(let path, let reason): "cannot write to \(path): \(reason) — choose another folder with --save-path"
        }
    }
}
