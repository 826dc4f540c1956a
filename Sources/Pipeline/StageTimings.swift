import Foundation

/// Wall seconds of each stage of one generation, in the order they ran (`uso generate` prints them).
public struct StageTimings: Sendable, CustomStringConvertible {
    public private(set) var stages: [(stage: GenerationStage, seconds: Double)] = []
    private var current: (stage: GenerationStage, start: Date)?

    public init() {}

    /// Ends the running stage, if any, and starts `stage`.
    mutating func start(_ stage: GenerationStage) {
        finish()
        current = (stage, Date())
    }

    /// Ends the running stage.
    mutating func finish() {
        if let current { stages.append((current.stage, Date().timeIntervalSince(current.start))) }
        current = nil
    }

    public var description: String {
        stages.map { String(format: "%@ %.1f s", $0.stage.rawValue, $0.seconds) }.joined(separator: ", ")
    }
}
