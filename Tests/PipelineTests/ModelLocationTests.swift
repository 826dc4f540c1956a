import Foundation
import ModelLayout
import XCTest
@testable import Pipeline

/// The folder layout comes from ModelLayout's catalog (the one place that knows it), and the
/// reference's `.env` variables move single parts, relative paths taken from the working directory.
final class ModelLocationTests: XCTestCase {
    private let models = URL(fileURLWithPath: "/models")

    private func environment(_ variables: [String: String]) -> HubEnvironment {
        HubEnvironment(variables: variables, currentDirectory: URL(fileURLWithPath: "/work"),
                       homeDirectory: URL(fileURLWithPath: "/home/user"))
    }

    func testReferenceDownloaderLayout() {
        let dev = ModelLocation(directory: models, modelType: .fluxDev)
        XCTAssertEqual(dev.transformer.path, "/models/FLUX.1-dev/flux1-dev.safetensors")
        XCTAssertEqual(dev.autoencoder.path, "/models/FLUX.1-dev/ae.safetensors")
        XCTAssertEqual(dev.lora.path, "/models/USO/uso_flux_v1.0/dit_lora.safetensors")
        XCTAssertEqual(dev.projector.path, "/models/USO/uso_flux_v1.0/projector.safetensors")
        XCTAssertEqual([dev.t5.path, dev.clip.path, dev.siglip.path], ["/models/t5-xxl", "/models/clip-vit-l14", "/models/siglip"])
        XCTAssertEqual(ModelLocation(directory: models, modelType: .fluxDevFP8), dev, "fp8 reads the bf16 files")
        XCTAssertEqual(ModelLocation(directory: models, modelType: .fluxSchnell).transformer.path,
                       "/models/FLUX.1-schnell/flux1-schnell.safetensors")
        XCTAssertEqual(ModelLocation(directory: models, modelType: .fluxKreaDev).transformer.path,
                       "/models/FLUX.1-Krea-dev/flux1-krea-dev.safetensors")
    }

    func testEnvironmentVariablesMoveSingleParts() {
        let env = environment(["AE": "/weights/ae.safetensors", "T5": "encoders/t5", "LORA": "~/uso/lora.safetensors",
                               "FLUX_DEV": "/weights/dev.safetensors", "FLUX_DEV_FP8": "/weights/dev-fp8.safetensors",
                               "SIGLIP_PATH": "  "])
        let dev = ModelLocation(directory: models, modelType: .fluxDev, environment: env)
        XCTAssertEqual(dev.transformer.path, "/weights/dev.safetensors")
        XCTAssertEqual(dev.autoencoder.path, "/weights/ae.safetensors")
        XCTAssertEqual(dev.t5.path, "/work/encoders/t5")
        XCTAssertEqual(dev.lora.path, "/home/user/uso/lora.safetensors")
        XCTAssertEqual(dev.siglip.path, "/models/siglip", "a blank variable counts as unset")
        XCTAssertEqual(dev.clip.path, "/models/clip-vit-l14")
        XCTAssertEqual(ModelLocation(directory: models, modelType: .fluxDevFP8, environment: env).transformer.path,
                       "/weights/dev-fp8.safetensors", "FLUX_DEV_FP8 is the fp8 type's own variable")
        XCTAssertEqual(ModelLocation(directory: models, modelType: .fluxDevFP8, environment: environment(["FLUX_DEV": "/w/dev"]))
            .transformer.path, "/w/dev", "without it, fp8 falls back to FLUX_DEV")
    }

    func testMissingPartNamesFileAndDownloadCommand() {
        let location = ModelLocation(directory: URL(fileURLWithPath: "/nonexistent-uso-models"), modelType: .fluxDev)
        XCTAssertThrowsError(try location.checkPresent()) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("/nonexistent-uso-models/FLUX.1-dev/flux1-dev.safetensors"), message)
            XCTAssertTrue(message.contains("uso download"), message)
        }
    }
}
