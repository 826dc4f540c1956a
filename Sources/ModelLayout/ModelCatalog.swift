import Foundation

// What each model type needs, where it comes from on the hub, and where it lives on disk. The folder
// layout and the environment variable names follow the reference's weights/downloader.py and example.env.

/// The base-model configurations the reference offers (`--model_type` in inference.py, `--name` in app.py).
public enum ModelType: String, CaseIterable, Sendable, Codable {
    case fluxDev = "flux-dev"
    /// The bf16 flux-dev checkpoint cast to float8 at load time: the same files as flux-dev.
    case fluxDevFP8 = "flux-dev-fp8"
    case fluxSchnell = "flux-schnell"
    case fluxKreaDev = "flux-krea-dev"

    /// Schnell has no guidance embedding; every other type is dev-shaped.
    public var hasGuidance: Bool { self != .fluxSchnell }
}

/// One piece of the pipeline, loaded by one loader: a single weight file or a folder of files.
public enum ModelComponent: String, CaseIterable, Sendable {
    case diffusionTransformer = "DiT"
    case autoencoder = "VAE"
    case t5 = "T5"
    case clip = "CLIP"
    case siglip = "SigLIP"
    case lora = "USO LoRA"
    case projector = "USO projector"
}

public struct HubRepository: Hashable, Sendable, CustomStringConvertible {
    /// "owner/name" as in https://huggingface.co/owner/name.
    public let id: String
    public let revision: String
    /// Gated repositories need a token from an account that accepted the license on the repository page.
    public let isGated: Bool

    public init(_ id: String, revision: String = "main", isGated: Bool = false) {
        self.id = id
        self.revision = revision
        self.isGated = isGated
    }

    public var description: String { id }
}

/// A file the pipeline reads: its path inside the hub repository and its path under `--model-dir`.
public struct RequiredFile: Hashable, Sendable {
    public let repositoryPath: String
    public let localPath: String

    public var fileName: String { String(localPath.split(separator: "/").last ?? Substring(localPath)) }
}

public struct ComponentSpec: Hashable, Sendable {
    public enum Shape: Hashable, Sendable {
        /// The environment variable names the file itself.
        case file
        /// The environment variable names the folder that holds all `files` (a `from_pretrained` folder).
        case folder(localDirectory: String)
    }

    public let component: ModelComponent
    public let repository: HubRepository
    /// Variables that may name this component's location, strongest first (the reference reads them from
    /// the environment after loading `.env`).
    public let environmentVariables: [String]
    public let shape: Shape
    public let files: [RequiredFile]

    /// Where the component lives under a model folder: the file, or the folder of files.
    public var localPath: String {
        switch shape {
        case .file: files[0].localPath
        case .folder(let localDirectory): localDirectory
        }
    }

    /// The location the first set variable of `environment` names, if any.
    public func location(in environment: HubEnvironment) -> URL? {
        environmentVariables.lazy.compactMap(environment.value).first.map(environment.url(forPath:))
    }

    static func file(_ component: ModelComponent, _ repository: HubRepository, variables: [String],
                     repositoryPath: String, localPath: String) -> ComponentSpec {
        ComponentSpec(component: component, repository: repository, environmentVariables: variables,
                      shape: .file, files: [RequiredFile(repositoryPath: repositoryPath, localPath: localPath)])
    }

    static func folder(_ component: ModelComponent, _ repository: HubRepository, variable: String,
                       localDirectory: String, files: [String]) -> ComponentSpec {
        ComponentSpec(component: component, repository: repository, environmentVariables: [variable],
                      shape: .folder(localDirectory: localDirectory),
                      files: files.map { RequiredFile(repositoryPath: $0, localPath: "\(localDirectory)/\($0)") })
    }
}

public enum ModelCatalog {
    static let fluxDevRepository = HubRepository("black-forest-labs/FLUX.1-dev", isGated: true)
    static let fluxSchnellRepository = HubRepository("black-forest-labs/FLUX.1-schnell")
    static let fluxKreaDevRepository = HubRepository("black-forest-labs/FLUX.1-Krea-dev", isGated: true)
    static let usoRepository = HubRepository("bytedance-research/USO")

    /// Text encoders, style encoder and the USO weights are the same for every base model.
    static let sharedComponents: [ComponentSpec] = [
        .folder(.t5, HubRepository("google/t5-v1_1-xxl"), variable: "T5", localDirectory: "t5-xxl", files: [
            "config.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json", "pytorch_model.bin",
        ]),
        .folder(.clip, HubRepository("openai/clip-vit-large-patch14"), variable: "CLIP", localDirectory: "clip-vit-l14", files: [
            "config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
            "pytorch_model.bin",
        ]),
        .folder(.siglip, HubRepository("google/siglip-so400m-patch14-384"), variable: "SIGLIP_PATH",
                localDirectory: "siglip", files: ["config.json", "preprocessor_config.json", "model.safetensors"]),
        .file(.lora, usoRepository, variables: ["LORA"], repositoryPath: "uso_flux_v1.0/dit_lora.safetensors",
              localPath: "USO/uso_flux_v1.0/dit_lora.safetensors"),
        .file(.projector, usoRepository, variables: ["PROJECTION_MODEL"],
              repositoryPath: "uso_flux_v1.0/projector.safetensors",
              localPath: "USO/uso_flux_v1.0/projector.safetensors"),
    ]

    /// The base model's transformer and autoencoder, each from the base model's own repository.
    static func baseComponents(for modelType: ModelType) -> [ComponentSpec] {
        let (repository, folder, transformerFile, transformerVariables): (HubRepository, String, String, [String]) =
            switch modelType {
            case .fluxDev: (fluxDevRepository, "FLUX.1-dev", "flux1-dev.safetensors", ["FLUX_DEV"])
            case .fluxDevFP8: (fluxDevRepository, "FLUX.1-dev", "flux1-dev.safetensors", ["FLUX_DEV_FP8", "FLUX_DEV"])
            case .fluxSchnell: (fluxSchnellRepository, "FLUX.1-schnell", "flux1-schnell.safetensors", ["FLUX_SCHNELL"])
            case .fluxKreaDev: (fluxKreaDevRepository, "FLUX.1-Krea-dev", "flux1-krea-dev.safetensors", ["FLUX_KREA_DEV"])
            }
        return [
            .file(.diffusionTransformer, repository, variables: transformerVariables,
                  repositoryPath: transformerFile, localPath: "\(folder)/\(transformerFile)"),
            .file(.autoencoder, repository, variables: ["AE"],
                  repositoryPath: "ae.safetensors", localPath: "\(folder)/ae.safetensors"),
        ]
    }

    /// Every component `modelType` needs, in load order.
    public static func components(for modelType: ModelType) -> [ComponentSpec] {
        baseComponents(for: modelType) + sharedComponents
    }
}
