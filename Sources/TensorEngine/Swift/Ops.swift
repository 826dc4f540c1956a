import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

// Reference implementations of every op the models need: plain loops over Float, correct first.
// Fast kernels replace bodies here; signatures and dtype rules stay.
//
// Dtype rule: arithmetic in Float; the result is stored as F32 if any tensor input is F32, else in
// the inputs' (activation) dtype, so BF16 activations are rounded after every op as in PyTorch.

/// The storage type of an op's result.
func resultType(_ types: DType...) -> DType {
    if types.contains(.f32) { return .f32 }
    if types.allSatisfy({ $0 == types[0] }) && (types[0] == .bf16 || types[0] == .f16) { return types[0] }
    return .bf16
}

/// Builds a tensor of `shape` by filling Float values, then stores it as `dtype`.
func makeTensor(_ shape: [Int], _ dtype: DType, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> Tensor {
    let result = Tensor(zeros: shape, dtype: .f32)
    fill(result.floatPointer)
    return result.converted(to: dtype)
}

extension Tensor {
    /// Runs `body` on the elements as Float (no copy for F32).
    func withFloats<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        if dtype == .f32 { return body(floatPointer) }
        let widened = converted(to: .f32)   // must outlive `body`, not just the pointer's creation
        return withExtendedLifetime(widened) { body(widened.floatPointer) }
    }

    func axis(_ axis: Int) -> Int { axis < 0 ? axis + rank : axis }
}

// MARK: - Elementwise

func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    let pa = Array(repeating: 1, count: rank - a.count) + a
    let pb = Array(repeating: 1, count: rank - b.count) + b
    return zip(pa, pb).map { x, y in
        precondition(x == y || x == 1 || y == 1, "cannot broadcast \(a) with \(b)")
        return max(x, y)
    }
}

/// Element strides of `shape` seen inside `outShape` (0 along broadcast axes).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let padded = Array(repeating: 1, count: outShape.count - shape.count) + shape
    var strides = Array(repeating: 0, count: outShape.count)
    var step = 1
    for i in stride(from: padded.count - 1, through: 0, by: -1) {
        strides[i] = padded[i] == 1 ? 0 : step
        step *= padded[i]
    }
    return strides
}

