public import PumpProtocol

/// Everything a pump remembers, Codable so that an emulator can persist it and pick up where
/// it stopped. Read it freely; change it only through `Pump`.
///
/// Times: `referenceTimeMs` is the caller's clock (ms since the epoch) at the last advance;
/// the pump's own clock is `referenceTimeMs + clockOffsetMs`, so setting the pump clock never
/// changes how much time passes for delivery, lockouts or the battery.
public struct PumpState: Sendable, Hashable, Codable {
    public internal(set) var configuration: PumpConfiguration
    public internal(set) var referenceTimeMs: UInt64
    /// Pump clock minus reference clock.
    public internal(set) var clockOffsetMs: Int64
    public internal(set) var utcOffsetMinutes: Int16

    public internal(set) var program: Program?
    public internal(set) var programChecksum: UInt32
    /// Suspended by a clinician (therapy state `suspended` unless a critical alarm stops it).
    public internal(set) var isSuspended: Bool

    /// The reservoir holds exactly `reservoirMicroliters + reservoirFractionUnits / K` µL, with K
    /// = `DoseUnits.perMicroliter(concentration)`; reports round it up to whole microlitres.
    public internal(set) var reservoirMicroliters: UInt64
    public internal(set) var reservoirFractionUnits: UInt64
    /// Since the pump was implanted, µg over `DoseUnits.perMicrogram`.
    public internal(set) var deliveredMicrograms: ExactQuotient
    /// Since the pump was implanted, µL over K (rescaled when the concentration changes).
    public internal(set) var deliveredMicroliters: ExactQuotient
    /// Battery charge used, in 1/86 400 000 µAh.
    public internal(set) var batteryUsedUnits: UInt64

    public internal(set) var bolus: ActiveBolus?
    /// Periodic boluses that came due while another bolus ran; they start, in order, when it ends.
    public internal(set) var pendingPeriodicBoluses: [PeriodicBolus]
    /// Reference times at which patient boluses started, the last 24 hours' worth.
    public internal(set) var patientBolusStartTimesMs: [UInt64]

    /// Bit n: the condition of AlarmCode n is present.
    public internal(set) var alarmConditionMask: UInt32
    /// Bit n: AlarmCode n was raised and is not acknowledged.
    public internal(set) var alarmUnacknowledgedMask: UInt32

    /// The newest `configuration.eventLogCapacity` events, oldest first.
    public internal(set) var events: [Event]
    public internal(set) var lastEventSequence: UInt32
    /// Kept for the Status report; the protocol side sets it.
    public var lastExecutedRequestId: UInt32

    /// The oldest event still held (`lastEventSequence + 1` if none is).
    public var oldestEventSequence: UInt32 { events.first?.sequence ?? lastEventSequence &+ 1 }

    /// The pump clock, ms since the epoch.
    public var pumpTimeMs: UInt64 { UInt64(clamping: Int64(clamping: referenceTimeMs) &+ clockOffsetMs) }

    public var therapyState: TherapyState {
        if program == nil || alarmConditionMask & AlarmCode.criticalMask != 0 { return .stopped }
        return isSuspended ? .suspended : .running
    }

    /// Units of drug per µL at the active program's concentration (1 without a program).
    var unitsPerMicroliter: UInt64 {
        program.map { DoseUnits.perMicroliter(concentrationMicrogramsPerMilliliter: $0.concentrationMicrogramsPerMilliliter) } ?? 1
    }

    /// The reservoir in units, saturating far above anything one integration step can use.
    var reservoirUnits: UInt64 {
        let k = unitsPerMicroliter
        return reservoirMicroliters.saturatingMultiplied(by: k).saturatingAdding(reservoirFractionUnits)
    }

    var isReservoirEmpty: Bool { reservoirMicroliters == 0 && reservoirFractionUnits == 0 }

