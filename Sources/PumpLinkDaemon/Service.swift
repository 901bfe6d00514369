import PumpProtocol
import PumpSafety

/// What the daemon offers its API: every pump's state and the commands on it. The HTTP layer
/// (routes, tokens, JSON) calls only this, so it can be tested against a fake; `PumpFleet` is
/// the real one.
public protocol PumpService: Sendable {
    func pumps() async -> [PumpSummary]
    func pump(_ id: String) async throws(DaemonError) -> PumpDetail
    /// Stored events of the pump from `sequence` on (the daemon's copy of the pump's log).
    func events(_ id: String, from sequence: UInt32, limit: Int) async throws(DaemonError) -> [Event]
    func activeProgram(_ id: String) async throws(DaemonError) -> Program?
    /// The dry run: what pushing `program` would do, and whether the safety rules allow it.
    func review(_ id: String, program: Program, override: Override?) async throws(DaemonError) -> ProgramReport
    /// Review, then staged upload, verify, read-back, activation. Refused (nothing sent) unless
    /// the review accepts it.
    func push(_ id: String, program: Program, override: Override?, by actor: Actor) async throws(DaemonError) -> PushResult
    func refill(_ id: String, aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32, by actor: Actor) async throws(DaemonError) -> RefillResult
    /// Checked against the drug library first (`ClinicianBolusReview`); `override` passes its soft limits.
    func clinicianBolus(
        _ id: String, _ request: ClinicianBolusRequest, override: Override?, catheterVolumeMicroliters: UInt32?, by actor: Actor
    ) async throws(DaemonError) -> ClinicianBolusResponse
    func patientBolus(_ id: String, by actor: Actor) async throws(DaemonError) -> PatientBolusResponse
    func suspend(_ id: String, by actor: Actor) async throws(DaemonError) -> SuspendResponse
    func resume(_ id: String, by actor: Actor) async throws(DaemonError) -> ResumeResponse
    func acknowledgeAlarms(_ id: String, mask: UInt32, by actor: Actor) async throws(DaemonError) -> AcknowledgeAlarmsResponse
    /// Sets the pump's clock. A time further than the configured distance from the host's clock
    /// is refused (`overrideRequired`, audited) unless `override` gives a reason (SPEC §5.6).
    func setClock(_ id: String, timeMs: UInt64, utcOffsetMinutes: Int16, override: Override?, by actor: Actor) async throws(DaemonError) -> SetClockResponse
    /// The audit log, newest first.
    func audit(pump id: String?, limit: Int) async throws(DaemonError) -> [AuditRecord]
    /// The audit log's hash chain: its row count and last hash (`GET /v1/health`).
    func auditHead() async throws(DaemonError) -> AuditHead

    /// The pump's link capture (SPEC §15): whether it runs, its files and counts.
    func captureStatus(_ id: String) async throws(DaemonError) -> CaptureStatus
    /// Starts capturing every frame in and out of the pump's port; a running capture goes on.
    func startCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus
    /// Stops the capture and closes its file.
    func stopCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus
    /// Live telemetry, events and link changes of every pump. A slow consumer loses old
    /// updates; it never slows the links.
    func updates() async -> AsyncStream<PumpUpdate>
    /// Prometheus text exposition of the daemon's metrics.
    func metricsText() async -> String
}

public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// Reads everything, changes nothing.
    case observer
    /// Reads, and asks for a patient bolus.
    case patient
    /// Everything.
    case clinician
}

/// Who asked: the name and role bound to the API token used.
public struct Actor: Sendable, Hashable, Codable {
    public var name: String
    public var role: Role

    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

public enum LinkState: Sendable, Hashable, Codable {
    case connecting
    case up
    /// A session is open, but the pump's status is stale: nothing proven has come for a few
    /// telemetry intervals, and status is being read with GetStatus.
    case degraded(reason: String)
    case down(reason: String)

    private enum CodingKeys: String, CodingKey { case state, reason }

    /// JSON: {"state": "up"}, or {"state": "down" or "degraded", "reason": "..."}.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .connecting: try container.encode("connecting", forKey: .state)
        case .up: try container.encode("up", forKey: .state)
        case .degraded(let reason):
            try container.encode("degraded", forKey: .state)
            try container.encode(reason, forKey: .reason)
        case .down(let reason):
            try container.encode("down", forKey: .state)
            try container.encode(reason, forKey: .reason)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .state) {
        case "connecting": self = .connecting
        case "up": self = .up
        case "degraded": self = .degraded(reason: try container.decode(String.self, forKey: .reason))
        case "down": self = .down(reason: try container.decode(String.self, forKey: .reason))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .state, in: container, debugDescription: "unknown link state \(other)")
        }
    }
}

extension LinkState {
    var isDegraded: Bool {
        if case .degraded = self { return true }
        return false
    }
}

public struct PumpSummary: Sendable, Hashable, Codable {
    /// The daemon's name for the pump (from its configuration).
    public var id: String
    public var port: String
    public var link: LinkState
    public var serialNumber: String?
    public var model: String?
    public var status: Status?
    /// Changing requests sent whose outcome is not known yet: new doses are blocked until
    /// they are resolved from the pump's record.
    public var uncertainRequests: [UInt32]
    /// The protocol version of the link's last session (SPEC §5.2), and whether its frames are
    /// sealed (version 2, SPEC §8.4); absent until the pump has been reached.
    public var protocolVersion: UInt8?
    public var sealed: Bool?

