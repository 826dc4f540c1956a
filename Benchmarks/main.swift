// uso-bench: times the tensor engine beside PyTorch on the same machine, in the same run, and the
// full-size models on random weights (docs/benchmarks.md).
//
//   swift run -c release uso-bench gemm [--repeats N] [--rounds R]        linear layer, F32 and BF16
//   swift run -c release uso-bench attention [--repeats N] [--rounds R]   attention L=4096, 24 heads, D=128
//   uso-bench flux | vae | encoders | pipeline ...                         full-size models (FluxBench.swift, …)
//
// PyTorch's figures come from tools/bench/torch_gemm.py (python3); without torch they are skipped.
import Foundation
import TensorEngine

struct Measurement {
    let shape: String
    let dtype: String
    let seconds: Double
    let gflops: Double
}

func bestSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()   // warm-up: primitive creation, page faults
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return best
}

func randomTensor(_ shape: [Int], dtype: DType, seed: UInt64) -> Tensor {
    var state = seed | 1
    let values = (0..<shape.reduce(1, *)).map { _ -> Float in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    return Tensor(values, shape: shape, dtype: dtype)
}

func gemmBenchmarks(repeats: Int) -> [Measurement] {
    var results: [Measurement] = []
    for (m, k, n) in [(4096, 3072, 3072), (4096, 3072, 12288)] {
        // Each dtype on each library; the defaults (OpenBLAS, AMX tiles) first.
        let runs: [(DType, F32MatrixLibrary, BF16MatrixKernels, String)] = [
            (.f32, .openBLAS, .amxTiles, "F32"), (.f32, .oneDNN, .amxTiles, "F32 (oneDNN)"),
            (.bf16, .openBLAS, .amxTiles, "BF16"), (.bf16, .openBLAS, .oneDNN, "BF16 (oneDNN)"),
        ]
        for (dtype, library, kernels, label) in runs {
            library.select()
            kernels.select()
            let x = randomTensor([m, k], dtype: dtype, seed: 1), weight = randomTensor([n, k], dtype: dtype, seed: 2)
            let seconds = bestSeconds(repeats: repeats) { _ = linear(x, weight: weight) }
            results.append(Measurement(shape: "\(m)x\(k)@\(k)x\(n)", dtype: label, seconds: seconds,
                                       gflops: 2 * Double(m) * Double(n) * Double(k) / seconds / 1e9))
        }
    }
    F32MatrixLibrary.openBLAS.select()
    BF16MatrixKernels.amxTiles.select()
    return results
}

func attentionBenchmarks(repeats: Int, length: Int, heads: Int, dim: Int) -> [Measurement] {
    [DType.f32, .bf16].map { dtype in
        let q = randomTensor([length, heads, dim], dtype: dtype, seed: 3)
        let k = randomTensor([length, heads, dim], dtype: dtype, seed: 4)
        let v = randomTensor([length, heads, dim], dtype: dtype, seed: 5)
        let scale = 1 / Float(dim).squareRoot()
        let seconds = bestSeconds(repeats: repeats) { _ = attention(query: q, key: k, value: v, scale: scale) }
        let flops = 4 * Double(heads) * Double(length) * Double(length) * Double(dim)
        return Measurement(shape: "L\(length)xH\(heads)xD\(dim)", dtype: dtype.rawValue, seconds: seconds,
                           gflops: flops / seconds / 1e9)
    }
}

/// PyTorch's numbers from tools/bench/torch_gemm.py, keyed by "shape dtype"; nil with a reason.
func torchMeasurements(mode: String, repeats: Int) -> (results: [String: Measurement], note: String?) {
    var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    let script = root.appendingPathComponent("tools/bench/torch_gemm.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, mode, "--repeats", String(repeats)]
    let output = Pipe()
    process.standardOutput = output
    do { try process.run() } catch { return ([:], "python3 could not be started: \(error)") }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    var results: [String: Measurement] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
        if let error = object["error"] as? String { return ([:], "PyTorch skipped: \(error)") }
        guard let shape = object["shape"] as? String, let dtype = object["dtype"] as? String,
              let seconds = object["seconds"] as? Double, let gflops = object["gflops"] as? Double else { continue }
        results["\(shape) \(dtype)"] = Measurement(shape: shape, dtype: dtype, seconds: seconds, gflops: gflops)
    }
    return (results, results.isEmpty ? "PyTorch produced no figures (exit \(process.terminationStatus))" : nil)
}

func printTable(_ ours: [Measurement], torch: [String: Measurement]) {
    func column(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
    print(column("shape", 22) + column("dtype", 14) + column("uso s", 10) + column("uso GFLOP/s", 13)
          + column("torch s", 10) + column("torch GFLOP/s", 15) + "uso/torch")
    for row in ours {
        let theirs = torch["\(row.shape) \(row.dtype.prefix { $0 != " " })"]
        print(column(row.shape, 22) + column(row.dtype, 14) + column(String(format: "%.3f", row.seconds), 10)
              + column(String(format: "%.1f", row.gflops), 13)
              + column(theirs.map { String(format: "%.3f", $0.seconds) } ?? "-", 10)
              + column(theirs.map { String(format: "%.1f", $0.gflops) } ?? "-", 15)
              + (theirs.map { String(format: "%.2f", row.gflops / $0.gflops) } ?? "-"))
    }
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
        .split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
}

// Line-buffered even into a pipe or log, so a long run's figures appear as they are measured.
setvbuf(stdout, nil, _IOLBF, 0)
let arguments = Array(CommandLine.arguments.dropFirst())
let mode = arguments.first ?? "gemm"
func option(_ name: String, default value: Int) -> Int {
    arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? Int(arguments[$0 + 1]) : nil } ?? value
}
let repeats = max(1, option("--repeats", default: mode == "gemm" ? 3 : 1))
let rounds = max(1, option("--rounds", default: 2))
let fullSizeBenchmarks: [String: (usage: String, run: (BenchArguments) throws -> Void)] = [
    "flux": (FluxBench.usage, FluxBench.run), "vae": (VAEBench.usage, VAEBench.run),
    "encoders": (EncodersBench.usage, EncodersBench.run), "pipeline": (PipelineBench.usage, PipelineBench.run),
]
if let benchmark = fullSizeBenchmarks[mode] {
    do {
        try benchmark.run(BenchArguments(values: Array(arguments.dropFirst())))
        exit(0)
    } catch let error as BenchError {
        FileHandle.standardError.write(Data("error: \(error)\nusage: \(benchmark.usage)\n".utf8))
        exit(64)
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        exit(1)
    }
}
guard ["gemm", "attention"].contains(mode) else {
    let usages = ["uso-bench gemm|attention [--repeats N] [--rounds R]"] + fullSizeBenchmarks.values.map(\.usage).sorted()
    FileHandle.standardError.write(Data(("usage:\n" + usages.map { "  \($0)\n" }.joined()).utf8))
    exit(64)
}
print("uso-bench \(mode): best of \(repeats) per round, \(rounds) rounds alternating uso and PyTorch, "
      + "\(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage())")
// Rounds alternate between us and PyTorch so that a change in the machine's load hits both.
var ours: [Measurement] = [], torch: [String: Measurement] = [:], torchNote: String?
for _ in 0..<rounds {
    let round = mode == "gemm" ? gemmBenchmarks(repeats: repeats)
                               : attentionBenchmarks(repeats: repeats, length: 4096, heads: 24, dim: 128)
    ours = ours.isEmpty ? round : zip(ours, round).map { $0.seconds <= $1.seconds ? $0 : $1 }
    let (figures, note) = torchMeasurements(mode: mode, repeats: repeats)
    torchNote = note
    for (key, value) in figures where value.seconds < torch[key]?.seconds ?? .infinity { torch[key] = value }
}
if let torchNote { print(torchNote) }
printTable(ours, torch: torch)
print("load average after: \(loadAverage())")