func binary(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) -> Tensor {
    let shape = broadcastShape(a.shape, b.shape)
    let dtype = resultType(a.dtype, b.dtype)
    return a.withFloats { pa in
        b.withFloats { pb in
            makeTensor(shape, dtype) { out in
                let n = shape.reduce(1, *)
                if a.shape == b.shape {
                    for i in 0..<n { out[i] = op(pa[i], pb[i]) }
                    return
                }
                let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
                var index = Array(repeating: 0, count: shape.count)
                var oa = 0, ob = 0
                for i in 0..<n {
                    out[i] = op(pa[oa], pb[ob])
                    var d = shape.count - 1
                    while d >= 0 {
                        index[d] += 1; oa += sa[d]; ob += sb[d]
                        if index[d] < shape[d] { break }
                        oa -= sa[d] * shape[d]; ob -= sb[d] * shape[d]; index[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }
}

func unary(_ x: Tensor, _ op: (Float) -> Float) -> Tensor {
    x.withFloats { px in makeTensor(x.shape, x.dtype) { out in for i in 0..<x.count { out[i] = op(px[i]) } } }
}

public func + (a: Tensor, b: Tensor) -> Tensor { binary(a, b, +) }
public func - (a: Tensor, b: Tensor) -> Tensor { binary(a, b, -) }
public func * (a: Tensor, b: Tensor) -> Tensor { binary(a, b, *) }
public func / (a: Tensor, b: Tensor) -> Tensor { binary(a, b, /) }
public func + (a: Tensor, b: Float) -> Tensor { unary(a) { $0 + b } }
public func - (a: Tensor, b: Float) -> Tensor { unary(a) { $0 - b } }
public func * (a: Tensor, b: Float) -> Tensor { unary(a) { $0 * b } }
public func / (a: Tensor, b: Float) -> Tensor { unary(a) { $0 / b } }
public func + (a: Float, b: Tensor) -> Tensor { unary(b) { a + $0 } }
public func * (a: Float, b: Tensor) -> Tensor { unary(b) { a * $0 } }

public func silu(_ x: Tensor) -> Tensor { unary(x) { $0 / (1 + expf(-$0)) } }
public func sigmoid(_ x: Tensor) -> Tensor { unary(x) { 1 / (1 + expf(-$0)) } }
/// CLIP's activation: x·sigmoid(1.702x).
public func quickGELU(_ x: Tensor) -> Tensor { unary(x) { $0 / (1 + expf(-1.702 * $0)) } }

public enum GELUApproximation: Sendable { case none, tanh }

public func gelu(_ x: Tensor, approximation: GELUApproximation = .none) -> Tensor {
    switch approximation {
    case .none: unary(x) { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) }
    case .tanh: unary(x) { 0.5 * $0 * (1 + tanhf(0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0))) }
    }
}

// MARK: - Reductions and norms (over the last axis)

public func softmax(_ x: Tensor) -> Tensor {
    let n = x.shape.last!
    return x.withFloats { px in
        makeTensor(x.shape, x.dtype) { out in
            for row in 0..<(x.count / max(n, 1)) {
                let src = px + row * n, dst = out + row * n
                var m = -Float.infinity
                for i in 0..<n { m = max(m, src[i]) }
                var sum: Float = 0
                for i in 0..<n { dst[i] = expf(src[i] - m); sum += dst[i] }
                for i in 0..<n { dst[i] /= sum }
            }
        }
    }
}

/// LayerNorm over the last axis; without weight and bias it is the non-affine form FLUX uses.
public func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float) -> Tensor {
    let n = x.shape.last!
    let w = weight?.toFloats(), b = bias?.toFloats()
    return x.withFloats { px in
        makeTensor(x.shape, x.dtype) { out in
            for row in 0..<(x.count / max(n, 1)) {
                let src = px + row * n, dst = out + row * n
                var mean: Float = 0
                for i in 0..<n { mean += src[i] }
                mean /= Float(n)
                var variance: Float = 0
                for i in 0..<n { variance += (src[i] - mean) * (src[i] - mean) }
                let inv = 1 / (variance / Float(n) + eps).squareRoot()
                for i in 0..<n {
                    var y = (src[i] - mean) * inv
                    if let w { y *= w[i] }
                    if let b { y += b[i] }
                    dst[i] = y
                }
            }
        }
    }
}

/// RMSNorm over the last axis: x·rsqrt(mean(x²)+eps), times `weight` when given (all in Float).
public func rmsNorm(_ x: Tensor, weight: Tensor? = nil, eps: Float) -> Tensor {
    let n = x.shape.last!
    let w = weight?.toFloats()
    return x.withFloats { px in
        makeTensor(x.shape, x.dtype) { out in
            for row in 0..<(x.count / max(n, 1)) {
                let src = px + row * n, dst = out + row * n
                var sumSquares: Float = 0
                for i in 0..<n { sumSquares += src[i] * src[i] }
                let inv = 1 / (sumSquares / Float(n) + eps).squareRoot()
                for i in 0..<n { dst[i] = src[i] * inv * (w?[i] ?? 1) }
            }
        }
    }
}

/// GroupNorm of an image `[C, H, W]` with per-channel affine weight and bias.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let channels = x.shape[0], plane = x.count / channels, perGroup = channels / groups
    let w = weight.toFloats(), b = bias.toFloats()
    return x.withFloats { px in
        makeTensor(x.shape, x.dtype) { out in
            for g in 0..<groups {
                let start = g * perGroup * plane, n = perGroup * plane
                var mean: Double = 0
                for i in 0..<n { mean += Double(px[start + i]) }
                mean /= Double(n)
                var variance: Double = 0
                for i in 0..<n { let d = Double(px[start + i]) - mean; variance += d * d }
                let inv = Float(1 / (variance / Double(n) + Double(eps)).squareRoot())
                for c in (g * perGroup)..<((g + 1) * perGroup) {
                    for i in 0..<plane {
                        let k = c * plane + i
                        out[k] = (px[k] - Float(mean)) * inv * w[c] + b[c]
                    }
                }
            }
        }
    }
}

// MARK: - Matrix products

/// `a [M, K] @ b [K, N] -> [M, N]`, or batched `[B, M, K] @ [B, K, N]`.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let batch = a.rank == 3 ? a.shape[0] : 1
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
    precondition(b.shape[b.rank - 2] == k && (a.rank == 2 || b.shape[0] == batch), "matmul \(a.shape) @ \(b.shape)")
    let dtype = resultType(a.dtype, b.dtype)
    return a.withFloats { pa in
        b.withFloats { pb in
            makeTensor(a.rank == 3 ? [batch, m, n] : [m, n], dtype) { out in
                for i in 0..<batch {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                                pa + i * m * k, Int32(k), pb + i * k * n, Int32(n), 0, out + i * m * n, Int32(n))
                }
            }
        }
    }
}

