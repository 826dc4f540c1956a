// The low-memory int8 precision, its on-disk conversion cache, and the step cache.
import Foundation
import XCTest
@testable import FluxDiT
import TensorEngine
import WeightFiles

final class FluxInt8Tests: XCTestCase {
    // int8 against the reference's BF16 forward: 8-bit weights (per output row) and 8-bit
    // activations (per token) each add ~0.4% relative noise per product, on top of BF16's own
    // rounding (~8e-3 against F32 here). Bounds: cosine 0.999 and 5e-2 of the output's range,
    // several times the measured 1.0e-2 and 0.99995, and far tighter than what a wrong scale or
    // zero point gives (cosine < 0.9).
    func testInt8VelocityStaysCloseToTheBF16Reference() throws {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .int8))
        XCTAssertEqual(dit.lora?.mode, .runtime, "int8 keeps the LoRA as a BF16 branch")
        XCTAssertEqual(dit.doubleBlocks[0].imageAttention.qkv.weight.dtype, .i8)
        XCTAssertEqual(dit.singleBlocks[0].linear2.weight.dtype, .i8)
        XCTAssertEqual(dit.singleBlocks[0].modulation.lin.weight.dtype, .i8)
        XCTAssertNotEqual(dit.imageIn.weight.dtype, .i8, "the embedders keep their stored type")
        let velocity = try FluxFixtures.velocity(dit, cases)
        XCTAssertEqual(velocity.dtype, .bf16)
        XCTAssertAgrees(velocity, try cases.tensor("bf16.d.velocity"), relative: 5e-2, cosine: 0.999, "int8 vs torch bf16")
    }

    func testConvertedWeightsAreCachedReusedAndRebuilt() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("uso-cache-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // A private copy of the checkpoint, so its modification time can change.
        let source = folder.appendingPathComponent("dit.safetensors")
        try FileManager.default.copyItem(at: FluxFixtures.directory.appendingPathComponent("dit.safetensors"), to: source)
        let cache = ConvertedWeightCache(directory: folder.appendingPathComponent("converted"))
        var warnings: [String] = []

        let first = try cache.weights(at: source.path, precision: .int8) { warnings.append($0) }
        XCTAssertTrue(first is SafetensorsFile, "the conversion is written and mapped")
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.directory.path)
        XCTAssertEqual(entries.count, 1, "one entry, no temporary file left: \(entries)")
        let entry = cache.directory.appendingPathComponent(entries[0])
        let written = try FileManager.default.attributesOfItem(atPath: entry.path)[.modificationDate] as? Date

        // A second run maps the same file without converting again.
        let second = try cache.weights(at: source.path, precision: .int8) { warnings.append($0) }
        XCTAssertEqual((second as? SafetensorsFile)?.path, entry.path)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: entry.path)[.modificationDate] as? Date, written)
        XCTAssertEqual(warnings, [])

        // The cached file gives exactly what converting in memory gives.
        let cases = try FluxFixtures.cases()
        let fromCache = try FluxFixtures.velocity(try FluxDiT(weights: second, lora: try FluxFixtures.lora(),
                                                              options: FluxLoadOptions(precision: .int8)), cases)
        let inMemory = try FluxFixtures.velocity(try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(),
                                                             options: FluxLoadOptions(precision: .int8)), cases)
        XCTAssertEqual(fromCache.toFloats(), inMemory.toFloats())

        // A corrupt entry (cut short) is never used: it is rebuilt.
        let bytes = try Data(contentsOf: entry)
        try bytes.prefix(bytes.count / 2).write(to: entry)
        let rebuilt = try cache.weights(at: source.path, precision: .int8) { warnings.append($0) }
        XCTAssertEqual(try Data(contentsOf: entry), bytes)
        XCTAssertEqual(rebuilt.keys.sorted(), second.keys.sorted())

        // A changed source gets a new entry, and the stale one goes.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: source.path)
        _ = try cache.weights(at: source.path, precision: .int8) { warnings.append($0) }
        let after = try FileManager.default.contentsOfDirectory(atPath: cache.directory.path)
        XCTAssertEqual(after.count, 1)
        XCTAssertNotEqual(after, entries)
        XCTAssertEqual(warnings, [])
    }

    func testAnUnwritableCacheFallsBackToConvertingInMemory() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("uso-cache-file-\(UUID().uuidString)")
        try Data("not a folder".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let cache = ConvertedWeightCache(directory: file.appendingPathComponent("converted"))
        var warnings: [String] = []
        let weights = try cache.weights(at: FluxFixtures.directory.appendingPathComponent("dit.safetensors").path,
                                        precision: .int8) { warnings.append($0) }
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("converting in memory"), warnings[0])
        let dit = try FluxDiT(weights: weights, lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .int8))
        XCTAssertEqual(dit.singleBlocks[0].linear1.weight.dtype, .i8)
    }

    func testPrecisionsWithoutACastUseTheSourceAsIs() throws {
        let cache = ConvertedWeightCache(directory: URL(fileURLWithPath: "/nonexistent/never-written"))
        let weights = try cache.weights(at: FluxFixtures.directory.appendingPathComponent("dit.safetensors").path,
                                        precision: .bf16) { XCTFail("no warning expected: \($0)") }
        XCTAssertEqual((weights as? SafetensorsFile)?.path, FluxFixtures.directory.appendingPathComponent("dit.safetensors").path)
    }
}

