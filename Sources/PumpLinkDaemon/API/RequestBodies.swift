import PumpProtocol
import PumpSafety

/// `POST /v1/pumps/{id}/program/review` and `POST /v1/pumps/{id}/program`.
struct ProgramBody: Codable, Sendable, Hashable {
    var program: Program
    /// Needed to pass soft limits; its reason is recorded in the audit log.
    var override: Override?

    func validated() throws(APIError) -> Self {
        do {
            try program.validate()
        } catch {
            throw APIError.invalid(error)
        }
        if let override, override.reason.allSatisfy(\.isWhitespace) {
            throw APIError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])
        }
        return self
    }
}

/// `POST /v1/pumps/{id}/refill`.
struct RefillBody: Codable, Sendable, Hashable {
    var aspiratedMicroliters: UInt32
    var newVolumeMicroliters: UInt32
}

/// `POST /v1/pumps/{id}/alarms/acknowledge`: the alarms by name, or their mask (bit n = AlarmCode n).
struct AcknowledgeAlarmsBody: Codable, Sendable, Hashable {
    var alarms: [AlarmCode]?
    var mask: UInt32?

    /// The mask to send: exactly one form, naming at least one alarm the protocol defines.
    func alarmMask() throws(APIError) -> UInt32 {
        let definedBits = AlarmCode.allCases.reduce(UInt32(0)) { $0 | (1 << UInt32($1.rawValue)) }
        let mask: UInt32
        switch (alarms, self.mask) {
        case (let alarms?, nil):
            mask = alarms.reduce(UInt32(0)) { $0 | (1 << UInt32($1.rawValue)) }
        case (nil, let given?):
            guard given & ~definedBits == 0 else {
                throw APIError.badRequest(
                    "mask has bits set that name no alarm: \(given & ~definedBits)",
                    details: ["field": "mask", "value": String(given)])
            }
            mask = given
        default:
            throw APIError.badRequest("give either alarms (names) or mask, not both and not neither")
        }
        guard mask != 0 else { throw APIError.badRequest("no alarm to acknowledge") }
        return mask
    }
}

/// The body of the actions that take no parameters (suspend, resume, patient bolus): none, or `{}`.
struct EmptyBody: Codable, Sendable, Hashable {}

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
}
