import CKernels
import TensorEngine
import XCTest

/// Paths the small fixtures do not reach: several key blocks in attention, chunked weight widening
/// in linear, banded im2col in conv2d, and the multi-threaded splits of large tensors. Each is
/// checked against a plain reference computed here.
final class KernelTests: XCTestCase {
    /// A large test matrix `column ⊗ row`, built by the (C) broadcasting multiply: Swift loops over
    /// millions of elements are slow in debug builds.
    private func outerProduct(_ column: [Float], _ row: [Float]) -> Tensor {
        Tensor(column, shape: [column.count, 1]) * Tensor(row, shape: [1, row.count])
    }

    /// Textbook attention for one head at a time, in Double.
    private func naiveAttention(_ q: [Float], _ k: [Float], _ v: [Float], lq: Int, lk: Int, heads: Int, d: Int,
                                dv: Int? = nil, scale: Float, causal: Bool) -> [Float] {
        let dv = dv ?? d
        var out = [Float](repeating: 0, count: lq * heads * dv)
        for h in 0..<heads {
            for i in 0..<lq {
                let keys = causal ? i + 1 : lk
                var scores = [Double](repeating: 0, count: keys)
                for j in 0..<keys {
                    var s = 0.0
                    for c in 0..<d { s += Double(q[(i * heads + h) * d + c]) * Double(k[(j * heads + h) * d + c]) }
                    scores[j] = s * Double(scale)
                }
                let peak = scores.max() ?? 0
                let weights = scores.map { exp($0 - peak) }, total = weights.reduce(0, +)
                for c in 0..<dv {
                    var sum = 0.0
                    for j in 0..<keys { sum += weights[j] * Double(v[(j * heads + h) * dv + c]) }
                    out[(i * heads + h) * dv + c] = Float(sum / total)
                }
            }
        }
        return out
    }

    func testBlockedAttentionAcrossSeveralKeyAndQueryBlocks() {
        // 3 query blocks and 3 key blocks, the last of each partial.
        let (queryBlock, keyBlock) = (Int(USO_ATTENTION_QUERY_BLOCK), Int(USO_ATTENTION_KEY_BLOCK))
        let (lq, lk, heads, d) = (2 * queryBlock + 8, 2 * keyBlock + 52, 2, 8)
        let q = pseudoRandom(lq * heads * d, seed: 1).map { $0 * 2 }
        let k = pseudoRandom(lk * heads * d, seed: 2).map { $0 * 2 }, v = pseudoRandom(lk * heads * d, seed: 3)
        let ours = attention(query: Tensor(q, shape: [lq, heads, d]), key: Tensor(k, shape: [lk, heads, d]),
                             value: Tensor(v, shape: [lk, heads, d]), scale: 0.5)
        let expected = Tensor(naiveAttention(q, k, v, lq: lq, lk: lk, heads: heads, d: d, scale: 0.5, causal: false),
                              shape: [lq, heads * d])
        assertClose(ours, expected, relative: 1e-5, "blocked attention, 3×3 blocks")
    }

    func testCausalAttentionOverManyBlocks() {
        // Several query blocks and two key blocks.
        let (l, heads, d) = (Int(USO_ATTENTION_KEY_BLOCK) + 76, 1, 8)
        let q = pseudoRandom(l * d, seed: 4), k = pseudoRandom(l * d, seed: 5), v = pseudoRandom(l * d, seed: 6)
        let ours = attention(query: Tensor(q, shape: [l, heads, d]), key: Tensor(k, shape: [l, heads, d]),
                             value: Tensor(v, shape: [l, heads, d]), scale: 1, causal: true)
        let expected = Tensor(naiveAttention(q, k, v, lq: l, lk: l, heads: heads, d: d, scale: 1, causal: true),
                              shape: [l, heads * d])
        assertClose(ours, expected, relative: 1e-5, "causal blocked attention")
        // The first query sees only the first key: its output is that key's value.
        XCTAssertEqual(Array(ours.toFloats()[0..<d]), Array(v[0..<d]))
    }

