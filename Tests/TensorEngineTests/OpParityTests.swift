import TensorEngine
import XCTest

// Every op against PyTorch CPU on the fixtures of tools/fixtures/ops.py.
//
// Tolerances. F32: 1e-5 of the output's peak magnitude — both sides compute in F32 and differ only
// in summation order and in ~1-ulp transcendental approximations. BF16: both sides compute in F32
// and round once to BF16, so a result may land one BF16 step (ulp, 2⁻⁸ relative) away when the two
// F32 values straddle a rounding boundary; 1 ulp is the bound for single-rounding ops. Products
// with long sums (linear, conv, attention) get the bounds stated at each test.
final class OpParityTests: XCTestCase {
    private func fixture(_ key: String) throws -> Tensor { try OpFixtures.tensor(key) }

    private static let f32Tolerance: Float = 1e-5

    func testBinaryOpsWithBroadcasting() throws {
        for dtype in ["f32", "bf16"] {
            let a = try fixture("binary_\(dtype).a")
            for shape in ["same", "row", "column", "mixed"] {
                let b = try fixture("binary_\(shape)_\(dtype).b")
                let results: [(String, Tensor)] = [("add", a + b), ("sub", a - b), ("mul", a * b), ("div", a / b)]
                for (name, ours) in results {
                    let expected = try fixture("binary_\(shape)_\(dtype).\(name)")
                    XCTAssertEqual(ours.dtype, expected.dtype)
                    if dtype == "f32" { assertClose(ours, expected, relative: Self.f32Tolerance, "\(name) \(shape) f32") }
                    else { assertClose(ours, expected, bf16ULPs: 0, "\(name) \(shape) bf16 (exact: one rounding of an exact F32 op)") }
                }
            }
        }
    }

    func testActivationsAndScalarOps() throws {
        for dtype in ["f32", "bf16"] {
            let x = try fixture("activation_\(dtype).x")
            let results: [(String, Tensor)] = [
                ("silu", silu(x)), ("sigmoid", sigmoid(x)), ("gelu", gelu(x)), ("gelu_tanh", gelu(x, approximation: .tanh)),
                ("quick_gelu", quickGELU(x)), ("add_scalar", x + 0.75), ("mul_scalar", x * -1.5),
                ("sub_scalar", x - 2.0), ("div_scalar", x / 3.0), ("rsub_scalar", 1.0 - x),
            ]
            for (name, ours) in results {
                let expected = try fixture("activation_\(dtype).\(name)")
                if dtype == "f32" { assertClose(ours, expected, relative: Self.f32Tolerance, "\(name) f32") }
                else { assertClose(ours, expected, bf16ULPs: 1, "\(name) bf16") }
            }
        }
    }

    func testSoftmaxAndNorms() throws {
        for dtype in ["f32", "bf16"] {
            let check = { (ours: Tensor, key: String) in
                let expected = try self.fixture(key)
                if dtype == "f32" { assertClose(ours, expected, relative: Self.f32Tolerance, key) }
                else { assertClose(ours, expected, bf16ULPs: 1, key) }
            }
            try check(softmax(try fixture("softmax_\(dtype).x")), "softmax_\(dtype).y")
            let x = try fixture("layernorm_\(dtype).x")
            try check(layerNorm(x, weight: try fixture("layernorm_\(dtype).weight"), bias: try fixture("layernorm_\(dtype).bias"), eps: 1e-5),
                      "layernorm_\(dtype).affine")
            try check(layerNorm(x, eps: 1e-6), "layernorm_\(dtype).plain")
            try check(rmsNorm(x, weight: try fixture("rmsnorm_\(dtype).weight"), eps: 1e-6), "rmsnorm_\(dtype).weighted")
            try check(rmsNorm(x, eps: 1e-6), "rmsnorm_\(dtype).plain")
            let image = try fixture("groupnorm_\(dtype).x")
            try check(groupNorm(image, groups: 8, weight: try fixture("groupnorm_\(dtype).weight"),
                                bias: try fixture("groupnorm_\(dtype).bias"), eps: 1e-6), "groupnorm_\(dtype).y")
        }
    }

    func testLinearInEveryWeightType() throws {
        let x = try fixture("linear_f32.x"), w = try fixture("linear_f32.weight"), b = try fixture("linear_f32.bias")
        assertClose(linear(x, weight: w, bias: b), try fixture("linear_f32.y"), relative: Self.f32Tolerance, "linear f32")
        assertClose(linear(x, weight: w), try fixture("linear_f32.nobias"), relative: Self.f32Tolerance, "linear f32 no bias")
        let xb = try fixture("linear_bf16.x"), wb = try fixture("linear_bf16.weight"), bb = try fixture("linear_bf16.bias")
        assertClose(linear(x, weight: wb, bias: b), try fixture("linear_f32_bf16weight.y"), relative: Self.f32Tolerance,
                    "linear f32 × bf16 weight")
        // BF16: exact products, F32 sums in a different order (K = 96), one rounding: ≤ 1 ulp.
        let ours = linear(xb, weight: wb, bias: bb)
        XCTAssertEqual(ours.dtype, .bf16)
        assertClose(ours, try fixture("linear_bf16.y"), bf16ULPs: 1, "linear bf16")
        for f8 in ["f8e4m3", "f8e5m2"] {
            let w8 = try fixture("linear_\(f8).weight")
            assertClose(linear(xb, weight: w8, bias: bb), try fixture("linear_\(f8).y"), bf16ULPs: 1, "linear bf16 × \(f8) weight")
        }
    }

