import Foundation
import Hummingbird

/// Every refusal the API gives: a status and a sentence saying what was wrong and what to do.
/// The body is always JSON: `{"error": "...", "status": 400}`.
public struct APIError: Error, HTTPResponseError, Equatable {
    public let status: HTTPResponse.Status
    public let message: String
    /// Extra headers, e.g. Retry-After on 503 or WWW-Authenticate on 401.
    var headers: HTTPFields = [:]

    /// `closingConnection` for refusals made before the request's body is read: the connection ends
    /// after the response (see CloseAfterResponseHandler) instead of reading the rest of the body.
    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], closingConnection: Bool = false) {
        self.status = status
        self.message = message
        self.headers = headers
        if closingConnection { self.headers[.connection] = "close" }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(ErrorBody(error: message, status: status.code), status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    private struct ErrorBody: Encodable {
        let error: String
        let status: Int
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
    static func tooLarge(_ message: String, closingConnection: Bool = false) -> APIError {
        APIError(.contentTooLarge, message, closingConnection: closingConnection)
    }
}

/// The request body stopped short: the client went away, or broke the framing, while sending it.
struct IncompleteBody: Error {
    let reason: String
}

/// Turns every error a handler throws, including the router's own 404/405 and body-size refusals,
/// into the JSON error shape, so clients never have to parse anything else.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let message = error.body ?? Self.sentence(for: error.status, path: request.uri.path)
            throw APIError(error.status, message, headers: error.headers)
        } catch let error as HTTPResponseError {
            // A body over the limit is not read any further.
            throw APIError(error.status, Self.sentence(for: error.status, path: request.uri.path),
                           closingConnection: error.status == .contentTooLarge)
        } catch let error as IncompleteBody {
            // Clients close connections mid-upload (a closed tab, a timeout): theirs to log, not the server's.
            context.logger.debug("client went away during \(request.method) \(request.uri.path): \(error.reason)")
            throw APIError.badRequest("the request body ended before its declared end")
        } catch {
            context.logger.error("unexpected error on \(request.method) \(request.uri.path): \(error)")
            throw APIError(.internalServerError, "internal error: \(error)")
        }
    }

    private static func sentence(for status: HTTPResponse.Status, path: String) -> String {
        switch status {
        case .notFound: "no such endpoint: \(path); see docs/openapi.yaml for the API"
        case .methodNotAllowed: "this method is not allowed on \(path)"
        case .contentTooLarge: "the request body is too large"
        default: status.reasonPhrase
        }
    }
}

/// JSON responses with stable key order and ISO 8601 dates.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        // Encoding our own value types cannot fail; an empty object is still valid JSON if it did.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
