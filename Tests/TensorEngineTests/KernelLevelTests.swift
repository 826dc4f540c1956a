import CKernels
import TensorEngine
import XCTest

/// Every kernel build this processor runs (AVX2, AVX-512, AMX) against the baseline build on the
/// same inputs. Storage conversions and single-operation arithmetic are bit-identical; elsewhere the
/// builds differ only by FMA contraction and summation order (and, for BF16 products on AMX, tile
/// accumulation order), within the stated tolerances. Levels the processor lacks are skipped.
final class KernelLevelTests: XCTestCase {
    override func tearDown() {
        uso_set_kernel_level(-1)
        super.tearDown()
    }

    func testAVX2BuildMatchesBaseline() throws { try compareWithBaseline(USO_LEVEL_AVX2, "AVX2") }
    func testAVX512BuildMatchesBaseline() throws { try compareWithBaseline(USO_LEVEL_AVX512, "AVX-512") }
    func testAMXBuildMatchesBaseline() throws { try compareWithBaseline(USO_LEVEL_AMX, "AMX") }

    func testLevelIsCappedToTheProcessor() {
        let top = uso_set_kernel_level(-1)
        XCTAssertEqual(uso_kernel_level(), top)
        XCTAssertEqual(uso_set_kernel_level(Int32(USO_LEVEL_BASELINE.rawValue)), Int32(USO_LEVEL_BASELINE.rawValue))
        XCTAssertEqual(uso_set_kernel_level(Int32(USO_LEVEL_AMX.rawValue)), top)
        print("[levels] this processor runs kernel level \(top) (0 baseline, 1 AVX2, 2 AVX-512, 3 AMX)")
    }

    private struct Result {
        let name: String
        let tensor: Tensor
        let relative: Float?   // nil: bit-identical
    }

    private func compareWithBaseline(_ level: uso_kernel_level, _ label: String) throws {
        let wanted = Int32(level.rawValue)
        guard uso_set_kernel_level(wanted) == wanted else {
            throw XCTSkip("\(label) build not supported by this processor")
        }
        let fast = results()
        XCTAssertEqual(uso_set_kernel_level(Int32(USO_LEVEL_BASELINE.rawValue)), Int32(USO_LEVEL_BASELINE.rawValue))
        let baseline = results()
        print("[levels] \(label) build against baseline: \(fast.count) kernels")
        for (ours, reference) in zip(fast, baseline) {
            if let relative = ours.relative {
                assertClose(ours.tensor, reference.tensor, relative: relative, "\(label) \(ours.name)")
            } else {
                XCTAssertEqual(bytes(ours.tensor), bytes(reference.tensor), "\(label) \(ours.name): not bit-identical")
            }
        }
    }

    /// The kernels with more than one build, on inputs that reach their vector loops and tails.
    private func results() -> [Result] {
        let (rows, width) = (37, 1000)
        // Wide magnitudes, rounding ties of BF16 and F16, subnormals, infinities and NaN.
        var values = pseudoRandom(rows * width, seed: 11).enumerated().map { i, v in v * Float(1 << (i % 24)) / 4096 }
        values[0...9] = [1 + 0x1p-8, 1 + 0x3p-8, 1 + 0x1p-11, 1e-40, -1e-42, .infinity, -.infinity, .nan, 70000, -0.0]
        let x = Tensor(values, shape: [rows, width])
        let bf16 = x.converted(to: .bf16), f16 = x.converted(to: .f16)
        let a = Tensor(pseudoRandom(rows * width, seed: 12), shape: [rows, width])
        let row = Tensor(pseudoRandom(width, seed: 13), shape: [1, width])
        let weight = Tensor(pseudoRandom(width, seed: 14).map { 1 + $0 / 2 }, shape: [width])
        let bias = Tensor(pseudoRandom(width, seed: 15), shape: [width])
        var results = [
            Result(name: "f32→bf16", tensor: bf16, relative: nil),
            Result(name: "bf16→f32", tensor: bf16.converted(to: .f32), relative: nil),
            Result(name: "f32→f16", tensor: f16, relative: nil),
            Result(name: "f16→f32", tensor: f16.converted(to: .f32), relative: nil),
            Result(name: "add broadcast", tensor: a + row, relative: nil),
            Result(name: "mul bf16", tensor: a.converted(to: .bf16) * row, relative: nil),
            Result(name: "scalar mul", tensor: a * 3, relative: nil),
            Result(name: "silu", tensor: silu(a * 8), relative: 1e-5),
            Result(name: "sigmoid", tensor: sigmoid(a * 8), relative: 1e-5),
            Result(name: "gelu erf", tensor: gelu(a * 8), relative: 1e-5),
            Result(name: "gelu tanh", tensor: gelu(a * 8, approximation: .tanh), relative: 1e-5),
            Result(name: "softmax", tensor: softmax(a * 8), relative: 1e-5),
            Result(name: "layerNorm", tensor: layerNorm(a, weight: weight, bias: bias, eps: 1e-6), relative: 1e-5),
            Result(name: "rmsNorm bf16", tensor: rmsNorm(a.converted(to: .bf16), weight: weight, eps: 1e-6),
                   relative: 1e-2),
            Result(name: "groupNorm", tensor: groupNorm(a.reshaped([4, 37, 250]), groups: 2,
                                                        weight: Tensor(pseudoRandom(4, seed: 16), shape: [4]),
                                                        bias: Tensor(pseudoRandom(4, seed: 17), shape: [4]), eps: 1e-6),
                   relative: 1e-5),
        ]
        let (length, heads, dim) = (300, 2, 64)
        let tables = Tensor(pseudoRandom(length * dim / 2, seed: 18), shape: [length, dim / 2])
        let q = Tensor(pseudoRandom(length * heads * dim, seed: 19), shape: [length, heads, dim])
        let k = Tensor(pseudoRandom(length * heads * dim, seed: 20), shape: [length, heads, dim])
        let v = Tensor(pseudoRandom(length * heads * dim, seed: 21), shape: [length, heads, dim])
        let scoreBias = Tensor(pseudoRandom(heads * length * length, seed: 22), shape: [heads, length, length])
        results += [
            Result(name: "rope", tensor: applyRoPE(q, cos: tables, sin: tables * 0.5), relative: 1e-5),
            Result(name: "attention f32", tensor: attention(query: q, key: k, value: v, scale: 0.125, bias: scoreBias),
                   relative: 1e-5),
            Result(name: "attention bf16 causal",
                   tensor: attention(query: q.converted(to: .bf16), key: k.converted(to: .bf16),
                                     value: v.converted(to: .bf16), scale: 0.125, causal: true),
                   relative: 2e-2),
        ]
        let (tokens, inputs, outputs) = (256, 320, 192)   // enough rows for the AMX linear kernel
        let activations = Tensor(pseudoRandom(tokens * inputs, seed: 23), shape: [tokens, inputs])
        let matrix = Tensor(pseudoRandom(outputs * inputs, seed: 24), shape: [outputs, inputs])
        let linearBias = Tensor(pseudoRandom(outputs, seed: 25), shape: [outputs])
        results += [
            Result(name: "linear bf16", tensor: linear(activations.converted(to: .bf16), weight: matrix.converted(to: .bf16),
                                                       bias: linearBias), relative: 2e-2),
            Result(name: "linear int8", tensor: linear(activations, weight: Int8Weight(quantizing: matrix), bias: linearBias),
                   relative: 1e-5),
        ]
        return results
    }
}
