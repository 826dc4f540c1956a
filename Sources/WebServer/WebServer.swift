import Foundation
import Hummingbird
import Pipeline

/// `uso serve`: the page at `/`, the JSON API under `/api/`, and one generation queue.
/// The endpoints are documented in docs/openapi.yaml.
public final class USOWebServer: Sendable {
    public let configuration: ServerConfiguration
    let queue: JobQueue
    private let uploads: UploadFolder
    private let presets: PresetLibrary

    /// `requestTemplate` holds the settings every job shares (model type, precision, LoRA and
    /// SigLIP switches); each job fills in its prompt, references, size, steps, guidance and seed.
    public init(configuration: ServerConfiguration, requestTemplate: GenerationRequest = GenerationRequest(prompt: ""),
                generator factory: @escaping GeneratorFactory) throws {
        self.configuration = configuration
        self.requestTemplate = requestTemplate
        uploads = try UploadFolder()
        presets = PresetLibrary.load()
        queue = JobQueue(capacity: configuration.queueCapacity, historyLimit: configuration.historyLimit,
                         outputRoot: configuration.outputRoot, uploads: uploads, factory: factory)
    }

    private let requestTemplate: GenerationRequest

    /// Serves until SIGINT or SIGTERM, then cancels the queue and removes the uploads.
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }) async throws {
        let host = configuration.host
        let app = application { port in await onListening(host, port) }
        defer { stop() }
        try await app.runService()
    }

    /// The Hummingbird application (the tests run it on an ephemeral port).
    public func application(onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in })
        -> Application<RouterResponder<BasicRequestContext>> {
        Application(router: router(), configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                            serverName: "uso"),
                    onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) })
    }

    /// Where uploaded references are kept while their jobs are remembered.
    var uploadFolder: URL { uploads.url }

    /// Cancels waiting and running jobs and deletes the uploaded references.
    public func stop() {
        queue.shutdown()
        uploads.removeAll()
    }

    // MARK: Routes

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: SameOriginMiddleware())
        router.get("/") { _, _ in Self.pageResponse() }
        router.get("/health") { _, _ in self.health() }
        router.get("/presets/:name") { _, context in try self.presetImage(context.parameters.require("name")) }

        let api = router.group("api")
        if let token = configuration.token { api.add(middleware: BearerTokenMiddleware(token: token)) }
        api.get("info") { _, _ in self.info() }
        api.get("presets") { _, _ in JSONResponse.make(self.presets.presets) }
        api.post("jobs") { request, context in try await self.submit(request, context: context) }
        api.get("jobs") { _, _ in JSONResponse.make(self.queue.history()) }
        api.get("jobs/:id") { _, context in try self.status(context.parameters.require("id")) }
        api.delete("jobs/:id") { _, context in try self.cancel(context.parameters.require("id")) }
        api.get("jobs/:id/events") { _, context in try self.events(context.parameters.require("id")) }
        api.get("jobs/:id/image") { _, context in try self.image(context.parameters.require("id")) }
        api.get("jobs/:id/inputs/:which") { _, context in
            try self.input(context.parameters.require("id"), which: context.parameters.require("which"))
        }
        return router
    }

    private static func pageResponse() -> Response {
        Response(status: .ok, headers: [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-cache",
            // Everything the page needs is inline or on this server; images shown come as blob: URLs.
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'",
            .xContentTypeOptions: "nosniff",
        ], body: ResponseBody(byteBuffer: ByteBuffer(string: Page.html)))
    }

    private func health() -> Response {
        struct Health: Encodable { let status: String; let waiting: Int; let running: Int; let capacity: Int }
        let counts = queue.counts
        return JSONResponse.make(Health(status: "ok", waiting: counts.waiting, running: counts.running, capacity: queue.capacity))
    }

    private func info() -> Response {
        struct Info: Encodable {
            let capabilities: GeneratorCapabilities
            let uploads: UploadLimits
            let queueCapacity: Int
            let modelType: String
        }
        return JSONResponse.make(Info(capabilities: configuration.capabilities, uploads: configuration.uploads,
                                      queueCapacity: queue.capacity, modelType: requestTemplate.modelType.rawValue))
    }

    private func submit(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let fields = try await SubmissionBody.fields(of: request, limit: configuration.uploads.maxRequestBytes)
        let submission = try JobSubmission(fields: fields, capabilities: configuration.capabilities, limits: configuration.uploads)
        do {
            let snapshot = try queue.submit(submission, template: requestTemplate)
            var response = JSONResponse.make(snapshot, status: .accepted)
            response.headers[.location] = "/api/jobs/\(snapshot.id)"
            return response
        } catch JobQueue.SubmitError.full(let retryAfter) {
            throw APIError(.serviceUnavailable,
                           "the queue is full (\(queue.capacity) unfinished jobs); try again in about \(retryAfter) s",
                           headers: [.retryAfter: String(retryAfter)])
        }
    }

    private func status(_ id: String) throws -> Response {
        guard let snapshot = queue.snapshot(id) else { throw Self.unknownJob(id) }
        return JSONResponse.make(snapshot)
    }

    private func cancel(_ id: String) throws -> Response {
        switch queue.cancel(id) {
        case .cancelled(let snapshot): return JSONResponse.make(snapshot, status: .accepted)
        case .alreadyFinished(let snapshot):
            throw APIError(.conflict, "job \(id) has already finished (\(snapshot.status.rawValue)); nothing to cancel")
        case .notFound: throw Self.unknownJob(id)
        }
    }

    /// Server-Sent Events: `event: progress` for each change, then one `event: done` with the
    /// final snapshot, after which the stream closes.
    private func events(_ id: String) throws -> Response {
        guard let stream = queue.events(id) else { throw Self.unknownJob(id) }
        let body = ResponseBody { writer in
            for await snapshot in stream {
                let json = String(decoding: (try? JSONResponse.encoder.encode(snapshot)) ?? Data(), as: UTF8.self)
                let event = snapshot.status.isFinal ? "done" : "progress"
                try await writer.write(ByteBuffer(string: "event: \(event)\ndata: \(json)\n\n"))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// The PNG exactly as written to the output folder, with its metadata chunks.
    private func image(_ id: String) throws -> Response {
        guard let snapshot = queue.snapshot(id) else { throw Self.unknownJob(id) }
        guard let file = queue.resultFile(id), let data = try? Data(contentsOf: file) else {
            throw APIError(.notFound, "job \(id) has no image (it is \(snapshot.status.rawValue))")
        }
        return Response(status: .ok, headers: [
            .contentType: "image/png",
            .contentDisposition: "inline; filename=\"\(file.lastPathComponent)\"",
        ], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `content`, `style1` or `style2`: the references a job was given (for "reuse these settings").
    private func input(_ id: String, which: String) throws -> Response {
        guard queue.snapshot(id) != nil else { throw Self.unknownJob(id) }
        let file: URL?
        switch which {
        case "content": file = queue.inputFile(id, content: true)
        case "style1", "style2": file = queue.inputFile(id, content: false, styleIndex: which == "style1" ? 0 : 1)
        default: throw APIError.notFound("no input '\(which)': use content, style1 or style2")
        }
        guard let file, let data = try? Data(contentsOf: file) else {
            throw APIError.notFound("job \(id) has no \(which) image")
        }
        return Response(status: .ok, headers: [.contentType: Self.mediaType(ofFile: file)],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func presetImage(_ name: String) throws -> Response {
        guard let data = presets.images[name] else { throw APIError.notFound("no preset image '\(name)'") }
        return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func mediaType(ofFile file: URL) -> String {
        switch file.pathExtension {
        case "png": "image/png"
        case "webp": "image/webp"
        default: "image/jpeg"
        }
    }

    private static func unknownJob(_ id: String) -> APIError {
        APIError.notFound("no job '\(id.prefix(64))' on this server (jobs are kept until the server restarts)")
    }
}

/// `Authorization: Bearer <token>` on every API request when the server was started with --token.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let given = request.headers[.authorization].flatMap { value -> Substring? in
            value.lowercased().hasPrefix("bearer ") ? value.dropFirst("bearer ".count) : nil
        }
        guard let given, Self.constantTimeEqual(Array(given.utf8), Array(token.utf8)) else {
            throw APIError(.unauthorized, "this server needs a token: send 'Authorization: Bearer <token>' (the token uso serve was started with)",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }

    /// Takes as long whichever byte differs, so the token cannot be guessed from timings.
    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Refuses requests that a browser sends on behalf of another site: a page elsewhere could
/// otherwise post jobs to this loopback server (a form post needs no CORS permission). Browsers
/// send `Origin` on such requests; API clients like curl send none and pass.
struct SameOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let origin = request.headers[.origin], request.method != .get && request.method != .head {
            let host = request.head.authority ?? ""
            let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
            guard originHost == host else {
                throw APIError(.forbidden, "cross-origin request from \(origin.prefix(80)) refused: use the page served by this server, or an API client without an Origin header")
            }
        }
        return try await next(request, context)
    }
}

/// The fields of `POST /api/jobs`, from a JSON object or a multipart form.
enum SubmissionBody {
    static func fields(of request: Request, limit: Int) async throws -> [String: SubmittedValue] {
        let contentType = request.headers[.contentType] ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType == "application/json" || mediaType == "multipart/form-data" else {
            throw APIError(.unsupportedMediaType,
                           "send the job as application/json (images base64) or multipart/form-data, not '\(contentType.prefix(60))'")
        }
        let buffer = try await request.body.collect(upTo: limit)
        let body = Data(buffer.readableBytesView)
        if mediaType == "application/json" { return try json(body) }
        guard let boundary = MultipartForm.boundary(contentType: contentType) else {
            throw APIError.badRequest("the multipart/form-data Content-Type has no valid boundary parameter")
        }
        return try multipart(body, boundary: boundary)
    }

    private static func json(_ body: Data) throws -> [String: SubmittedValue] {
        let object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: body)
        } catch {
            throw APIError.badRequest("the body is not a JSON object of job fields: \(Self.reason(error))")
        }
        return try object.mapValues { try $0.submitted() }
    }

    private static func multipart(_ body: Data, boundary: String) throws -> [String: SubmittedValue] {
        let parts: [MultipartPart]
        do {
            parts = try MultipartForm.parse(body, boundary: boundary)
        } catch let error as MultipartForm.FormatError {
            throw APIError.badRequest("malformed multipart body: \(error.description)")
        }
        var fields: [String: SubmittedValue] = [:]
        for part in parts {
            let value: SubmittedValue = part.filename != nil ? .file(part.data) : .text(String(decoding: part.data, as: UTF8.self))
            switch (fields[part.name], part.name) {
            case (nil, "styleImages"): fields[part.name] = .list([value])
            case (.list(let items)?, "styleImages"): fields[part.name] = .list(items + [value])
            case (nil, _): fields[part.name] = value
            default: throw APIError.badRequest("the field '\(part.name)' is given more than once")
            }
        }
        return fields
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context):
            context.debugDescription
        default: "\(error)"
        }
    }
}

/// Any JSON value, so that the submission's field checks see exactly what was sent.
private enum JSONValue: Decodable {
    case string(String), number(Double), bool(Bool), null, array([JSONValue]), object

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let flag = try? container.decode(Bool.self) { self = .bool(flag) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let text = try? container.decode(String.self) { self = .string(text) }
        else if let items = try? container.decode([JSONValue].self) { self = .array(items) }
        else { self = .object }
    }

    func submitted() throws -> SubmittedValue {
        switch self {
        case .string(let text): .text(text)
        case .number(let number): .number(number)
        case .bool(let flag): .bool(flag)
        case .null: .null
        case .array(let items): .list(try items.map { try $0.submitted() })
        case .object: throw APIError.badRequest("job fields are strings, numbers, booleans or arrays, not objects")
        }
    }
}
