import XCTest
@testable import ModelHub
@testable import ModelLayout

final class HubEnvironmentTests: XCTestCase {
    func testDotEnvParsing() {
        let variables = DotEnv.parse("""
            # weights
            FLUX_DEV=./weights/FLUX.1-dev/flux1-dev.safetensors
            export AE="./weights/FLUX.1-dev/ae.safetensors"
            T5='./weights/t5 xxl'   # quoted value with a space
            CLIP=./weights/clip-vit-l14 # trailing comment
            BROKEN LINE
            EMPTY=
            """)
        XCTAssertEqual(variables["FLUX_DEV"], "./weights/FLUX.1-dev/flux1-dev.safetensors")
        XCTAssertEqual(variables["AE"], "./weights/FLUX.1-dev/ae.safetensors")
        XCTAssertEqual(variables["T5"], "./weights/t5 xxl")
        XCTAssertEqual(variables["CLIP"], "./weights/clip-vit-l14")
        XCTAssertEqual(variables["EMPTY"], "")
        XCTAssertNil(variables["BROKEN LINE"])
        XCTAssertEqual(variables.count, 5)
    }

    /// As python-dotenv by default: a variable set in the process wins over `.env`.
    func testProcessVariablesOverrideDotEnv() throws {
        let root = try makeTemporaryDirectory(self)
        try Data("HF_TOKEN=from-file\nLORA=lora.safetensors\n".utf8).write(to: root.appendingPathComponent(".env"))
        let environment = HubEnvironment.loading(dotEnvIn: root, over: ["HF_TOKEN": "from-process"],
                                                 currentDirectory: root, homeDirectory: root)
        XCTAssertEqual(environment.value("HF_TOKEN"), "from-process")
        XCTAssertEqual(environment.url(forPath: environment.value("LORA")!).path,
                       root.appendingPathComponent("lora.safetensors").path)
    }

    func testTokenPrecedence() throws {
        let root = try makeTemporaryDirectory(self)
        var environment = try makeEnvironment(root: root, variables: ["HF_HOME": root.appendingPathComponent("hf").path])
        XCTAssertNil(environment.token())

        let tokenFile = root.appendingPathComponent("hf/token")
        try write(Array("hf_file\n".utf8), to: tokenFile)
        XCTAssertEqual(environment.token(), HubEnvironment.Token(value: "hf_file", source: tokenFile.path))

        environment.variables["HF_TOKEN"] = "hf_variable"
        XCTAssertEqual(environment.token(), HubEnvironment.Token(value: "hf_variable", source: "HF_TOKEN"))
        XCTAssertEqual(environment.token(explicit: "hf_flag"), HubEnvironment.Token(value: "hf_flag", source: "--token"))
    }

    func testDefaultTokenFileAndCacheLocations() throws {
        let root = try makeTemporaryDirectory(self)
        let environment = try makeEnvironment(root: root)
        try write(Array("hf_default".utf8), to: environment.homeDirectory.appendingPathComponent(".cache/huggingface/token"))
        XCTAssertEqual(environment.token()?.value, "hf_default")
        XCTAssertEqual(environment.huggingFaceCache.path,
                       environment.homeDirectory.appendingPathComponent(".cache/huggingface/hub").path)
        let custom = try makeEnvironment(root: root, variables: ["HF_HUB_CACHE": "~/hub-cache"])
        XCTAssertEqual(custom.huggingFaceCache.path, custom.homeDirectory.appendingPathComponent("hub-cache").path)
    }

    func testConvertedWeightsDirectory() throws {
        let root = try makeTemporaryDirectory(self)
        let plain = try makeEnvironment(root: root)
        XCTAssertEqual(plain.convertedWeightsDirectory.path, plain.homeDirectory.appendingPathComponent(".cache/uso/converted").path)
        let xdg = try makeEnvironment(root: root, variables: ["XDG_CACHE_HOME": "~/xdg"])
        XCTAssertEqual(xdg.convertedWeightsDirectory.path, xdg.homeDirectory.appendingPathComponent("xdg/uso/converted").path)
        let chosen = try makeEnvironment(root: root, variables: ["USO_CACHE_DIR": "~/mine", "XDG_CACHE_HOME": "~/xdg"])
        XCTAssertEqual(chosen.convertedWeightsDirectory.path, chosen.homeDirectory.appendingPathComponent("mine").path)
    }

    func testEndpoint() throws {
        let root = try makeTemporaryDirectory(self)
        XCTAssertEqual(try makeEnvironment(root: root).endpoint, "https://huggingface.co")
        XCTAssertEqual(try makeEnvironment(root: root, variables: ["HF_ENDPOINT": "https://hf-mirror.example/"]).endpoint,
                       "https://hf-mirror.example")
    }
}
