/// A pump the daemon knows, with the identity it last reported.
public struct StoredPump: Sendable, Hashable, Codable {
    /// The daemon's name for the pump (from its configuration).
    public var id: String
    public var port: String
    public var serialNumber: String?
    public var model: String?

    public init(id: String, port: String, serialNumber: String?, model: String?) {
        self.id = id
        self.port = port
        self.serialNumber = serialNumber
        self.model = model
    }
}

/// How an audited request ended. The log stores the raw value.
public enum AuditOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    /// Recorded before a changing command is sent (intents only).
    case pending
    case done
    /// Refused by the daemon (safety rules, role); nothing was sent.
    case refused
    /// Refused by the pump; nothing changed.
    case rejected
    /// Sent, but no answer: it may or may not have been executed.
    case uncertain
    /// Could not be sent (link down, I/O error).
    case failed
    /// An uncertain request found executed in the pump's record.
    case resolvedExecuted = "resolved-executed"
    /// An uncertain request found not executed in the pump's record.
    case resolvedNotExecuted = "resolved-not-executed"
}

/// One row of the audit log. An intent row (outcome "pending", `intentID` nil) is written before
/// a changing command is sent; each later outcome is a new row whose `intentID` points at it.
/// Rows are never updated or deleted.
public struct AuditEntry: Sendable, Hashable, Codable {
    public var id: Int64
    public var timeMs: UInt64
    public var actor: String
    public var role: String
    public var pumpID: String
    /// e.g. "program.push", "bolus.patient".
    public var action: String
    /// The request's parameters, as JSON text.
    public var parameters: String
    /// An `AuditOutcome` raw value.
    public var outcome: String
    public var detail: String
    /// The protocol request id, if a request was sent.
    public var requestID: UInt32?
    /// For an outcome row, the intent it concludes; nil for an intent or a standalone row.
    public var intentID: Int64?

    public init(
        id: Int64, timeMs: UInt64, actor: String, role: String, pumpID: String, action: String,
        parameters: String, outcome: String, detail: String, requestID: UInt32?, intentID: Int64?
    ) {
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

/// A changing request sent to a pump whose outcome is unknown. While one is unresolved the
/// daemon blocks new doses on that pump; the record survives restarts.
public struct UncertainRequest: Sendable, Hashable, Codable {
    public var pumpID: String
    public var requestID: UInt32
    public var action: String
    /// The audit intent of the request, if any.
    public var intentID: Int64?
    public var markedAtMs: UInt64
    /// Set once resolved from the pump's record.
    public var resolvedAtMs: UInt64?
    /// Whether the pump executed it; nil while unresolved.
    public var executed: Bool?

    public var isResolved: Bool { resolvedAtMs != nil }

    public init(pumpID: String, requestID: UInt32, action: String, intentID: Int64?, markedAtMs: UInt64, resolvedAtMs: UInt64?, executed: Bool?) {
        self.pumpID = pumpID
        self.requestID = requestID
        self.action = action
        self.intentID = intentID
        self.markedAtMs = markedAtMs
        self.resolvedAtMs = resolvedAtMs
        self.executed = executed
    }
}
