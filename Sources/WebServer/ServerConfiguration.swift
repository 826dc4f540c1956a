import Foundation

/// What the generator behind the server accepts and starts from. The page takes its slider ranges
/// and defaults from these (via `GET /api/info`), and the API validates submissions against them.
public struct GeneratorCapabilities: Sendable, Codable, Equatable {
    /// Shown on the page, e.g. "FLUX.1-dev + USO" or "uso-mini (bundled)".
    public var modelName: String
    public var defaultSide: Int
    public var minSide: Int
    public var maxSide: Int
    /// Output sizes are floored to multiples of this (the latent patch, 16 pixels).
    public var sideStep: Int
    public var defaultSteps: Int
    public var maxSteps: Int
    public var defaultGuidance: Double
    public var minGuidance: Double
    public var maxGuidance: Double
    public var defaultContentReferenceSize: Int
    public var minContentReferenceSize: Int
    public var maxContentReferenceSize: Int
    /// "Keep input size" scales the preprocessed content image by `keepSizeBase / contentReferenceSize`
    /// (the reference's app uses 1024, the size its model is trained at).
    public var keepSizeBase: Int
    public var maxStyleImages: Int

    /// The reference demo's ranges and defaults (spec §1.4), for the full-size FLUX.1-dev model.
    public static let reference = GeneratorCapabilities(
        modelName: "FLUX.1-dev + USO", defaultSide: 1024, minSide: 512, maxSide: 1536, sideStep: 16,
        defaultSteps: 25, maxSteps: 50, defaultGuidance: 4, minGuidance: 1, maxGuidance: 5,
        defaultContentReferenceSize: 512, minContentReferenceSize: 16, maxContentReferenceSize: 1024,
        keepSizeBase: 1024, maxStyleImages: 2)

    public init(modelName: String, defaultSide: Int, minSide: Int, maxSide: Int, sideStep: Int,
                defaultSteps: Int, maxSteps: Int, defaultGuidance: Double, minGuidance: Double, maxGuidance: Double,
                defaultContentReferenceSize: Int, minContentReferenceSize: Int, maxContentReferenceSize: Int,
                keepSizeBase: Int, maxStyleImages: Int) {
        self.modelName = modelName
        self.defaultSide = defaultSide
        self.minSide = minSide
        self.maxSide = maxSide
        self.sideStep = sideStep
        self.defaultSteps = defaultSteps
        self.maxSteps = maxSteps
        self.defaultGuidance = defaultGuidance
        self.minGuidance = minGuidance
        self.maxGuidance = maxGuidance
        self.defaultContentReferenceSize = defaultContentReferenceSize
        self.minContentReferenceSize = minContentReferenceSize
        self.maxContentReferenceSize = maxContentReferenceSize
        self.keepSizeBase = keepSizeBase
        self.maxStyleImages = maxStyleImages
    }
}

/// Limits on uploaded reference images, checked from the header before anything is decoded.
public struct UploadLimits: Sendable, Codable, Equatable {
    /// Bytes per image file (after base64 decoding for JSON submissions).
    public var maxImageBytes: Int
    /// Width x height per image.
    public var maxImagePixels: Int

    public static let `default` = UploadLimits(maxImageBytes: 20 << 20, maxImagePixels: 4096 * 4096)

    public init(maxImageBytes: Int, maxImagePixels: Int) {
        self.maxImageBytes = maxImageBytes
        self.maxImagePixels = maxImagePixels
    }

    /// The largest request body worth reading: every image at its limit, base64-inflated (4/3),
    /// plus room for the text fields and multipart framing.
    var maxRequestBytes: Int { (maxImageBytes / 3 + 1) * 4 * 3 + (256 << 10) }
}

/// Everything `uso serve` is started with.
public struct ServerConfiguration: Sendable {
    /// Listen address; loopback unless the user asks otherwise.
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests); `onListening` reports it.
    public var port = 7860
    /// Host header names accepted beside the listen address (and, on loopback or a wildcard address,
    /// localhost, 127.0.0.1 and [::1]); others get 421, which stops DNS rebinding. `--allowed-host`.
    public var allowedHosts: [String] = []
    /// When set, every `/api/` request needs `Authorization: Bearer <token>`.
    public var token: String?
    /// Connections open at once; further ones wait, unaccepted, until one closes.
    public var maxConnections = 64
    /// A connection is closed when no request part arrives for this long: a request's head must be
    /// complete within it, and a body may not stall longer (a running response is not cut).
    public var idleTimeout: Duration = .seconds(30)
    /// Job submissions whose bodies are read at once (each up to `uploads.maxRequestBytes`); more get 503.
    public var maxConcurrentUploads = 4
    /// How many unfinished jobs (waiting + running) the server holds; one more is refused with 503.
    public var queueCapacity = 8
    /// Finished jobs kept for the history gallery; older ones are forgotten (their images stay on disk).
    public var historyLimit = 100
    public var uploads = UploadLimits.default
    /// Results go to `outputRoot/YYYY-MM-DD/`, as the CLI writes them.
    public var outputRoot = URL(fileURLWithPath: "outputs")
    public var capabilities = GeneratorCapabilities.reference

    public init() {}
}

/// Why `uso serve` cannot start, in a sentence that says what to change.
public struct ServerStartError: Error, CustomStringConvertible, LocalizedError {
    public let description: String
    public var errorDescription: String? { description }
}
