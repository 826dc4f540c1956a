import Foundation
import Hummingbird
import HummingbirdTesting
import ImageIO
import XCTest
@testable import WebServer

/// The API against a real server on an ephemeral loopback port.
final class APITests: XCTestCase {
    func testPageHealthAndInfo() async throws {
        try await TestServer().run { client in
            let page = try await client.get("/")
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            XCTAssertTrue(html.contains("id=\"generate\""))
            // Self-contained: nothing is loaded from another host.
            XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("src=\"//"),
                           "the page must not reference anything outside this server")

            let health = try await client.get("/health")
            XCTAssertEqual(health.status, .ok)
            XCTAssertTrue(String(buffer: health.body).contains("\"status\":\"ok\""))

            struct Info: Decodable { let capabilities: GeneratorCapabilities; let uploads: UploadLimits; let queueCapacity: Int }
            let info = try decode(Info.self, from: try await client.get("/api/info"))
            XCTAssertEqual(info.capabilities, testCapabilities)
            XCTAssertEqual(info.queueCapacity, 8)
            XCTAssertEqual(info.uploads, .default)
        }
    }

    func testJSONJobWithBase64ImagesSucceedsAndWritesLikeTheCLI() async throws {
        let server = try TestServer()
        let content = try pngData(width: 48, height: 40), style = try pngData(width: 20, height: 30)
        try await server.run { client in
            let response = try await client.postJSON([
                "prompt": "A cat.", "seed": 1234, "width": 96, "height": 64, "steps": 5, "guidance": 3.5,
                "contentReferenceSize": 64,
                "contentImage": "data:image/png;base64," + content.base64EncodedString(),
                "styleImages": [style.base64EncodedString()],
            ])
            XCTAssertEqual(response.status, .accepted, String(buffer: response.body))
            let submitted = try decode(JobSnapshot.self, from: response)
            XCTAssertEqual(response.headers[.location], "/api/jobs/\(submitted.id)")
            XCTAssertEqual(submitted.parameters, JobParameters(prompt: "A cat.", seed: 1234, randomSeed: false, width: 96, height: 64,
                                                              keepInputSize: false, steps: 5, guidance: 3.5, contentReferenceSize: 64,
                                                              stepCache: .off))

            let finished = try await client.waitForFinal(submitted.id)
            XCTAssertEqual(finished.status, .succeeded, finished.error ?? "")
            XCTAssertEqual(finished.progress.fraction, 1)
            XCTAssertEqual(finished.progress.step, 5)
            XCTAssertEqual(finished.imageURL, "/api/jobs/\(submitted.id)/image")

            let image = try await client.get(finished.imageURL ?? "")
            XCTAssertEqual(image.status, .ok)
            XCTAssertEqual(image.headers[.contentType], "image/png")
            let png = Data(image.body.readableBytesView)
            let decoded = try ImageFile.decode(png)
            XCTAssertEqual([decoded.width, decoded.height], [96, 64])
            XCTAssertEqual(Array(decoded.pixels.prefix(3)), [UInt8(1234 % 256), UInt8(1234 / 256), 200])
            let text = Dictionary(uniqueKeysWithValues: try ImageFile.pngText(png).map { ($0.key, $0.text) })
            XCTAssertEqual(text["uso:prompt"], "A cat.")
            XCTAssertEqual(text["uso:seed"], "1234")
            XCTAssertEqual(text["uso:steps"], "5")

            // Written as the CLI writes: outputs/YYYY-MM-DD/NNNN-SEED.png plus the config JSON.
            let day = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: server.outputRoot.path).first)
            let files = try FileManager.default.contentsOfDirectory(atPath: server.outputRoot.appendingPathComponent(day).path).sorted()
            XCTAssertEqual(files, ["0001-1234.json", "0001-1234.png"])
            XCTAssertEqual(finished.fileName, "0001-1234.png")
            let config = try String(contentsOf: server.outputRoot.appendingPathComponent(day).appendingPathComponent("0001-1234.json"), encoding: .utf8)
            XCTAssertTrue(config.contains("\"num_steps\": 5"), config)

            // The references come back byte for byte (for "reuse these settings").
            let storedContent = try await client.get("/api/jobs/\(submitted.id)/inputs/content")
            XCTAssertEqual(Data(storedContent.body.readableBytesView), content)
            let storedStyle = try await client.get("/api/jobs/\(submitted.id)/inputs/style1")
            XCTAssertEqual(Data(storedStyle.body.readableBytesView), style)
            assertStatus(try await client.get("/api/jobs/\(submitted.id)/inputs/style2"), .notFound)
        }
    }

    func testMultipartJobAndRandomSeed() async throws {
        try await TestServer().run { client in
            var form = MultipartBody()
            form.field("prompt", "")
            form.field("seed", "-1")
            form.field("steps", "3")
            form.field("keepInputSize", "false")
            form.file("contentImage", try pngData(width: 32, height: 32), filename: "../../etc/passwd")
            form.file("styleImages", try pngData(width: 16, height: 16))
            form.file("styleImages", try pngData(width: 24, height: 16))
            let response = try await client.postMultipart(form.finished())
            XCTAssertEqual(response.status, .accepted, String(buffer: response.body))
            let submitted = try decode(JobSnapshot.self, from: response)
            XCTAssertTrue(submitted.parameters.randomSeed)
            XCTAssertTrue(JobSubmission.randomSeedRange.contains(submitted.parameters.seed))
            XCTAssertEqual(submitted.parameters.width, testCapabilities.defaultSide)
            XCTAssertEqual(submitted.styleImageURLs.count, 2)
            let finished = try await client.waitForFinal(submitted.id)
            XCTAssertEqual(finished.status, .succeeded, finished.error ?? "")
            XCTAssertEqual(finished.fileName, String(format: "0001-%llu.png", submitted.parameters.seed))
        }
    }

    func testKeepInputSizeFollowsTheContentImage() async throws {
        try await TestServer().run { client in
            // 300x200 with long side 128: short side int(128/300*200) = 85 -> 80; scaled by 128/128.
            let response = try await client.postJSON([
                "prompt": "x", "keepInputSize": true, "contentReferenceSize": 128, "steps": 1,
                "contentImage": try pngData(width: 300, height: 200).base64EncodedString(),
            ])
            XCTAssertEqual(response.status, .accepted, String(buffer: response.body))
            let parameters = try decode(JobSnapshot.self, from: response).parameters
            XCTAssertEqual([parameters.width, parameters.height], [128, 80])
            XCTAssertTrue(parameters.keepInputSize)
        }
    }

    func testServerSentEventsReachOneHundredPercent() async throws {
        let generator = TestGenerator(secondsPerStep: 0.01, gateOpen: false)
        let server = try TestServer()
        try await server.run(generator: generator) { client in
            let submitted = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "p", "steps": 6, "seed": 7]))
            // Subscribe while the job is held, so every step is seen.
            async let eventsResponse = client.get("/api/jobs/\(submitted.id)/events")
            while server.server.queue.observerCount(submitted.id) == 0 { try await Task.sleep(nanoseconds: 2_000_000) }
            generator.openGate()
            let events = try await eventsResponse
            XCTAssertEqual(events.status, .ok)
            XCTAssertEqual(events.headers[.contentType], "text/event-stream")
            let blocks = String(buffer: events.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
            let parsed = try blocks.map { block -> (event: String, snapshot: JobSnapshot) in
                let lines = block.components(separatedBy: "\n")
                let event = try XCTUnwrap(lines.first { $0.hasPrefix("event: ") }).dropFirst("event: ".count)
                let data = try XCTUnwrap(lines.first { $0.hasPrefix("data: ") }).dropFirst("data: ".count)
                return (String(event), try jsonDecoder.decode(JobSnapshot.self, from: Data(data.utf8)))
            }
            XCTAssertEqual(parsed.first?.snapshot.status, .running)
            let denoisingSteps = parsed.filter { $0.snapshot.progress.stage == .denoising }.map(\.snapshot.progress.step)
            XCTAssertEqual(denoisingSteps, Array(1...6), "one event per step, in order")
            let last = try XCTUnwrap(parsed.last)
            XCTAssertEqual(last.event, "done")
            XCTAssertEqual(last.snapshot.status, .succeeded)
            XCTAssertEqual(last.snapshot.progress.fraction, 1)
            XCTAssertEqual(last.snapshot.progress.step, 6)
            XCTAssertEqual(last.snapshot.progress.totalSteps, 6)
            XCTAssertTrue(parsed.dropLast().allSatisfy { $0.event == "progress" && $0.snapshot.progress.fraction < 1 })
            let fractions = parsed.map(\.snapshot.progress.fraction)
            XCTAssertEqual(fractions, fractions.sorted(), "progress only moves forward")
            // After the job finished: one final snapshot, then the stream closes.
            let again = try await client.get("/api/jobs/\(submitted.id)/events")
            XCTAssertEqual(String(buffer: again.body).components(separatedBy: "event: ").count - 1, 1)
        }
    }

    func testHistoryIsBoundedAndForgetsTheOldestUploads() async throws {
        let server = try TestServer(historyLimit: 3)
        try await server.run { client in
            var ids: [String] = []
            for index in 0..<5 {
                let response = try await client.postJSON(["prompt": "job \(index)", "steps": 1, "seed": index,
                                                          "contentImage": try pngData(width: 16, height: 16).base64EncodedString()])
                let id = try decode(JobSnapshot.self, from: response).id
                let finished = try await client.waitForFinal(id)
                XCTAssertEqual(finished.status, .succeeded)
                ids.append(id)
            }
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            XCTAssertEqual(history.map(\.id), ids.suffix(3).reversed(), "newest first, oldest forgotten")
            assertStatus(try await client.get("/api/jobs/\(ids[0])"), .notFound)
            assertStatus(try await client.get("/api/jobs/\(ids[4])/inputs/content"), .ok)
            let uploads = try FileManager.default.contentsOfDirectory(atPath: server.server.uploadFolder.path)
            XCTAssertEqual(Set(uploads), Set(ids.suffix(3).map { "\($0)-content.png" }))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.server.uploadFolder.path), "uploads are removed on stop")
    }

    func testCrossOriginPostsAreRefused() async throws {
        try await TestServer().run { client in
            let foreign = try await client.postJSON(["prompt": "x", "steps": 1], headers: [.origin: "https://evil.example"])
            XCTAssertEqual(foreign.status, .forbidden)
            XCTAssertNotNil(errorMessage(foreign))
            let port = try XCTUnwrap(client.port)
            let own = try await client.postJSON(["prompt": "x", "steps": 1], headers: [.origin: "http://localhost:\(port)"])
            XCTAssertEqual(own.status, .accepted, String(buffer: own.body))
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            XCTAssertEqual(history.count, 1)
        }
    }

    /// A cancel accepted while the image is being decoded is honoured: the job ends cancelled and no
    /// file is written (it used to answer 202 and then save the image anyway).
    func testCancelDuringDecodingIsHonoured() async throws {
        let generator = TestGenerator(holdsDecoding: true)
        try await TestServer().run(generator: generator) { client in
            let job = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "a", "steps": 2]))
            let deadline = Date().addingTimeInterval(20)
            while try decode(JobSnapshot.self, from: try await client.get("/api/jobs/\(job.id)")).progress.stage != .decoding {
                guard Date() < deadline else { throw TestFailure("the job never reached decoding") }
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            let cancel = try await client.execute(uri: "/api/jobs/\(job.id)", method: .delete)
            XCTAssertEqual(cancel.status, .accepted)
            generator.finishDecoding()
            let final = try await client.waitForFinal(job.id)
            XCTAssertEqual(final.status, .cancelled, "a cancel that was accepted must not be ignored")
            XCTAssertNil(final.imageURL)
            let image = try await client.get("/api/jobs/\(job.id)/image")
            XCTAssertEqual(image.status, .notFound)
        }
    }

    func testCancelRunningAndQueuedJobs() async throws {
        let generator = TestGenerator(secondsPerStep: 0.02)
        try await TestServer().run(generator: generator) { client in
            let running = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "a", "steps": 50]))
            let queued = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "b", "steps": 2]))
            XCTAssertEqual(queued.status, .queued)
            XCTAssertEqual(queued.queuePosition, 1)
            try await client.waitForStatus(running.id, .running)

            // A waiting job is dropped at once and never reaches the generator.
            let cancelQueued = try await client.execute(uri: "/api/jobs/\(queued.id)", method: .delete)
            XCTAssertEqual(cancelQueued.status, .accepted)
            XCTAssertEqual(try decode(JobSnapshot.self, from: cancelQueued).status, .cancelled)

            // A running job stops at its next step, long before its 50 steps.
            let cancelRunning = try await client.execute(uri: "/api/jobs/\(running.id)", method: .delete)
            XCTAssertEqual(cancelRunning.status, .accepted)
            let stopped = try await client.waitForFinal(running.id)
            XCTAssertEqual(stopped.status, .cancelled)
            XCTAssertLessThan(stopped.progress.step, 50)
            XCTAssertNil(stopped.imageURL)
            let image = try await client.get("/api/jobs/\(running.id)/image")
            XCTAssertEqual(image.status, .notFound)
            XCTAssertNotNil(errorMessage(image))
            XCTAssertEqual(generator.jobsStarted, 1)

            // Cancelling a finished job is a conflict; an unknown id is 404.
            let again = try await client.execute(uri: "/api/jobs/\(running.id)", method: .delete)
            XCTAssertEqual(again.status, .conflict)
            assertStatus(try await client.execute(uri: "/api/jobs/nope", method: .delete), .notFound)

            // The queue keeps working afterwards.
            let next = try decode(JobSnapshot.self, from: try await client.postJSON(["prompt": "c", "steps": 1]))
            let nextFinished = try await client.waitForFinal(next.id)
            XCTAssertEqual(nextFinished.status, .succeeded)
        }
    }

    /// 20 simultaneous submissions against capacity 8 (unfinished jobs, running + waiting) while
    /// the generator is held: exactly 8 accepted, 12 refused with 503 and Retry-After; once
    /// released, all 8 complete and the history holds exactly those 8.
    func testLoadTwentyConcurrentSubmissionsWithQueueOfEight() async throws {
        let generator = TestGenerator(gateOpen: false)
        let server = try TestServer(capacity: 8)
        try await server.run(generator: generator) { client in
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for index in 0..<20 {
                    group.addTask { try await client.postJSON(["prompt": "job \(index)", "seed": index, "steps": 2]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = responses.filter { $0.status == .accepted }
            let refused = responses.filter { $0.status == .serviceUnavailable }
            XCTAssertEqual(accepted.count, 8)
            XCTAssertEqual(refused.count, 12)
            for response in refused {
                XCTAssertGreaterThanOrEqual(Int(response.headers[.retryAfter] ?? "") ?? 0, 1)
                XCTAssertNotNil(errorMessage(response))
            }
            let health = String(buffer: try await client.get("/health").body)
            XCTAssertTrue(health.contains("\"running\":1") && health.contains("\"waiting\":7"), health)

            generator.openGate()
            let ids = try accepted.map { try decode(JobSnapshot.self, from: $0).id }
            for id in ids {
                let finished = try await client.waitForFinal(id)
                XCTAssertEqual(finished.status, .succeeded, finished.error ?? "")
                assertStatus(try await client.get("/api/jobs/\(id)/image"), .ok)
            }
            let history = try decode([JobSnapshot].self, from: try await client.get("/api/jobs"))
            XCTAssertEqual(Set(history.map(\.id)), Set(ids))
            XCTAssertTrue(history.allSatisfy { $0.status == .succeeded })
            XCTAssertEqual(generator.jobsStarted, 8)
            let day = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: server.outputRoot.path).first)
            let pngs = try FileManager.default.contentsOfDirectory(atPath: server.outputRoot.appendingPathComponent(day).path)
                .filter { $0.hasSuffix(".png") }
            XCTAssertEqual(pngs.count, 8)
        }
    }

    func testTokenIsRequiredOnTheAPIWhenSet() async throws {
        try await TestServer(token: "s3cret").run { client in
            let missing = try await client.get("/api/info")
            XCTAssertEqual(missing.status, .unauthorized)
            XCTAssertEqual(missing.headers[.wwwAuthenticate], "Bearer")
            XCTAssertNotNil(errorMessage(missing))
            assertStatus(try await client.get("/api/info", headers: [.authorization: "Bearer wrong!"]), .unauthorized)
            assertStatus(try await client.get("/api/info", headers: [.authorization: "s3cret"]), .unauthorized)
            assertStatus(try await client.get("/api/info", headers: [.authorization: "Bearer s3cret"]), .ok)
            let post = try await client.postJSON(["prompt": "x", "steps": 1])
            XCTAssertEqual(post.status, .unauthorized)
            let authorized = try await client.postJSON(["prompt": "x", "steps": 1], headers: [.authorization: "Bearer s3cret"])
            XCTAssertEqual(authorized.status, .accepted)
            // The page and the health check stay open so a browser can load the page and ask for the token.
            assertStatus(try await client.get("/"), .ok)
            assertStatus(try await client.get("/health"), .ok)
        }
    }

    func testPresetsAndPathsThatMustNotReachTheFileSystem() async throws {
        try await TestServer().run { client in
            let presets = try decode([PresetLibrary.Preset].self, from: try await client.get("/api/presets"))
            XCTAssertGreaterThanOrEqual(presets.count, 5)
            let withContent = try XCTUnwrap(presets.first { $0.content != nil })
            let image = try await client.get(withContent.content ?? "")
            XCTAssertEqual(image.status, .ok)
            let info = try ImageInfo(data: Data(image.body.readableBytesView))
            XCTAssertLessThanOrEqual(max(info.width, info.height), 256)

            for path in ["/presets/..%2F..%2FPackage.swift", "/presets/../Package.swift", "/presets/presets.json",
                         "/api/jobs/..%2F..%2Fetc%2Fpasswd/image", "/api/jobs/x/inputs/..%2Fy", "/nonexistent", "/etc/passwd"] {
                let response = try await client.get(path)
                XCTAssertEqual(response.status, .notFound, path)
                XCTAssertNotNil(errorMessage(response), path)
            }
        }
    }
}
