import Foundation
import ImageIO
import Pipeline

/// A field of a submitted job, whichever way it came: JSON values or multipart parts.
enum SubmittedValue {
    case text(String)
    case number(Double)
    case bool(Bool)
    case null
    /// Image bytes: a multipart file, or a base64 string in JSON (decoded when read as an image).
    case file(Data)
    case list([SubmittedValue])
}

/// The settings of one job, validated against the generator's capabilities; what the API echoes.
public struct JobParameters: Sendable, Codable, Equatable {
    public var prompt: String
    /// The seed used (a random one when -1 was asked for).
    public var seed: UInt64
    public var randomSeed: Bool
    public var width: Int
    public var height: Int
    public var keepInputSize: Bool
    public var steps: Int
    public var guidance: Double
    public var contentReferenceSize: Int
    /// Step caching: off (every block, as the reference), balanced or fast.
    public var stepCache: StepCachePreset
}

/// A reference image that passed the checks: its header said an image of allowed size, and it
/// decoded cleanly.
struct ValidatedImage {
    let data: Data
    let info: ImageInfo
    let decodedWidth: Int
    let decodedHeight: Int
}

/// A job as it arrives: parameters plus its validated reference images, not yet stored anywhere.
struct JobSubmission {
    static let fieldNames = ["prompt", "seed", "width", "height", "keepInputSize", "steps", "guidance",
                             "contentReferenceSize", "stepCache", "contentImage", "styleImages"]
    /// The reference app draws random seeds from [0, 1e8).
    static let randomSeedRange: ClosedRange<UInt64> = 0...99_999_999
    /// Seeds travel as JSON numbers: integers beyond 2^53 would be rounded.
    static let maxSeed: Int64 = 1 << 53 - 1

    var parameters: JobParameters
    var contentImage: ValidatedImage?
    var styleImages: [ValidatedImage]

    init(fields: [String: SubmittedValue], capabilities: GeneratorCapabilities, limits: UploadLimits) throws {
        let form = FieldReader(fields: fields)
        try form.rejectUnknown(allowed: Self.fieldNames)
        let caps = capabilities

        guard let prompt = try form.string("prompt") else {
            throw APIError.badRequest("the field 'prompt' is required (it may be empty: \"\")")
        }
        let content = try form.image("contentImage", limits: limits)
        let styles = try form.images("styleImages", limits: limits)
        guard styles.count <= caps.maxStyleImages else {
            throw APIError.badRequest("at most \(caps.maxStyleImages) style images are accepted, got \(styles.count)")
        }

        let seedValue = try form.integer("seed", in: -1...Self.maxSeed, default: -1,
                                         meaning: "-1 (random) or a seed from 0 to \(Self.maxSeed)")
        let keepInputSize = try form.bool("keepInputSize", default: false)
        let contentReferenceSize = try form.integer(
            "contentReferenceSize", in: Int64(caps.minContentReferenceSize)...Int64(caps.maxContentReferenceSize),
            default: Int64(caps.defaultContentReferenceSize))
        var width = Int(try form.integer("width", in: Int64(caps.minSide)...Int64(caps.maxSide), default: Int64(caps.defaultSide)))
        var height = Int(try form.integer("height", in: Int64(caps.minSide)...Int64(caps.maxSide), default: Int64(caps.defaultSide)))
        if keepInputSize {
            guard let content else {
                throw APIError.badRequest("'keepInputSize' needs a content image: attach one or turn it off")
            }
            (width, height) = Self.keptSize(content, contentReferenceSize: Int(contentReferenceSize), capabilities: caps)
        }
        parameters = JobParameters(
            prompt: prompt,
            seed: seedValue < 0 ? UInt64.random(in: Self.randomSeedRange) : UInt64(seedValue),
            randomSeed: seedValue < 0,
            width: width, height: height, keepInputSize: keepInputSize,
            steps: Int(try form.integer("steps", in: 1...Int64(caps.maxSteps), default: Int64(caps.defaultSteps))),
            guidance: try form.number("guidance", in: caps.minGuidance...caps.maxGuidance, default: caps.defaultGuidance),
            contentReferenceSize: Int(contentReferenceSize),
            stepCache: try Self.stepCache(form.string("stepCache")))
        contentImage = content
        styleImages = styles
        try Self.validate(parameters, content: content)
    }

