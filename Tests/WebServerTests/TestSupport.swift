import Foundation
import Hummingbird
import HummingbirdTesting
import ImageIO
import Logging
import Pipeline
import XCTest
@testable import WebServer

/// The test double behind the server: a flat picture whose colour comes from the seed, made in
/// `steps` short steps that report progress and check cancellation, as the real pipeline does.
/// A closed gate holds every job before its first step, so tests can fill the queue
/// deterministically.
final class TestGenerator: ImageGenerator, @unchecked Sendable {
    private let condition = NSCondition()
    private var gateOpen: Bool
    private var started = 0
    private let secondsPerStep: Double
    /// After its steps, a generator made with `holdsDecoding` reports `.decoding` and waits for
    /// `finishDecoding()` without looking at cancellation, as the real decoder does.
    private var decodingHeld: Bool

    init(secondsPerStep: Double = 0.005, gateOpen: Bool = true, holdsDecoding: Bool = false) {
        self.secondsPerStep = secondsPerStep
        self.gateOpen = gateOpen
        self.decodingHeld = holdsDecoding
    }

    func finishDecoding() {
        condition.withLock { decodingHeld = false }
        condition.broadcast()
    }

    var jobsStarted: Int { condition.withLock { started } }

    func openGate() {
        condition.withLock { gateOpen = true }
        condition.broadcast()
    }

    func generate(_ request: GenerationRequest, cancellation: CancellationFlag,
                  progress: @escaping @Sendable (GenerationProgress) -> Void) throws -> GenerationResult {
        condition.withLock {
            started += 1
            while !gateOpen && !cancellation.isCancelled { _ = condition.wait(until: Date().addingTimeInterval(0.01)) }
        }
        for path in request.imagePaths where !path.isEmpty {
            _ = try ImageFile.read(URL(fileURLWithPath: path))  // the stored upload must be a readable image
        }
        for step in 1...request.steps {
            if cancellation.isCancelled { throw GenerationError.cancelled }
            Thread.sleep(forTimeInterval: secondsPerStep)
            progress(GenerationProgress(stage: .denoising, step: step, totalSteps: request.steps,
                                        elapsedSeconds: Double(step) * secondsPerStep,
                                        etaSeconds: Double(request.steps - step) * secondsPerStep))
        }
        progress(GenerationProgress(stage: .decoding, step: request.steps, totalSteps: request.steps))
        condition.withLock {
            while decodingHeld { _ = condition.wait(until: Date().addingTimeInterval(0.01)) }
        }
        let (width, height) = request.latentAlignedSize
        let image = try RGBImage(width: width, height: height, red: UInt8(request.seed % 256),
                                 green: UInt8(request.seed / 256 % 256), blue: 200)
        return GenerationResult(image: image, request: request, seconds: Double(request.steps) * secondsPerStep)
    }
}

/// Small capabilities so the test images stay tiny.
let testCapabilities = GeneratorCapabilities(
    modelName: "test generator", defaultSide: 64, minSide: 32, maxSide: 256, sideStep: 16,
    defaultSteps: 4, maxSteps: 50, defaultGuidance: 4, minGuidance: 1, maxGuidance: 5,
    defaultContentReferenceSize: 128, minContentReferenceSize: 32, maxContentReferenceSize: 512,
    keepSizeBase: 128, maxStyleImages: 2)

/// A server on an ephemeral loopback port (HummingbirdTesting's live mode with AsyncHTTPClient),
/// writing into a fresh temporary output folder.
struct TestServer {
    let server: USOWebServer
    let outputRoot: URL

    /// `configure` changes the rest of the configuration (timeouts, limits, host names).
    init(capacity: Int = 8, historyLimit: Int = 100, token: String? = nil, uploads: UploadLimits = .default,
         logger: Logger? = nil, configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        outputRoot = FileManager.default.temporaryDirectory.appendingPathComponent("uso-serve-test-\(UUID().uuidString)")
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.queueCapacity = capacity
        configuration.historyLimit = historyLimit
        configuration.token = token
        configuration.uploads = uploads
        configuration.outputRoot = outputRoot
        configuration.capabilities = testCapabilities
        configure(&configuration)
        self.logger = logger
        let box = GeneratorBox()
        generatorBox = box
        server = try USOWebServer(configuration: configuration) { box.generator }
    }

    private let generatorBox: GeneratorBox
    private let logger: Logger?
    final class GeneratorBox: @unchecked Sendable { var generator = TestGenerator() }

    func run(generator: TestGenerator = TestGenerator(), _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        generatorBox.generator = generator
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: outputRoot)
        }
        try await server.application(logger: logger).test(.ahc(.http)) { client in try await body(client) }
    }
}

// MARK: Requests

extension TestClientProtocol {
    func postJSON(_ object: [String: Any], headers: HTTPFields = [:]) async throws -> TestResponse {
        let data = try JSONSerialization.data(withJSONObject: object)
        var fields = headers
        fields[.contentType] = "application/json"
        return try await execute(uri: "/api/jobs", method: .post, headers: fields, body: ByteBuffer(bytes: data))
    }

    func postMultipart(_ form: MultipartBody) async throws -> TestResponse {
        try await execute(uri: "/api/jobs", method: .post, headers: [.contentType: form.contentType],
                          body: ByteBuffer(bytes: form.data))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    /// Polls until the job reaches a final status (at most `timeout` seconds).
    func waitForFinal(_ id: String, timeout: Double = 20) async throws -> JobSnapshot {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let snapshot = try decode(JobSnapshot.self, from: try await get("/api/jobs/\(id)"))
            if snapshot.status.isFinal { return snapshot }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        throw TestFailure("job \(id) did not finish within \(timeout) s")
    }

    func waitForStatus(_ id: String, _ status: JobStatus, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try decode(JobSnapshot.self, from: try await get("/api/jobs/\(id)")).status == status { return }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        XCTFail("job \(id) never became \(status)")
    }
}

struct MultipartBody {
    let boundary = "----usoTestBoundary\(UUID().uuidString.prefix(8))"
    private(set) var data = Data()

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    mutating func field(_ name: String, _ value: String) {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }

    mutating func file(_ name: String, _ bytes: Data, filename: String = "image.png", type: String = "image/png") {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(type)\r\n\r\n".utf8))
        data.append(bytes)
        data.append(Data("\r\n".utf8))
    }

    func finished() -> MultipartBody {
        var copy = self
        copy.data.append(Data("--\(boundary)--\r\n".utf8))
        return copy
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let jsonDecoder: JSONDecoder = {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return decoder
}()

func decode<T: Decodable>(_ type: T.Type, from response: TestResponse) throws -> T {
    do {
        return try jsonDecoder.decode(type, from: Data(response.body.readableBytesView))
    } catch {
        throw TestFailure("cannot decode \(type) from \(response.status): \(String(buffer: response.body))")
    }
}

/// The `error` sentence of a JSON error body (nil if the body is not the error shape).
func errorMessage(_ response: TestResponse) -> String? {
    struct ErrorBody: Decodable { let error: String; let status: Int }
    return (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView)))?.error
}

/// A PNG of the given size with a simple pattern.
func pngData(width: Int, height: Int) throws -> Data {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for index in pixels.indices { pixels[index] = UInt8((index * 7) % 256) }
    return try ImageFile.encode(RGBImage(width: width, height: height, pixels: pixels), as: .png(text: []))
}

func assertStatus(_ response: TestResponse, _ expected: HTTPResponse.Status, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(response.status, expected, String(buffer: response.body), file: file, line: line)
}
