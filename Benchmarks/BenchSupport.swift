// Shared pieces of the full-size benchmarks: options, timing, memory and machine-load figures.
import Foundation
import TensorEngine

/// `--name value` and `--flag` options of one subcommand.
struct BenchArguments {
    let values: [String]

    func string(_ name: String) -> String? {
        values.firstIndex(of: name).flatMap { values.indices.contains($0 + 1) ? values[$0 + 1] : nil }
    }

    func flag(_ name: String) -> Bool { values.contains(name) }

    func integer(_ name: String, default value: Int, allowed: [Int]? = nil) throws -> Int {
        guard let text = string(name) else { return value }
        guard let number = Int(text), allowed?.contains(number) ?? (number > 0) else {
            let choices = allowed.map { $0.map(String.init).joined(separator: "|") } ?? "a positive integer"
            throw BenchError.usage("\(name) takes \(choices), not \(text)")
        }
        return number
    }

    func choice<Choice: RawRepresentable & CaseIterable>(_ name: String, default value: Choice) throws -> Choice
        where Choice.RawValue == String {
        guard let text = string(name) else { return value }
        guard let choice = Choice(rawValue: text) else {
            throw BenchError.usage("\(name) takes \(Choice.allCases.map(\.rawValue).joined(separator: "|")), not \(text)")
        }
        return choice
    }

    func required(_ name: String) throws -> String {
        guard let value = string(name) else { throw BenchError.usage("\(name) is required") }
        return value
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case missingFile(String, hint: String)

    var description: String {
        switch self {
        case .usage(let message): message
        case .missingFile(let path, let hint): "not found: \(path) (\(hint))"
        }
    }
}

/// Wall-clock seconds of `body`, with its result.
func timed<T>(_ body: () throws -> T) rethrows -> (value: T, seconds: Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let value = try body()
    return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }

/// The 1/5/15-minute load averages, as `uptime` prints them: the machine is shared, so every
/// figure is reported beside the load it was measured under.
func machineLoad() -> String {
    let averages = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
        .split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
    return "load average \(averages) on \(ProcessInfo.processInfo.activeProcessorCount) cores"
}

/// The first of `candidates` that exists, or an error naming them all.
func existingFile(_ candidates: [String], hint: String) throws -> String {
    guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        throw BenchError.missingFile(candidates.joined(separator: " or "), hint: hint)
    }
    return found
}

/// The processor's model name and the instruction sets that decide which kernels run, since the
/// machines change between sessions and figures compare only within one.
func processorName() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let lines = info.split(separator: "\n")
    let model = lines.first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
        .trimmingCharacters(in: .whitespaces) ?? "unknown processor"
    let flags = Set(lines.first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    let features = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"].filter(flags.contains)
    return "\(model) (\(features.joined(separator: ", "))), OpenBLAS kernels for \(F32MatrixLibrary.openBLASCore)"
}
