import PumpProtocol

// The request bodies are in PumpAPIRequests, with their strict decoding.

/// The data of a `link` stream event.
struct LinkUpdateData: Codable, Sendable, Hashable {
    var pumpID: String
    var link: LinkState
}

/// The data of a `status` stream event.
struct StatusUpdateData: Codable, Sendable, Hashable {
    var pumpID: String
    var status: Status
}

/// The data of an `event` stream event.
struct EventUpdateData: Codable, Sendable, Hashable {
    var pumpID: String
    var event: Event
}

/// `GET /v1/health`.
struct HealthBody: Codable, Sendable, Hashable {
    var status: String
    /// The audit chain's head, to compare with one kept elsewhere.
    var audit: AuditHead
}
