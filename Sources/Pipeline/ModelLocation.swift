import Foundation
import WeightFiles

/// Where each part of a USO model set lives, in the layout the reference's downloader leaves:
/// `FLUX.1-dev/{flux1-dev,ae}.safetensors`, `USO/uso_flux_v1.0/{dit_lora,projector}.safetensors`,
/// `t5-xxl/`, `clip-vit-l14/`, `siglip/`.
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

    /// The files of `modelType` under `directory` (the reference's layout).
    public init(directory: URL, modelType: GenerationRequest.ModelType) {
        let base: (folder: String, file: String) = switch modelType {
        case .fluxDev, .fluxDevFP8: ("FLUX.1-dev", "flux1-dev.safetensors")
        case .fluxSchnell: ("FLUX.1-schnell", "flux1-schnell.safetensors")
        case .fluxKreaDev: ("FLUX.1-Krea-dev", "flux1-krea-dev.safetensors")
        }
        let uso = directory.appendingPathComponent("USO/uso_flux_v1.0")
        self.init(transformer: directory.appendingPathComponent("\(base.folder)/\(base.file)"),
                  autoencoder: directory.appendingPathComponent("FLUX.1-dev/ae.safetensors"),
                  lora: uso.appendingPathComponent("dit_lora.safetensors"),
                  projector: uso.appendingPathComponent("projector.safetensors"),
                  t5: directory.appendingPathComponent("t5-xxl"),
                  clip: directory.appendingPathComponent("clip-vit-l14"),
                  siglip: directory.appendingPathComponent("siglip"))
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

    /// `directory` if given, else the bundled default model.
    public static func resolve(modelDirectory: String?, modelType: GenerationRequest.ModelType) throws -> ModelLocation {
        let directory = try modelDirectory.map { URL(fileURLWithPath: $0) } ?? bundledDefault()
        let location = ModelLocation(directory: directory, modelType: modelType)
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
