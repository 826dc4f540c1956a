/// Inputs the style encoder cannot take. Weight problems are `WeightError`s and config.json
/// problems `ModelConfigError`s.
public enum StyleEncoderError: Error, Equatable, CustomStringConvertible {
    case imageShape(found: [Int], expected: [Int])
    case featureShape(found: [Int], expected: [Int])
    case featureLayerOutOfRange(index: Int, hiddenStates: Int)
    case towerDoesNotFitProjector(reason: String)
    case noStyleImages

    public var description: String {
        switch self {
        case .imageShape(let found, let expected):
            "style image tensor has shape \(found); the SigLIP tower takes \(expected) (preprocess it with the SigLIP image processor)"
        case .featureShape(let found, let expected): "SigLIP features of shape \(found) reach a projector made for \(expected)"
        case .featureLayerOutOfRange(let index, let hiddenStates):
            "SigLIP hidden state \(index) requested, but the tower has only \(hiddenStates) (embeddings + one per layer)"
        case .towerDoesNotFitProjector(let reason): "the SigLIP tower and the style projector do not belong together: \(reason)"
        case .noStyleImages: "no style images to encode"
        }
    }
}
