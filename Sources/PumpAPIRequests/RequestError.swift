import PumpProtocol

/// Why a request's body or query was refused: a code, a message for the client and details
/// naming the offending field or value. The daemon answers it as its `DaemonError` of the same
/// code, message and details (400 for `badRequest`).
public struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The client's input is malformed or out of range.
        case badRequest
        /// The daemon could not handle input it accepted (a bug, not the client's fault).
        case internalError
    }

    public var code: Code
    public var message: String
    public var details: [String: String]

    public init(_ code: Code, _ message: String, details: [String: String] = [:]) {
        self.code = code
        self.message = message
        self.details = details
    }

    public static func badRequest(_ message: String, details: [String: String] = [:]) -> Self {
        Self(.badRequest, message, details: details)
    }

    /// A field of a protocol value out of the range the definitions allow (SPEC, messages.json).
    public static func invalid(_ error: WireError) -> Self {
        switch error {
        case .outOfRange(let field, let value):
            return .badRequest("\(field) is out of range: \(value)", details: ["field": field, "value": String(value)])
        case .tooLong(let field, let count, let max):
            return .badRequest(
                "\(field) has \(count) elements, at most \(max) are allowed",
                details: ["field": field, "count": String(count), "max": String(max)])
        case .invalidEnum(let field, let value):
            return .badRequest("\(field) has no value \(value)", details: ["field": field, "value": String(value)])
        default:
            return .badRequest("invalid value: \(error)")
        }
    }

    public var description: String {
        details.isEmpty
            ? "\(code.rawValue): \(message)"
            : "\(code.rawValue): \(message) \(details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
    }
}
