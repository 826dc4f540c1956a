// layers.py: Modulation (img_mod, txt_mod, single_blocks.N.modulation).
import Layers

/// Shift, scale and gate for one sub-layer of a block.
struct ModulationParameters: Sendable {
    let shift: Tensor  // [1, hidden]
    let scale: Tensor  // [1, hidden]
    let gate: Tensor   // [1, hidden]
}

/// `lin(SiLU(vec))` split into (shift, scale, gate) once (single blocks) or twice (double blocks).
struct Modulation: Sendable {
    let lin: Linear  // [sets·3·hidden, hidden]
    let sets: Int

    init(_ weights: WeightReader, _ name: String, hiddenSize: Int, sets: Int) throws {
        lin = try Linear(weights.scoped(name), "lin", inFeatures: hiddenSize, outFeatures: sets * 3 * hiddenSize)
        self.sets = sets
    }

    // vec: [1, hidden] -> `sets` × (shift, scale, gate)
    func callAsFunction(_ vec: Tensor, _ numerics: FluxNumerics) -> [ModulationParameters] {
        let parts = chunk(numerics.linear(lin, silu(vec)), 3 * sets, axis: -1)
        return (0..<sets).map { ModulationParameters(shift: parts[3 * $0], scale: parts[3 * $0 + 1], gate: parts[3 * $0 + 2]) }
    }
}

extension FluxNumerics {
    func modulate(_ x: Tensor, _ parameters: ModulationParameters) -> Tensor {
        modulate(x, shift: parameters.shift, scale: parameters.scale)
    }
}
