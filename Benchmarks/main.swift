// uso-bench: times the tensor engine beside PyTorch on the same machine, in the same run, and the
// full-size models on random weights (docs/benchmarks.md).
//
//   swift run -c release uso-bench gemm [--rounds R]        linear layer, F32 and BF16 (KernelBench.swift)
//   swift run -c release uso-bench attention [--rounds R]   attention L=4096, 24 heads, D=128
//   uso-bench flux | vae | encoders | pipeline ...           full-size models (FluxBench.swift, …)
//
// PyTorch's figures come from tools/bench/torch_gemm.py (python3); without torch they are skipped.
import Foundation

// Line-buffered even into a pipe or log, so a long run's figures appear as they are measured.
setvbuf(stdout, nil, _IOLBF, 0)
let arguments = Array(CommandLine.arguments.dropFirst())
let benchmarks: [String: (usage: String, run: (BenchArguments) throws -> Void)] = [
    "gemm": (KernelBench.usage, { try KernelBench.run(mode: "gemm", arguments: $0) }),
    "attention": (KernelBench.usage, { try KernelBench.run(mode: "attention", arguments: $0) }),
    "flux": (FluxBench.usage, FluxBench.run), "vae": (VAEBench.usage, VAEBench.run),
    "encoders": (EncodersBench.usage, EncodersBench.run), "pipeline": (PipelineBench.usage, PipelineBench.run),
]
guard let name = arguments.first, let benchmark = benchmarks[name] else {
    let usages = Set(benchmarks.values.map(\.usage)).sorted()
    FileHandle.standardError.write(Data(("usage:\n" + usages.map { "  \($0)\n" }.joined()).utf8))
    exit(64)
}
do {
    try benchmark.run(BenchArguments(values: Array(arguments.dropFirst())))
} catch let error as BenchError {
    FileHandle.standardError.write(Data("error: \(error)\nusage: \(benchmark.usage)\n".utf8))
    exit(64)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
