// Fewer DiT evaluations: first-block caching (the First-Block-Cache / TeaCache family).
import Layers

/// State carried across the steps of one generation: each step runs the first double block, and
/// when its residual (output − input of the image stream) has changed by less than `threshold`
/// (relative L1) since the last full evaluation, the other 56 blocks are skipped and their residual
/// from that evaluation is added instead. Consecutive steps of a rectified flow move the first
/// block's residual little in the middle of the schedule, where most of the steps are.
public final class FluxStepCache {
    public struct Policy: Sendable, Equatable {
        /// Relative L1 change of the first block's residual below which the rest is reused.
        public var threshold: Float
        /// Evaluations at the start that always run in full: the image's layout forms there.
        public var warmupSteps: Int

        public init(threshold: Float, warmupSteps: Int) {
            self.threshold = threshold
            self.warmupSteps = warmupSteps
        }
    }

    public let policy: Policy
    public private(set) var fullEvaluations = 0
    public private(set) var reusedEvaluations = 0
    private var firstResidual: Tensor?      // [Ni + Nr, hidden] F32, at the last full evaluation
    private var remainingResidual: Tensor?  // [Ni, hidden] F32, the blocks after the first

    public init(policy: Policy) { self.policy = policy }

    /// The remaining blocks' residual to reuse for this first-block residual, or nil to run them.
    func reusableResidual(firstResidual residual: Tensor) -> Tensor? {
        if fullEvaluations + reusedEvaluations >= policy.warmupSteps, let previous = firstResidual, let remaining = remainingResidual,
           relativeChange(residual, since: previous) < policy.threshold {
            reusedEvaluations += 1
            return remaining
        }
        fullEvaluations += 1
        firstResidual = residual
        return nil
    }

    /// Records what the blocks after the first added in a full evaluation.
    func store(remainingResidual residual: Tensor) { remainingResidual = residual }

    /// mean|a − b| / mean|b|.
    private func relativeChange(_ a: Tensor, since b: Tensor) -> Float {
        let difference = (a - b).toFloats(), reference = b.toFloats()
        let changed = difference.reduce(0) { $0 + Double(abs($1)) }, base = reference.reduce(0) { $0 + Double(abs($1)) }
        return base > 0 ? Float(changed / base) : .infinity
    }
}
