import Foundation
import XCTest
import ImageIO
import TensorEngine
import WeightFiles
@testable import Pipeline

/// The shipped uso-mini keeps the subject of its content image and paints the style of its style
/// image, as judged by the two classifiers tools/uso_mini/evaluate.py trains on the generator's
/// ground truth (fixtures from `evaluate.py --test-fixtures DIR --test-cases 12`, see docs/uso-mini.md).
///
/// The cases are the first twelve held-out samples of each of the four modes (subject only, style
/// only, subject + style, layout-preserving), not hand-picked, generated here in Swift with the
/// model's own defaults (uso-defaults.json) and BF16 compute, as `uso generate` runs it.
/// - Style is scored on the 36 cases that carry a style image; chance is 1/9 (eight styles and
///   "plain"). The shipped model gets 20; 16 or more has probability 4·10⁻⁷ by chance (binomial tail).
/// - Subject is scored on all 48; chance is 1/8. The shipped model gets 25; 17 or more has
///   probability 4·10⁻⁵ by chance.
/// The thresholds read "far above chance", not "perfect" (on ground truth through the autoencoder the
/// classifiers themselves get subject 0.46–0.96 and style 0.67–0.96 by mode); the margins (four for
/// style, eight for subject) absorb BF16 kernels that differ between CPUs (AMX, oneDNN, widened F32).
final class DefaultModelQualityTests: XCTestCase {
    private let fixtures = RepositoryPaths.fixtures("uso-mini-quality")
    private let modelDirectory = RepositoryPaths.defaultModel

    private struct Cases: Decodable {
        struct Case: Decodable {
            var mode: String
            var prompt: String
            var seed: UInt64
            var subject: Int
            var style: Int
            var content: String?
            var style_image: String?
        }
        var subjects: [String]
        var styles: [String]
        var cases: [Case]
    }

    func testShippedModelKeepsSubjectAndStyleOnHeldOutPairs() throws {
        let score = try scoreHeldOutCases(label: "bf16") { _ in }
        XCTAssertGreaterThanOrEqual(score.style, 16, "the default model no longer paints the style")
        XCTAssertGreaterThanOrEqual(score.subject, 17, "the default model no longer keeps the subject")
    }

    /// The fastest settings, int8 weights and the fast step cache, on the same cases and thresholds:
    /// what they cost must stay inside the margins that absorb kernel differences between CPUs.
    /// `USO_QUALITY_VARIANTS=all` also scores int8 alone and each cache preset alone (the table in
    /// docs/benchmarks.md).
    func testInt8WeightsAndTheFastStepCacheKeepSubjectAndStyle() throws {
        var variants: [(String, (inout GenerationRequest) -> Void)] = [
            ("int8 + fast cache", { $0.ditWeights = .int8; $0.stepCache = .fast }),
        ]
        if ProcessInfo.processInfo.environment["USO_QUALITY_VARIANTS"] == "all" {
            variants += [("int8", { $0.ditWeights = .int8 }), ("balanced cache", { $0.stepCache = .balanced }),
                         ("fast cache", { $0.stepCache = .fast })]
        }
        for (label, configure) in variants {
            let score = try scoreHeldOutCases(label: label, configure)
            XCTAssertGreaterThanOrEqual(score.style, 16, "\(label) no longer paints the style")
            XCTAssertGreaterThanOrEqual(score.subject, 17, "\(label) no longer keeps the subject")
        }
    }

