import TensorEngine

/// Euler steps of the rectified flow from t = 1 (noise) to t = 0 (image), as the reference's
/// `denoise`: one model call per step (guidance is distilled, no CFG).
///
/// In BF16 the latent stays BF16 and each update rounds twice, exactly as the reference:
/// `x ← bf16(x + bf16(f32(t_next − t_cur) · v))`. In F32 nothing is rounded.
public func eulerSample(latent: Tensor, timesteps: [Float],
                        velocity: (_ latent: Tensor, _ t: Float, _ step: Int) throws -> Tensor) rethrows -> Tensor {
    var x = latent
    for step in 0..<(timesteps.count - 1) {
        let current = timesteps[step], next = timesteps[step + 1]
        let v = try velocity(x, current, step)
        // The reference subtracts two Python floats (doubles holding float32 values).
        let dt = Float(Double(next) - Double(current))
        x = x + (v.converted(to: x.dtype) * dt)
    }
    return x
}
