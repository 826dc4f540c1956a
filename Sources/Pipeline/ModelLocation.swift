import Foundation
import ModelLayout
import WeightFiles

/// Where each part of a USO model set lives. By default in the layout the reference's downloader
/// leaves (ModelLayout's catalog: `FLUX.1-dev/{flux1-dev,ae}.safetensors`,
/// `USO/uso_flux_v1.0/{dit_lora,projector}.safetensors`, `t5-xxl/`, `clip-vit-l14/`, `siglip/`), each
/// part movable by the reference's `.env` variables (FLUX_DEV, AE, T5, CLIP, LORA, ...).
public struct ModelLocation: Sendable, Equatable {
    public var transformer: URL
    public var autoencoder: URL
    public var lora: URL
    public var projector: URL
    public var t5: URL
    public var clip: URL
    public var siglip: URL

    public init(transformer: URL, autoencoder: URL, lora: URL, projector: URL, t5: URL, clip: URL, siglip: URL) {
        self.transformer = transformer
        self.autoencoder = autoencoder
        self.lora = lora
        self.projector = projector
        self.t5 = t5
        self.clip = clip
        self.siglip = siglip
    }

    /// The files of `modelType` under `directory`; a part whose variable is set in `environment`
    /// comes from there instead, as the reference reads its paths from the environment.
    public init(directory: URL, modelType: ModelType, environment: HubEnvironment? = nil) {
        var urls: [ModelComponent: URL] = [:]
        for spec in ModelCatalog.components(for: modelType) {
            urls[spec.component] = environment.flatMap(spec.location(in:)) ?? directory.appendingPathComponent(spec.localPath)
        }
        self.init(transformer: urls[.diffusionTransformer]!, autoencoder: urls[.autoencoder]!, lora: urls[.lora]!,
                  projector: urls[.projector]!, t5: urls[.t5]!, clip: urls[.clip]!, siglip: urls[.siglip]!)
    }

    /// Every path paired with what it is, for error messages.
    public var parts: [(name: String, url: URL)] {
        [("FLUX transformer", transformer), ("autoencoder", autoencoder), ("USO LoRA", lora), ("USO projector", projector),
         ("T5 encoder", t5), ("CLIP text encoder", clip), ("SigLIP vision encoder", siglip)]
    }

    /// Fails with the first missing file, saying how to get it. A model folder must hold weights too.
    public func checkPresent() throws {
        let manager = FileManager.default
        for part in parts {
            var isFolder: ObjCBool = false
            guard manager.fileExists(atPath: part.url.path, isDirectory: &isFolder) else {
                throw ModelLocationError.missing(part: part.name, path: part.url.path)
            }
            if isFolder.boolValue,
               !modelFolderWeightFiles.contains(where: { manager.fileExists(atPath: part.url.appendingPathComponent($0).path) }) {
                throw ModelLocationError.missing(part: part.name, path: part.url.appendingPathComponent(modelFolderWeightFiles[0]).path)
            }
        }
    }

    /// The bundled default model: `$USO_DEFAULT_MODEL`, else the `DefaultModel` folder found by
    /// walking up from the executable (a checkout's `.build/…/uso`) or the working directory.
    public static func bundledDefault() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["USO_DEFAULT_MODEL"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let starts = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
                      URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        for start in starts {
            var folder = start
            for _ in 0..<6 {
                let candidate = folder.appendingPathComponent("DefaultModel")
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("FLUX.1-dev").path) { return candidate }
                folder = folder.deletingLastPathComponent()
            }
        }
        throw ModelLocationError.noDefaultModel
    }

    /// `directory` with the process's `.env` settings over it if given, else the bundled default model
    /// (self-contained: variables naming the real weights must not mix into it).
    public static func resolve(modelDirectory: String?, modelType: ModelType) throws -> ModelLocation {
        let location = if let modelDirectory {
            ModelLocation(directory: URL(fileURLWithPath: modelDirectory), modelType: modelType, environment: .current())
        } else {
            ModelLocation(directory: try bundledDefault(), modelType: modelType)
        }
        try location.checkPresent()
        return location
    }
}

public enum ModelLocationError: Error, Equatable, CustomStringConvertible {
    case missing(part: String, path: String)
    case noDefaultModel

    public var description: String {
        switch self {
        case .missing(let part, let path):
            "missing \(part): \(path) — run `uso download --model-dir <folder>` to fetch the weights, or check --model-dir"
        case .noDefaultModel:
            "the bundled default model (DefaultModel/) was not found; run from a checkout of uso, set USO_DEFAULT_MODEL, or pass --model-dir"
        }
    }
}
