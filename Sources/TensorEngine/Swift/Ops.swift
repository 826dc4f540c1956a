import CDNNL      // imported so the C kernels' oneDNN and OpenBLAS calls link
import CKernels
import COpenBLAS

// Every op the models need, as free functions and operators. Loops run in C kernels (CKernels),
// split across cores here; matrix products run on oneDNN (BF16) and OpenBLAS (F32).
//
// Dtype rule: arithmetic in Float; the result is stored as F32 if any tensor input is F32, else in
// the inputs' (activation) dtype, so BF16 activations are rounded after every op as in PyTorch.

/// The storage type of an op's result.
func resultType(_ types: DType...) -> DType {
    if types.contains(.f32) { return .f32 }
    if types.allSatisfy({ $0 == types[0] }) && (types[0] == .bf16 || types[0] == .f16) { return types[0] }
    return .bf16
}

extension Tensor {
    func axis(_ axis: Int) -> Int { axis < 0 ? axis + rank : axis }

    public var constPointer: UnsafeRawPointer { UnsafeRawPointer(rawPointer) }
}

/// Rows of the last axis: how many, and how long.
private func rowLayout(_ x: Tensor) -> (rows: Int, length: Int) {
    let length = x.shape.last ?? 1
    return (length == 0 ? 0 : x.count / length, length)
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
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int64] {
    let padded = Array(repeating: 1, count: outShape.count - shape.count) + shape
    var strides = [Int64](repeating: 0, count: outShape.count)
    var step = 1
    for i in stride(from: padded.count - 1, through: 0, by: -1) {
        strides[i] = padded[i] == 1 ? 0 : Int64(step)
        step *= padded[i]
    }
    return strides
}

func binary(_ a: Tensor, _ b: Tensor, _ op: uso_binary_op) -> Tensor {
    // A rank-0 shape is treated as [1] so the kernel always has a last axis.
    let shape = broadcastShape(a.shape.isEmpty ? [1] : a.shape, b.shape.isEmpty ? [1] : b.shape)
    let result = Tensor(uninitialized: shape, dtype: resultType(a.dtype, b.dtype))
    let aStrides = broadcastStrides(a.shape, to: shape), bStrides = broadcastStrides(b.shape, to: shape)
    let dims = shape.map(Int64.init), width = shape.last ?? 1
    let rows = width == 0 ? 0 : result.count / width
    parallelRanges(rows, itemCost: width) { range in
        uso_binary(Int32(op.rawValue), a.constPointer, a.dtype.code, aStrides, b.constPointer, b.dtype.code, bStrides,
                   result.rawPointer, result.dtype.code, dims, Int32(dims.count), range.lowerBound, range.upperBound)
    }
    return result
}

func unary(_ x: Tensor, _ op: uso_unary_op, scalar: Float = 0) -> Tensor {
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    let chunk = 1 << 14, chunks = (x.count + chunk - 1) / chunk
    parallelRanges(chunks, itemCost: chunk) { range in
        uso_unary(Int32(op.rawValue), scalar, x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code,
                  range.lowerBound * chunk, min(range.upperBound * chunk, x.count))
    }
    return result
}

public func + (a: Tensor, b: Tensor) -> Tensor { binary(a, b, USO_ADD) }
public func - (a: Tensor, b: Tensor) -> Tensor { binary(a, b, USO_SUB) }
public func * (a: Tensor, b: Tensor) -> Tensor { binary(a, b, USO_MUL) }
public func / (a: Tensor, b: Tensor) -> Tensor { binary(a, b, USO_DIV) }
public func + (a: Tensor, b: Float) -> Tensor { unary(a, USO_ADD_SCALAR, scalar: b) }
public func - (a: Tensor, b: Float) -> Tensor { unary(a, USO_SUB_SCALAR, scalar: b) }
public func * (a: Tensor, b: Float) -> Tensor { unary(a, USO_MUL_SCALAR, scalar: b) }
public func / (a: Tensor, b: Float) -> Tensor { unary(a, USO_DIV_SCALAR, scalar: b) }
public func + (a: Float, b: Tensor) -> Tensor { unary(b, USO_ADD_SCALAR, scalar: a) }
public func - (a: Float, b: Tensor) -> Tensor { unary(b, USO_RSUB_SCALAR, scalar: a) }
public func * (a: Float, b: Tensor) -> Tensor { unary(b, USO_MUL_SCALAR, scalar: a) }