/// `x [..., in] · weightᵀ + bias -> [..., out]` with a PyTorch-layout weight `[out, in]`.
/// The product is taken in the activation's precision: BF16 inputs times BF16 weights with Float
/// accumulation; F8 weights are widened to BF16 first.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    let inFeatures = x.shape.last!, outFeatures = weight.shape[0], rows = x.count / inFeatures
    precondition(weight.shape == [outFeatures, inFeatures], "linear: input \(x.shape), weight \(weight.shape)")
    let dtype = x.dtype == .f32 ? DType.f32 : .bf16
    let w = dtype == .f32 ? weight : weight.converted(to: .bf16)   // F8 → BF16 as autocast does
    let biasValues = bias.map { dtype == .f32 ? $0.toFloats() : $0.converted(to: .bf16).toFloats() }
    return x.withFloats { px in
        w.withFloats { pw in
            makeTensor(Array(x.shape.dropLast()) + [outFeatures], dtype) { out in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                            1, px, Int32(inFeatures), pw, Int32(inFeatures), 0, out, Int32(outFeatures))
                if let biasValues {
                    for r in 0..<rows { for o in 0..<outFeatures { out[r * outFeatures + o] += biasValues[o] } }
                }
            }
        }
    }
}

// MARK: - Attention

/// Scaled dot-product attention, `softmax(q·kᵀ·scale + bias)·v`, one query row at a time so memory
/// grows with the sequence length, not its square.
/// q `[Lq, H, D]`, k `[Lk, H, D]`, v `[Lk, H, Dv]`, optional additive bias `[H, Lq, Lk]`, optional
/// causal mask; returns `[Lq, H·Dv]` (heads merged, head-major).
public func attention(query q: Tensor, key k: Tensor, value v: Tensor, scale: Float,
                      bias: Tensor? = nil, causal: Bool = false) -> Tensor {
    let lq = q.shape[0], heads = q.shape[1], d = q.shape[2], lk = k.shape[0], dv = v.shape[2]
    precondition(k.shape == [lk, heads, d] && v.shape[0] == lk && v.shape[1] == heads, "attention shapes")
    let dtype = resultType(q.dtype, k.dtype, v.dtype)
    let biasValues = bias?.toFloats()
    return q.withFloats { pq in k.withFloats { pk in v.withFloats { pv in
        makeTensor([lq, heads * dv], dtype) { out in
            var scores = [Float](repeating: 0, count: lk)
            for h in 0..<heads {
                for i in 0..<lq {
                    let keys = causal ? i + 1 : lk
                    var m = -Float.infinity
                    for j in 0..<keys {
                        var s: Float = 0
                        for c in 0..<d { s += pq[(i * heads + h) * d + c] * pk[(j * heads + h) * d + c] }
                        s *= scale
                        if let biasValues { s += biasValues[(h * lq + i) * lk + j] }
                        scores[j] = s
                        m = max(m, s)
                    }
                    var sum: Float = 0
                    for j in 0..<keys { scores[j] = expf(scores[j] - m); sum += scores[j] }
                    let o = out + (i * heads + h) * dv
                    for c in 0..<dv { o[c] = 0 }
                    for j in 0..<keys {
                        let p = scores[j] / sum
                        for c in 0..<dv { o[c] += p * pv[(j * heads + h) * dv + c] }
                    }
                }
            }
        }
    } } }
}

