import Hummingbird
import Logging
import PumpAPIRequests

/// The JSON every error response carries:
/// `{"error": {"code": "<DaemonError.Code>", "message": "...", "details": {...}}}`.
struct ErrorEnvelope: Codable, Sendable, Hashable {
    struct Body: Codable, Sendable, Hashable {
        var code: DaemonError.Code
        var message: String
        var details: [String: String]
    }

    var error: Body

    init(_ error: DaemonError) {
        self.error = Body(code: error.code, message: error.message, details: error.details)
    }
}

/// An error raised by the HTTP layer itself, before the service is called; it carries its own
/// status where the code's usual one does not fit (413 for an oversized body, 404 for an
/// unknown path).
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var error: DaemonError

    init(_ code: DaemonError.Code, _ message: String, details: [String: String] = [:], status: HTTPResponse.Status? = nil) {
        self.error = DaemonError(code, message, details: details)
        self.status = status ?? code.httpStatus
    }

    static func badRequest(_ message: String, details: [String: String] = [:]) -> Self {
        Self(.badRequest, message, details: details)
    }

    static func bodyTooLarge(limit: Int) -> Self {
        Self(
            .badRequest, "the request body is larger than \(limit) bytes",
            details: ["limitBytes": String(limit)], status: .contentTooLarge)
    }

    /// A refused body or query, with the same code, message and details.
    init(_ error: RequestError) {
        let code: DaemonError.Code =
            switch error.code {
            case .badRequest: .badRequest
            case .internalError: .internalError
            }
        self.init(code, error.message, details: error.details)
    }
}

extension DaemonError.Code {
    /// The HTTP status of each error code (openapi.json `ErrorCode`).
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .unknownPump: .notFound
        case .limitExceeded, .overrideRequired, .refusedByPump, .blockedByUncertainty: .conflict
        case .uncertain: .badGateway
        case .linkDown: .serviceUnavailable
        case .internalError: .internalServerError
        }
    }
}

/// Turns every error a route throws, and the router's own 404, into the error envelope, so a
/// client sees one error format whatever failed. A known path asked with a method it does not
/// take answers 405 with `Allow`.
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let encoder: JSONEncoding

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as DaemonError {
            if error.code == .internalError {
                context.logger.error("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"])
            }
            return encoder.errorResponse(error, status: error.code.httpStatus)
        } catch let error as APIError {
            return encoder.errorResponse(error.error, status: error.status)
        } catch let error as RequestError {
            let error = APIError(error)
            return encoder.errorResponse(error.error, status: error.status)
        } catch let error as any HTTPResponseError {
            // The router's "no such route" (404), a body over the limit (413) and the like.
            let status = error.status
            if status == .notFound {
                let allowed = APIEndpoint.methods(servedAt: request.uri.path)
                if !allowed.isEmpty {
                    let names = allowed.map(\.rawValue).joined(separator: ", ")
                    var response = encoder.errorResponse(
                        DaemonError(
                            .badRequest, "\(request.uri.path) does not take \(request.method.rawValue); it takes \(names)",
                            details: ["allow": names]),
                        status: .methodNotAllowed)
                    response.headers[.allow] = names
                    return response
                }
            }
            let code: DaemonError.Code = status.code >= 500 ? .internalError : .badRequest
            let message =
                switch status {
                case .notFound: "no such endpoint: \(request.method.rawValue) \(request.uri.path)"
                case .contentTooLarge: "the request body is too large"
                default: status.reasonPhrase
                }
            return encoder.errorResponse(DaemonError(code, message), status: status)
        } catch {
            context.logger.error("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"])
            return encoder.errorResponse(DaemonError(.internalError, "internal error"), status: .internalServerError)
        }
    }
}
