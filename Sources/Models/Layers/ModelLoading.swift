// Helpers for loading a model from a checkpoint: shape-checked modules, config.json next to the
// weights, and the check that no key was silently skipped.
import Foundation

/// A config.json that cannot be read, asks for something unsupported, or disagrees with the weights.
public enum ModelConfigError: Error, Equatable, CustomStringConvertible {
    case invalid(model: String, reason: String)
    case mismatch(model: String, field: String, config: Int, weights: Int)
    case unsupportedComputeType(model: String, DType)

    public var description: String {
        switch self {
        case .invalid(let model, let reason): "\(model): \(reason)"
        case .mismatch(let model, let field, let config, let weights):
            "\(model): config.json says \(field) = \(config) but the weights have \(weights); the config does not belong to these weights"
        case .unsupportedComputeType(let model, let dtype): "\(model) computes in F32 or BF16, not \(dtype)"
        }
    }
}

/// Decodes a Hugging Face config.json (snake_case keys onto camelCase properties).
public func decodeModelConfig<File: Decodable>(_ type: File.Type, from data: Data, model: String) throws -> File {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(type, from: data) } catch {
        throw ModelConfigError.invalid(model: model, reason: "config.json is not readable: \(error.localizedDescription)")
    }
}

/// Throws `ModelConfigError.mismatch` if config.json gives `configValue` and it differs from the
/// value read from the weights' shapes.
public func checkConfig(_ configValue: Int?, matches weightsValue: Int, field: String, model: String) throws {
    if let configValue, configValue != weightsValue {
        throw ModelConfigError.mismatch(model: model, field: field, config: configValue, weights: weightsValue)
    }
}

/// The fields of a Hugging Face encoder-tower config.json (CLIP's text tower, SigLIP's vision
/// tower) that the loaders check against the weights; each tower reads those it has.
public struct EncoderTowerConfigFile: Decodable, Sendable {
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var numHiddenLayers: Int?
    public var numAttentionHeads: Int?
    public var layerNormEps: Float?
    public var hiddenAct: String?
    public var vocabSize: Int?               // text towers
    public var maxPositionEmbeddings: Int?
    public var eosTokenId: Int?
    public var imageSize: Int?               // vision towers
    public var patchSize: Int?

    public enum Tower: Sendable { case text, vision }

    /// A two-tower config (CLIPModel, SiglipModel) nests each tower's fields.
    private struct TwoTowers: Decodable {
        var textConfig: EncoderTowerConfigFile?
        var visionConfig: EncoderTowerConfigFile?
    }

    /// Reads `tower`'s part of a two-tower config, or the whole file when it is a bare tower config.
    public static func decode(_ data: Data, tower: Tower, model: String) throws -> EncoderTowerConfigFile {
        let outer = try decodeModelConfig(TwoTowers.self, from: data, model: model)
        let nested = tower == .text ? outer.textConfig : outer.visionConfig
        return try nested ?? decodeModelConfig(EncoderTowerConfigFile.self, from: data, model: model)
    }
}

/// The checks every encoder tower shares: its width, MLP width and depth (read from the weights)
/// against config.json, and the activation. Returns the head count, which the weights cannot
/// tell: config.json's, or else `defaultHeads`.
public func checkEncoderTower(_ file: EncoderTowerConfigFile?, width: Int, mlpWidth: Int, layers: Int,
                              defaultHeads: Int, activation: String, model: String) throws -> Int {
    try checkConfig(file?.hiddenSize, matches: width, field: "hidden_size", model: model)
    try checkConfig(file?.intermediateSize, matches: mlpWidth, field: "intermediate_size", model: model)
    try checkConfig(file?.numHiddenLayers, matches: layers, field: "num_hidden_layers", model: model)
    let heads = file?.numAttentionHeads ?? defaultHeads
    guard heads > 0, width % heads == 0 else {
        throw ModelConfigError.invalid(model: model, reason: file?.numAttentionHeads == nil
            ? "cannot tell the head count of width \(width); give config.json with num_attention_heads"
            : "num_attention_heads \(heads) does not divide the width \(width)")
    }
    if let hiddenAct = file?.hiddenAct, hiddenAct != activation {
        throw ModelConfigError.invalid(model: model, reason: "hidden_act \(hiddenAct) is not supported (\(model) uses \(activation))")
    }
    return heads
}

/// Models compute in F32 or BF16: activations are rounded to that type after every op.
public func checkComputeType(_ dtype: DType, model: String) throws {
    guard dtype == .f32 || dtype == .bf16 else { throw ModelConfigError.unsupportedComputeType(model: model, dtype) }
}

extension Linear {
    /// Loads `name.weight`, which must be `[outFeatures, inFeatures]` (with `name.weight_scale`
    /// `[outFeatures]` beside an I8 weight), and `name.bias` `[outFeatures]`: a mis-shaped tensor is
    /// an error naming its key rather than a failure at run time.
    public init(_ weights: WeightReader, _ name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        let module = weights.scoped(name)
        self.init(weight: try module.tensor("weight", shape: [outFeatures, inFeatures]),
                  bias: bias ? try module.tensor("bias", shape: [outFeatures]) : nil)
        if weight.dtype == .i8 {
            int8 = Int8Weight(codes: weight, scales: try module.tensor("weight_scale", shape: [outFeatures]))
        }
    }
}

extension LayerNorm {
    /// An affine LayerNorm over `width` features with its scale and shift in `dtype`, as a model
    /// cast with `.to(dtype)` holds them.
    public init(_ weights: WeightReader, _ name: String, width: Int, eps: Float, dtype: DType) throws {
        let module = weights.scoped(name)
        self.init(eps: eps)
        weight = try module.tensor("weight", shape: [width]).converted(to: dtype)
        bias = try module.tensor("bias", shape: [width]).converted(to: dtype)
    }
}

extension WeightReader {
    /// The number of consecutive numbered modules `name.0`, `name.1`, … that hold `probe`.
    public func numberedModuleCount(_ name: String, probe: String) -> Int {
        var count = 0
        while contains("\(name).\(count).\(probe)") { count += 1 }
        return count
    }

    /// Throws `WeightError.unexpectedKeys` for keys nobody read, except those under `ignoredPrefixes`:
    /// parts of a checkpoint that are deliberately unused (a decoder, another tower). Keys inside the
    /// used modules are not covered, so a stray or misspelt one there is still an error.
    public func checkAllUsed(ignoringPrefixes ignoredPrefixes: [String]) throws {
        let unexpected = unusedKeys().filter { key in !ignoredPrefixes.contains { key.hasPrefix($0) } }
        if !unexpected.isEmpty { throw WeightError.unexpectedKeys(unexpected) }
    }
}