    func testMatmul() throws {
        let a = try fixture("matmul_f32.a"), b = try fixture("matmul_f32.b")
        assertClose(matmul(a, b), try fixture("matmul_f32.y"), relative: Self.f32Tolerance, "matmul batched f32")
        assertClose(matmul(a.rows(0..<1).reshaped([20, 24]), b.rows(0..<1).reshaped([24, 16])), try fixture("matmul_f32.y2d"),
                    relative: Self.f32Tolerance, "matmul f32")
        assertClose(matmul(try fixture("matmul_bf16.a"), try fixture("matmul_bf16.b")), try fixture("matmul_bf16.y"),
                    bf16ULPs: 1, "matmul batched bf16")
    }

    func testAttention() throws {
        let scale = 1 / Float(32).squareRoot()
        let q = try fixture("attention_f32.q"), k = try fixture("attention_f32.k"), v = try fixture("attention_f32.v")
        assertClose(attention(query: q, key: k, value: v, scale: scale), try fixture("attention_f32.y"),
                    relative: Self.f32Tolerance, "attention f32")
        assertClose(attention(query: q, key: k, value: v, scale: scale, bias: try fixture("attention_f32.bias")),
                    try fixture("attention_f32.biased"), relative: Self.f32Tolerance, "attention f32 with bias")
        let qc = try fixture("attention_causal_f32.q"), kc = try fixture("attention_causal_f32.k"), vc = try fixture("attention_causal_f32.v")
        assertClose(attention(query: qc, key: kc, value: vc, scale: 0.25, causal: true), try fixture("attention_causal_f32.y"),
                    relative: Self.f32Tolerance, "attention causal f32")
        // BF16: probabilities are rounded to BF16 before P·V (relative error 2⁻⁹ each, as torch's
        // flash kernel does; its small-size path may keep them in F32), then the output is rounded
        // once more: both bounded by one BF16 step at the output's peak, 2⁻⁷ of the peak.
        let qb = try fixture("attention_bf16.q"), kb = try fixture("attention_bf16.k"), vb = try fixture("attention_bf16.v")
        let ours = attention(query: qb, key: kb, value: vb, scale: scale)
        XCTAssertEqual(ours.dtype, .bf16)
        assertClose(ours, try fixture("attention_bf16.y"), relative: 8e-3, "attention bf16")
        assertClose(attention(query: qb, key: kb, value: vb, scale: scale, bias: try fixture("attention_bf16.bias")),
                    try fixture("attention_bf16.biased"), relative: 8e-3, "attention bf16 with bias")
    }

    func testRotaryEmbedding() throws {
        let cos = try fixture("rope_f32.cos"), sin = try fixture("rope_f32.sin")
        assertClose(applyRoPE(try fixture("rope_f32.x"), cos: cos, sin: sin), try fixture("rope_f32.y"),
                    relative: Self.f32Tolerance, "rope f32")
        assertClose(applyRoPE(try fixture("rope_f32.x").converted(to: .bf16), cos: cos, sin: sin), try fixture("rope_bf16.y"),
                    bf16ULPs: 1, "rope bf16")
    }

    func testConvolutions() throws {
        let x = try fixture("conv.x"), xb = try fixture("conv.x_bf16")
        for (name, stride, padding) in [("k3s1p1", 1, 1), ("k3s2p1", 2, 1), ("k3s2p0", 2, 0), ("k1s1p0", 1, 0), ("k3s1p0", 1, 0)] {
            let w = try fixture("conv_\(name)_f32.weight"), b = try fixture("conv_\(name)_f32.bias")
            assertClose(conv2d(x, weight: w, bias: b, stride: stride, padding: padding), try fixture("conv_\(name)_f32.y"),
                        relative: Self.f32Tolerance, "conv \(name) f32")
            let ours = conv2d(xb, weight: w.converted(to: .bf16), bias: b.converted(to: .bf16), stride: stride, padding: padding)
            XCTAssertEqual(ours.dtype, .bf16)
            assertClose(ours, try fixture("conv_\(name)_bf16.y"), bf16ULPs: 1, "conv \(name) bf16")
        }
    }

    func testPaddingUpsamplingAndShapeOps() throws {
        let x = try fixture("conv.x")
        XCTAssertEqual(bytes(padded(x, top: 0, left: 2, bottom: 3, right: 1)), bytes(try fixture("pad.y")))
        XCTAssertEqual(bytes(upsampleNearest2x(try fixture("upsample.x"))), bytes(try fixture("upsample.y")))
        let s = try fixture("shape.x")
        XCTAssertEqual(bytes(permute(s, [2, 0, 1])), bytes(try fixture("shape.permute201")))
        XCTAssertEqual(bytes(permute(s, [1, 0, 2])), bytes(try fixture("shape.permute102")))
        XCTAssertEqual(bytes(permute(try fixture("shape_bf16.x"), [2, 0, 1])), bytes(try fixture("shape_bf16.permute201")))
        XCTAssertEqual(bytes(concat([s, slice(s, axis: 1, 0..<2) * 2], axis: 1)), bytes(try fixture("shape.concat1")))
        XCTAssertEqual(bytes(slice(s, axis: 2, 1..<4)), bytes(try fixture("shape.slice2")))
        XCTAssertEqual(bytes(chunk(s, 5, axis: -1)[3].reshaped([3, 4, 1])), bytes(slice(try fixture("shape.chunk_last"), axis: 2, 0..<1)))
        XCTAssertEqual(permute(s, [2, 0, 1]).shape, [5, 3, 4])
    }
}
