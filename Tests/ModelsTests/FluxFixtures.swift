// Shared helpers of the FLUX DiT tests: the fixture files from tools/fixtures/flux.py, error
// metrics, and an in-memory weight source for building malformed checkpoints.
import Foundation
import XCTest
@testable import FluxDiT
import TensorEngine
import WeightFiles

enum FluxFixtures {
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/flux")
    }()

    static func file(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent(name + ".safetensors").path)
    }

    static func dit() throws -> SafetensorsFile { try file("dit") }
    static func lora() throws -> SafetensorsFile { try file("lora") }
    static func cases() throws -> SafetensorsFile { try file("cases") }

    /// The fixture's conditioning: 7 text tokens, 6 style tokens, a 8×6 target latent and two
    /// references (4×6 and 6×4 latents) placed by `mode`.
    static func conditioning(_ cases: SafetensorsFile, mode: ReferencePositionMode, style: Bool = true,
                             references: Bool = true) throws -> FluxConditioning {
        let referenceSizes = [(height: 4, width: 6), (height: 6, width: 4)]
        let referencePositions = FluxPositions.references(latentSizes: referenceSizes, targetLatentHeight: 8, targetLatentWidth: 6, mode: mode)
        return FluxConditioning(
            text: try cases.tensor("input.text"), pooled: try cases.tensor("input.pooled"),
            styleTokens: style ? try cases.tensor("input.style") : nil,
            imagePositions: FluxPositions.image(latentHeight: 8, latentWidth: 6),
            references: references ? try (0..<2).map {
                FluxReference(tokens: try cases.tensor("input.reference\($0).tokens"), positions: referencePositions[$0])
            } : [])
    }

    static func scalar(_ cases: SafetensorsFile, _ key: String) throws -> Float { try cases.tensor(key).toFloats()[0] }

    /// The fixture forward for one precision and position mode.
    static func velocity(_ dit: FluxDiT, _ cases: SafetensorsFile, mode: ReferencePositionMode = .diagonal,
                         style: Bool = true, references: Bool = true) throws -> Tensor {
        try dit(image: try cases.tensor("input.image"),
                conditioning: try conditioning(cases, mode: mode, style: style, references: references),
                timestep: try scalar(cases, "input.timestep"), guidance: try scalar(cases, "input.guidance"))
    }
}

/// How far `actual` is from `expected`: max |a−e| / max |e|, and the cosine similarity.
struct Agreement: CustomStringConvertible {
    let relativeMaxAbs: Double
    let cosine: Double

    init(_ actual: Tensor, _ expected: Tensor) {
        let a = actual.toFloats().map(Double.init), e = expected.toFloats().map(Double.init)
        precondition(a.count == e.count, "compared tensors differ in size: \(actual.shape) vs \(expected.shape)")
        let scale = e.map(abs).max() ?? 0
        relativeMaxAbs = zip(a, e).map { abs($0 - $1) }.max().map { $0 / max(scale, .leastNonzeroMagnitude) } ?? 0
        let dot = zip(a, e).map(*).reduce(0, +)
        let norms = (a.map { $0 * $0 }.reduce(0, +) * e.map { $0 * $0 }.reduce(0, +)).squareRoot()
        cosine = norms > 0 ? dot / norms : 0
    }

    var description: String { String(format: "relative max-abs %.3g, cosine %.9f", relativeMaxAbs, cosine) }
}

func XCTAssertAgrees(_ actual: Tensor, _ expected: Tensor, relative: Double, cosine: Double, _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let agreement = Agreement(actual, expected)
    print("[flux] \(label): \(agreement)")
    XCTAssertLessThanOrEqual(agreement.relativeMaxAbs, relative, "\(label): \(agreement)", file: file, line: line)
    XCTAssertGreaterThanOrEqual(agreement.cosine, cosine, "\(label): \(agreement)", file: file, line: line)
}