/// Rotary embedding on adjacent pairs (x₂ₘ, x₂ₘ₊₁), as FLUX applies it: x `[L, H, D]`, cos and sin
/// `[L, D/2]` (F32 tables, shared by all heads).
public func applyRoPE(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
    let l = x.shape[0], heads = x.shape[1], d = x.shape[2]
    precondition(cos.shape == [l, d / 2] && sin.shape == [l, d / 2], "rope tables \(cos.shape) for \(x.shape)")
    let c = cos.toFloats(), s = sin.toFloats()
    return x.withFloats { px in
        makeTensor(x.shape, x.dtype) { out in
            for t in 0..<l { for h in 0..<heads { for m in 0..<(d / 2) {
                let base = (t * heads + h) * d + 2 * m
                let x0 = px[base], x1 = px[base + 1], cs = c[t * d / 2 + m], sn = s[t * d / 2 + m]
                out[base] = cs * x0 - sn * x1
                out[base + 1] = sn * x0 + cs * x1
            } } }
        }
    }
}

// MARK: - Convolution and resampling (images `[C, H, W]`)

/// 2-D convolution of `x [C, H, W]` with `weight [O, C, kh, kw]`, symmetric zero padding.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2]
    let o = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    precondition(weight.shape[1] == c, "conv2d: input \(x.shape), weight \(weight.shape)")
    let oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1
    let dtype = resultType(x.dtype, weight.dtype)
    let biasValues = bias?.toFloats()
    // im2col: [C·kh·kw, oh·ow], then one GEMM with the weight as [O, C·kh·kw].
    let columns = Tensor(zeros: [c * kh * kw, oh * ow])
    x.withFloats { px in
        let col = columns.floatPointer
        for ci in 0..<c { for ky in 0..<kh { for kx in 0..<kw {
            let row = col + ((ci * kh + ky) * kw + kx) * oh * ow
            for y in 0..<oh {
                let iy = y * stride - padding + ky
                guard iy >= 0 && iy < h else { continue }
                for xo in 0..<ow {
                    let ix = xo * stride - padding + kx
                    if ix >= 0 && ix < w { row[y * ow + xo] = px[(ci * h + iy) * w + ix] }
                }
            }
        } } }
    }
    let product = matmul(weight.reshaped([o, c * kh * kw]).converted(to: .f32), columns)
    return makeTensor([o, oh, ow], dtype) { out in
        let p = product.floatPointer
        for oc in 0..<o { for i in 0..<(oh * ow) { out[oc * oh * ow + i] = p[oc * oh * ow + i] + (biasValues?[oc] ?? 0) } }
    }
}

/// Zero padding of an image `[C, H, W]` on each side.
public func padded(_ x: Tensor, top: Int = 0, left: Int = 0, bottom: Int = 0, right: Int = 0) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2]
    let nh = h + top + bottom, nw = w + left + right
    return x.withFloats { px in
        makeTensor([c, nh, nw], x.dtype) { out in
            for ci in 0..<c { for y in 0..<h { for xi in 0..<w {
                out[(ci * nh + y + top) * nw + xi + left] = px[(ci * h + y) * w + xi]
            } } }
        }
    }
}