    func testBF16AttentionWithUnalignedSizesOnBothKernels() {
        // Sizes off every tile multiple (AMX tiles are 16 rows × 32 values) and off the blocks (two
        // query blocks, the last partial; the AMX kernel's inner blocks of 64 rows × 256 keys), D = 72, Dv = 40.
        let (lq, lk, heads, d, dv) = (Int(USO_ATTENTION_QUERY_BLOCK) + 22, 600, 2, 72, 40)
        let q = Tensor(pseudoRandom(lq * heads * d, seed: 20).map { $0 * 3 }, shape: [lq, heads, d], dtype: .bf16)
        let k = Tensor(pseudoRandom(lk * heads * d, seed: 21), shape: [lk, heads, d], dtype: .bf16)
        let v = Tensor(pseudoRandom(lk * heads * dv, seed: 22), shape: [lk, heads, dv], dtype: .bf16)
        defer { BF16MatrixKernels.selectFastest() }
        for causal in [false, true] {
            // The reference sees the same bf16-rounded inputs; the kernels round the probabilities and
            // the output to bf16 (2⁻⁹ relative each), hence the bf16-level bound.
            let expected = Tensor(naiveAttention(q.toFloats(), k.toFloats(), v.toFloats(), lq: lq, lk: lk, heads: heads,
                                                 d: d, dv: dv, scale: 0.3, causal: causal), shape: [lq, heads * dv])
            for kernels in BF16MatrixKernels.allCases {   // AMX tiles where the processor has them, oneDNN, widened F32
                kernels.select()
                let ours = attention(query: q, key: k, value: v, scale: 0.3, causal: causal)
                XCTAssertEqual(ours.dtype, .bf16)
                assertClose(ours, expected, relative: 8e-3, "bf16 attention causal=\(causal) \(kernels)")
            }
        }
    }

    func testBF16LinearOnBothKernelsWithUnalignedSizes() {
        // Rows, columns and inputs off the 32-wide blocks and the 256-column panels of the AMX kernel; the
        // second shape has too few columns to split, so its workers split the rows. The third is widened
        // to F32 in three blocks of columns (512, 512, 76) on the widening path.
        defer { BF16MatrixKernels.selectFastest() }
        for (rows, inputs, outputs) in [(300, 100, 300), (600, 64, 40), (5, 8192, 1100)] {
            let x = Tensor(pseudoRandom(rows * inputs, seed: 30), shape: [rows, inputs], dtype: .bf16)
            let weight = Tensor(pseudoRandom(outputs * inputs, seed: 31), shape: [outputs, inputs], dtype: .bf16)
            let bias = Tensor(pseudoRandom(outputs, seed: 32), shape: [outputs], dtype: .bf16)
            let f32 = linear(x.converted(to: .f32), weight: weight.converted(to: .f32), bias: bias.converted(to: .f32))
            for kernels in BF16MatrixKernels.allCases {   // AMX tiles where the processor has them, oneDNN, widened F32
                kernels.select()
                let ours = linear(x, weight: weight, bias: bias)
                XCTAssertEqual(ours.shape, [rows, outputs])
                // Both accumulate in f32 and round once to bf16 (the F32 reference rounds nothing).
                assertClose(ours, f32, bf16ULPs: 2, "bf16 linear \(rows)x\(inputs)x\(outputs) \(kernels)")
            }
        }
    }

    func testF32LinearOnBothLibrariesAndTheTimedDefault() {
        defer { F32MatrixLibrary.selectFastest() }
        let (rows, inputs, outputs) = (70, 300, 130)
        let x = Tensor(pseudoRandom(rows * inputs, seed: 40), shape: [rows, inputs])
        let w = pseudoRandom(outputs * inputs, seed: 41), b = pseudoRandom(outputs, seed: 42)
        var expected = [Float](repeating: 0, count: rows * outputs)
        let xs = x.toFloats()
        for r in 0..<rows {
            for o in 0..<outputs {
                var sum = Double(b[o])
                for i in 0..<inputs { sum += Double(xs[r * inputs + i]) * Double(w[o * inputs + i]) }
                expected[r * outputs + o] = Float(sum)
            }
        }
        for library in F32MatrixLibrary.allCases {
            library.select()
            XCTAssertEqual(F32MatrixLibrary.inUse, library)
            let ours = linear(x, weight: Tensor(w, shape: [outputs, inputs]), bias: Tensor(b, shape: [outputs]))
            assertClose(ours, Tensor(expected, shape: [rows, outputs]), relative: 1e-5, "f32 linear on \(library)")
        }
        F32MatrixLibrary.selectFastest()
        XCTAssertTrue(F32MatrixLibrary.allCases.contains(F32MatrixLibrary.inUse))
        BF16MatrixKernels.selectFastest()
        print("[kernels] timed defaults here: F32 on \(F32MatrixLibrary.inUse), BF16 on \(BF16MatrixKernels.inUse)")
    }

