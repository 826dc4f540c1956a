// layers.py: LastLayer (final_layer).
import Layers

/// `linear((1 + scale)·LN(x) + shift)` with (shift, scale) from `adaLN_modulation.1(SiLU(vec))`:
/// shift first, then scale (spec §3.3).
struct LastLayer: Sendable {
    let modulation: Linear  // adaLN_modulation.1: [2·hidden, hidden]
    let linear: Linear      // [out, hidden]
    let numerics: FluxNumerics

    init(_ weights: WeightReader, _ name: String, config: FluxConfig, numerics: FluxNumerics) throws {
        let layer = weights.scoped(name)
        modulation = try Linear(layer, "adaLN_modulation.1", inFeatures: config.hiddenSize, outFeatures: 2 * config.hiddenSize)
        linear = try Linear(layer, "linear", inFeatures: config.hiddenSize, outFeatures: config.outChannels)
        self.numerics = numerics
    }

    // x: [L, hidden], vec: [1, hidden] -> [L, out]
    func callAsFunction(_ x: Tensor, vec: Tensor) -> Tensor {
        let parts = chunk(numerics.linear(modulation, silu(vec)), 2, axis: -1)
        return numerics.linear(linear, numerics.modulate(x, shift: parts[0], scale: parts[1]))
    }
}