    private static func stepCache(_ text: String?) throws -> StepCachePreset {
        guard let text else { return .off }
        guard let preset = StepCachePreset(rawValue: text) else {
            throw APIError.badRequest("'stepCache' must be one of \(StepCachePreset.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return preset
    }

    /// The request model's checks, which the CLI makes too (the capabilities may allow more than
    /// the generator takes, e.g. a content image cropped to nothing).
    private static func validate(_ p: JobParameters, content: ValidatedImage?) throws {
        var request = GenerationRequest(prompt: p.prompt)
        (request.width, request.height, request.steps) = (p.width, p.height, p.steps)
        (request.guidance, request.contentReferenceSize) = (p.guidance, p.contentReferenceSize)
        do {
            try request.validate(contentImageSize: content.map { ($0.decodedWidth, $0.decodedHeight) })
        } catch let invalid as InvalidSetting {
            throw APIError.badRequest("\(invalid.setting.fieldName) \(invalid.requirement)")
        }
    }

    /// "Keep input size": the request model's instruct-edit size (the preprocessed content image
    /// scaled by `keepSizeBase / contentReferenceSize`, spec §1.4). A size beyond what the generator
    /// accepts is scaled down uniformly rather than refused, so the aspect ratio survives.
    static func keptSize(_ content: ValidatedImage, contentReferenceSize: Int,
                         capabilities caps: GeneratorCapabilities) -> (width: Int, height: Int) {
        let edit = GenerationRequest.editSize(contentImageWidth: content.decodedWidth, contentImageHeight: content.decodedHeight,
                                              contentReferenceSize: contentReferenceSize, sizeBase: caps.keepSizeBase)
        var width = Double(edit.width), height = Double(edit.height)
        let overshoot = max(width, height) / Double(caps.maxSide)
        if overshoot > 1 { width /= overshoot; height /= overshoot }
        func aligned(_ side: Double) -> Int { max(caps.minSide, Int(side) / caps.sideStep * caps.sideStep) }
        return (aligned(width), aligned(height))
    }
}

/// Typed reads of submitted fields, each refusal naming the field and the accepted values.
private struct FieldReader {
    let fields: [String: SubmittedValue]

    func rejectUnknown(allowed: [String]) throws {
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("unknown field '\(unknown)'; the accepted fields are \(allowed.joined(separator: ", "))")
        }
    }

    func string(_ name: String) throws -> String? {
        switch fields[name] {
        case nil, .null?: return nil
        case .text(let text)?: return text
        default: throw APIError.badRequest("'\(name)' must be a string")
        }
    }

    /// The field as a number (JSON number or numeric form text); nil when absent or null.
    private func numeric(_ name: String, expected: String) throws -> Double? {
        switch fields[name] {
        case nil, .null?: return nil
        case .number(let number)?: return number
        case .text(let text)?:
            guard let parsed = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw APIError.badRequest("'\(name)' must be \(expected), got \"\(text.prefix(40))\"")
            }
            return parsed
        default: throw APIError.badRequest("'\(name)' must be \(expected)")
        }
    }

