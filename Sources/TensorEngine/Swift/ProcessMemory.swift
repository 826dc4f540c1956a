import Foundation

/// Memory figures of this process and machine from /proc (Linux), for memory budgets and benchmarks.
public enum ProcessMemory {
    /// `VmHWM`: the peak resident set since the process started or the last `resetPeak`.
    public static var peakBytes: Int? { field("/proc/self/status", "VmHWM:") }
    /// `VmRSS`: the resident set now.
    public static var residentBytes: Int? { field("/proc/self/status", "VmRSS:") }
    /// `MemAvailable` of the machine.
    public static var availableBytes: Int? { field("/proc/meminfo", "MemAvailable:") }

    /// Starts a new peak (writing 5 to /proc/self/clear_refs); false where the kernel refuses.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// A "Name:  123 kB" line of a /proc file, in bytes. The separator is a tab and maybe spaces:
    /// "VmHWM:\t 2192744 kB", but "VmHWM:\t13097656 kB" from 10 GB on.
    static func field(_ path: String, _ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return nil }
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return fields.count >= 2 ? Int(fields[1]).map { $0 * 1024 } : nil
    }
}