    /// The reservoir as reported (Status, Refill, alarm events): whole microlitres rounded up, so
    /// that the alarm conditions of SPEC §11.1, stated on the reported volume, hold exactly:
    /// 0 only when nothing is left (reservoirEmpty), ≤ a threshold only when the volume is.
    var reportedReservoirMicroliters: UInt32 {
        UInt32(clamping: reservoirMicroliters + (reservoirFractionUnits > 0 ? 1 : 0))
    }
}

/// A bolus being delivered, on top of the basal rate.
public struct ActiveBolus: Sendable, Hashable, Codable {
    public var kind: BolusKind
    /// The request that started it (0 for a periodic bolus).
    public var requestId: UInt32
    /// Reference time of the start.
    public var startMs: UInt64
    public var durationMs: UInt64
    /// The whole bolus, in dose units (`DoseUnits`).
    public var totalUnits: UInt64
    public var deliveredUnits: UInt64

    public var endMs: UInt64 { startMs + durationMs }
}

/// A pump fault that can be injected (for tests and demonstrations).
public enum PumpFault: String, Sendable, Hashable, Codable, CaseIterable {
    case motorStall
    case programChecksumError
    case lowBatteryReset

    public var alarm: AlarmCode {
        switch self {
        case .motorStall: .motorStall
        case .programChecksumError: .programChecksumError
        case .lowBatteryReset: .lowBatteryReset
        }
    }
}

/// Why the pump refused an operation, with what the protocol's Error reports as `detail`
/// (SPEC §13). A refused operation changed nothing (apart from the delivery integrated up to the
/// moment of the request).
public enum PumpRefusal: Error, Sendable, Hashable {
    /// A field of the request is out of range; `field` is its 0-based index in the request.
    case invalidArgument(field: UInt32)
    /// The program breaks a rule of SPEC §9.5.
    case programInvalid(ProgramProblem)
    /// A volume above the reservoir's capacity.
    case volumeExceedsCapacity(capacityMicroliters: UInt32)
    /// The reservoir (as reported in Status) cannot supply the request.
    case reservoirEmpty(reservoirMicroliters: UInt32)
    /// The request needs running therapy; the therapy state at the time.
    case therapyNotRunning(TherapyState)
    /// Resume needs the clinician suspension; the therapy state at the time.
    case therapyNotSuspended(TherapyState)
    /// Another bolus is being delivered: its kind.
    case bolusInProgress(BolusKind)
    /// A critical alarm stops therapy: the critical bits of the alarm condition mask
    /// (`alarmConditionMask & 0xFF`).
    case criticalAlarmActive(criticalConditionMask: UInt32)

    /// The protocol's error code for this refusal.
    public var errorCode: ErrorCode {
        switch self {
        case .invalidArgument: .invalidArgument
        case .programInvalid: .programInvalid
        case .volumeExceedsCapacity: .volumeExceedsCapacity
        case .reservoirEmpty: .reservoirEmpty
        case .therapyNotRunning: .therapyNotRunning
        case .therapyNotSuspended: .therapyNotSuspended
        case .bolusInProgress: .bolusInProgress
        case .criticalAlarmActive: .criticalAlarmActive
        }
    }

    /// The Error message's `detail`, as SPEC §13 defines it for the code.
    public var detail: UInt32 {
        switch self {
        case .invalidArgument(let field): field
        case .programInvalid(let problem): problem.rawValue
        case .volumeExceedsCapacity(let capacity): capacity
        case .reservoirEmpty(let reservoir): reservoir
        case .therapyNotRunning(let state), .therapyNotSuspended(let state): UInt32(state.rawValue)
        case .bolusInProgress(let kind): UInt32(kind.rawValue)
        case .criticalAlarmActive(let mask): mask & AlarmCode.criticalMask
        }
    }
}

public struct ProgramActivation: Sendable, Hashable {
    public var programId: UInt32
    public var checksum: UInt32
    /// Pump clock.
    public var activatedAtMs: UInt64
    public var eventSequence: UInt32

    public init(programId: UInt32, checksum: UInt32, activatedAtMs: UInt64, eventSequence: UInt32) {
        self.programId = programId
        self.checksum = checksum
        self.activatedAtMs = activatedAtMs
        self.eventSequence = eventSequence
    }
}

