// layers.py: timestep_embedding and MLPEmbedder (time_in, guidance_in, vector_in).
import Layers
import Foundation

/// `out_layer(SiLU(in_layer(x)))`.
struct MLPEmbedder: Sendable {
    let inLayer: Linear   // [hidden, in]
    let outLayer: Linear  // [hidden, hidden]

    init(_ weights: WeightReader, _ name: String, inFeatures: Int, hiddenSize: Int) throws {
        let module = weights.scoped(name)
        inLayer = try Linear(module, "in_layer", inFeatures: inFeatures, outFeatures: hiddenSize)
        outLayer = try Linear(module, "out_layer", inFeatures: hiddenSize, outFeatures: hiddenSize)
    }

    // x: [1, in] -> [1, hidden]
    func callAsFunction(_ x: Tensor, _ numerics: FluxNumerics) -> Tensor {
        numerics.linear(outLayer, silu(numerics.linear(inLayer, x)))
    }
}

/// The sinusoidal embedding of a timestep or guidance value (spec §3.3): `[cos(a_k) | sin(a_k)]`
/// with `a_k = 1000·t·exp(−ln(10000)·k/half)`. As in the reference, `t` lives in a tensor of the
/// activation type, so in BF16 both `t` and `1000·t` are rounded to BF16 (gotcha §10.1); the
/// frequencies and the sinusoids are F32 and the result is cast back to the activation type.
// -> [1, dim]
func timestepEmbedding(_ t: Float, dim: Int, type: DType) -> Tensor {
    let scaled = roundedValue(1000 * roundedValue(t, to: type), to: type)
    let half = dim / 2
    let logPeriod = Float(-log(10_000.0))
    var values = [Float](repeating: 0, count: dim)
    for k in 0..<half {
        let argument = scaled * expf(logPeriod * Float(k) / Float(half))
        values[k] = cosf(argument)
        values[half + k] = sinf(argument)
    }
    return Tensor(values, shape: [1, dim], dtype: type)
}

/// `value` after a round trip through `type`.
func roundedValue(_ value: Float, to type: DType) -> Float {
    Tensor([value], shape: [1], dtype: type).toFloats()[0]
}
