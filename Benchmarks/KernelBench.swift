// uso-bench gemm | attention: our kernels beside PyTorch's on the same shapes, timed in pairs.
//
// This host's speed drifts by 2x from one minute to the next (docs/benchmarks.md), so best-of
// figures taken minutes apart compare minutes, not code. Each pair here times one uso run and one
// PyTorch run back to back (alternating which goes first), and the ratio of the pair is what is
// reported: its median over the rounds, with the spread.
import Foundation
import TensorEngine

enum KernelBench {
    static let usage = "uso-bench gemm|attention [--rounds R]   (R pairs per shape and dtype, default 7)"

    /// One operation timed on both sides: `prepare` makes uso's inputs and returns the timed run.
    struct Case {
        let shape: String
        let label: String
        let flops: Double
        let torchRequest: String
        let prepare: () -> () -> Void
    }

    static func gemmCases() -> [Case] {
        [(4096, 3072, 3072), (4096, 3072, 12288)].flatMap { m, k, n in
            // Each dtype on each library this processor runs.
            let runs: [(DType, F32MatrixLibrary, BF16MatrixKernels, String)] = [
                (.f32, .openBLAS, .amxTiles, "F32 (OpenBLAS)"), (.f32, .oneDNN, .amxTiles, "F32 (oneDNN)"),
            ] + distinctBF16Kernels().map { (.bf16, .openBLAS, $0, "BF16 (\($0))") }
            // uso's int8 layer (BF16 activations, int8 weights) beside PyTorch's BF16 product.
            let int8 = Case(shape: "\(m)x\(k)@\(k)x\(n)", label: "INT8 W8A8 (vs torch BF16)", flops: 2 * Double(m) * Double(n) * Double(k),
                            torchRequest: "gemm \(m) \(k) \(n) BF16") {
                let x = randomTensor([m, k], dtype: .bf16, seed: 1)
                let weight = Int8Weight(quantizing: randomTensor([n, k], dtype: .bf16, seed: 2))
                return { _ = linear(x, weight: weight) }
            }
            return [int8] + runs.map { dtype, library, kernels, label in
                Case(shape: "\(m)x\(k)@\(k)x\(n)", label: label, flops: 2 * Double(m) * Double(n) * Double(k),
                     torchRequest: "gemm \(m) \(k) \(n) \(dtype == .f32 ? "F32" : "BF16")") {
                    let x = randomTensor([m, k], dtype: dtype, seed: 1), weight = randomTensor([n, k], dtype: dtype, seed: 2)
                    return {
                        library.select()
                        kernels.select()
                        _ = linear(x, weight: weight)
                    }
                }
            }
        }
    }

    /// The BF16 choices that run on different kernels here (without AMX, .amxTiles runs what .oneDNN runs).
    static func distinctBF16Kernels() -> [BF16MatrixKernels] {
        defer { BF16MatrixKernels.selectFastest() }
        var seen: [BF16MatrixKernels] = []
        for choice in BF16MatrixKernels.allCases {
            choice.select()
            if !seen.contains(BF16MatrixKernels.inUse) { seen.append(BF16MatrixKernels.inUse) }
        }
        return seen
    }

    static func attentionCases(length: Int = 4096, heads: Int = 24, dim: Int = 128) -> [Case] {
        [DType.f32, .bf16].map { dtype in
            Case(shape: "L\(length)xH\(heads)xD\(dim)", label: dtype.rawValue,
                 flops: 4 * Double(heads) * Double(length) * Double(length) * Double(dim),
                 torchRequest: "attention \(length) \(heads) \(dim) \(dtype == .f32 ? "F32" : "BF16")") {
                let (q, k, v) = (randomTensor([length, heads, dim], dtype: dtype, seed: 3),
                                 randomTensor([length, heads, dim], dtype: dtype, seed: 4),
                                 randomTensor([length, heads, dim], dtype: dtype, seed: 5))
                let scale = 1 / Float(dim).squareRoot()
                return { _ = attention(query: q, key: k, value: v, scale: scale) }
            }
        }
    }

