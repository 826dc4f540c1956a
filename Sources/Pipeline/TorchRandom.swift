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

    /// Box–Muller on 16 values with the same float32 operations as torch's AVX2 kernel, whose log
    /// and sincos are the Cephes polynomial approximations (not libm's), evaluated lane by lane with
    /// the fused multiply-adds its compiler forms from each multiply followed by an add.
    private static func boxMuller16(_ data: inout [Float], at start: Int) {
        let twoPi = Float(2 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - data[start + j], u2 = data[start + j + 8]
            let radius = (-2 * cephesLog(u1)).squareRoot()
            let (sine, cosine) = cephesSinCos(twoPi * u2)
            data[start + j] = radius * cosine
            data[start + j + 8] = radius * sine
        }
    }
}

/// Cephes' single-precision natural log for positive normal x.
func cephesLog(_ value: Float) -> Float {
    let bits = value.bitPattern
    var exponent = Float(Int32(bitPattern: bits >> 23) - 0x7f) + 1
    var x = Float(bitPattern: (bits & ~0x7f80_0000) | 0x3f00_0000)   // mantissa scaled to [0.5, 1)
    let below = x < 0.707106781186547524
    let addBack: Float = below ? x : 0
    x = x - 1
    if below { exponent = exponent - 1 }
    x = x + addBack
    let z = x * x
    var y: Float = 7.0376836292e-2
    for p: Float in [-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
                     -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1] {
        y = fmaf(y, x, p)
    }
    // Where a sum has two products, the compiler fuses the first one in program order.
    y = fmaf(y * x, z, exponent * -2.12194440e-4)
    y = fmaf(-z, 0.5, y)
    x = x + y
    x = fmaf(exponent, 0.693359375, x)
    return x
}

/// Cephes' single-precision sine and cosine (range reduction by π/4 in three parts), as above.
func cephesSinCos(_ value: Float) -> (sin: Float, cos: Float) {
    var x = abs(value)
    var octant = Int32(x * 1.27323954473516)   // 4/π, truncated
    octant = (octant + 1) & ~1
    let y = Float(octant)
    let sinSignFlip = (octant & 4) != 0
    let usePolynomialForSin = (octant & 2) == 0
    let cosSignFlip = (~(octant - 2) & 4) != 0
    x = fmaf(y, -0.78515625, x)
    x = fmaf(y, -2.4187564849853515625e-4, x)
    x = fmaf(y, -3.77489497744594108e-8, x)
    let z = x * x
    var c: Float = 2.443315711809948e-5
    c = fmaf(c, z, -1.388731625493765e-3)
    c = fmaf(c, z, 4.166664568298827e-2)
    c = fmaf(c * z, z, -(z * 0.5))
    c = c + 1
    var s: Float = -1.9515295891e-4
    s = fmaf(s, z, 8.3321608736e-3)
    s = fmaf(s, z, -1.6666654611e-1)
    s = fmaf(s * z, x, x)
    var sine = usePolynomialForSin ? s : c
    var cosine = usePolynomialForSin ? c : s
    if (value.sign == .minus) != sinSignFlip { sine = -sine }
    if cosSignFlip { cosine = -cosine }
    return (sine, cosine)
}