public func silu(_ x: Tensor) -> Tensor { unary(x, USO_SILU) }
public func sigmoid(_ x: Tensor) -> Tensor { unary(x, USO_SIGMOID) }
/// CLIP's activation: x·sigmoid(1.702x), in the reference's three steps, so BF16 activations are
/// rounded after each as PyTorch does.
public func quickGELU(_ x: Tensor) -> Tensor { x * sigmoid(1.702 * x) }

public enum GELUApproximation: Sendable { case none, tanh }

public func gelu(_ x: Tensor, approximation: GELUApproximation = .none) -> Tensor {
    unary(x, approximation == .none ? USO_GELU_ERF : USO_GELU_TANH)
}

// MARK: - Reductions and norms (over the last axis)

public func softmax(_ x: Tensor) -> Tensor {
    let (rows, n) = rowLayout(x)
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    parallelRanges(rows, itemCost: n) { range in
        uso_softmax_rows(x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code, n,
                         range.lowerBound, range.upperBound)
    }
    return result
}

/// LayerNorm over the last axis; without weight and bias it is the non-affine form FLUX uses.
public func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float) -> Tensor {
    let (rows, n) = rowLayout(x)
    precondition(weight.map { $0.count == n } ?? true && bias.map { $0.count == n } ?? true, "layerNorm \(x.shape)")
    let w = weight?.toFloats(), b = bias?.toFloats()
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    parallelRanges(rows, itemCost: n) { range in
        uso_layernorm_rows(x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code, n, w, b, eps,
                           range.lowerBound, range.upperBound)
    }
    return result
}

/// RMSNorm over the last axis: x·rsqrt(mean(x²)+eps), times `weight` when given. For BF16
/// activations the normalised value is rounded before the weight multiplies it, as FLUX and T5 do.
public func rmsNorm(_ x: Tensor, weight: Tensor? = nil, eps: Float) -> Tensor {
    let (rows, n) = rowLayout(x)
    precondition(weight.map { $0.count == n } ?? true, "rmsNorm \(x.shape) weight \(weight?.shape ?? [])")
    let w = weight?.toFloats()
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    parallelRanges(rows, itemCost: n) { range in
        uso_rmsnorm_rows(x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code, n, w, eps,
                         range.lowerBound, range.upperBound)
    }
    return result
}

/// GroupNorm of an image `[C, H, W]` with per-channel affine weight and bias.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let channels = x.shape[0], plane = x.count / max(channels, 1)
    precondition(groups > 0 && channels % groups == 0 && weight.count == channels && bias.count == channels,
                 "groupNorm \(x.shape) in \(groups) groups")
    let w = weight.toFloats(), b = bias.toFloats()
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    parallelRanges(groups, itemCost: x.count / groups) { range in
        uso_groupnorm(x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code, plane, channels / groups,
                      w, b, eps, range.lowerBound, range.upperBound)
    }
    return result
}

// MARK: - Matrix products

/// `a [M, K] @ b [K, N] -> [M, N]`, or batched `[B, M, K] @ [B, K, N]`. F32 if either input is
/// F32; otherwise BF16 inputs with Float accumulation, rounded to BF16.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let batch = a.rank == 3 ? a.shape[0] : 1
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
    precondition(b.shape[b.rank - 2] == k && (a.rank == 2 || b.shape[0] == batch), "matmul \(a.shape) @ \(b.shape)")
    let dtype = resultType(a.dtype, b.dtype) == .f32 ? DType.f32 : .bf16
    let left = a.converted(to: dtype), right = b.converted(to: dtype)
    let result = Tensor(uninitialized: a.rank == 3 ? [batch, m, n] : [m, n], dtype: dtype)
    for i in 0..<batch {
        let status = uso_gemm(Int64(m), Int64(n), Int64(k),
                              left.constPointer + i * m * k * dtype.byteSize, dtype.code, Int64(k), 1,
                              right.constPointer + i * k * n * dtype.byteSize, dtype.code, Int64(n), 1,
                              result.rawPointer + i * m * n * dtype.byteSize, dtype.code, Int64(n), nil)
        precondition(status == 0, "matmul \(a.shape) @ \(b.shape): GEMM failed (\(status))")
    }
    return result
}