    static func run(mode: String, arguments: BenchArguments) throws {
        let rounds = try arguments.integer("--rounds", default: 7)
        let cases = mode == "gemm" ? gemmCases() : attentionCases()
        print("uso-bench \(mode): \(rounds) pairs per row, uso and PyTorch back to back; \(machineLoad()); \(processorName())")
        print("By default here F32 products run on \(F32MatrixLibrary.inUse), BF16 products on \(BF16MatrixKernels.inUse) (timed at start)")
        defer { F32MatrixLibrary.selectFastest() }
        var torch: TorchPeer? = TorchPeer()
        print(row(["shape", "dtype", "uso GFLOP/s", "torch GFLOP/s", "best/best", "paired uso/torch: median [min-max]"]))
        for item in cases {
            let ours = item.prepare()
            ours()   // warm-up: primitive creation, page faults
            var pairs: [(ours: Double, torch: Double?)] = []
            for round in 0..<rounds {
                // Whoever ran last may leave threads spinning for a moment: a short pause before each run.
                let oursFirst = round % 2 == 0
                var theirs: Double?
                if !oursFirst { theirs = torch?.seconds(item.torchRequest) }
                let mine = timedAfterPause(ours)
                if oursFirst { theirs = torch?.seconds(item.torchRequest) }
                pairs.append((mine, theirs))
                if let note = torch?.failure {
                    print("PyTorch skipped: \(note)")
                    torch = nil
                }
            }
            print(row(summary(item, pairs)))
        }
        print("after: \(machineLoad())")
    }

    static func summary(_ item: Case, _ pairs: [(ours: Double, torch: Double?)]) -> [String] {
        let gflops = { (seconds: Double) in String(format: "%.1f", item.flops / seconds / 1e9) }
        let oursBest = pairs.map(\.ours).min()!
        let timedPairs = pairs.compactMap { pair in pair.torch.map { (pair.ours, $0) } }
        guard let torchBest = timedPairs.map(\.1).min() else { return [item.shape, item.label, gflops(oursBest), "-", "-", "-"] }
        let ratios = timedPairs.map { $0.1 / $0.0 }.sorted()   // speed ratio = their seconds / ours
        return [item.shape, item.label, gflops(oursBest), gflops(torchBest), String(format: "%.2f", torchBest / oursBest),
                String(format: "%.2f [%.2f-%.2f] of %d", ratios[ratios.count / 2], ratios.first!, ratios.last!, ratios.count)]
    }

    static func row(_ cells: [String]) -> String {
        zip(cells, [22, 20, 13, 15, 11, 0]).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }
            .joined()
    }

    static func randomTensor(_ shape: [Int], dtype: DType, seed: UInt64) -> Tensor {
        var state = seed | 1
        let values = (0..<shape.reduce(1, *)).map { _ -> Float in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 23) - 1
        }
        return Tensor(values, shape: shape, dtype: dtype)
    }

    static func timedAfterPause(_ body: () -> Void) -> Double {
        usleep(50_000)
        return timed(body).seconds
    }
}

/// tools/bench/torch_gemm.py, kept running: one request line in, one timed run's seconds out.
final class TorchPeer {
    private let process = Process()
    private let requests = Pipe(), answers = Pipe()
    private var buffered = Data()
    private(set) var failure: String?

    init() {
        signal(SIGPIPE, SIG_IGN)   // a peer that died shows up as a failed write, not as our death
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("tools/bench/torch_gemm.py").path]
        process.standardInput = requests
        process.standardOutput = answers
        do { try process.run() } catch { failure = "python3 could not be started: \(error)" }
    }

    deinit {
        try? requests.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }

    /// Seconds of one PyTorch run of `request` (after a short pause), or nil with `failure` set.
    func seconds(_ request: String) -> Double? {
        guard failure == nil else { return nil }
        usleep(50_000)
        // A peer that has quit (no torch) has left its reason on stdout, so read even if the write fails.
        try? requests.fileHandleForWriting.write(contentsOf: Data((request + "\n").utf8))
        guard let line = readLine(),
              let answer = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            failure = "PyTorch's process ended without an answer"
            return nil
        }
        if let seconds = answer["seconds"] as? Double { return seconds }
        failure = answer["error"] as? String ?? "unexpected answer \(String(decoding: line, as: UTF8.self))"
        return nil
    }

    private func readLine() -> Data? {
        while true {
            if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffered[buffered.startIndex..<end]
                buffered = Data(buffered[(end + 1)...])
                return Data(line)
            }
            let chunk = answers.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffered.append(chunk)
        }
    }
}