public struct RefillResult: Sendable, Hashable {
    /// What the pump computed was left (whole µL).
    public var expectedMicroliters: UInt32
    public var aspiratedMicroliters: UInt32
    public var discrepancy: Bool
    public var reservoirMicroliters: UInt32
    public var eventSequence: UInt32

    public init(expectedMicroliters: UInt32, aspiratedMicroliters: UInt32, discrepancy: Bool, reservoirMicroliters: UInt32, eventSequence: UInt32) {
        self.expectedMicroliters = expectedMicroliters
        self.aspiratedMicroliters = aspiratedMicroliters
        self.discrepancy = discrepancy
        self.reservoirMicroliters = reservoirMicroliters
        self.eventSequence = eventSequence
    }
}

public struct ClockChange: Sendable, Hashable {
    public var previousTimeMs: UInt64
    public var timeMs: UInt64
    public var utcOffsetMinutes: Int16
    public var eventSequence: UInt32

    public init(previousTimeMs: UInt64, timeMs: UInt64, utcOffsetMinutes: Int16, eventSequence: UInt32) {
        self.previousTimeMs = previousTimeMs
        self.timeMs = timeMs
        self.utcOffsetMinutes = utcOffsetMinutes
        self.eventSequence = eventSequence
    }
}

public struct AlarmMasks: Sendable, Hashable {
    public var conditionMask: UInt32
    public var unacknowledgedMask: UInt32

    public init(conditionMask: UInt32, unacknowledgedMask: UInt32) {
        self.conditionMask = conditionMask
        self.unacknowledgedMask = unacknowledgedMask
    }
}

public struct TherapyChange: Sendable, Hashable {
    public var therapyState: TherapyState
    public var eventSequence: UInt32

    public init(therapyState: TherapyState, eventSequence: UInt32) {
        self.therapyState = therapyState
        self.eventSequence = eventSequence
    }
}

public struct BolusStart: Sendable, Hashable {
    public var kind: BolusKind
    public var doseMicrograms: UInt32
    public var volumeMicroliters: UInt32
    /// Pump clock.
    public var startedAtMs: UInt64
    public var endsAtMs: UInt64
    public var eventSequence: UInt32

    public init(kind: BolusKind, doseMicrograms: UInt32, volumeMicroliters: UInt32, startedAtMs: UInt64, endsAtMs: UInt64, eventSequence: UInt32) {
        self.kind = kind
        self.doseMicrograms = doseMicrograms
        self.volumeMicroliters = volumeMicroliters
        self.startedAtMs = startedAtMs
        self.endsAtMs = endsAtMs
        self.eventSequence = eventSequence
    }
}

public struct PatientBolusResult: Sendable, Hashable {
    public var outcome: PatientBolusOutcome
    public var doseMicrograms: UInt32
    public var bolusesInLast24h: UInt8
    /// 0 if another is allowed now, `Pump.patientBolusNotAvailable` if none is.
    public var nextAllowedInSeconds: UInt32
    /// The bolusStarted or patientBolusRefused event.
    public var eventSequence: UInt32

    public init(outcome: PatientBolusOutcome, doseMicrograms: UInt32, bolusesInLast24h: UInt8, nextAllowedInSeconds: UInt32, eventSequence: UInt32) {
        self.outcome = outcome
        self.doseMicrograms = doseMicrograms
        self.bolusesInLast24h = bolusesInLast24h
        self.nextAllowedInSeconds = nextAllowedInSeconds
        self.eventSequence = eventSequence
    }
}

public struct EventRange: Sendable, Hashable {
    public var oldestSequence: UInt32
    public var lastSequence: UInt32
    public var events: [Event]

    public init(oldestSequence: UInt32, lastSequence: UInt32, events: [Event]) {
        self.oldestSequence = oldestSequence
        self.lastSequence = lastSequence
        self.events = events
    }
}
