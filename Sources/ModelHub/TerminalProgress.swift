// Download progress on stderr. On a terminal: one redrawn line per active file and a total line
// (bytes, rate, ETA). Otherwise (a log, CI): one plain line per finished file.
import Foundation

public final class TerminalProgress: DownloadObserver {
    private struct FileState {
        let name: String
        let size: UInt64
        let startedAt: Date
        let bytesAtStart: UInt64
        var bytesOnDisk: UInt64
    }

    private let interactive: Bool
    private let write: (String) -> Void
    private let lock = NSLock()
    private var files: [String: FileState] = [:]
    private var order: [String] = []
    private var totalSize: UInt64 = 0
    private var startedAt = Date()
    private var bytesAtStart: UInt64 = 0
    /// Bytes of the files already finished (they leave `files`).
    private var finishedBytes: UInt64 = 0
    /// (time, total bytes on disk) over the last few seconds, for a rate that follows the link's speed.
    private var samples: [(Date, UInt64)] = []
    private var lastDraw = Date.distantPast
    private var drawnLineCount = 0

    /// `interactive` defaults to whether stderr is a terminal.
    public init(interactive: Bool = isatty(STDERR_FILENO) != 0,
                write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.interactive = interactive
        self.write = write
    }

    public func downloadsWillStart(_ downloads: [PlannedDownload]) {
        lock.withLock {
            startedAt = Date()
            totalSize = downloads.reduce(0) { $0 + ($1.metadata?.size ?? 0) }
            bytesAtStart = downloads.reduce(0) { $0 + $1.partialBytes }
            samples = [(startedAt, bytesAtStart)]
        }
    }

    public func fileProgressed(_ download: PlannedDownload, bytesOnDisk: UInt64) {
        lock.withLock {
            let name = download.file.localPath
            if files[name] == nil {
                files[name] = FileState(name: name, size: download.metadata?.size ?? 0, startedAt: Date(),
                                        bytesAtStart: bytesOnDisk, bytesOnDisk: bytesOnDisk)
                order.append(name)
            }
            files[name]?.bytesOnDisk = bytesOnDisk
            let now = Date()
            samples.append((now, totalBytesOnDisk))
            while samples.count > 2, now.timeIntervalSince(samples[0].0) > 5 { samples.removeFirst() }
            if interactive, now.timeIntervalSince(lastDraw) >= 0.1 { redraw() }
        }
    }

    public func fileFinished(_ download: PlannedDownload) {
        lock.withLock {
            let name = download.file.localPath
            guard let state = files[name] else { return }
            let seconds = max(Date().timeIntervalSince(state.startedAt), 0.001)
            let rate = Double(state.bytesOnDisk - min(state.bytesAtStart, state.bytesOnDisk)) / seconds
            let line = "downloaded \(name) (\(ByteCount(state.size)) in \(Self.duration(seconds)), \(ByteCount(UInt64(rate)))/s)"
            if interactive { clearDrawing() }
            write(line + "\n")
            files[name] = nil
            order.removeAll { $0 == name }
            finishedBytes += state.size
            if interactive { redraw() }
        }
    }

    public func downloadsEnded() {
        lock.withLock {
            if interactive { clearDrawing() }
        }
    }

    // MARK: Drawing (called with the lock held)

    private var totalBytesOnDisk: UInt64 { finishedBytes + files.values.reduce(0) { $0 + $1.bytesOnDisk } }

    private var recentRate: Double {
        guard let first = samples.first, let last = samples.last, last.0 > first.0 else { return 0 }
        return Double(last.1 &- min(first.1, last.1)) / last.0.timeIntervalSince(first.0)
    }

    private func redraw() {
        clearDrawing()
        var lines = order.compactMap { files[$0] }.map { file -> String in
            let seconds = Date().timeIntervalSince(file.startedAt)
            let rate = seconds > 0 ? Double(file.bytesOnDisk - min(file.bytesAtStart, file.bytesOnDisk)) / seconds : 0
            return Self.line(name: file.name, done: file.bytesOnDisk, total: file.size, rate: rate)
        }
        lines.append(Self.line(name: "total", done: totalBytesOnDisk, total: totalSize, rate: recentRate))
        write(lines.joined(separator: "\n") + "\n")
        drawnLineCount = lines.count
        lastDraw = Date()
    }

    private func clearDrawing() {
        guard drawnLineCount > 0 else { return }
        // Up to the first drawn line, then clear to the end of the screen.
        write("\u{1B}[\(drawnLineCount)F\u{1B}[J")
        drawnLineCount = 0
    }

    /// One status line, about 80 columns: name (its tail when long), bar, bytes, rate, ETA.
    static func line(name: String, done: UInt64, total: UInt64, rate: Double) -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let barWidth = 10
        let filled = Int(fraction * Double(barWidth))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled)
        let eta = rate > 0 && total > done ? "  ETA " + duration(Double(total - done) / rate) : ""
        let nameWidth = 26
        let label = name.count > nameWidth ? "…" + name.suffix(nameWidth - 1) : name
        return "\(label.padding(toLength: nameWidth, withPad: " ", startingAt: 0)) [\(bar)] "
            + "\(ByteCount(done))/\(ByteCount(total))  \(ByteCount(UInt64(rate)))/s\(eta)"
    }

    /// 42s, 5m07s, 1h02m.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return seconds < 10 ? String(format: "%.1fs", seconds) : "\(whole)s" }
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
    }
}
