// Shared pieces of the full-size benchmarks: options, timing, memory and machine-load figures.
import Foundation

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
