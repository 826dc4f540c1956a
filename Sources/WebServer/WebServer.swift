import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Pipeline

/// `uso serve`: the page at `/`, the JSON API under `/api/`, and one generation queue.
/// The endpoints are documented in docs/openapi.yaml.
public final class USOWebServer: Sendable {
    public let configuration: ServerConfiguration
    let queue: JobQueue
    let uploadSlots: UploadSlots
    private let uploads: UploadFolder
    private let presets: PresetLibrary

    /// `requestTemplate` holds the settings every job shares (model type, precision, LoRA and
    /// SigLIP switches); each job fills in its prompt, references, size, steps, guidance and seed.
    /// Throws when the output folder cannot be written, so that `uso serve` stops before serving.
    public init(configuration: ServerConfiguration, requestTemplate: GenerationRequest = GenerationRequest(prompt: ""),
                generator factory: @escaping GeneratorFactory) throws {
        try Self.checkWritable(configuration.outputRoot)
        self.configuration = configuration
        self.requestTemplate = requestTemplate
        uploads = try UploadFolder()
        presets = PresetLibrary.load()
        uploadSlots = UploadSlots(limit: configuration.maxConcurrentUploads)
        queue = JobQueue(capacity: configuration.queueCapacity, historyLimit: configuration.historyLimit,
                         outputRoot: configuration.outputRoot, uploads: uploads, factory: factory)
    }

    private let requestTemplate: GenerationRequest

