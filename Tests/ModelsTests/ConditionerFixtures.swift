// Fixtures of the conditioner tests (written by tools/fixtures/conditioners.py) and the comparisons
// they make.
import Foundation
import TensorEngine
import WeightFiles
import XCTest

enum ConditionerFixtures {
    /// Tests/Fixtures/conditioners, found from this file's path.
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/conditioners")
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func weights(_ name: String) throws -> SafetensorsFile { try SafetensorsFile(path: path(name)) }

    static func configJSON(_ name: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(name)) }

    /// A fixture's config.json with `edit` applied to its JSON object (or to the nested object
    /// `section`, such as "text_config").
    static func editedConfigJSON(_ name: String, section: String? = nil, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: configJSON(name)) as? [String: Any])
        if let section {
            var inner = try XCTUnwrap(object[section] as? [String: Any])
            edit(&inner)
            object[section] = inner
        } else {
            edit(&object)
        }
        return try JSONSerialization.data(withJSONObject: object)
    }

    /// An expected output or input tensor from expected.safetensors (always F32).
    static func expected(_ key: String) throws -> Tensor { try weights("expected.safetensors").tensor(key) }

    /// Token ids stored as F32 values (exact below 2²⁴).
    static func tokenIDs(_ key: String) throws -> [Int] { try expected(key).toFloats().map { Int($0) } }
}

/// Full-size random weights written by `tools/fixtures/conditioners.py --full-size DIR`, named by the
/// environment variable USO_CONDITIONERS_FULL_SIZE; the full-size tests skip without it.
enum FullSize {
    static func directory() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["USO_CONDITIONERS_FULL_SIZE"] else {
            throw XCTSkip("set USO_CONDITIONERS_FULL_SIZE to a folder made by tools/fixtures/conditioners.py --full-size")
        }
        return URL(fileURLWithPath: path)
    }

    /// Runs `body`, then prints its wall time, the process's peak resident set so far, and how much
    /// is resident now as anonymous memory (copies, activations) and as mapped file pages (weights).
    static func measure<T>(_ label: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now()
        let result = try body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        print("full-size \(label): \(String(format: "%.2f", seconds)) s, peak RSS \(gigabytes("VmHWM")) GB "
              + "(now anonymous \(gigabytes("RssAnon")) GB, mapped files \(gigabytes("RssFile")) GB)")
        return result
    }

    /// A kB figure of /proc/self/status in GB.
    static func gigabytes(_ field: String) -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        return String(format: "%.2f", kilobytes / 1_048_576)
    }

    /// Deterministic pseudo-random values in [-1, 1) (a style image or other input of `count` values).
    static func values(_ count: Int) -> [Float] {
        var state: UInt64 = 0x9E3779B97F4A7C15
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }
}

/// Tolerances of the parity tests. F32 differs from torch only in summation order (measured ~1e-6
/// relative). BF16 keeps 8 significant bits, so every op's result moves by up to 2⁻⁹ relative when
/// rounded, and torch rounds at slightly different points than we do (fused attention, bias added
/// before or after rounding); the differences compound through the layers. The BF16 bound is the
/// size of BF16's own departure from F32 on these fixtures (torch BF16 vs torch F32: 0.5-2.8% of the
/// largest value, cosine ≥ 0.99988); we measure 0.3-2.1% against torch's BF16 outputs.
enum Tolerance {
    static let f32Relative: Float = 1e-4
    static let bf16Relative: Float = 3e-2
    static let bf16Cosine: Float = 0.9995
}

/// How far `actual` is from `expected`: max |a − e|, that relative to max |e|, and cosine similarity.
struct Discrepancy: CustomStringConvertible {
    let maxAbsolute: Float
    let relative: Float
    let cosine: Float

    init(_ actual: Tensor, _ expected: Tensor) {
        let a = actual.toFloats(), e = expected.toFloats()
        var maxAbsolute: Float = 0, scale: Float = 0
        var dot: Double = 0, normA: Double = 0, normE: Double = 0
        for (x, y) in zip(a, e) {
            maxAbsolute = max(maxAbsolute, abs(x - y))
            scale = max(scale, abs(y))
            dot += Double(x) * Double(y); normA += Double(x) * Double(x); normE += Double(y) * Double(y)
        }
        self.maxAbsolute = maxAbsolute
        relative = maxAbsolute / max(scale, .leastNormalMagnitude)
        cosine = Float(dot / max((normA * normE).squareRoot(), .leastNormalMagnitude))
    }

    var description: String { "max-abs \(maxAbsolute), relative \(relative), cosine \(cosine)" }
}

/// Asserts equal shapes, a relative max error within `relative` and (when given) a cosine of at
/// least `cosine`; prints the measured discrepancy so the achieved tolerance is on record.
func assertClose(_ actual: Tensor, _ expected: Tensor, relative: Float, cosine: Float? = nil, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let discrepancy = Discrepancy(actual, expected)
    print("parity \(label): \(discrepancy)")
    XCTAssertLessThanOrEqual(discrepancy.relative, relative, "\(label): \(discrepancy)", file: file, line: line)
    if let cosine { XCTAssertGreaterThanOrEqual(discrepancy.cosine, cosine, "\(label): \(discrepancy)", file: file, line: line) }
}

/// A weight source with some keys removed or added, for testing what loaders reject.
final class EditedWeights: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let removed: Set<String>
    let added: [String: Tensor]

    init(_ base: WeightSource, removing removed: Set<String> = [], adding added: [String: Tensor] = [:]) {
        self.base = base
        self.removed = removed
        self.added = added
    }

    var keys: [String] { (base.keys.filter { !removed.contains($0) && added[$0] == nil } + added.keys).sorted() }

    func info(_ key: String) -> TensorInfo? {
        if let tensor = added[key] { return TensorInfo(dtype: tensor.dtype, shape: tensor.shape) }
        return removed.contains(key) ? nil : base.info(key)
    }

    func tensor(_ key: String) throws -> Tensor {
        if let tensor = added[key] { return tensor }
        guard !removed.contains(key) else { throw WeightError.missingKey(key) }
        return try base.tensor(key)
    }
}

/// Asserts that `body` throws an error equal to `expected`.
func assertThrows<E: Error & Equatable, T>(_ expected: E, file: StaticString = #filePath, line: UInt = #line,
                                           _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected) but nothing was thrown", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected) but got \(error)", file: file, line: line)
    }
}
