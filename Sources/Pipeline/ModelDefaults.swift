import Foundation

/// Recommended settings a model folder may carry in `uso-defaults.json` (the bundled uso-mini
/// does: it was trained at 128×128). They replace the reference's defaults for that model only;
/// `--from` metadata and explicit flags still win.
public struct ModelDefaults: Sendable, Equatable, Decodable {
    public var width: Int?
    public var height: Int?
    public var contentReference: Int?
    public var steps: Int?
    public var guidance: Double?
    public var seed: UInt64?

    public init(width: Int? = nil, height: Int? = nil, contentReference: Int? = nil, steps: Int? = nil,
                guidance: Double? = nil, seed: UInt64? = nil) {
        (self.width, self.height, self.contentReference) = (width, height, contentReference)
        (self.steps, self.guidance, self.seed) = (steps, guidance, seed)
    }

    enum CodingKeys: String, CodingKey {
        case width, height, seed, guidance
        case contentReference = "content_ref"
        case steps = "num_steps"
    }

    /// The folder's defaults, or none when it has no (readable) `uso-defaults.json`.
    public static func load(from directory: URL) -> ModelDefaults? {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("uso-defaults.json")) else { return nil }
        return try? JSONDecoder().decode(ModelDefaults.self, from: data)
    }

    /// The model set's own defaults over the reference's; its default side is also the base an
    /// instruct edit scales to.
    public func apply(to request: inout GenerationRequest) {
        if let side = width ?? height { request.sizeBase = side }
        if let width { request.width = width }
        if let height { request.height = height }
        if let contentReference { request.contentReferenceSize = contentReference }
        if let steps { request.steps = steps }
        if let guidance { request.guidance = guidance }
        if let seed { request.seed = seed }
    }
}