/// Nearest-neighbour ×2 upsampling of `[C, H, W]`.
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2]
    return x.withFloats { px in
        makeTensor([c, 2 * h, 2 * w], x.dtype) { out in
            for ci in 0..<c { for y in 0..<(2 * h) { for xi in 0..<(2 * w) {
                out[(ci * 2 * h + y) * 2 * w + xi] = px[(ci * h + y / 2) * w + xi / 2]
            } } }
        }
    }
}

// MARK: - Shape

/// Concatenation along `axis`.
public func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    let first = tensors[0], ax = first.axis(axis)
    let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
    var shape = first.shape
    shape[ax] = tensors.map { $0.shape[ax] }.reduce(0, +)
    let dtype = tensors.dropFirst().reduce(first.dtype) { resultType($0, $1.dtype) }
    let parts = tensors.map { $0.converted(to: dtype) }
    let result = Tensor(zeros: shape, dtype: dtype)
    let size = dtype.byteSize
    var offset = 0
    for part in parts {
        let chunk = part.shape[ax] * inner * size
        for o in 0..<outer {
            (result.rawPointer + (o * shape[ax] * inner * size) + offset)
                .copyMemory(from: part.rawPointer + o * chunk, byteCount: chunk)
        }
        offset += chunk
    }
    return result
}

/// Elements `range` along `axis` (a copy; use `rows` for a free view of the first axis).
public func slice(_ x: Tensor, axis: Int, _ range: Range<Int>) -> Tensor {
    let ax = x.axis(axis)
    let outer = x.shape[..<ax].reduce(1, *), inner = x.shape[(ax + 1)...].reduce(1, *), size = x.dtype.byteSize
    var shape = x.shape
    shape[ax] = range.count
    let result = Tensor(zeros: shape, dtype: x.dtype)
    let chunk = range.count * inner * size
    for o in 0..<outer {
        (result.rawPointer + o * chunk).copyMemory(
            from: x.rawPointer + (o * x.shape[ax] + range.lowerBound) * inner * size, byteCount: chunk)
    }
    return result
}

/// `count` equal parts along `axis` (the modulation chunks shift, scale, gate, …).
public func chunk(_ x: Tensor, _ count: Int, axis: Int = -1) -> [Tensor] {
    let size = x.shape[x.axis(axis)] / count
    return (0..<count).map { slice(x, axis: axis, ($0 * size)..<(($0 + 1) * size)) }
}

/// Axes reordered: result axis i is input axis `dims[i]`.
public func permute(_ x: Tensor, _ dims: [Int]) -> Tensor {
    let shape = dims.map { x.shape[$0] }
    var inStrides = Array(repeating: 1, count: x.rank)
    for i in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
    let strides = dims.map { inStrides[$0] }
    let size = x.dtype.byteSize
    let result = Tensor(zeros: shape, dtype: x.dtype)
    var index = Array(repeating: 0, count: shape.count)
    var source = 0
    for i in 0..<x.count {
        (result.rawPointer + i * size).copyMemory(from: x.rawPointer + source * size, byteCount: size)
        var d = shape.count - 1
        while d >= 0 {
            index[d] += 1; source += strides[d]
            if index[d] < shape[d] { break }
            source -= strides[d] * shape[d]; index[d] = 0
            d -= 1
        }
    }
    return result
}

/// Rows of `table [V, D]` picked by `ids` -> `[ids.count, D]`.
public func embedding(_ table: Tensor, ids: [Int]) -> Tensor {
    let width = table.shape[1], rowBytes = width * table.dtype.byteSize
    let result = Tensor(zeros: [ids.count, width], dtype: table.dtype)
    for (i, id) in ids.enumerated() {
        precondition(id >= 0 && id < table.shape[0], "token id \(id) outside the table of \(table.shape[0])")
        (result.rawPointer + i * rowBytes).copyMemory(from: table.rawPointer + id * rowBytes, byteCount: rowBytes)
    }
    return result
}
