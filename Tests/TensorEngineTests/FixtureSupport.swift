import Foundation
import TensorEngine
import WeightFiles
import XCTest

/// The op fixtures written by tools/fixtures/ops.py (PyTorch CPU outputs).
enum OpFixtures {
    static let file: SafetensorsFile? = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            directory.deleteLastPathComponent()
        }
        return try? SafetensorsFile(path: directory.appendingPathComponent("Tests/Fixtures/ops/ops.safetensors").path)
    }()

    static func tensor(_ key: String, file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
        let fixtures = try XCTUnwrap(Self.file, "Tests/Fixtures/ops/ops.safetensors is missing: run tools/fixtures/ops.py",
                                     file: file, line: line)
        return try fixtures.tensor(key)
    }
}

/// How far `actual` is from `expected`: the largest absolute error, the largest error relative to
/// the largest expected magnitude, and the largest distance in units of the last place of BF16
/// (the rounding step of a BF16 result at that magnitude). The ulp count ignores the first
/// 1e-6·peak of each error, so underflowing tails (torch flushes GELU's far left tail to -0 where
/// we return -1e-30) do not count as huge ulp distances.
struct Deviation: CustomStringConvertible {
    var maxAbs: Float = 0
    var relativeToPeak: Float = 0
    var bf16ULPs: Float = 0

    init(_ actual: Tensor, _ expected: Tensor) {
        let a = actual.toFloats(), e = expected.toFloats()
        let peak = e.map { abs($0) }.filter(\.isFinite).max() ?? 0
        let floor = 1e-6 * peak
        for (x, y) in zip(a, e) {
            let error = abs(x - y)
            maxAbs = max(maxAbs, error)
            bf16ULPs = max(bf16ULPs, max(error - floor, 0) / bf16ULP(y))
        }
        relativeToPeak = peak > 0 ? maxAbs / peak : maxAbs
    }

    var description: String {
        String(format: "max-abs %.3g, relative to peak %.3g, %.2f BF16 ulp", maxAbs, relativeToPeak, bf16ULPs)
    }
}

/// The spacing of BF16 values around `value` (8 significant bits); the smallest normal spacing near 0.
func bf16ULP(_ value: Float) -> Float {
    let magnitude = max(abs(value), Float.leastNormalMagnitude)
    return Float(sign: .plus, exponent: magnitude.exponent - 7, significand: 1)
}

/// Asserts shape, then closeness; prints the measured deviation so the test log records it.
@discardableResult
func assertClose(_ actual: Tensor, _ expected: Tensor, relative: Float? = nil, bf16ULPs: Float? = nil,
                 _ label: String, file: StaticString = #filePath, line: UInt = #line) -> Deviation {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    let deviation = Deviation(actual, expected)
    print("[parity] \(label): \(deviation)")
    if let relative {
        XCTAssertLessThanOrEqual(deviation.relativeToPeak, relative, "\(label): \(deviation)", file: file, line: line)
    }
    if let bf16ULPs {
        XCTAssertLessThanOrEqual(deviation.bf16ULPs, bf16ULPs, "\(label): \(deviation)", file: file, line: line)
    }
    return deviation
}

/// Raw storage bytes, for bit-exact comparisons.
func bytes(_ tensor: Tensor) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount))
}

/// Deterministic pseudo-random floats in [-1, 1) (xorshift), for tests that need no fixture.
func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}
