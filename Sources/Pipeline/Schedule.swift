#if canImport(Glibc)
import Glibc
#endif

/// The sampling timesteps of the reference (`get_schedule`): `steps + 1` values from 1 to 0, as
/// torch.linspace computes them in float32, then shifted towards 1 by `mu` when `shift` is on.
/// USO estimates the sequence length as ⌊W·H/16384⌋ (a floor division of the latent area by 256),
/// not the token count FLUX uses; reference and style tokens do not count.
public func timestepSchedule(steps: Int, width: Int, height: Int, shift: Bool = true) -> [Float] {
    let points = steps + 1
    let step = Float(-1.0 / Double(points - 1))
    // torch.linspace: the first half counts up from the start, the second half down from the end,
    // each value with one rounding (a fused multiply-add).
    var t = (0..<points).map { i -> Float in
        i < points / 2 ? fmaf(step, Float(i), 1) : fmaf(-step, Float(points - 1 - i), 0)
    }
    guard shift else { return t }
    // mu and e^mu are Python doubles in the reference; the tensor arithmetic is float32.
    let sequenceLength = Double((width / 8) * (height / 8) / 256)
    let slope = (1.15 - 0.5) / (4096.0 - 256.0)
    let mu = slope * sequenceLength + (0.5 - slope * 256)
    let expMu = Float(exp(mu))
    // `scalar / tensor` in torch is `tensor.reciprocal() * scalar`: two roundings.
    for i in t.indices { t[i] = expMu * (1 / (expMu + (1 / t[i] - 1))) }
    return t
}
