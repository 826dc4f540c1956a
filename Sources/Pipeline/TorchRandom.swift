#if canImport(Glibc)
import Glibc
#endif

/// PyTorch's CPU generator: a 32-bit Mersenne Twister seeded like `torch.Generator().manual_seed`,
/// with `torch.randn`'s way of turning it into normal samples, so a seed gives the reference's noise.
public struct TorchGenerator: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next raw 32-bit output (mt19937).
    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
        }
        index = 0
    }

    /// A float uniform in [0, 1) from the low 24 bits, as torch's uniform_real for float.
    public mutating func uniform() -> Float {
        Float(next() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// `count` standard normal floats exactly as `torch.randn(count, generator=g)` on CPU for
    /// count ≥ 16: fill with uniforms, then Box–Muller in blocks of 16 (pairs j, j+8); a tail that
    /// is not a multiple of 16 is handled by redrawing the last 16 values and transforming them again.
    public mutating func normal(count: Int) -> [Float] {
        precondition(count >= 16, "torch draws fewer than 16 normals another way")
        var data = (0..<count).map { _ in uniform() }
        for start in stride(from: 0, to: count - 15, by: 16) { Self.boxMuller16(&data, at: start) }
        if count % 16 != 0 {
            let start = count - 16
            for i in start..<count { data[i] = uniform() }
            Self.boxMuller16(&data, at: start)
        }
        return data
    }

    private static func boxMuller16(_ data: inout [Float], at start: Int) {
        for j in 0..<8 {
            let u1 = 1 - data[start + j], u2 = data[start + j + 8]
            let radius = (-2 * logf(u1)).squareRoot()
            let theta = 2 * Float.pi * u2
            data[start + j] = radius * cosf(theta)
            data[start + j + 8] = radius * sinf(theta)
        }
    }
}
