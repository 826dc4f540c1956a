// swift-tools-version: 6.0
// uso: a native Swift implementation of USO (unified style- and subject-driven generation on FLUX.1).
// The targets follow the data flow: tensor engine → weight files → models → pipeline → front ends.
import PackageDescription

// -O keeps bounds and overflow checks: release code parses untrusted files and requests.
let optimize: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo"], .when(configuration: .release))]
// No -march: the binary runs on any processor of its architecture; the kernels pick AVX2, AVX-512
// or AMX builds at run time (CKernels/dispatch.h).
let cOptimize: [CSetting] = [.unsafeFlags(["-O3", "-ffast-math", "-fno-finite-math-only"])]

let package = Package(
    name: "uso",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "uso", targets: ["USOCommand"]),
        .executable(name: "uso-bench", targets: ["Benchmarks"]),
        .library(name: "USO", targets: ["Pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
    ],
    targets: [
        // System C libraries from Debian's -dev packages (scripts/setup.sh installs them).
        .systemLibrary(name: "CDNNL", path: "Sources/System/CDNNL"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/System/COpenBLAS"),
        .systemLibrary(name: "CPNG", path: "Sources/System/CPNG", pkgConfig: "libpng"),
        .systemLibrary(name: "CJPEG", path: "Sources/System/CJPEG", pkgConfig: "libjpeg"),
        .systemLibrary(name: "CWebP", path: "Sources/System/CWebP", pkgConfig: "libwebp"),

        // Tensor engine: one tensor type, dtypes, CPU kernels, the backend seam.
        .target(name: "CKernels", path: "Sources/TensorEngine/CKernels", cSettings: cOptimize),
        .target(name: "TensorEngine", dependencies: ["CKernels", "CDNNL", "COpenBLAS"],
                path: "Sources/TensorEngine/Swift", swiftSettings: optimize),

        // Weight files: safetensors (mmap), PyTorch .bin (safe unpickler), sharded sets.
        .target(name: "WeightFiles", dependencies: ["TensorEngine"], swiftSettings: optimize),

        // Models: shared layers, then one target per model family.
        .target(name: "Layers", dependencies: ["TensorEngine", "WeightFiles"],
                path: "Sources/Models/Layers", swiftSettings: optimize),
        .target(name: "FluxDiT", dependencies: ["Layers"], path: "Sources/Models/FluxDiT", swiftSettings: optimize),
        .target(name: "TextEncoders", dependencies: ["Layers"], path: "Sources/Models/TextEncoders", swiftSettings: optimize),
        .target(name: "StyleEncoder", dependencies: ["Layers"], path: "Sources/Models/StyleEncoder", swiftSettings: optimize),
        .target(name: "Autoencoder", dependencies: ["Layers"], path: "Sources/Models/Autoencoder", swiftSettings: optimize),

        .target(name: "Tokenizers", swiftSettings: optimize),
        // libpng/libjpeg report errors by longjmp; CImageShims keeps those jumps inside C frames.
        .target(name: "CImageShims", dependencies: ["CPNG", "CJPEG"], path: "Sources/ImageIO/CImageShims"),
        .target(name: "ImageIO", dependencies: ["CImageShims", "CWebP"], path: "Sources/ImageIO/Swift",
                swiftSettings: optimize),

        // Which files a model set has, where they live on disk and on the hub, and the .env settings.
        .target(name: "ModelLayout", swiftSettings: optimize),
        .target(name: "Pipeline", dependencies: [
            "TensorEngine", "WeightFiles", "FluxDiT", "TextEncoders", "StyleEncoder", "Autoencoder",
            "Tokenizers", "ImageIO", "ModelLayout",
        ], swiftSettings: optimize),
        .target(name: "ModelHub", dependencies: [
            "ModelLayout",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], swiftSettings: optimize),
        // `uso serve`: HTTP API, job queue and the one self-contained page.
        .target(name: "WebServer", dependencies: [
            "Pipeline", "ImageIO", .product(name: "Hummingbird", package: "hummingbird"),
        ], resources: [.copy("Resources/presets")], swiftSettings: optimize),

        .executableTarget(name: "USOCommand", dependencies: [
            "Pipeline", "WeightFiles", "ModelHub", "WebServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/uso", swiftSettings: optimize),
        .executableTarget(name: "Benchmarks", dependencies: ["TensorEngine", "WeightFiles", "Pipeline"],
                          path: "Benchmarks", swiftSettings: optimize),

        .testTarget(name: "TensorEngineTests", dependencies: ["TensorEngine", "WeightFiles"]),
        .testTarget(name: "WeightFilesTests", dependencies: ["WeightFiles"]),
        .testTarget(name: "ModelsTests", dependencies: ["FluxDiT", "TextEncoders", "StyleEncoder", "Autoencoder", "WeightFiles"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "ModelLayout"]),
        // Runs the built `uso` binary; depending on its target makes `swift test` build it first.
        .testTarget(name: "USOCommandTests", dependencies: ["USOCommand", "ImageIO"]),
        .testTarget(name: "ModelHubTests", dependencies: [
            "ModelHub", "ModelLayout",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "WebServerTests", dependencies: [
            "WebServer", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