/// `x [..., in] · weightᵀ + bias -> [..., out]` with a PyTorch-layout weight `[out, in]`.
/// The product is taken in the activation's precision: BF16 inputs times BF16 weights with Float
/// accumulation (oneDNN), F32 on OpenBLAS. Weights stored in another type (F8, or BF16 under F32
/// activations) are widened a block of rows at a time, never copied whole.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    let inFeatures = x.shape.last ?? 0, outFeatures = weight.shape[0], rows = x.count / max(inFeatures, 1)
    precondition(weight.shape == [outFeatures, inFeatures] && (bias?.count ?? outFeatures) == outFeatures,
                 "linear: input \(x.shape), weight \(weight.shape), bias \(bias?.shape ?? [])")
    let compute = x.dtype == .f32 ? DType.f32 : .bf16
    let input = x.converted(to: compute)
    // A BF16 bias is exact in Float; F32 biases are rounded to BF16 first under BF16 compute.
    let biasValues = bias.map { compute == .f32 ? $0.toFloats() : $0.converted(to: .bf16).toFloats() }
    let result = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures], dtype: compute)
    let status = uso_linear(Int64(rows), Int64(inFeatures), Int64(outFeatures), input.constPointer, compute.code,
                            weight.constPointer, weight.dtype.code, biasValues, result.rawPointer, compute.code)
    precondition(status == 0, "linear \(x.shape) × \(weight.shape) \(weight.dtype): GEMM failed (\(status))")
    return result
}

// MARK: - Attention

/// Scaled dot-product attention, `softmax(q·kᵀ·scale + bias)·v`, computed in blocks of queries
/// and keys with an online softmax, so memory grows with the sequence length, not its square.
/// q `[Lq, H, D]`, k `[Lk, H, D]`, v `[Lk, H, Dv]`, optional additive bias `[H, Lq, Lk]`, optional
/// causal mask (query i sees keys j ≤ i); returns `[Lq, H·Dv]` (heads merged, head-major).
public func attention(query q: Tensor, key k: Tensor, value v: Tensor, scale: Float,
                      bias: Tensor? = nil, causal: Bool = false) -> Tensor {
    let lq = q.shape[0], heads = q.shape[1], d = q.shape[2], lk = k.shape[0], dv = v.shape[2]
    precondition(k.shape == [lk, heads, d] && v.shape[0] == lk && v.shape[1] == heads, "attention shapes")
    precondition(bias.map { $0.shape == [heads, lq, lk] } ?? true, "attention bias \(bias?.shape ?? [])")
    let dtype = resultType(q.dtype, k.dtype, v.dtype)
    let common = q.dtype == k.dtype && k.dtype == v.dtype ? q.dtype : DType.f32
    let (query, key, value) = (q.converted(to: common), k.converted(to: common), v.converted(to: common))
    let result = Tensor(uninitialized: [lq, heads * dv], dtype: dtype)
    let queryBlock = USO_ATTENTION_QUERY_BLOCK
    let items = heads * ((lq + queryBlock - 1) / queryBlock)
    // Each worker runs its own single-threaded GEMMs; OpenBLAS's pool would oversubscribe the cores.
    let blasThreads = uso_blas_threads()
    uso_set_blas_threads(1)
    defer { uso_set_blas_threads(blasThreads) }
    parallelRanges(items, itemCost: queryBlock * lk * d, tasksPerThread: 4) { range in
        let status = uso_attention_items(query.constPointer, key.constPointer, value.constPointer, common.code,
                                         bias?.constPointer, bias?.dtype.code ?? 0, result.rawPointer, dtype.code,
                                         Int64(lq), Int64(lk), Int64(heads), Int64(d), Int64(dv), scale,
                                         causal ? 1 : 0, Int64(range.lowerBound), Int64(range.upperBound))
        precondition(status == 0, "attention: block scratch or GEMM failed (\(status))")
    }
    return result
}