    /// Generates every case with the model's defaults changed by `configure`; returns how many got
    /// the subject right (of 48) and the style right (of the 36 with a style image).
    private func scoreHeldOutCases(label: String, _ configure: (inout GenerationRequest) -> Void) throws -> (subject: Int, style: Int) {
        let cases = try JSONDecoder().decode(
            Cases.self, from: Data(contentsOf: fixtures.appendingPathComponent("cases.json")))
        let weights = try SafetensorsFile(path: fixtures.appendingPathComponent("classifiers.safetensors").path)
        let subjectClassifier = try Classifier(weights, prefix: "subject")
        let styleClassifier = try Classifier(weights, prefix: "style")
        let pipeline = try USOPipeline(location: ModelLocation(directory: modelDirectory, modelType: .fluxDev))
        let notes = NoteLog()
        pipeline.notice = { notes.append($0) }
        let defaults = try XCTUnwrap(ModelDefaults.load(from: modelDirectory))

        var subjectsRight = 0, stylesRight = 0, styled = 0
        for item in cases.cases {
            var request = GenerationRequest(
                prompt: item.prompt,
                contentImage: item.content.map { fixtures.appendingPathComponent($0).path },
                styleImages: item.style_image.map { [fixtures.appendingPathComponent($0).path] } ?? [])
            defaults.apply(to: &request)
            request.seed = item.seed
            configure(&request)
            let image = try pipeline.generate(request, cancellation: CancellationFlag()) { _ in }.image
            let subject = subjectClassifier(image), style = styleClassifier(image)
            subjectsRight += subject == item.subject ? 1 : 0
            if item.style_image != nil {
                styled += 1
                stylesRight += style == item.style ? 1 : 0
            }
            print("quality [\(label)] \(item.mode) seed \(item.seed): subject \(cases.subjects[subject]) "
                  + "(want \(cases.subjects[item.subject])), style \(cases.styles[style]) (want \(cases.styles[item.style]))")
        }
        print("quality [\(label)]: style \(stylesRight)/\(styled) of the cases with a style image, subject \(subjectsRight)/\(cases.cases.count)"
              + (notes.stepCacheEvaluations.map { ", DiT evaluations \($0.full) full + \($0.reused) reused" } ?? ""))
        XCTAssertEqual(styled, 36, "the fixtures changed; update the thresholds' justification")
        XCTAssertEqual(cases.cases.count, 48, "the fixtures changed; update the thresholds' justification")
        return (subjectsRight, stylesRight)
    }

    /// evaluate.py's SmallCNN: stride-2 3×3 convolutions with SiLU, then the global mean and global
    /// maximum of every channel into a linear head.
    private struct Classifier {
        var convs: [(weight: Tensor, bias: Tensor)]
        var head: (weight: Tensor, bias: Tensor)

        init(_ file: SafetensorsFile, prefix: String) throws {
            let count = Set(file.keys.filter { $0.hasPrefix("\(prefix).convs.") }.map { $0.split(separator: ".")[2] }).count
            convs = try (0..<count).map { i in
                (try file.tensor("\(prefix).convs.\(i).weight"), try file.tensor("\(prefix).convs.\(i).bias"))
            }
            head = (try file.tensor("\(prefix).head.weight"), try file.tensor("\(prefix).head.bias"))
        }

        /// The most likely class of an 8-bit RGB image, read as evaluate.py reads it (x / 255 · 2 − 1).
        func callAsFunction(_ image: RGBImage) -> Int {
            let (w, h) = (image.width, image.height)
            var planar = [Float](repeating: 0, count: 3 * w * h)
            for i in 0..<(w * h) {
                for c in 0..<3 { planar[c * w * h + i] = Float(image.pixels[3 * i + c]) / 255 * 2 - 1 }
            }
            var x = Tensor(planar, shape: [3, h, w])
            for conv in convs {
                x = silu(conv2d(x, weight: conv.weight, bias: conv.bias, stride: 2, padding: 1))
            }
            let (channels, spatial) = (x.shape[0], x.shape[1] * x.shape[2])
            let values = x.toFloats()
            let planes = (0..<channels).map { c in values[c * spatial..<(c + 1) * spatial] }
            let pooled = planes.map { $0.reduce(0, +) / Float(spatial) } + planes.map { $0.max()! }
            let logits = linear(Tensor(pooled, shape: [1, 2 * channels]), weight: head.weight, bias: head.bias).toFloats()
            return logits.indices.max { logits[$0] < logits[$1] }!
        }
    }
}
