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

    func testPythonFloatRepr() {
        XCTAssertEqual(PythonJSON.float(4).serialized(), "4.0")
        XCTAssertEqual(PythonJSON.float(1e-5).serialized(), "1e-05")
        XCTAssertEqual(PythonJSON.float(1e16).serialized(), "1e+16")
        XCTAssertEqual(PythonJSON.float(0.1).serialized(), "0.1")
    }
}
