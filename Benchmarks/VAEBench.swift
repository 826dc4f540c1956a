// `uso-bench vae`: the full-size FLUX autoencoder: encode a 512² reference, decode 512² and 1024².
import Autoencoder
import Foundation

enum VAEBench {
    static let usage = "uso-bench vae --weights FILE [--stages encode512,decode512,decode1024]"

    static func run(_ arguments: BenchArguments) throws {
        let file = try existingFile([try arguments.required("--weights")],
                                    hint: "make it with python3 tools/bench/make_full_vae.py FILE")
        var stages = Set(AutoencoderBenchmarkStage.allCases)
        if let list = arguments.string("--stages") {
            stages = Set(try list.split(separator: ",").map { name in
                guard let stage = AutoencoderBenchmarkStage(rawValue: String(name)) else {
                    throw BenchError.usage("unknown stage \(name); the stages are encode512, decode512, decode1024")
                }
                return stage
            })
        }
        print("uso-bench vae: \(file), \(machineLoad())")
        // Automatic tiling: whole-image decoding unless memory is short, as the pipeline decides.
        _ = try benchmarkAutoencoder(checkpoint: file, stages: stages) { timing in
            print(timing)
            print("| \(timing.stage) | \(String(format: "%.1f", timing.seconds)) | "
                  + "\(timing.peakResidentBytes.map(gigabytes) ?? "n/a") | \(timing.detail) | \(machineLoad()) |")
        }
    }
}
