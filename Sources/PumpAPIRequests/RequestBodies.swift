import PumpProtocol
import PumpSafety

/// `POST /v1/pumps/{id}/program/review` and `POST /v1/pumps/{id}/program`.
public struct ProgramBody: Codable, Sendable, Hashable {
    public var program: Program
    /// Needed to pass soft limits; its reason is recorded in the audit log.
    public var override: Override?

    public init(program: Program, override: Override? = nil) {
        self.program = program
        self.override = override
    }

    /// The body if its program is within the definitions' ranges and an override gives a reason.
    public func validated() throws(RequestError) -> Self {
        do {
            try program.validate()
        } catch {
            throw RequestError.invalid(error)
        }
        if let override, override.reason.allSatisfy(\.isWhitespace) {
            throw RequestError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])
        }
        return self
    }
}

/// `POST /v1/pumps/{id}/refill`.
public struct RefillBody: Codable, Sendable, Hashable {
    public var aspiratedMicroliters: UInt32
    public var newVolumeMicroliters: UInt32

    public init(aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32) {
        self.aspiratedMicroliters = aspiratedMicroliters
        self.newVolumeMicroliters = newVolumeMicroliters
    }
}

/// `POST /v1/pumps/{id}/alarms/acknowledge`: the alarms by name, or their mask (bit n = AlarmCode n).
public struct AcknowledgeAlarmsBody: Codable, Sendable, Hashable {
    public var alarms: [AlarmCode]?
    public var mask: UInt32?

    public init(alarms: [AlarmCode]? = nil, mask: UInt32? = nil) {
        self.alarms = alarms
        self.mask = mask
    }

    /// The bits of the alarms the protocol defines.
    public static var definedBits: UInt32 {
        AlarmCode.allCases.reduce(UInt32(0)) { $0 | (1 << UInt32($1.rawValue)) }
    }

    /// The mask to send: exactly one form, naming at least one alarm the protocol defines.
    public func alarmMask() throws(RequestError) -> UInt32 {
        let definedBits = Self.definedBits
        let mask: UInt32
        switch (alarms, self.mask) {
        case (let alarms?, nil):
            mask = alarms.reduce(UInt32(0)) { $0 | (1 << UInt32($1.rawValue)) }
        case (nil, let given?):
            guard given & ~definedBits == 0 else {
                throw RequestError.badRequest(
                    "mask has bits set that name no alarm: \(given & ~definedBits)",
                    details: ["field": "mask", "value": String(given)])
            }
            mask = given
        default:
            throw RequestError.badRequest("give either alarms (names) or mask, not both and not neither")
        }
        guard mask != 0 else { throw RequestError.badRequest("no alarm to acknowledge") }
        return mask
    }
}

/// The body of the actions that take no parameters (suspend, resume, patient bolus, capture
/// start and stop): none, or `{}`.
public struct EmptyBody: Codable, Sendable, Hashable {
    public init() {}
}

extension ClinicianBolusRequest {
    /// The kinds `POST /v1/pumps/{id}/bolus/clinician` takes: periodic and patient boluses come
    /// from the program, not from this request.
    public static let clinicianKinds: [BolusKind] = [.single, .bridge, .priming]

    /// The body of `POST /v1/pumps/{id}/bolus/clinician` if it is within the definitions'
    /// ranges and of a kind a clinician gives.
    public func validated() throws(RequestError) -> Self {
        do {
            try validate()
        } catch {
            throw RequestError.invalid(error)
        }
        guard Self.clinicianKinds.contains(kind) else {
            throw RequestError.badRequest(
                "kind must be single, bridge or priming", details: ["field": "kind", "value": kind.name])
        }
        return self
    }
}

/// `POST /v1/pumps/{id}/bolus/clinician`: the protocol's request (SPEC §6.19), an override for
/// the drug library's soft limits, and the catheter volume a priming bolus is checked against.
public struct ClinicianBolusBody: Codable, Sendable, Hashable {
    public var kind: BolusKind
    public var doseMicrograms: UInt32
    public var volumeMicroliters: UInt32
    public var durationMinutes: UInt16
    /// Needed to pass soft limits; its reason is recorded in the audit log.
    public var override: Override?
    /// The catheter's dead space, µL, if known: a priming bolus may not be larger.
    public var catheterVolumeMicroliters: UInt32?

    public init(_ request: ClinicianBolusRequest, override: Override? = nil, catheterVolumeMicroliters: UInt32? = nil) {
        kind = request.kind
        doseMicrograms = request.doseMicrograms
        volumeMicroliters = request.volumeMicroliters
        durationMinutes = request.durationMinutes
        self.override = override
        self.catheterVolumeMicroliters = catheterVolumeMicroliters
    }

    public var request: ClinicianBolusRequest {
        ClinicianBolusRequest(kind: kind, doseMicrograms: doseMicrograms, volumeMicroliters: volumeMicroliters, durationMinutes: durationMinutes)
    }

    /// The body if its request is valid (`ClinicianBolusRequest.validated`) and an override gives a reason.
    public func validated() throws(RequestError) -> Self {
        _ = try request.validated()
        if let override, override.reason.allSatisfy(\.isWhitespace) {
            throw RequestError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])
        }
        return self
    }
}

extension SetClockRequest {
    /// The body of `POST /v1/pumps/{id}/clock` if it is within the definitions' ranges.
    public func validated() throws(RequestError) -> Self {
        do {
            try validate()
        } catch {
            throw RequestError.invalid(error)
        }
        return self
    }
}

/// `POST /v1/pumps/{id}/clock`: the time to set and the local offset; an override with a
/// reason to set a time far from the host's clock (the daemon's `maxClockDistanceSeconds`).
public struct SetClockBody: Codable, Sendable, Hashable {
    public var timeMs: UInt64
    public var utcOffsetMinutes: Int16
    /// Needed to set a time further than the configured distance from the host's clock; its
    /// reason is recorded in the audit log.
    public var override: Override?

    /// The range of times any pump clock is set to, whatever the override: from 2000-01-01 to
    /// the last second a `clockSet` event can record (seconds since the epoch in 32 bits,
    /// SPEC §10), far inside what the pump's signed 64-bit millisecond arithmetic holds.
    public static let timeMsRange: ClosedRange<UInt64> = 946_684_800_000...(UInt64(UInt32.max) * 1000)

    public init(timeMs: UInt64, utcOffsetMinutes: Int16, override: Override? = nil) {
        self.timeMs = timeMs
        self.utcOffsetMinutes = utcOffsetMinutes
        self.override = override
    }

    /// The request to send.
    public var request: SetClockRequest { SetClockRequest(timeMs: timeMs, utcOffsetMinutes: utcOffsetMinutes) }

    /// The body if its time is in `timeMsRange`, its offset in the definitions' range and an
    /// override gives a reason.
    public func validated() throws(RequestError) -> Self {
        _ = try request.validated()
        guard Self.timeMsRange.contains(timeMs) else {
            throw RequestError.badRequest(
                "timeMs must be in \(Self.timeMsRange.lowerBound)...\(Self.timeMsRange.upperBound) (2000-01-01 to 2106-02-07 UTC)",
                details: ["field": "timeMs", "value": String(timeMs)])
        }
        if let override, override.reason.allSatisfy(\.isWhitespace) {
            throw RequestError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])
        }
        return self
    }
}