/// Rotary embedding on adjacent pairs (x₂ₘ, x₂ₘ₊₁), as FLUX applies it: x `[L, H, D]`, cos and sin
/// `[L, D/2]` (F32 tables, shared by all heads).
public func applyRoPE(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
    let l = x.shape[0], heads = x.shape[1], d = x.shape[2]
    precondition(cos.shape == [l, d / 2] && sin.shape == [l, d / 2], "rope tables \(cos.shape) for \(x.shape)")
    let c = cos.converted(to: .f32), s = sin.converted(to: .f32)
    let result = Tensor(uninitialized: x.shape, dtype: x.dtype)
    parallelRanges(l * heads, itemCost: d) { range in
        uso_rope_rows(x.constPointer, x.dtype.code, result.rawPointer, result.dtype.code, heads, d,
                      c.floatPointer, s.floatPointer, range.lowerBound, range.upperBound)
    }
    return result
}

// MARK: - Convolution and resampling (images `[C, H, W]`)

/// 2-D convolution of `x [C, H, W]` with `weight [O, C, kh, kw]`, symmetric zero padding.
/// im2col over a band of output rows at a time (bounded scratch), then one GEMM per band.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2]
    let o = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    precondition(weight.shape[1] == c && stride > 0 && (bias?.count ?? o) == o, "conv2d: input \(x.shape), weight \(weight.shape)")
    let oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1
    let dtype = resultType(x.dtype, weight.dtype)
    let compute = dtype == .f32 ? DType.f32 : .bf16
    let kernel = weight.converted(to: compute), patch = c * kh * kw
    let biasValues = bias?.toFloats() ?? [Float](repeating: 0, count: o)
    let result = Tensor(uninitialized: [o, oh, ow], dtype: dtype)
    let pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0
    let input = pointwise ? x.converted(to: compute) : x
    // Bands of output rows whose columns fit in ~32 MB.
    let bandRows = max(1, min(oh, (32 << 20) / max(patch * ow * compute.byteSize, 1)))
    let columns = Tensor(uninitialized: [pointwise ? 0 : patch * bandRows * ow], dtype: compute)
    let product = Tensor(uninitialized: [o * bandRows * ow], dtype: .f32)
    for y0 in Swift.stride(from: 0, to: oh, by: bandRows) {
        let y1 = min(oh, y0 + bandRows), band = (y1 - y0) * ow
        let source: UnsafeRawPointer
        if pointwise {
            source = input.constPointer + y0 * ow * compute.byteSize
        } else {
            parallelRanges(c, itemCost: kh * kw * band) { range in
                uso_im2col(x.constPointer + range.lowerBound * h * w * x.dtype.byteSize, x.dtype.code,
                           columns.rawPointer + range.lowerBound * kh * kw * band * compute.byteSize, compute.code,
                           range.count, h, w, kh, kw, stride, padding, ow, y0, y1)
            }
            source = columns.constPointer
        }
        let status = uso_gemm(Int64(o), Int64(band), Int64(patch), kernel.constPointer, compute.code, Int64(patch), 1,
                              source, compute.code, Int64(pointwise ? oh * ow : band), 1,
                              product.rawPointer, DType.f32.code, Int64(band), nil)
        precondition(status == 0, "conv2d \(x.shape) * \(weight.shape): GEMM failed (\(status))")
        // Bias per output channel, then store this band into every channel's plane.
        let bandProduct = Tensor(shape: [o, band], dtype: .f32, storage: product.storage)
        let biasColumn = Tensor(biasValues, shape: [o, 1])
        let biased = binary(bandProduct, biasColumn, USO_ADD).converted(to: dtype)
        for channel in 0..<o {
            (result.rawPointer + (channel * oh * ow + y0 * ow) * dtype.byteSize)
                .copyMemory(from: biased.rawPointer + channel * band * dtype.byteSize, byteCount: band * dtype.byteSize)
        }
    }
    return result
}

