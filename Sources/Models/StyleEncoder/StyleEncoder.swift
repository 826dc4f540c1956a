// Style images -> style tokens: the SigLIP tower, then the projector, once per image (the reference
// recomputes this inside every DiT call; the result does not depend on the step).
import Layers

/// SigLIP features and the USO projector together.
public struct StyleEncoder {
    public let visionTower: SigLIPVisionTower
    public let projector: StyleProjector

    public init(visionTower: SigLIPVisionTower, projector: StyleProjector) throws {
        let tower = visionTower.config, shape = projector.shape
        guard tower.tokens == shape.siglipTokens, tower.width == shape.siglipWidth else {
            throw StyleEncoderError.towerDoesNotFitProjector(
                reason: "the tower makes \(tower.tokens) tokens of width \(tower.width), the projector takes \(shape.siglipTokens) of width \(shape.siglipWidth)")
        }
        self.visionTower = visionTower
        self.projector = projector
    }

    /// Style tokens for preprocessed images `[3, size, size]`, joined in order:
    /// `[images.count · projector.tokensPerImage, outputWidth]`, in the projector's compute type.
    public func styleTokens(for images: [Tensor]) throws -> Tensor {
        guard !images.isEmpty else { throw StyleEncoderError.noStyleImages }
        return concat(try images.map { try projector(visionTower.features(pixels: $0)) })
    }
}
