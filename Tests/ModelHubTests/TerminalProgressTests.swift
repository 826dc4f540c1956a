import XCTest
@testable import ModelHub
@testable import ModelLayout

final class TerminalProgressTests: XCTestCase {
    private func planned(_ localPath: String, size: UInt64, partial: UInt64 = 0) -> PlannedDownload {
        PlannedDownload(component: .lora, repository: HubRepository("owner/name"),
                        file: RequiredFile(repositoryPath: localPath, localPath: localPath),
                        destination: URL(fileURLWithPath: "/tmp/\(localPath)"), partialBytes: partial,
                        metadata: RemoteFileMetadata(size: size, sha256: nil, etag: nil, commit: nil))
    }

    func testPlainLinePerFileWhenNotATerminal() {
        var output: [String] = []
        let progress = TerminalProgress(interactive: false) { output.append($0) }
        let first = planned("a/first.safetensors", size: 2_000_000)
        let second = planned("b/second.bin", size: 5_000)
        progress.downloadsWillStart([first, second])
        for bytes in stride(from: UInt64(0), through: 2_000_000, by: 500_000) { progress.fileProgressed(first, bytesOnDisk: bytes) }
        progress.fileFinished(first)
        progress.fileProgressed(second, bytesOnDisk: 5_000)
        progress.fileFinished(second)
        progress.downloadsEnded()
        XCTAssertEqual(output.count, 2)
        XCTAssertTrue(output[0].hasPrefix("downloaded a/first.safetensors (2.0 MB in "), output[0])
        XCTAssertTrue(output[1].hasPrefix("downloaded b/second.bin (5.0 kB in "), output[1])
        XCTAssertFalse(output.joined().contains("\u{1B}"), "no terminal control codes in a log")
    }

    func testTerminalDrawsFileAndTotalLinesAndClearsThem() {
        var output = ""
        let progress = TerminalProgress(interactive: true) { output += $0 }
        let file = planned("t5-xxl/pytorch_model.bin", size: 1_000_000, partial: 250_000)
        progress.downloadsWillStart([file])
        progress.fileProgressed(file, bytesOnDisk: 500_000)
        XCTAssertTrue(output.contains("t5-xxl/pytorch_model.bin   [#####.....] 500.0 kB/1.0 MB"), output)
        XCTAssertTrue(output.contains("total"), output)
        progress.fileFinished(file)
        progress.downloadsEnded()
        XCTAssertTrue(output.contains("\u{1B}[2F\u{1B}[J"), "the two drawn lines are erased before the next output")
        XCTAssertTrue(output.hasSuffix("\u{1B}[J"), "nothing is left drawn at the end")
    }

    func testLineFormatting() {
        let line = TerminalProgress.line(name: "a/very/long/folder/name/that/goes/on/model.safetensors",
                                         done: 3_000_000_000, total: 12_000_000_000, rate: 50_000_000)
        XCTAssertEqual(line, "…goes/on/model.safetensors [##........] 3.0 GB/12.0 GB  50.0 MB/s  ETA 3m00s")
        XCTAssertLessThanOrEqual(line.count, 80)
        XCTAssertEqual(TerminalProgress.duration(4.3), "4.3s")
        XCTAssertEqual(TerminalProgress.duration(42), "42s")
        XCTAssertEqual(TerminalProgress.duration(3725), "1h02m")
        XCTAssertEqual(ByteCount(999).description, "999 B")
        XCTAssertEqual(ByteCount(23_800_000_000).description, "23.8 GB")
    }
}
