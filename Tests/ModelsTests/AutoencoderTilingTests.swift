// Tiled decoding: the layout, the blend against the PyTorch fixture's tiled decode, and how far tiles
// are from a whole decode (GroupNorm and the mid attention see only their tile).
import XCTest
import TensorEngine
import WeightFiles
@testable import Autoencoder

final class AutoencoderTilingTests: XCTestCase {
    func testTileSpansAreEvenAndOverlap() {
        let layout = TileLayout(maxTileSize: 12, overlap: 4)
        XCTAssertEqual(layout.spans(24), [0..<11, 6..<17, 13..<24])
        XCTAssertEqual(layout.spans(16), [0..<10, 6..<16])
        XCTAssertEqual(layout.spans(12), [0..<12])
        let flux = TileLayout(maxTileSize: 64, overlap: TileLayout.defaultOverlap)
        for length in [65, 100, 128, 129, 200, 257] {
            let spans = flux.spans(length)
            XCTAssertEqual(spans.first?.lowerBound, 0)
            XCTAssertEqual(spans.last?.upperBound, length)
            XCTAssertTrue(spans.allSatisfy { $0.count <= 64 && $0.count == spans[0].count }, "\(length): \(spans)")
            for (a, b) in zip(spans, spans.dropFirst()) { XCTAssertGreaterThanOrEqual(a.upperBound - b.lowerBound, 16, "\(length): \(spans)") }
        }
    }

    func testTiledDecodeMatchesTorchAndIsBoundedAgainstWholeDecode() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights(), parts: .decoder)
        let expected = try AutoencoderFixtures.expected()
        let latent = try expected.tensor("latent")

        let tiled = try model.decode(latent, tiling: .tiled(TileLayout(maxTileSize: 12, overlap: 4)))
        let blendDifference = AutoencoderDifference(tiled, try expected.tensor("decoded_tiled"))
        print("tiled decode vs torch tiled decode: \(blendDifference)")
        XCTAssertLessThan(blendDifference.relative, AutoencoderParityTests.f32Tolerance)

        // 3×2 tiles of a 24×16 latent, each seeing under half the image: the fixture's worst case.
        let whole = try model.decode(latent, tiling: .disabled)
        let tilingCost = AutoencoderDifference(tiled, whole)
        print("tiled (12, overlap 4) vs whole decode: \(tilingCost)")
        XCTAssertGreaterThan(tilingCost.maxAbs, 0)   // tiles really are decoded on their own
        XCTAssertGreaterThan(tilingCost.psnr, 20)

        // More context per tile brings it closer to the whole decode.
        let larger = try model.decode(latent, tiling: .tiled(TileLayout(maxTileSize: 20, overlap: 8)))
        let largerCost = AutoencoderDifference(larger, whole)
        print("tiled (20, overlap 8) vs whole decode: \(largerCost)")
        XCTAssertGreaterThan(largerCost.psnr, tilingCost.psnr)

        // One tile covering everything is the whole decode.
        let single = try model.decode(latent, tiling: .tiled(TileLayout(maxTileSize: 24, overlap: 4)))
        XCTAssertEqual(single.toFloats(), whole.toFloats())
    }

    func testAutomaticTilingFollowsTheMemoryBudget() throws {
        let model = try Autoencoder(weights: AutoencoderFixtures.weights(), parts: .decoder)
        let needed = model.config.estimatedDecodeBytes(latentHeight: 24, latentWidth: 16)
        // [3, 48, 32] output; level 0 is 64 wide at 48×32.
        XCTAssertEqual(needed, 64 * 48 * 32 * MemoryFigures.activationCopiesAtPeak * 4)
        XCTAssertNil(try model.tileLayout(for: .automatic(memoryBudget: needed), latentHeight: 24, latentWidth: 16))
        let layout = try XCTUnwrap(model.tileLayout(for: .automatic(memoryBudget: needed / 2), latentHeight: 24, latentWidth: 16))
        XCTAssertLessThan(layout.maxTileSize, 24)
        XCTAssertLessThanOrEqual(model.config.estimatedDecodeBytes(latentHeight: layout.maxTileSize, latentWidth: layout.maxTileSize), needed / 2)
        XCTAssertEqual(layout.overlap, layout.maxTileSize / 4)
        let starved = try XCTUnwrap(model.tileLayout(for: .automatic(memoryBudget: 1), latentHeight: 128, latentWidth: 128))
        XCTAssertEqual(starved, TileLayout(maxTileSize: TileLayout.smallestTile, overlap: 2))

        // FLUX at 1024²: the widest activation is level 1's 256 channels upsampled to 1024×1024.
        XCTAssertEqual(AutoencoderConfig.flux.estimatedDecodeBytes(latentHeight: 128, latentWidth: 128),
                       256 * 1024 * 1024 * MemoryFigures.activationCopiesAtPeak * 4)
        XCTAssertNotNil(MemoryStatus.availableBytes())
        XCTAssertNotNil(MemoryStatus.peakResidentBytes())
    }
}
