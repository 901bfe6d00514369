import Hummingbird

/// Every route of the HTTP API, in one table: the router is built from it, and
/// protocol/openapi.json is checked against it (its `operationId`s are these names).
public enum APIEndpoint: String, CaseIterable, Sendable {
    case health
    case metrics
    case listPumps
    case getPump
    case listEvents
    case getProgram
    case reviewProgram
    case pushProgram
    case refill
    case clinicianBolus
    case patientBolus
    case suspend
    case resume
    case acknowledgeAlarms
    case setClock
    case audit
    case getCapture
    case startCapture
    case stopCapture
    case stream

    public var method: HTTPRequest.Method {
        switch self {
        case .health, .metrics, .listPumps, .getPump, .listEvents, .getProgram, .audit, .getCapture, .stream: .get
        case .reviewProgram, .pushProgram, .refill, .clinicianBolus, .patientBolus, .suspend, .resume,
            .acknowledgeAlarms, .setClock, .startCapture, .stopCapture:
            .post
        }
    }

    /// The path, with `{id}` for the pump's id (the syntax of both Hummingbird and OpenAPI).
    public var path: String {
        switch self {
        case .health: "/v1/health"
        case .metrics: "/metrics"
        case .listPumps: "/v1/pumps"
        case .getPump: "/v1/pumps/{id}"
        case .listEvents: "/v1/pumps/{id}/events"
        case .getProgram, .pushProgram: "/v1/pumps/{id}/program"
        case .reviewProgram: "/v1/pumps/{id}/program/review"
        case .refill: "/v1/pumps/{id}/refill"
        case .clinicianBolus: "/v1/pumps/{id}/bolus/clinician"
        case .patientBolus: "/v1/pumps/{id}/bolus/patient"
        case .suspend: "/v1/pumps/{id}/suspend"
        case .resume: "/v1/pumps/{id}/resume"
        case .acknowledgeAlarms: "/v1/pumps/{id}/alarms/acknowledge"
        case .setClock: "/v1/pumps/{id}/clock"
        case .audit: "/v1/audit"
        case .getCapture: "/v1/pumps/{id}/capture"
        case .startCapture: "/v1/pumps/{id}/capture/start"
        case .stopCapture: "/v1/pumps/{id}/capture/stop"
        case .stream: "/v1/stream"
        }
    }

    /// The least role that may call it; nil: no token needed.
    ///
    /// Reads are open to every role. The dry run (`reviewProgram`) is part of programming, so it
    /// is the clinician's, like every change; the patient may only ask for a patient bolus.
    /// `/metrics` needs a token too: it shows reservoir levels and alarm states.
    public var requiredRole: Role? {
        switch self {
        case .health: nil
        case .metrics, .listPumps, .getPump, .listEvents, .getProgram, .getCapture, .stream: .observer
        case .patientBolus: .patient
        case .reviewProgram, .pushProgram, .refill, .clinicianBolus, .suspend, .resume, .acknowledgeAlarms,
            .setClock, .audit, .startCapture, .stopCapture:
            .clinician
        }
    }

    /// The query parameters it takes; any other is refused (a misspelt filter must not widen a read).
    public var queryParameters: Set<String> {
        switch self {
        case .listEvents: ["from", "limit"]
        case .audit: ["pump", "limit"]
        case .stream: ["pump"]
        default: []
        }
    }

    var access: Access { requiredRole.map(Access.role) ?? .open }

    /// The methods served at a request's path, in the order of the table; empty when no
    /// endpoint has that path. A path with other methods answers 405 naming these (RFC 9110
    /// §15.5.6), not 404: the resource exists.
    public static func methods(servedAt requestPath: String) -> [HTTPRequest.Method] {
        let requested = requestPath.split(separator: "/", omittingEmptySubsequences: false)
        var methods: [HTTPRequest.Method] = []
        for endpoint in allCases where !methods.contains(endpoint.method) {
            let pattern = endpoint.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == requested.count else { continue }
            let matches = zip(pattern, requested).allSatisfy { pattern, segment in
                pattern.hasPrefix("{") ? !segment.isEmpty : pattern == segment
            }
            if matches { methods.append(endpoint.method) }
        }
        return methods
    }
}