/// Zero padding of an image `[C, H, W]` on each side.
public func padded(_ x: Tensor, top: Int = 0, left: Int = 0, bottom: Int = 0, right: Int = 0) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2], size = x.dtype.byteSize
    let nh = h + top + bottom, nw = w + left + right
    let result = Tensor(zeros: [c, nh, nw], dtype: x.dtype)
    for row in 0..<(c * h) {
        let ci = row / h, y = row % h
        (result.rawPointer + ((ci * nh + y + top) * nw + left) * size)
            .copyMemory(from: x.rawPointer + row * w * size, byteCount: w * size)
    }
    return result
}

/// Nearest-neighbour ×2 upsampling of `[C, H, W]`.
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    let c = x.shape[0], h = x.shape[1], w = x.shape[2]
    let result = Tensor(uninitialized: [c, 2 * h, 2 * w], dtype: x.dtype)
    parallelRanges(c * 2 * h, itemCost: 2 * w) { range in
        uso_upsample_nearest2x_rows(x.constPointer, result.rawPointer, x.dtype.byteSize, h, w,
                                    range.lowerBound, range.upperBound)
    }
    return result
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
    let result = Tensor(uninitialized: shape, dtype: dtype)
    let size = dtype.byteSize
    var offset = 0
    for part in parts {
        precondition(part.rank == first.rank && (0..<first.rank).allSatisfy { $0 == ax || part.shape[$0] == first.shape[$0] },
                     "concat \(tensors.map(\.shape)) along \(axis)")
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
    precondition(range.lowerBound >= 0 && range.upperBound <= x.shape[ax], "slice \(range) of axis \(axis) in \(x.shape)")
    let outer = x.shape[..<ax].reduce(1, *), inner = x.shape[(ax + 1)...].reduce(1, *), size = x.dtype.byteSize
    var shape = x.shape
    shape[ax] = range.count
    let result = Tensor(uninitialized: shape, dtype: x.dtype)
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
    precondition(dims.sorted() == Array(0..<x.rank), "permute \(x.shape) by \(dims)")
    let shape = dims.map { x.shape[$0] }
    var inStrides = [Int64](repeating: 1, count: x.rank)
    for i in Swift.stride(from: x.rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * Int64(x.shape[i + 1]) }
    let strides = dims.map { inStrides[$0] }, outShape = shape.map(Int64.init)
    let result = Tensor(uninitialized: shape, dtype: x.dtype)
    let width = shape.last ?? 1, rows = x.rank == 0 || width == 0 ? 0 : x.count / width
    if x.rank == 0 { result.rawPointer.copyMemory(from: x.rawPointer, byteCount: x.dtype.byteSize) }
    parallelRanges(rows, itemCost: width) { range in
        uso_permute_rows(x.constPointer, result.rawPointer, x.dtype.byteSize, outShape, strides, Int32(x.rank),
                         range.lowerBound, range.upperBound)
    }
    return result
}

/// Rows of `table [V, D]` picked by `ids` -> `[ids.count, D]`.
public func embedding(_ table: Tensor, ids: [Int]) -> Tensor {
    let width = table.shape[1], rowBytes = width * table.dtype.byteSize
    let result = Tensor(uninitialized: [ids.count, width], dtype: table.dtype)
    for (i, id) in ids.enumerated() {
        precondition(id >= 0 && id < table.shape[0], "token id \(id) outside the table of \(table.shape[0])")
        (result.rawPointer + i * rowBytes).copyMemory(from: table.rawPointer + id * rowBytes, byteCount: rowBytes)
    }
    return result
}