    /// OpenBLAS 0.3.21 falls back to SSE3 kernels on processors newer than itself; uso makes it use
    /// the kernels the processor runs (measured 4x faster on an Emerald Rapids Xeon).
    func testOpenBLASRunsKernelsForTheProcessor() throws {
        let flags = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        guard flags.contains("avx2") else { throw XCTSkip("no AVX2: OpenBLAS's older kernels are the right ones") }
        let core = F32MatrixLibrary.openBLASCore
        print("[kernels] OpenBLAS core: \(core)")
        for outdated in ["Prescott", "Core2", "Penryn", "Nehalem", "Atom", "Sandybridge", "Unknown"] {
            XCTAssertFalse(core.hasPrefix(outdated), "OpenBLAS chose \(core) on a processor with AVX2")
        }
    }

    func testFloat8WeightsAreWidenedInChunksWithTheSameResult() {
        // 8192 inputs make the widening block 512 rows, so 1100 outputs take three chunks.
        let (rows, inputs, outputs) = (3, 8192, 1100)
        let x = Tensor(pseudoRandom(rows * inputs, seed: 7), shape: [rows, inputs], dtype: .bf16)
        let weight = outerProduct(pseudoRandom(outputs, seed: 8), pseudoRandom(inputs, seed: 14)).converted(to: .f8e4m3)
        let bias = Tensor(pseudoRandom(outputs, seed: 9), shape: [outputs], dtype: .bf16)
        let chunked = linear(x, weight: weight, bias: bias)
        let whole = linear(x, weight: weight.converted(to: .bf16), bias: bias)
        XCTAssertEqual(bytes(chunked), bytes(whole), "chunked F8 widening must equal a whole BF16 weight")
        let f32 = linear(x.converted(to: .f32), weight: weight.converted(to: .f32), bias: bias.converted(to: .f32))
        assertClose(chunked, f32, bf16ULPs: 2, "bf16 GEMM (8192-long sums) against F32")
    }

    func testConvolutionInBandsMatchesDirectSum() {
        // 64 channels × 9 taps × 130 columns × 4 bytes: 32 MB of columns covers ~1000 rows, so use a
        // tall image to force several bands.
        let (c, h, w, o) = (64, 1100, 130, 2)
        let x = outerProduct(pseudoRandom(c * h, seed: 10), pseudoRandom(w, seed: 15)).reshaped([c, h, w])
        let weightValues = pseudoRandom(o * c * 9, seed: 11)
        let result = conv2d(x, weight: Tensor(weightValues, shape: [o, c, 3, 3]), stride: 2, padding: 1)
        XCTAssertEqual(result.shape, [o, 550, 65])
        let input = x.toFloats(), ours = result.toFloats()
        // Spot-check rows in every band against the direct sum.
        for (oc, oy, ox) in [(0, 0, 0), (1, 300, 64), (0, 549, 13), (1, 511, 1), (0, 520, 40)] {
            var sum: Double = 0
            for ci in 0..<c { for ky in 0..<3 { for kx in 0..<3 {
                let iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                sum += Double(input[(ci * h + iy) * w + ix]) * Double(weightValues[((oc * c + ci) * 3 + ky) * 3 + kx])
            } } }
            XCTAssertEqual(ours[(oc * 550 + oy) * 65 + ox], Float(sum), accuracy: 1e-4, "output (\(oc), \(oy), \(ox))")
        }
    }

    func testBuffersOnHugePagesAreZeroedAndHoldOpResults() {
        // 12 MB and 8 MB: above uso_alloc's huge-page threshold (4 MB), unlike every fixture.
        XCTAssertTrue(Tensor(zeros: [3_000_000]).toFloats().allSatisfy { $0 == 0 })
        let column = (0..<2000).map { Float($0) }, row = (0..<1000).map { Float($0) / 1000 }
        let product = outerProduct(column, row).toFloats()
        for (i, j) in [(0, 0), (1999, 999), (1234, 567), (7, 998)] {
            XCTAssertEqual(product[i * 1000 + j], column[i] * row[j], "element \(i), \(j)")
        }
    }

    func testLargeTensorsSplitAcrossThreadsGiveTheSameAnswer() {
        // 1000×300 is above the threading threshold; each row checked against its own 1-row result.
        let x = Tensor(pseudoRandom(1000 * 300, seed: 12).map { $0 * 4 }, shape: [1000, 300])
        let shift = Tensor(pseudoRandom(300, seed: 13), shape: [300])
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("softmax", softmax), ("layerNorm", { layerNorm($0, eps: 1e-5) }), ("rmsNorm", { rmsNorm($0, eps: 1e-6) }),
            ("silu", silu), ("gelu", { gelu($0) }), ("add", { $0 + shift }),
        ]
        for (name, op) in ops {
            let whole = op(x)
            for row in [0, 499, 999] {
                XCTAssertEqual(bytes(whole.rows(row..<(row + 1))), bytes(op(x.rows(row..<(row + 1)))), "\(name) row \(row)")
            }
        }
    }
}