final class FluxStepCacheTests: XCTestCase {
    private func model() throws -> (FluxDiT, FluxContext, Tensor, Float) {
        let cases = try FluxFixtures.cases()
        let dit = try FluxDiT(weights: try FluxFixtures.dit(), lora: try FluxFixtures.lora(), options: FluxLoadOptions(precision: .f32))
        let context = try dit.prepare(try FluxFixtures.conditioning(cases, mode: .diagonal))
        return (dit, context, try cases.tensor("input.image"), try FluxFixtures.scalar(cases, "input.guidance"))
    }

    func testAThresholdOfZeroRunsEveryBlockAndChangesNothing() throws {
        let (dit, context, image, guidance) = try model()
        let cache = FluxStepCache(policy: .init(threshold: 0, warmupSteps: 0))
        for t: Float in [0.9, 0.8, 0.7] {
            let cached = try dit.velocity(image: image, timestep: t, guidance: guidance, context: context, cache: cache)
            let plain = try dit.velocity(image: image, timestep: t, guidance: guidance, context: context)
            XCTAssertEqual(cached.toFloats(), plain.toFloats())
        }
        XCTAssertEqual(cache.fullEvaluations, 3)
        XCTAssertEqual(cache.reusedEvaluations, 0)
    }

    func testAReusedResidualReproducesTheFullEvaluationOfTheSameInput() throws {
        let (dit, context, image, guidance) = try model()
        let cache = FluxStepCache(policy: .init(threshold: 0.01, warmupSteps: 1))
        let full = try dit.velocity(image: image, timestep: 0.5, guidance: guidance, context: context, cache: cache)
        // The same input again: the first block's residual has not changed, so the rest is reused.
        let reused = try dit.velocity(image: image, timestep: 0.5, guidance: guidance, context: context, cache: cache)
        XCTAssertEqual(cache.fullEvaluations, 1)
        XCTAssertEqual(cache.reusedEvaluations, 1)
        XCTAssertAgrees(reused, full, relative: 1e-5, cosine: 0.999999, "reused residual, same input")
        // A step far away changes the first block's residual beyond 1%: a full evaluation.
        _ = try dit.velocity(image: image, timestep: 0.05, guidance: guidance, context: context, cache: cache)
        XCTAssertEqual(cache.fullEvaluations, 2)
    }

    func testWarmupStepsAlwaysRunInFull() throws {
        let (dit, context, image, guidance) = try model()
        let cache = FluxStepCache(policy: .init(threshold: .infinity, warmupSteps: 3))
        for _ in 0..<5 { _ = try dit.velocity(image: image, timestep: 0.5, guidance: guidance, context: context, cache: cache) }
        XCTAssertEqual(cache.fullEvaluations, 3)
        XCTAssertEqual(cache.reusedEvaluations, 2)
    }
}