    /// Results that cannot be saved should stop `uso serve` at start, not fail every job later.
    private static func checkWritable(_ folder: URL) throws {
        // Made as the first job would make it; if that fails, the probe's error says why.
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let probe = folder.appendingPathComponent(".uso-serve-write-test-\(UUID().uuidString)").path
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw ServerStartError(description: "cannot write results to \(folder.path) (--save-path): "
                                   + "\(String(cString: strerror(errno)).lowercased()); choose a writable folder")
        }
        close(descriptor)
        unlink(probe)
    }

    /// Serves until SIGINT or SIGTERM, then cancels the queue and removes the uploads.
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }) async throws {
        let host = configuration.host
        let app = application { port in
            await onListening(host, port)
            // The start-up line must reach a log file or pipe now, not when the buffer fills.
            fflush(stdout)
        }
        defer { stop() }
        try await app.runService()
    }

    /// The Hummingbird application (the tests run it on an ephemeral port).
    public func application(logger: Logger? = nil, onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in })
        -> Application<RouterResponder<BasicRequestContext>> {
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [CloseAfterResponseHandler()],
                                               idleTimeout: TimeAmount(configuration.idleTimeout))
        return Application(
            router: router(), server: .http1(configuration: http1),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "uso",
                                 availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Where uploaded references are kept while their jobs are remembered.
    var uploadFolder: URL { uploads.url }

    /// Cancels waiting and running jobs and deletes the uploaded references.
    public func stop() {
        queue.shutdown()
        uploads.removeAll()
    }

    // MARK: Routes

    private typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: HostCheckMiddleware(allowed: AllowedHosts(boundHost: configuration.host,
                                                                         extra: configuration.allowedHosts)))
        router.add(middleware: DeclaredBodyLimitMiddleware(limit: configuration.uploads.maxRequestBytes))
        router.add(middleware: SameOriginMiddleware())
        Self.route(router, "/", [.get: { _, _ in Self.pageResponse() }])
        Self.route(router, "/health", [.get: { _, _ in self.health() }])
        Self.route(router, "/presets/:name", [.get: { _, context in try self.presetImage(context.parameters.require("name")) }])

        let api = router.group("api")
        if let token = configuration.token { api.add(middleware: BearerTokenMiddleware(token: token)) }
        Self.route(api, "info", [.get: { _, _ in self.info() }])
        Self.route(api, "presets", [.get: { _, _ in JSONResponse.make(self.presets.presets) }])
        Self.route(api, "jobs", [
            .get: { _, _ in JSONResponse.make(self.queue.history()) },
            .post: { request, context in try await self.submit(request, context: context) },
        ])
        Self.route(api, "jobs/:id", [
            .get: { _, context in try self.status(context.parameters.require("id")) },
            .delete: { _, context in try self.cancel(context.parameters.require("id")) },
        ])
        Self.route(api, "jobs/:id/events", [.get: { _, context in try self.events(context.parameters.require("id")) }])
        Self.route(api, "jobs/:id/image", [.get: { _, context in try self.image(context.parameters.require("id")) }])
        Self.route(api, "jobs/:id/inputs/:which", [.get: { _, context in
            try self.input(context.parameters.require("id"), which: context.parameters.require("which"))
        }])
        return router
    }

    /// `handlers` on `path`, and 405 with Allow for the other methods (the router alone would answer 404).
    private static func route(_ routes: some RouterMethods<BasicRequestContext>, _ path: RouterPath,
                              _ handlers: KeyValuePairs<HTTPRequest.Method, Handler>) {
        let allowed = handlers.map(\.key)
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for (method, handler) in handlers { routes.on(path, method: method, use: handler) }
        for method in [HTTPRequest.Method.get, .head, .post, .put, .patch, .delete, .options] where !allowed.contains(method) {
            routes.on(path, method: method) { request, _ -> Response in
                throw APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path); use \(allow)",
                               headers: [.allow: allow])
            }
        }
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
            let maxPromptLength: Int
        }
        return JSONResponse.make(Info(capabilities: configuration.capabilities, uploads: configuration.uploads,
                                      queueCapacity: queue.capacity, modelType: requestTemplate.modelType.rawValue,
                                      maxPromptLength: SubmissionBody.maxPromptLength))
    }

    private func submit(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let submission = try await uploadSlots.withSlot {
            let fields = try await SubmissionBody.fields(of: request, limit: configuration.uploads.maxRequestBytes)
            return try JobSubmission(fields: fields, capabilities: configuration.capabilities, limits: configuration.uploads)
        }
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
        case .tooLate:
            throw APIError(.conflict, "job \(id) is saving its image: too late to cancel")
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
    /// Longest prompt, in Unicode scalars: far beyond what the text encoders read (T5 takes 512 tokens),
    /// so only abuse is refused. Its natural home is the pipeline's GenerationRequest; it lives here
    /// until the pipeline has one.
    static let maxPromptLength = 10_000
    /// Fields read as numbers. As text (a form field, a JSON string) they must be written as JSON writes
    /// numbers: Swift's Double("0x4") is 4 and Double("nan") is NaN. (This check belongs with
    /// JobSubmission's field reader.)
    static let numericFields: Set = ["seed", "width", "height", "steps", "guidance", "contentReferenceSize"]

    static func fields(of request: Request, limit: Int) async throws -> [String: SubmittedValue] {
        let contentType = request.headers[.contentType] ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType == "application/json" || mediaType == "multipart/form-data" else {
            throw APIError(.unsupportedMediaType,
                           "send the job as application/json (images base64) or multipart/form-data, not '\(contentType.prefix(60))'")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as HTTPResponseError {
            throw error  // over the limit: 413
        } catch {
            throw IncompleteBody(reason: "\(error)")
        }
        let body = Data(buffer.readableBytesView)
        let fields: [String: SubmittedValue]
        if mediaType == "application/json" {
            fields = try json(body)
        } else {
            guard let boundary = MultipartForm.boundary(contentType: contentType) else {
                throw APIError.badRequest("the multipart/form-data Content-Type has no valid boundary parameter")
            }
            fields = try multipart(body, boundary: boundary)
        }
        try checkTexts(fields)
        return fields
    }

    private static func checkTexts(_ fields: [String: SubmittedValue]) throws {
        if case .text(let prompt)? = fields["prompt"], prompt.unicodeScalars.count > maxPromptLength {
            throw APIError.badRequest("'prompt' is \(prompt.unicodeScalars.count) characters long; the limit is "
                                      + "\(maxPromptLength) (the text encoder reads at most 512 tokens)")
        }
        for name in numericFields.sorted() {
            guard case .text(let text)? = fields[name] else { continue }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if Double(trimmed) != nil && !StrictJSON.isNumber(trimmed) {
                throw APIError.badRequest("'\(name)' must be a decimal number, got \"\(text.prefix(40))\"")
            }
        }
    }

    private static func json(_ body: Data) throws -> [String: SubmittedValue] {
        let value: StrictJSON.Value
        do {
            value = try StrictJSON.parse(body)
        } catch let error as StrictJSON.SyntaxError {
            throw APIError.badRequest("the body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object of job fields, not \(describe(value))")
        }
        return try object.reduce(into: [:]) { fields, member in fields[member.key] = try submitted(member.value, field: member.key) }
    }

    private static func submitted(_ value: StrictJSON.Value, field: String) throws -> SubmittedValue {
        switch value {
        case .string(let text): .text(text)
        case .number(let number): .number(number)
        case .bool(let flag): .bool(flag)
        case .null: .null
        case .array(let items): .list(try items.map { try submitted($0, field: field) })
        case .object:
            throw APIError.badRequest("'\(field)' holds an object: job fields are strings, numbers, booleans or arrays, not objects")
        }
    }

    private static func describe(_ value: StrictJSON.Value) -> String {
        switch value {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
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
            let value: SubmittedValue
            if part.filename != nil {
                value = .file(part.data)
            } else if let text = String(validating: part.data, as: UTF8.self) {
                value = .text(text)
            } else {
                throw APIError.badRequest("the field '\(part.name)' is not valid UTF-8 text")
            }
            switch (fields[part.name], part.name) {
            case (nil, "styleImages"): fields[part.name] = .list([value])
            case (.list(let items)?, "styleImages"): fields[part.name] = .list(items + [value])
            case (nil, _): fields[part.name] = value
            default: throw APIError.badRequest("the field '\(part.name)' is given more than once")
            }
        }
        return fields
    }
}
