/// What gets written beside each image: the reference's config JSON (the argument dataclass of
/// `inference.py`, keys in its order) and the PNG text metadata that `uso generate --from` reads.
public struct RunRecord: Sendable {
    public var request: GenerationRequest
    /// CLI-level settings the reference records too.
    public var savePath: String
    public var evalJSONPath: String?
    public var offload = false
    public var imagesPerPrompt = 1
    public var loraRank = 128
    public var concatRefs = false
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
            ("seed", .int(Int(r.seed))),
            ("save_path", .string(savePath)),
            ("only_lora", .bool(r.onlyLoRA)),
            ("concat_refs", .bool(concatRefs)),
            ("lora_rank", .int(loraRank)),
            ("pe", .string(r.positionOffset.rawValue)),
            ("content_ref", .int(r.contentReferenceSize)),
            ("ckpt_path", checkpointPath.map { .string($0) } ?? .null),
            ("use_siglip", .bool(r.useSiglip)),
            ("instruct_edit", .bool(r.instructEdit)),
            ("hf_download", .bool(false)),
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
        return [
            ("parameters", a1111),
            ("uso:prompt", r.prompt),
            ("uso:content", r.contentImage ?? ""),
            ("uso:styles", r.styleImages.joined(separator: "\n")),
            ("uso:seed", String(seedUsed)),
            ("uso:width", String(r.width)),
            ("uso:height", String(r.height)),
            ("uso:steps", String(r.steps)),
            ("uso:guidance", String(r.guidance)),
            ("uso:model_type", r.modelType.rawValue),
            ("uso:pe", r.positionOffset.rawValue),
            ("uso:content_ref", String(r.contentReferenceSize)),
            ("uso:dtype", r.computeType.rawValue),
            ("uso:references", names.joined(separator: ", ")),
            ("Software", software),
        ]
    }
}

extension String {
    /// The last component of a path.
    var lastComponent: String { split(separator: "/").last.map(String.init) ?? self }
}