    func integer(_ name: String, in range: ClosedRange<Int64>, default fallback: Int64, meaning: String? = nil) throws -> Int64 {
        let expected = meaning ?? "an integer from \(range.lowerBound) to \(range.upperBound)"
        guard let value = try numeric(name, expected: expected) else { return fallback }
        guard value.isFinite, value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            throw APIError.badRequest("'\(name)' must be \(expected), got \(Self.shown(value))")
        }
        return Int64(value)
    }

    func number(_ name: String, in range: ClosedRange<Double>, default fallback: Double) throws -> Double {
        let expected = "a number from \(Self.shown(range.lowerBound)) to \(Self.shown(range.upperBound))"
        guard let value = try numeric(name, expected: expected) else { return fallback }
        guard range.contains(value) else {
            throw APIError.badRequest("'\(name)' must be \(expected), got \(Self.shown(value))")
        }
        return value
    }

    func bool(_ name: String, default fallback: Bool) throws -> Bool {
        switch fields[name] {
        case nil, .null?: return fallback
        case .bool(let flag)?: return flag
        case .text(let text)?:
            switch text.lowercased() {
            case "true", "on", "1": return true
            case "false", "off", "0", "": return false
            default: throw APIError.badRequest("'\(name)' must be true or false, got \"\(text.prefix(40))\"")
            }
        default: throw APIError.badRequest("'\(name)' must be true or false")
        }
    }

    func image(_ name: String, limits: UploadLimits) throws -> ValidatedImage? {
        switch fields[name] {
        case nil, .null?: return nil
        case .list(let items)? where items.count == 1: return try Self.validated(items[0], field: name, limits: limits)
        case .list?: throw APIError.badRequest("'\(name)' takes one image")
        case let value?: return try Self.validated(value, field: name, limits: limits)
        }
    }

    func images(_ name: String, limits: UploadLimits) throws -> [ValidatedImage] {
        switch fields[name] {
        case nil, .null?: return []
        case .list(let items)?:
            return try items.enumerated().compactMap { index, item in
                try Self.validated(item, field: "\(name)[\(index)]", limits: limits)
            }
        case let value?: return try Self.validated(value, field: name, limits: limits).map { [$0] } ?? []
        }
    }

    /// Size in bytes, then the header (signature and dimensions, no pixels), then the pixel limit,
    /// and only then a full decode, which catches damaged data. An empty value means "no image"
    /// (what a browser sends for an empty file input).
    private static func validated(_ value: SubmittedValue, field: String, limits: UploadLimits) throws -> ValidatedImage? {
        let data: Data
        switch value {
        case .null: return nil
        case .file(let bytes): data = bytes
        case .text(let base64):
            if base64.isEmpty { return nil }
            guard let decoded = decodeBase64(base64) else {
                throw APIError.badRequest("'\(field)' must be an image file (multipart) or base64 image data (JSON)")
            }
            data = decoded
        default: throw APIError.badRequest("'\(field)' must be an image file (multipart) or base64 image data (JSON)")
        }
        if data.isEmpty { return nil }
        guard data.count <= limits.maxImageBytes else {
            throw APIError.tooLarge("'\(field)' is \(data.count) bytes, more than the limit of \(limits.maxImageBytes) bytes")
        }
        let info: ImageInfo
        do {
            info = try ImageInfo(data: data)
        } catch let error as ImageError {
            throw APIError(.unsupportedMediaType, "'\(field)': \(error.description)")
        }
        guard info.width > 0, info.height > 0 else {
            throw APIError.badRequest("'\(field)': the image is empty (\(info.width)x\(info.height) pixels)")
        }
        guard info.width <= limits.maxImagePixels / info.height else {
            throw APIError.tooLarge("'\(field)' is \(info.width)x\(info.height) pixels, more than the limit of \(limits.maxImagePixels) pixels; downscale it first")
        }
        do {
            let image = try ImageFile.decode(data, options: ImageDecodingOptions(maxPixelCount: limits.maxImagePixels))
            return ValidatedImage(data: data, info: info, decodedWidth: image.width, decodedHeight: image.height)
        } catch let error as ImageError {
            throw APIError.badRequest("'\(field)': \(error.description)")
        }
    }

    /// Plain base64 or a `data:image/...;base64,` URL (what a browser's FileReader gives).
    private static func decodeBase64(_ text: String) -> Data? {
        var payload = Substring(text)
        if payload.hasPrefix("data:") {
            guard let comma = payload.firstIndex(of: ","), payload[..<comma].hasSuffix(";base64") else { return nil }
            payload = payload[payload.index(after: comma)...]
        }
        return Data(base64Encoded: String(payload), options: .ignoreUnknownCharacters)
    }

    private static func shown(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

extension InvalidSetting.Setting {
    /// The job field that sets this.
    var fieldName: String {
        switch self {
        case .width, .height, .steps, .guidance, .contentReferenceSize, .contentImage: "'\(rawValue)'"
        case .sizeBase: "the server's keepSizeBase"
        }
    }
}
