@testable import TensorEngine
import XCTest

/// The W8A8 linear layer: exact where the inputs lie on the quantization grids, within the 8-bit
/// error elsewhere, and the same through the bounded int32 buffer's row blocks.
final class Int8LinearTests: XCTestCase {
    /// Integer weights whose rows reach ±127 are their own codes (scale 1); activations whose rows
    /// span [−z·s, (255 − z)·s] with s a power of two are their own codes too. The int8 path must then
    /// give the float product exactly: this checks the zero-point correction and the rescaling.
    func testExactOnTheQuantizationGrids() {
        let (rows, inFeatures, outFeatures) = (5, 40, 7)
        var weights = pseudoRandom(outFeatures * inFeatures, seed: 11).map { ($0 * 127).rounded() }
        for row in 0..<outFeatures { weights[row * inFeatures + row] = row.isMultiple(of: 2) ? 127 : -127 }
        let step: Float = 1.0 / 64, zeros = [0, 17, 128, 200, 255]
        var x = [Float](repeating: 0, count: rows * inFeatures)
        let codes = pseudoRandom(rows * inFeatures, seed: 12).map { Int(($0 + 1) * 127.5) }
        for row in 0..<rows {
            for column in 0..<inFeatures {
                // The row's first two entries pin its range to the full [0, 255] code span.
                let code = column == 0 ? 0 : column == 1 ? 255 : codes[row * inFeatures + column]
                x[row * inFeatures + column] = Float(code - zeros[row]) * step
            }
        }
        let bias = pseudoRandom(outFeatures, seed: 13).map { ($0 * 8).rounded() }
        let weight = Int8Weight(quantizing: Tensor(weights, shape: [outFeatures, inFeatures]))
        XCTAssertEqual(weight.scales.toFloats(), [Float](repeating: 1, count: outFeatures))
        let ours = linear(Tensor(x, shape: [rows, inFeatures]), weight: weight, bias: Tensor(bias, shape: [outFeatures]))
        let expected = linear(Tensor(x, shape: [rows, inFeatures]), weight: Tensor(weights, shape: [outFeatures, inFeatures]),
                              bias: Tensor(bias, shape: [outFeatures]))
        XCTAssertEqual(ours.toFloats(), expected.toFloats())
    }

    /// Random data: per-row weight and per-token activation quantization stay within a few tenths
    /// of a percent of the F32 product (8 bits each: steps of range/255 and peak/127).
    func testErrorOnRandomData() {
        let (rows, inFeatures, outFeatures) = (64, 512, 96)
        let x = Tensor(pseudoRandom(rows * inFeatures, seed: 21), shape: [rows, inFeatures])
        let w = Tensor(pseudoRandom(outFeatures * inFeatures, seed: 22).map { $0 * 0.05 }, shape: [outFeatures, inFeatures])
        let ours = linear(x, weight: Int8Weight(quantizing: w))
        let deviation = assertClose(ours, linear(x, weight: w), relative: 0.01, "int8 linear, random")
        XCTAssertGreaterThan(deviation.relativeToPeak, 0, "quantization must show some error on random data")
        // BF16 activations give BF16 results.
        XCTAssertEqual(linear(x.converted(to: .bf16), weight: Int8Weight(quantizing: w)).dtype, .bf16)
    }

    /// More rows than the int32 buffer holds at once: the row blocks (here of 7 rows, the last
    /// partial) must line up with their scales and outputs.
    func testRowBlocksOfTheProductBuffer() {
        let (rows, inFeatures, outFeatures) = (45, 24, 32)
        let weight = Int8Weight(quantizing: Tensor(pseudoRandom(outFeatures * inFeatures, seed: 31), shape: [outFeatures, inFeatures]))
        let x = Tensor(pseudoRandom(rows * inFeatures, seed: 32), shape: [rows, inFeatures])
        let bias = Tensor(pseudoRandom(outFeatures, seed: 33), shape: [outFeatures])
        let whole = linear(x, weight: weight, bias: bias)
        let blocked = linear(x, weight: weight, bias: bias, productBufferBytes: 7 * outFeatures * 4)
        XCTAssertEqual(blocked.toFloats(), whole.toFloats())
        assertClose(blocked, linear(x, weight: weight.dequantized(), bias: bias), relative: 0.01, "int8 linear over row blocks")
    }
}
