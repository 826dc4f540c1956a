import XCTest
@testable import Pipeline

final class RunRecordTests: XCTestCase {
    /// Our config file is byte-identical to what `inference.py` writes with `json.dump(indent=4)`.
    func testReferenceConfigJSONMatchesPython() throws {
        let configs = try XCTUnwrap(PipelineFixtures.expected()["configs"] as? [[String: Any]])
        XCTAssertEqual(configs.count, 3)
        for config in configs {
            let fields = try XCTUnwrap(config["request"] as? [String: Any])
            var request = GenerationRequest(prompt: fields["prompt"] as! String, imagePaths: fields["imagePaths"] as! [String])
            if let g = fields["guidance"] as? Double { request.guidance = g }
            if let s = fields["seed"] as? Int { request.seed = UInt64(s) }
            if let w = fields["width"] as? Int { request.width = w }
            if let h = fields["height"] as? Int { request.height = h }
            if let n = fields["steps"] as? Int { request.steps = n }
            if let pe = fields["pe"] as? String { request.positionOffset = try XCTUnwrap(.init(rawValue: pe)) }
            var record = RunRecord(request: request, savePath: fields["savePath"] as? String ?? "output/inference")
            record.guidanceGiven = fields["guidanceGiven"] as? Bool ?? false
            XCTAssertEqual(record.referenceConfigJSON, config["expected"] as! String)
        }
    }

    func testImagePathsFollowTheReferenceConvention() {
        let styleOnly = GenerationRequest(prompt: "p", imagePaths: ["", "s1.webp", "s2.webp"])
        XCTAssertNil(styleOnly.contentImage)
        XCTAssertEqual(styleOnly.styleImages, ["s1.webp", "s2.webp"])
        XCTAssertEqual(styleOnly.imagePaths, ["", "s1.webp", "s2.webp"])
        var odd = GenerationRequest(prompt: "p", imagePaths: ["c.png"])
        odd.width = 1000; odd.height = 1030
        XCTAssertEqual(odd.latentAlignedSize.width, 992)
        XCTAssertEqual(odd.latentAlignedSize.height, 1024)
    }

    /// torch takes -1 as 2^64 - 1; the config records such a seed as the reference would the -1 given.
    func testSeedBeyondIntMaxIsRecordedAsTorchsNegativeSeed() {
        var request = GenerationRequest(prompt: "p")
        request.seed = UInt64.max
        let config = RunRecord(request: request, savePath: "out").referenceConfigJSON
        XCTAssertTrue(config.contains("\n    \"seed\": -1,\n"), config)
    }

    /// Every setting written into the PNG comes back from it, so `--from` re-runs the same request.
    func testPNGMetadataRoundTripKeepsEveryField() throws {
        var request = GenerationRequest(prompt: "a \"quoted\"\nprompt", contentImage: "/in/content.png",
                                        styleImages: ["/in/s1.png", "/in/s2.webp", "/in/s3.jpg"])
        request.width = 200
        request.height = 136
        request.steps = 7
        request.guidance = 3.3
        request.seed = UInt64.max
        request.modelType = .fluxDevFP8
        request.positionOffset = .h
        request.contentReferenceSize = 256
        request.sizeBase = 128
        request.useSiglip = false
        request.onlyLoRA = false
        request.instructEdit = true
        request.computeType = .f32
        request.samplePosterior = true
        request.ditWeights = .int8
        request.stepCache = .fast
        // Each field differs from its default, so a field the metadata drops cannot pass unnoticed.
        let defaults = Mirror(reflecting: GenerationRequest(prompt: "")).children.map { String(describing: $0.value) }
        let fields = Mirror(reflecting: request).children.map { ($0.label ?? "?", String(describing: $0.value)) }
        for ((label, value), defaultValue) in zip(fields, defaults) {
            XCTAssertNotEqual(value, defaultValue, "set \(label) to a non-default value in this test")
        }

        let chunks = RunRecord(request: request, savePath: "out").pngMetadata(seedUsed: request.seed, sizeGenerated: (192, 128),
                                                                              software: "uso")
        let text = Dictionary(chunks.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        let read = try XCTUnwrap(RunRecord.request(fromPNGText: text))
        for ((label, written), (_, readBack)) in zip(fields, Mirror(reflecting: read).children.map { ($0.label ?? "?", String(describing: $0.value)) }) {
            XCTAssertEqual(readBack, written, label)
        }
        XCTAssertEqual(read, request)
        XCTAssertNil(RunRecord.request(fromPNGText: ["parameters": "made elsewhere"]))
    }

    func testPythonFloatRepr() {
        XCTAssertEqual(PythonJSON.float(4).serialized(), "4.0")
        XCTAssertEqual(PythonJSON.float(1e-5).serialized(), "1e-05")
        XCTAssertEqual(PythonJSON.float(1e16).serialized(), "1e+16")
        XCTAssertEqual(PythonJSON.float(0.1).serialized(), "0.1")
    }
}