    public init(
        id: String, port: String, link: LinkState, serialNumber: String?, model: String?, status: Status?,
        uncertainRequests: [UInt32], protocolVersion: UInt8? = nil
    ) {
        self.id = id
        self.port = port
        self.link = link
        self.serialNumber = serialNumber
        self.model = model
        self.status = status
        self.uncertainRequests = uncertainRequests
        self.protocolVersion = protocolVersion
        self.sealed = protocolVersion.map { $0 >= 2 }
    }
}

public struct PumpDetail: Sendable, Hashable, Codable {
    public var summary: PumpSummary
    public var firmwareVersion: String?
    public var reservoirCapacityMicroliters: UInt32?
    public var activeProgram: Program?
    /// The newest event stored by the daemon.
    public var lastStoredEventSequence: UInt32

    public init(summary: PumpSummary, firmwareVersion: String?, reservoirCapacityMicroliters: UInt32?, activeProgram: Program?, lastStoredEventSequence: UInt32) {
        self.summary = summary
        self.firmwareVersion = firmwareVersion
        self.reservoirCapacityMicroliters = reservoirCapacityMicroliters
        self.activeProgram = activeProgram
        self.lastStoredEventSequence = lastStoredEventSequence
    }
}

public struct PushResult: Sendable, Hashable, Codable {
    public var report: ProgramReport
    public var activated: ProgramActivateResponse
    /// The pump's status read after activation, reporting the new program as active; nil when
    /// it could not be read then (the activation itself is the pump's confirmed answer, so the
    /// push is done all the same and never reported as a link failure).
    public var status: Status?

    public init(report: ProgramReport, activated: ProgramActivateResponse, status: Status?) {
        self.report = report
        self.activated = activated
        self.status = status
    }
}

public struct RefillResult: Sendable, Hashable, Codable {
    public var report: RefillReport
    public var pump: RefillResponse

    public init(report: RefillReport, pump: RefillResponse) {
        self.report = report
        self.pump = pump
    }
}

/// One line of the audit log: who asked what of which pump, when, and how it ended.
/// The head of the audit log's hash chain (docs/RELIABILITY.md): rows in the log and the last
/// row's SHA-256 (hex; 64 zeros for an empty log). Kept elsewhere, it shows rows cut off the end.
public struct AuditHead: Sendable, Hashable, Codable {
    public var rows: Int64
    public var headHash: String

    public init(rows: Int64, headHash: String) {
        self.rows = rows
        self.headHash = headHash
    }
}

public struct AuditRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var timeMs: UInt64
    public var actor: String
    public var role: String
    public var pumpID: String
    /// e.g. "program.push", "bolus.patient".
    public var action: String
    /// The request's parameters, as JSON text.
    public var parameters: String
    /// "pending" (recorded before sending), "done", "refused", "rejected", "uncertain", "failed".
    public var outcome: String
    public var detail: String
    /// The protocol request id, if a request was sent.
    public var requestID: UInt32?
    /// For an outcome, the id of the intent row it concludes; nil for an intent.
    public var intentID: Int64?

    public init(id: Int64, timeMs: UInt64, actor: String, role: String, pumpID: String, action: String, parameters: String, outcome: String, detail: String, requestID: UInt32?, intentID: Int64? = nil) {
        self.id = id
        self.timeMs = timeMs
        self.actor = actor
        self.role = role
        self.pumpID = pumpID
        self.action = action
        self.parameters = parameters
        self.outcome = outcome
        self.detail = detail
        self.requestID = requestID
        self.intentID = intentID
    }
}

/// A change pushed to live API clients.
public enum PumpUpdate: Sendable, Hashable, Codable {
    case link(pumpID: String, state: LinkState)
    case status(pumpID: String, status: Status)
    case event(pumpID: String, event: Event)
}

/// Why the daemon refused or could not do something. The HTTP layer maps `code` to a status.
public struct DaemonError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, Codable, CaseIterable {
        /// 400: the request is malformed or a value is out of range.
        case badRequest
        /// 401: no token, or an unknown one.
        case unauthorized
        /// 403: the token's role may not do this.
        case forbidden
        /// 404: no pump of that id.
        case unknownPump
        /// 409: the safety rules refuse it (hard limit).
        case limitExceeded
        /// 409: a soft limit needs an override with a reason.
        case overrideRequired
        /// 409: the pump refused it (its ErrorCode is in details); nothing changed.
        case refusedByPump
        /// 409: an earlier changing request's outcome is unknown; doses are blocked until resolved.
        case blockedByUncertainty
        /// 502: the request was sent but its outcome is unknown; see the audit log and the pump's events.
        case uncertain
        /// 503: the pump's link is down.
        case linkDown
        /// 500
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

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A pump's link capture: pcapng files of every frame in and out of its port (SPEC §15).
public struct CaptureStatus: Sendable, Hashable, Codable {
    public var recording: Bool
    /// The capture's files, oldest first (more than one after rotation); the last is current.
    public var files: [String]
    public var packets: Int
    /// Bytes written to the files, blocks of every kind.
    public var bytes: Int
    /// Packets not written because the capture had failed.
    public var droppedPackets: Int
    /// Why the capture stopped writing, if it did (disk full, file removed, ...).
    public var failure: String?

    public init(
        recording: Bool, files: [String] = [], packets: Int = 0, bytes: Int = 0, droppedPackets: Int = 0,
        failure: String? = nil
    ) {
        self.recording = recording
        self.files = files
        self.packets = packets
        self.bytes = bytes
        self.droppedPackets = droppedPackets
        self.failure = failure
    }
}
