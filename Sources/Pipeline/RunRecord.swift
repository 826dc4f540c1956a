/// What gets written beside each image: the reference's config JSON (the argument dataclass of
/// `inference.py`, keys in its order) and the PNG text metadata, with its reader for `uso generate --from`.
public struct RunRecord: Sendable {
    public var request: GenerationRequest
    /// CLI-level settings the reference records too.
    public var savePath: String
    public var evalJSONPath: String?
    public var offload = false
    public var imagesPerPrompt = 1
    /// The rank of the LoRA used (the reference records its `--lora_rank`, which must equal the file's).
    public var loraRank = 128
    public var concatRefs = false
    /// Accepted as the reference's flag; the weights always come from `uso download`.
    public var hfDownload = false
    public var checkpointPath: String?
    /// Whether --guidance was given (the reference then records a float, else the integer default).
    public var guidanceGiven = false

    public init(request: GenerationRequest, savePath: String) {
        self.request = request
        self.savePath = savePath
    }

    /// `inference.py`'s config file: `json.dump(asdict(args), indent=4)` after the entry's prompt and
    /// image paths are filled in. The seed is the base seed, width/height as given.
    public var referenceConfigJSON: String {
        let r = request
        let guidance: PythonJSON = guidanceGiven || r.guidance != r.guidance.rounded() ? .float(r.guidance) : .int(Int(r.guidance))
        return PythonJSON.object([
            ("prompt", .string(r.prompt)),
            ("image_paths", .array(r.imagePaths.map { .string($0) })),
            ("eval_json_path", evalJSONPath.map { .string($0) } ?? .null),
            ("offload", .bool(offload)),
            ("num_images_per_prompt", .int(imagesPerPrompt)),
            ("model_type", .string(r.modelType.rawValue)),
            ("width", .int(r.width)),
            ("height", .int(r.height)),
            ("num_steps", .int(r.steps)),
            ("guidance", guidance),
            // torch takes seeds modulo 2^64: one above Int.max is written as its negative twin (-1 for 2^64 - 1).
            ("seed", .int(Int(truncatingIfNeeded: r.seed))),
            ("save_path", .string(savePath)),
            ("only_lora", .bool(r.onlyLoRA)),
            ("concat_refs", .bool(concatRefs)),
            ("lora_rank", .int(loraRank)),
            ("pe", .string(r.positionOffset.rawValue)),
            ("content_ref", .int(r.contentReferenceSize)),
            ("ckpt_path", checkpointPath.map { .string($0) } ?? .null),
            ("use_siglip", .bool(r.useSiglip)),
            ("instruct_edit", .bool(r.instructEdit)),
            ("hf_download", .bool(hfDownload)),
        ]).serialized()
    }

    /// PNG text chunks: our own keys (one per setting as given, read back by `--from`) and an
    /// A1111-style `parameters` chunk that other image tools display, with the size generated.
    public func pngMetadata(seedUsed: UInt64, sizeGenerated: (width: Int, height: Int), software: String) -> [(key: String, value: String)] {
        let r = request
        let names = ([r.contentImage].compactMap { $0 } + r.styleImages).map { $0.lastComponent }
        let a1111 = """
        \(r.prompt)
        Steps: \(r.steps), Sampler: Euler, Seed: \(seedUsed), Size: \(sizeGenerated.width)x\(sizeGenerated.height), Guidance: \(r.guidance), \
        Model: \(r.modelType.rawValue), Content: \(r.contentImage.map { $0.lastComponent } ?? "none"), \
        Styles: \(r.styleImages.isEmpty ? "none" : r.styleImages.map { $0.lastComponent }.joined(separator: "; "))
        """
        var stored = r
        stored.seed = seedUsed
        return [("parameters", a1111)] + Self.settings.map { ($0.key, $0.text(stored)) }
            + [("uso:references", names.joined(separator: ", ")), ("Software", software)]
    }

    /// The request stored by `pngMetadata` (its seed is the one used); nil when the chunks hold no
    /// uso settings. A setting missing (an older file) keeps its default.
    public static func request(fromPNGText text: [String: String]) -> GenerationRequest? {
        guard let prompt = text["uso:prompt"] else { return nil }
        var request = GenerationRequest(prompt: prompt)
        for setting in settings {
            if let value = text[setting.key] { setting.read(&request, value) }
        }
        return request
    }

    /// Every request setting with its PNG text key: the writer and the reader both go through this list.
    private static var settings: [StoredSetting] {
        [
            StoredSetting("uso:prompt", text: \.prompt, read: { $0.prompt = $1 }),
            StoredSetting("uso:content", text: { $0.contentImage ?? "" }, read: { $0.contentImage = $1.isEmpty ? nil : $1 }),
            StoredSetting("uso:styles", text: { $0.styleImages.joined(separator: "\n") },
                          read: { $0.styleImages = $1.split(separator: "\n").map(String.init) }),
            StoredSetting("uso:seed", \.seed),
            StoredSetting("uso:width", \.width),
            StoredSetting("uso:height", \.height),
            StoredSetting("uso:steps", \.steps),
            StoredSetting("uso:guidance", \.guidance),
            StoredSetting("uso:model_type", \.modelType),
            StoredSetting("uso:pe", \.positionOffset),
            StoredSetting("uso:content_ref", \.contentReferenceSize),
            StoredSetting("uso:dtype", \.computeType),
            StoredSetting("uso:size_base", \.sizeBase),
            StoredSetting("uso:instruct_edit", \.instructEdit),
            StoredSetting("uso:only_lora", \.onlyLoRA),
            StoredSetting("uso:use_siglip", \.useSiglip),
            StoredSetting("uso:sample_posterior", \.samplePosterior),
            StoredSetting("uso:dit_weights", \.ditWeights),
            StoredSetting("uso:step_cache", \.stepCache),
        ]
    }
}

/// One request setting as PNG text: how to write it and how to read it back.
private struct StoredSetting {
    let key: String
    let text: (GenerationRequest) -> String
    let read: (inout GenerationRequest, String) -> Void

    init(_ key: String, text: @escaping (GenerationRequest) -> String, read: @escaping (inout GenerationRequest, String) -> Void) {
        (self.key, self.text, self.read) = (key, text, read)
    }

    /// Numbers and booleans, in Swift's round-trip text form; unreadable text keeps the default.
    init<T: LosslessStringConvertible>(_ key: String, _ field: WritableKeyPath<GenerationRequest, T>) {
        self.init(key, text: { String($0[keyPath: field]) }, read: { request, text in
            if let value = T(text) { request[keyPath: field] = value }
        })
    }

    init<T: RawRepresentable>(_ key: String, _ field: WritableKeyPath<GenerationRequest, T>) where T.RawValue == String {
        self.init(key, text: { $0[keyPath: field].rawValue }, read: { request, text in
            if let value = T(rawValue: text) { request[keyPath: field] = value }
        })
    }
}

extension String {
    /// The last component of a path.
    var lastComponent: String { split(separator: "/").last.map(String.init) ?? self }
}
