// Shared helpers of the autoencoder tests: the fixtures written by tools/fixtures/autoencoder.py and
// error measures.
import Foundation
import XCTest
import TensorEngine
import WeightFiles
@testable import Autoencoder

enum AutoencoderFixtures {
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Tests/Fixtures/autoencoder")
    }()

    static var weightsPath: String { directory.appendingPathComponent("tiny_ae.safetensors").path }

    static func weights() throws -> SafetensorsFile { try SafetensorsFile(path: weightsPath) }

    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent("expected.safetensors").path)
    }

    /// The fixture's weights as an editable in-memory set (for malformed-file tests).
    static func weightDictionary() throws -> [String: Tensor] {
        let file = try weights()
        return try Dictionary(uniqueKeysWithValues: file.keys.map { ($0, try file.tensor($0)) })
    }
}

/// How far `actual` is from `expected`.
struct AutoencoderDifference: CustomStringConvertible {
    let maxAbs: Float
    /// maxAbs relative to the largest expected magnitude.
    let relative: Float
    let cosine: Double
    /// PSNR in dB for images in [-1, 1] (peak-to-peak 2).
    let psnr: Double

    init(_ actual: Tensor, _ expected: Tensor) {
        precondition(actual.shape == expected.shape, "shapes \(actual.shape) vs \(expected.shape)")
        let a = actual.toFloats(), e = expected.toFloats()
        var maxAbs: Float = 0, scale: Float = 0, dot = 0.0, na = 0.0, ne = 0.0, squared = 0.0
        for (x, y) in zip(a, e) {
            maxAbs = max(maxAbs, abs(x - y)); scale = max(scale, abs(y))
            dot += Double(x) * Double(y); na += Double(x) * Double(x); ne += Double(y) * Double(y)
            squared += Double(x - y) * Double(x - y)
        }
        self.maxAbs = maxAbs
        relative = maxAbs / max(scale, .leastNormalMagnitude)
        cosine = dot / max((na * ne).squareRoot(), .leastNormalMagnitude)
        psnr = 10 * log10(4 / max(squared / Double(a.count), 1e-30))
    }

    var description: String {
        String(format: "max-abs %.3g, relative %.3g, cosine %.8f, PSNR %.1f dB", maxAbs, relative, cosine, psnr)
    }
}
