import TensorEngine
import XCTest

/// Storage casts must be bit-identical to torch's `.to(dtype)`: weights converted at load (FP8 mode)
/// and every BF16 activation depend on them.
final class ConversionTests: XCTestCase {
    func testCastsFromF32MatchTorchBitForBit() throws {
        let input = try OpFixtures.tensor("convert.input")
        for (key, dtype) in [("bf16", DType.bf16), ("f16", .f16), ("f8e4m3", .f8e4m3), ("f8e5m2", .f8e5m2)] {
            let expected = try OpFixtures.tensor("convert.\(key)")
            XCTAssertEqual(expected.dtype, dtype)
            let ours = bytes(input.converted(to: dtype)), theirs = bytes(expected)
            let size = dtype.byteSize
            let mismatches = (0..<input.count).filter { ours[($0 * size)..<($0 * size + size)] != theirs[($0 * size)..<($0 * size + size)] }
            XCTAssertEqual(mismatches.count, 0, "\(dtype): first mismatches at inputs \(mismatches.prefix(5).map { input.toFloats()[$0] })")
        }
    }

    func testNaNKeepsItsSignInFloat8() throws {
        let input = try OpFixtures.tensor("convert_nan.input")
        XCTAssertEqual(bytes(input.converted(to: .f8e4m3)), bytes(try OpFixtures.tensor("convert_nan.f8e4m3")))
        XCTAssertEqual(bytes(input.converted(to: .f8e5m2)), bytes(try OpFixtures.tensor("convert_nan.f8e5m2")))
        // torch spells a BF16 NaN differently in its scalar and vector paths; only NaN-ness is fixed.
        XCTAssertTrue(input.converted(to: .bf16).toFloats().allSatisfy(\.isNaN))
        XCTAssertTrue(input.converted(to: .f16).toFloats().allSatisfy(\.isNaN))
    }

    func testEveryFloat8CodeDecodesAsTorchDoes() throws {
        for key in ["f8e4m3", "f8e5m2", "f16"] {
            let codes = try OpFixtures.tensor("decode.\(key)"), expected = try OpFixtures.tensor("decode.\(key)_values")
            let ours = codes.toFloats(), theirs = expected.toFloats()
            for (index, (a, b)) in zip(ours, theirs).enumerated() where !(a.isNaN && b.isNaN) {
                XCTAssertEqual(a.bitPattern, b.bitPattern, "\(key) code \(index): \(a) vs \(b)")
            }
            XCTAssertEqual(ours.map(\.isNaN), theirs.map(\.isNaN), "\(key): NaN codes")
        }
    }

    func testRoundTripsThroughEveryTypeAreStable() {
        let values = pseudoRandom(4096, seed: 7).map { $0 * 300 }
        for dtype in DType.allCases where dtype != .i8 {   // I8 codes come from quantization, not casts
            let once = Tensor(values, shape: [4096]).converted(to: dtype)
            let twice = once.converted(to: .f32).converted(to: dtype)
            XCTAssertEqual(bytes(once), bytes(twice), "\(dtype): re-encoding a decoded value must not move it")
        }
    }

    func testInt8CodesDecodeToTheirValues() {
        let codes: [Int8] = [-127, -1, 0, 1, 5, 127]
        let storage = TensorStorage(byteCount: codes.count)
        codes.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: codes.count) }
        let tensor = Tensor(shape: [codes.count], dtype: .i8, storage: storage)
        XCTAssertEqual(tensor.toFloats(), codes.map(Float.init))
        XCTAssertEqual(tensor.converted(to: .bf16).toFloats(), codes.map(Float.init))
    }
}
