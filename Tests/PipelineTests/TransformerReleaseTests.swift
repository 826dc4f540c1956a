import Foundation
import XCTest
@testable import Pipeline

/// `--offload` (and every single-image run) releases the DiT before the decoder loads, so the peak
/// is the larger of the two, not their sum; the image must not change, and the next request reloads it.
final class TransformerReleaseTests: XCTestCase {
    private let modelDirectory = RepositoryPaths.defaultModel

    func testReleasingBeforeDecodingKeepsTheImageAndReloadsOnDemand() throws {
        var request = GenerationRequest(prompt: "a small subject at the top left on a dark background",
                                        contentImage: nil, styleImages: [])
        (request.width, request.height, request.steps) = (32, 32, 2)
        let pipeline = try USOPipeline(location: ModelLocation(directory: modelDirectory, modelType: .fluxDev))

        let kept = try pipeline.generate(request, cancellation: CancellationFlag()) { _ in }
        XCTAssertTrue(pipeline.isTransformerLoaded, "by default the DiT stays for the next image")

        pipeline.releasesTransformerBeforeDecoding = true
        let released = try pipeline.generate(request, cancellation: CancellationFlag()) { _ in }
        XCTAssertFalse(pipeline.isTransformerLoaded)
        XCTAssertEqual(released.image, kept.image)

        let reloaded = try pipeline.generate(request, cancellation: CancellationFlag()) { _ in }
        XCTAssertEqual(reloaded.image, kept.image)
    }
}
