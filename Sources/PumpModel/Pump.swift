public import PumpProtocol

/// A drug pump, as pure arithmetic: the emulator runs it as the pump, the daemon uses it for
/// dry runs. No I/O, no clock of its own, no randomness: every operation takes the caller's
/// time (`nowMs`, ms since the epoch, never going backwards; an earlier time counts as no time
/// passing), first integrates delivery exactly up to it, then acts.
///
/// ```swift
/// var pump = Pump(configuration: PumpConfiguration(reservoirCapacityMicroliters: 20_000), nowMs: now)
/// let program = Program.continuous(programId: 1, drug: .morphine,
///                                  concentrationMicrogramsPerMilliliter: 10_000,
///                                  doseRateMicrogramsPerDay: 5_000)
/// _ = try pump.activate(program, nowMs: now, requestId: 1)      // event programActivated
/// pump.advance(to: now + 86_400_000)                           // one day of delivery
/// let status = pump.status(nowMs: now + 86_400_000)             // 500 µL delivered
/// do {
///     _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 200, volumeMicroliters: 0,
///                                 durationMinutes: 10, nowMs: now + 86_400_000, requestId: 2)
/// } catch {
///     // error.errorCode and error.detail make the protocol's Error response.
/// }
/// let page = pump.events(from: 1, maxCount: 38)                 // ReadEvents
/// ```
///
/// Refused operations throw `PumpRefusal` and change nothing but the integration up to `nowMs`.
/// A patient bolus refused by the program's rules is an outcome, logged, not a refusal.
public struct Pump: Sendable, Hashable {
    /// `nextAllowedInSeconds` / `patientBolusAvailableInSeconds` when no patient bolus is allowed.
    public static let patientBolusNotAvailable: UInt32 = .max

    public private(set) var state: PumpState
    /// Derived from `state.program`, kept for speed.
    private var schedule: WeeklySchedule?

    /// A new pump: clock = `nowMs` (UTC, offset `utcOffsetMinutes`), the configured reservoir and
    /// battery, event 1 `pumpStarted`, and the configured initial program if it is valid.
    public init(configuration: PumpConfiguration = PumpConfiguration(), nowMs: UInt64, utcOffsetMinutes: Int16 = 0) {
        let nowMs = min(nowMs, PumpCalendar.latestTimeMs)
        state = PumpState(
            configuration: configuration,
            referenceTimeMs: nowMs,
            clockOffsetMs: 0,
            utcOffsetMinutes: min(max(utcOffsetMinutes, -900), 900),
            program: nil,
            programChecksum: 0,
            isSuspended: false,
            reservoirMicroliters: UInt64(configuration.initialReservoirMicroliters),
            reservoirFractionUnits: 0,
            deliveredMicrograms: ExactQuotient(divisor: DoseUnits.perMicrogram),
            deliveredMicroliters: ExactQuotient(divisor: 1),
            batteryUsedUnits: configuration.battery.initialUsedUnits,
            bolus: nil,
            pendingPeriodicBoluses: [],
            patientBolusStartTimesMs: [],
            alarmConditionMask: 0,
            alarmUnacknowledgedMask: 0,
            events: [],
            lastEventSequence: 0,
            lastExecutedRequestId: 0
        )
        log(.pumpStarted, requestId: 0, value1: configuration.firmwareBuild)
        settle(requestId: 0)
        if let program = configuration.initialProgram {
            _ = try? activate(program, nowMs: nowMs, requestId: 0)
        }
    }

    /// A pump restored from a persisted state that is known to be sound (one this model wrote).
    /// A state read from outside goes through `init(restoring:)`, which checks it.
    public init(state: PumpState) {
        self.state = state
        self.schedule = state.program.map(WeeklySchedule.init)
    }

    /// A pump restored from a persisted state, refused if the state holds a value this model
    /// could never have reached (`PumpState.problem`): such a file is corrupt or forged, and
    /// running on it could deliver the wrong dose or fail on the next request.
    public init(restoring state: PumpState) throws(PumpStateProblem) {
        if let problem = state.problem { throw problem }
        self.init(state: state)
    }

    /// The pump starts again after a restart with its state: event pumpStarted (SPEC §10.1).
    /// Delivery is integrated up to `nowMs` first; nothing else changes (a running bolus goes on).
    public mutating func restart(nowMs: UInt64) {
        advance(to: nowMs)
        log(.pumpStarted, requestId: 0, value1: state.configuration.firmwareBuild)
    }

    public static func == (lhs: Pump, rhs: Pump) -> Bool { lhs.state == rhs.state }
    public func hash(into hasher: inout Hasher) { hasher.combine(state) }

    public var configuration: PumpConfiguration { state.configuration }

    /// Reported in Status; the protocol side records here the last request it executed.
    public var lastExecutedRequestId: UInt32 {
        get { state.lastExecutedRequestId }
        set { state.lastExecutedRequestId = newValue }
    }

    // MARK: - Time

    /// Integrates delivery up to `nowMs`: step boundaries, periodic boluses, boluses ending,
    /// the reservoir reaching its low threshold and emptying (at the exact millisecond, never
    /// below zero), battery indicators. However the time is split, the result is identical.
    /// A time after `PumpCalendar.latestTimeMs` counts as that time.
    public mutating func advance(to nowMs: UInt64) {
        let nowMs = min(nowMs, PumpCalendar.latestTimeMs)
        while state.referenceTimeMs < nowMs {
            let start = state.referenceTimeMs
            let chunk = Chunk(pump: self, limit: nowMs)
            var length = chunk.endMs - start
            if let trigger = chunk.firstTrigger(within: length) { length = trigger }
            commit(chunk, elapsed: length)
            arrive()
        }
        let now = state.referenceTimeMs
        state.patientBolusStartTimesMs.removeAll { $0.saturatingAdding(UInt64(PumpCalendar.millisecondsPerDay)) <= now }
    }

    /// The pump clock after advancing to `nowMs` would be this.
    public func pumpTime(atReferenceMs nowMs: UInt64) -> UInt64 {
        let referenceMs = min(max(nowMs, state.referenceTimeMs), PumpCalendar.latestTimeMs)
        return UInt64(clamping: Int64(clamping: referenceMs) &+ state.clockOffsetMs)
    }

    // MARK: - Operations

    /// Replaces the active program atomically (event programActivated), refusing a program that
    /// breaks a rule of SPEC §9.5 (`programInvalid`, detail the rule number). A running bolus is
    /// interrupted first (bolusInterrupted, with the bolus's own request id): the new program
    /// takes over. The clinician suspension is kept. Clears a program checksum error and
    /// re-evaluates the low-reservoir alarm against the new threshold (alarm events after
    /// programActivated, in ascending AlarmCode order).
    public mutating func activate(_ program: Program, nowMs: UInt64, requestId: UInt32) throws(PumpRefusal) -> ProgramActivation {
        advance(to: nowMs)
        if let problem = program.problem(reservoirCapacityMicroliters: state.configuration.reservoirCapacityMicroliters) {
            throw .programInvalid(problem)
        }
        if state.bolus != nil { endBolus() }
        state.pendingPeriodicBoluses = []
        // Fractions of a microlitre are kept in units of the concentration: rescale them.
        let oldUnits = state.unitsPerMicroliter
        let newUnits = DoseUnits.perMicroliter(concentrationMicrogramsPerMilliliter: program.concentrationMicrogramsPerMilliliter)
        state.reservoirFractionUnits = state.reservoirFractionUnits.multiplied(by: newUnits, dividedBy: oldUnits)
        state.deliveredMicroliters = ExactQuotient(
            quotient: state.deliveredMicroliters.quotient,
            remainder: state.deliveredMicroliters.remainder.multiplied(by: newUnits, dividedBy: oldUnits),
            divisor: newUnits
        )
        let checksum = program.checksum
        state.program = program
        state.programChecksum = checksum
        schedule = WeeklySchedule(program)
        let sequence = log(.programActivated, requestId: requestId, value1: program.programId, value2: checksum)
        settle(requestId: requestId, clearing: AlarmCode.programChecksumError.mask)
        return ProgramActivation(programId: program.programId, checksum: checksum,
                                 activatedAtMs: state.pumpTimeMs, eventSequence: sequence)
    }

    /// Records a refill (SPEC §12, event refilled): refused (`volumeExceedsCapacity`, detail the
    /// capacity) if the new or the aspirated volume is above the capacity; otherwise the
    /// aspirated volume is compared with the reported reservoir before the refill, the reservoir
    /// set to the new volume, and the reservoir alarms brought in line after the event.
    public mutating func refill(
        aspiratedMicroliters: UInt32,
        newVolumeMicroliters: UInt32,
        nowMs: UInt64,
        requestId: UInt32
    ) throws(PumpRefusal) -> RefillResult {
        advance(to: nowMs)
        let capacity = state.configuration.reservoirCapacityMicroliters
        guard newVolumeMicroliters <= capacity, aspiratedMicroliters <= capacity else {
            throw .volumeExceedsCapacity(capacityMicroliters: capacity)
        }
        let expected = state.reportedReservoirMicroliters
        let gap = expected > aspiratedMicroliters ? expected - aspiratedMicroliters : aspiratedMicroliters - expected
        let discrepancy = gap > state.configuration.refillDiscrepancyLimitMicroliters
        state.reservoirMicroliters = UInt64(newVolumeMicroliters)
        state.reservoirFractionUnits = 0
        let sequence = log(.refilled, code: discrepancy ? 1 : 0, requestId: requestId,
                           value1: aspiratedMicroliters, value2: newVolumeMicroliters)
        settle(requestId: requestId)
        return RefillResult(expectedMicroliters: expected, aspiratedMicroliters: aspiratedMicroliters,
                            discrepancy: discrepancy, reservoirMicroliters: newVolumeMicroliters, eventSequence: sequence)
    }

    /// Sets the pump clock and its local-time offset (event clockSet). Delivery is integrated
    /// up to the change first; elapsed time (lockouts, battery) is not affected by the change,
    /// but the schedule follows the new local time (starts skipped by a jump are not given).
    /// Refused (`invalidArgument`, detail the field) for a time after `PumpCalendar.latestTimeMs`
    /// or an offset outside ±900 minutes (SPEC §6.15).
    public mutating func setClock(timeMs: UInt64, utcOffsetMinutes: Int16, nowMs: UInt64, requestId: UInt32) throws(PumpRefusal) -> ClockChange {
        advance(to: nowMs)
        guard timeMs <= PumpCalendar.latestTimeMs else { throw .invalidArgument(field: 0) }
        guard (-900...900).contains(utcOffsetMinutes) else { throw .invalidArgument(field: 1) }
        let previous = state.pumpTimeMs
        // timeMs is below 2^48 and the reference time not negative: the difference is exact.
        state.clockOffsetMs = Int64(timeMs) - Int64(clamping: state.referenceTimeMs)
        state.utcOffsetMinutes = utcOffsetMinutes
        let sequence = log(.clockSet, requestId: requestId,
                           value1: UInt32(truncatingIfNeeded: previous / 1000), value2: UInt32(truncatingIfNeeded: timeMs / 1000))
        return ClockChange(previousTimeMs: previous, timeMs: state.pumpTimeMs, utcOffsetMinutes: utcOffsetMinutes, eventSequence: sequence)
    }

    /// Acknowledges the unacknowledged alarms in `mask` (SPEC §11.2: event alarmAcknowledged
    /// each, in ascending AlarmCode order); other bits are ignored. An acknowledged alarm whose
    /// condition is gone disappears; acknowledging lowBatteryReset or alarmClockReminder also
    /// clears its condition (alarmCleared right after its alarmAcknowledged), so delivery resumes
    /// unless another critical alarm is present.
    public mutating func acknowledgeAlarms(mask: UInt32, nowMs: UInt64, requestId: UInt32) -> AlarmMasks {
        advance(to: nowMs)
        for alarm in AlarmCode.allCases.sorted(by: { $0.rawValue < $1.rawValue })
        where mask & alarm.mask != 0 && state.alarmUnacknowledgedMask & alarm.mask != 0 {
            state.alarmUnacknowledgedMask &= ~alarm.mask
            log(.alarmAcknowledged, code: alarm.rawValue, requestId: requestId)
            if alarm == .lowBatteryReset || alarm == .alarmClockReminder { clearCondition(alarm, requestId: requestId) }
        }
        return AlarmMasks(conditionMask: state.alarmConditionMask, unacknowledgedMask: state.alarmUnacknowledgedMask)
    }

    /// Sets the clinician suspension (SPEC §6.17): all delivery stops and a running bolus is
    /// interrupted (bolusInterrupted, after suspended, with the bolus's own request id). Logs
    /// suspended only if the suspension was not already set (`eventSequence` 0 otherwise). Never
    /// refused, with or without an active program: it never throws.
    public mutating func suspend(nowMs: UInt64, requestId: UInt32) throws(PumpRefusal) -> TherapyChange {
        advance(to: nowMs)
        var sequence: UInt32 = 0
        if !state.isSuspended {
            state.isSuspended = true
            sequence = log(.suspended, requestId: requestId)
        }
        settle(requestId: requestId)
        return TherapyChange(therapyState: state.therapyState, eventSequence: sequence)
    }

    /// Clears the clinician suspension (SPEC §6.18, event resumed); refused
    /// (`therapyNotSuspended`, detail the therapy state) if it is not set. The therapy state
    /// after it may be stopped (critical alarm or no program). Periodic boluses that fell due
    /// during the suspension are not given afterwards.
    public mutating func resume(nowMs: UInt64, requestId: UInt32) throws(PumpRefusal) -> TherapyChange {
        advance(to: nowMs)
        guard state.isSuspended else { throw .therapyNotSuspended(state.therapyState) }
        state.isSuspended = false
        let sequence = log(.resumed, requestId: requestId)
        return TherapyChange(therapyState: state.therapyState, eventSequence: sequence)
    }

    /// A clinician bolus on top of the basal rate: single or bridge by dose, priming by volume,
    /// spread evenly over `durationMinutes` (event bolusStarted; bolusCompleted or
    /// bolusInterrupted later, all with this request id). Refusals in SPEC §6.19's order:
    /// `invalidArgument` (detail the request field: 0 kind, 1 dose, 2 volume, 3 duration),
    /// `criticalAlarmActive`, `therapyNotRunning`, `bolusInProgress`, `reservoirEmpty` if the
    /// bolus volume (rounded down, §9.4) exceeds the reported reservoir.
    public mutating func clinicianBolus(
        kind: BolusKind,
        doseMicrograms: UInt32,
        volumeMicroliters: UInt32,
        durationMinutes: UInt16,
        nowMs: UInt64,
        requestId: UInt32
    ) throws(PumpRefusal) -> BolusStart {
        advance(to: nowMs)
        switch kind {
        case .single, .bridge:
            guard doseMicrograms > 0 else { throw .invalidArgument(field: 1) }
            guard volumeMicroliters == 0 else { throw .invalidArgument(field: 2) }
        case .priming:
            guard doseMicrograms == 0 else { throw .invalidArgument(field: 1) }
            guard volumeMicroliters > 0 else { throw .invalidArgument(field: 2) }
        case .periodic, .patient:
            throw .invalidArgument(field: 0)
        }
        guard (1...1440).contains(durationMinutes) else { throw .invalidArgument(field: 3) }
        let critical = state.alarmConditionMask & AlarmCode.criticalMask
        guard critical == 0 else { throw .criticalAlarmActive(criticalConditionMask: critical) }
        guard state.therapyState == .running else { throw .therapyNotRunning(state.therapyState) }
        if let running = state.bolus { throw .bolusInProgress(running.kind) }
        let reservoir = state.reportedReservoirMicroliters
        let units: UInt64
        if kind == .priming {
            guard volumeMicroliters <= reservoir else { throw .reservoirEmpty(reservoirMicroliters: reservoir) }
            let (product, overflow) = UInt64(volumeMicroliters).multipliedReportingOverflow(by: state.unitsPerMicroliter)
            guard !overflow else { throw .invalidArgument(field: 2) }
            units = product
        } else {
            units = UInt64(doseMicrograms) * DoseUnits.perMicrogram
            guard units / state.unitsPerMicroliter <= UInt64(reservoir) else { throw .reservoirEmpty(reservoirMicroliters: reservoir) }
        }
        let durationMs = UInt64(durationMinutes) * UInt64(PumpCalendar.millisecondsPerMinute)
        let sequence = startBolus(kind: kind, units: units, durationMs: durationMs, requestId: requestId)
        return BolusStart(
            kind: kind,
            doseMicrograms: UInt32(clamping: units / DoseUnits.perMicrogram),
            volumeMicroliters: UInt32(clamping: units / state.unitsPerMicroliter),
            startedAtMs: state.pumpTimeMs,
            endsAtMs: pumpTime(atReferenceMs: state.referenceTimeMs + durationMs),
            eventSequence: sequence
        )
    }

    /// A patient-activated bolus under the active program's settings (SPEC §6.20). The pump
    /// evaluates, in order: not enabled, therapy not running, another bolus running, daily
    /// maximum, lockout from the start of the previous patient bolus; a refusal is an outcome,
    /// logged as patientBolusRefused, not an error. Otherwise the bolus starts, whatever the
    /// reservoir holds: if it runs dry, the reservoirEmpty alarm stops therapy and interrupts
    /// the bolus. `nextAllowedInSeconds` is `patientBolusAvailableInSeconds` after the request.
    /// Never refused: it never throws.
    public mutating func patientBolus(nowMs: UInt64, requestId: UInt32) throws(PumpRefusal) -> PatientBolusResult {
        advance(to: nowMs)
        let now = state.referenceTimeMs
        let count = patientBolusesInLast24h
        func refuse(_ outcome: PatientBolusOutcome) -> PatientBolusResult {
            let seconds = patientBolusAvailableInSeconds
            let sequence = log(.patientBolusRefused, code: outcome.rawValue, requestId: requestId,
                               value1: UInt32(count), value2: seconds)
            return PatientBolusResult(outcome: outcome, doseMicrograms: 0, bolusesInLast24h: count,
                                      nextAllowedInSeconds: seconds, eventSequence: sequence)
        }
        guard let settings = state.program?.patientBolus, settings.doseMicrograms > 0 else {
            return refuse(.refusedNotEnabled)
        }
        guard state.therapyState == .running else { return refuse(.refusedTherapyNotRunning) }
        guard state.bolus == nil else { return refuse(.refusedBolusInProgress) }
        guard count < settings.maxPerDay else { return refuse(.refusedDailyMaximum) }
        if let lockoutEnd = patientLockoutEndMs, lockoutEnd > now { return refuse(.refusedLockout) }
        let units = UInt64(settings.doseMicrograms) * DoseUnits.perMicrogram
        state.patientBolusStartTimesMs.append(now)
        let durationMs = UInt64(settings.durationMinutes) * UInt64(PumpCalendar.millisecondsPerMinute)
        let sequence = startBolus(kind: .patient, units: units, durationMs: durationMs, requestId: requestId)
        return PatientBolusResult(outcome: .started, doseMicrograms: settings.doseMicrograms,
                                  bolusesInLast24h: patientBolusesInLast24h,
                                  nextAllowedInSeconds: patientBolusAvailableInSeconds, eventSequence: sequence)
    }

    /// Injects a fault: its critical alarm is raised and delivery stops.
    public mutating func injectFault(_ fault: PumpFault, nowMs: UInt64) {
        advance(to: nowMs)
        settle(requestId: 0, raising: fault.alarm.mask)
    }

    /// Removes an injected fault's condition; delivery resumes when no critical alarm remains.
    public mutating func clearFault(_ fault: PumpFault, nowMs: UInt64) {
        advance(to: nowMs)
        settle(requestId: 0, clearing: fault.alarm.mask)
    }

    /// Status telemetry after advancing to `nowMs`.
    public mutating func status(nowMs: UInt64) -> Status {
        advance(to: nowMs)
        return status
    }

    /// Status telemetry as of the last advance.
    public var status: Status {
        let running = state.therapyState == .running
        let rate = running ? currentDoseRate : 0
        let concentration = state.program?.concentrationMicrogramsPerMilliliter ?? 0
        let flow = ProgramMath.flowMicrolitersPerDay(doseRateMicrogramsPerDay: rate, concentrationMicrogramsPerMilliliter: concentration)
        let battery = state.configuration.battery
        let capacity = battery.capacityUnits
        let remaining = capacity - min(state.batteryUsedUnits, capacity)
        let percent = capacity == 0 ? 0 : remaining.multiplied(by: 100, dividedBy: capacity)
        let dailyDrain = battery.idleUnitsPerMillisecond.saturatingMultiplied(by: UInt64(PumpCalendar.millisecondsPerDay))
            .saturatingAdding(battery.unitsPerMicroliter.saturatingMultiplied(by: UInt64(flow)))
        let days = dailyDrain == 0 ? UInt64(UInt16.max) : remaining / dailyDrain
        let bolusRemaining = state.bolus.map { bolus in
            ExactQuotient(numerator: bolus.totalUnits - bolus.deliveredUnits, divisor: state.unitsPerMicroliter).roundedUp
        } ?? 0
        return Status(
            pumpTimeMs: state.pumpTimeMs,
            utcOffsetMinutes: state.utcOffsetMinutes,
            therapyState: state.therapyState,
            reservoirMicroliters: state.reportedReservoirMicroliters,
            reservoirCapacityMicroliters: state.configuration.reservoirCapacityMicroliters,
            currentDoseRateMicrogramsPerDay: rate,
            currentFlowMicrolitersPerDay: flow,
            totalDeliveredMicroliters: state.deliveredMicroliters.quotient,
            totalDeliveredMicrograms: state.deliveredMicrograms.quotient,
            activeProgramId: state.program?.programId ?? 0,
            activeProgramChecksum: state.program == nil ? 0 : state.programChecksum,
            bolusActive: state.bolus?.kind.rawValue ?? 0,
            bolusRemainingMicroliters: UInt32(clamping: bolusRemaining),
            batteryState: batteryState,
            batteryPercent: UInt8(clamping: percent),
            batteryDaysToEndOfService: UInt16(clamping: days),
            alarmConditionMask: state.alarmConditionMask,
            alarmUnacknowledgedMask: state.alarmUnacknowledgedMask,
            patientBolusAvailableInSeconds: patientBolusAvailableInSeconds,
            patientBolusesInLast24h: patientBolusesInLast24h,
            lastEventSequence: state.lastEventSequence,
            lastExecutedRequestId: state.lastExecutedRequestId
        )
    }

    /// Consecutive events from `max(firstSequence, oldest held)`, at most `maxCount` (ReadEvents).
    public func events(from firstSequence: UInt32, maxCount: Int) -> EventRange {
        let oldest = state.oldestEventSequence
        let first = max(firstSequence, oldest)
        var page: [Event] = []
        // The held events are consecutive up to lastEventSequence (checked on restore), so the
        // position of `first` is its distance from the oldest; bounded by what is held.
        if first <= state.lastEventSequence, maxCount > 0, let oldestHeld = state.events.first?.sequence, first >= oldestHeld {
            let start = Int(first - oldestHeld)
            if start < state.events.count {
                page = Array(state.events[start..<(start + min(maxCount, state.events.count - start))])
            }
        }
        return EventRange(oldestSequence: oldest, lastSequence: state.lastEventSequence, events: page)
    }

    // MARK: - Derived values

    /// The basal rate of the active program at the pump's local time now (whether or not it runs).
    public var currentDoseRate: UInt32 {
        guard let schedule else { return 0 }
        return schedule.rate(atMillisecondOfWeek: PumpCalendar.millisecondOfWeek(localMs: localMs(atReference: state.referenceTimeMs)))
    }

    public var batteryState: BatteryState {
        let battery = state.configuration.battery
        if state.batteryUsedUnits >= battery.capacityUnits { return .endOfService }
        if state.batteryUsedUnits >= battery.electiveReplacementUnits { return .electiveReplacement }
        return .ok
    }

    public var patientBolusesInLast24h: UInt8 {
        let now = state.referenceTimeMs
        let day = UInt64(PumpCalendar.millisecondsPerDay)
        return UInt8(clamping: state.patientBolusStartTimesMs.count { $0.saturatingAdding(day) > now })
    }

    /// 0 if a patient bolus is allowed now; `patientBolusNotAvailable` if none is (not enabled,
    /// daily maximum reached, therapy not running); else seconds (rounded up) until the lockout
    /// and any running bolus are over.
    public var patientBolusAvailableInSeconds: UInt32 {
        guard let settings = state.program?.patientBolus, settings.doseMicrograms > 0,
              state.therapyState == .running,
              patientBolusesInLast24h < settings.maxPerDay
        else { return Self.patientBolusNotAvailable }
        let now = state.referenceTimeMs
        var wait: UInt64 = 0
        if let lockoutEnd = patientLockoutEndMs, lockoutEnd > now { wait = lockoutEnd - now }
        if let bolus = state.bolus, bolus.endMs > now { wait = max(wait, bolus.endMs - now) }
        return Self.seconds(roundingUp: wait)
    }

    private var patientLockoutEndMs: UInt64? {
        guard let last = state.patientBolusStartTimesMs.last, let settings = state.program?.patientBolus else { return nil }
        return last + UInt64(settings.lockoutMinutes) * UInt64(PumpCalendar.millisecondsPerMinute)
    }

    private static func seconds(roundingUp milliseconds: UInt64) -> UInt32 {
        UInt32(clamping: (milliseconds + 999) / 1000)
    }

    func localMs(atReference referenceMs: UInt64) -> Int64 {
        Int64(clamping: referenceMs) &+ state.clockOffsetMs &+ Int64(state.utcOffsetMinutes) * PumpCalendar.millisecondsPerMinute
    }

    // MARK: - Integration

    /// One stretch of time over which the basal rate is constant and the bolus (if any) runs on.
    private struct Chunk {
        var endMs: UInt64
        var delivering: Bool
        var rate: UInt64 = 0
        var bolus: ActiveBolus?
        var bolusElapsedAtStart: UInt64 = 0
        var reservoirUnits: UInt64
        /// Units still to deliver before the reservoir is at its low threshold, if not yet.
        var lowReservoirTarget: UInt64?
        var watchEmpty: Bool
        var volumeRemainder: UInt64
        var unitsPerMicroliter: UInt64
        var batteryUsed: UInt64
        var batteryIdlePerMillisecond: UInt64
        var batteryPerMicroliter: UInt64
        var batteryCapacity: UInt64
        var electiveReplacementAt: UInt64?
        var watchEndOfService: Bool

        init(pump: Pump, limit: UInt64) {
            let state = pump.state
            let start = state.referenceTimeMs
            delivering = state.therapyState == .running
            var end = min(limit, start.saturatingAdding(UInt64(PumpCalendar.millisecondsPerDay)))
            if delivering, let schedule = pump.schedule {
                let local = pump.localMs(atReference: start)
                end = min(end, start + UInt64(schedule.nextBoundary(afterLocalMs: local) - local))
                rate = UInt64(schedule.rate(atMillisecondOfWeek: PumpCalendar.millisecondOfWeek(localMs: local)))
                if let bolus = state.bolus {
                    self.bolus = bolus
                    bolusElapsedAtStart = start - bolus.startMs
                    end = min(end, bolus.endMs)
                }
            }
            endMs = end
            reservoirUnits = state.reservoirUnits
            unitsPerMicroliter = state.unitsPerMicroliter
            if let program = state.program, state.alarmConditionMask & AlarmCode.reservoirLow.mask == 0 {
                let threshold = UInt64(program.lowReservoirThresholdMicroliters)
                if state.reservoirMicroliters >= threshold {
                    lowReservoirTarget = (state.reservoirMicroliters - threshold).saturatingMultiplied(by: unitsPerMicroliter)
                        .saturatingAdding(state.reservoirFractionUnits)
                }
            }
            watchEmpty = state.alarmConditionMask & AlarmCode.reservoirEmpty.mask == 0
            volumeRemainder = state.deliveredMicroliters.remainder
            let battery = state.configuration.battery
            batteryUsed = state.batteryUsedUnits
            batteryIdlePerMillisecond = battery.idleUnitsPerMillisecond
            batteryPerMicroliter = battery.unitsPerMicroliter
            batteryCapacity = battery.capacityUnits
            if state.alarmConditionMask & AlarmCode.electiveReplacement.mask == 0 {
                electiveReplacementAt = battery.electiveReplacementUnits
            }
            watchEndOfService = state.alarmConditionMask & AlarmCode.batteryEndOfService.mask == 0
        }

        /// Basal and bolus units over the first `elapsed` ms, before the reservoir limit.
        func demand(_ elapsed: UInt64) -> (basal: UInt64, bolus: UInt64) {
            guard delivering else { return (0, 0) }
            var bolusUnits: UInt64 = 0
            if let bolus {
                bolusUnits = BolusProfile.delivered(total: bolus.totalUnits, durationMs: bolus.durationMs,
                                                    elapsedMs: bolusElapsedAtStart + elapsed)
                    - BolusProfile.delivered(total: bolus.totalUnits, durationMs: bolus.durationMs, elapsedMs: bolusElapsedAtStart)
            }
            return (rate * elapsed, bolusUnits)
        }

        /// What is delivered over the first `elapsed` ms: never more than the reservoir holds,
        /// the basal rate served first.
        func delivery(_ elapsed: UInt64) -> (basal: UInt64, bolus: UInt64) {
            let (basal, bolus) = demand(elapsed)
            guard basal + bolus > reservoirUnits else { return (basal, bolus) }
            let servedBasal = min(basal, reservoirUnits)
            return (servedBasal, reservoirUnits - servedBasal)
        }

        /// Battery charge used after `elapsed` ms, given the units delivered meanwhile.
        func batteryUsed(after elapsed: UInt64, delivered: UInt64) -> UInt64 {
            let microliters = (volumeRemainder + delivered) / unitsPerMicroliter
            let used = batteryUsed
                .saturatingAdding(batteryIdlePerMillisecond.saturatingMultiplied(by: elapsed))
                .saturatingAdding(batteryPerMicroliter.saturatingMultiplied(by: microliters))
            return min(used, batteryCapacity)
        }

        /// Whether some alarm condition has been reached after `elapsed` ms.
        func triggers(_ elapsed: UInt64) -> Bool {
            let (basal, bolus) = demand(elapsed)
            let demanded = basal + bolus
            if let lowReservoirTarget, demanded >= lowReservoirTarget { return true }
            if watchEmpty, delivering, demanded >= reservoirUnits { return true }
            let delivered = min(demanded, reservoirUnits)
            let battery = batteryUsed(after: elapsed, delivered: delivered)
            if let electiveReplacementAt, battery >= electiveReplacementAt { return true }
            return watchEndOfService && battery >= batteryCapacity
        }

        /// The first millisecond in 1...length at which a condition is reached, if any.
        func firstTrigger(within length: UInt64) -> UInt64? {
            guard length > 0, triggers(length) else { return nil }
            var low: UInt64 = 1
            var high = length
            while low < high {
                let middle = low + (high - low) / 2
                if triggers(middle) { high = middle } else { low = middle + 1 }
            }
            return low
        }
    }

    private mutating func commit(_ chunk: Chunk, elapsed: UInt64) {
        let (basal, bolus) = chunk.delivery(elapsed)
        let total = basal + bolus
        if total > 0 {
            consumeReservoir(total)
            state.deliveredMicrograms.add(total)
            state.deliveredMicroliters.add(total)
        }
        state.batteryUsedUnits = chunk.batteryUsed(after: elapsed, delivered: total)
        if bolus > 0, var running = state.bolus {
            running.deliveredUnits += bolus
            state.bolus = running
        }
        state.referenceTimeMs += elapsed
    }

    private mutating func consumeReservoir(_ units: UInt64) {
        if units <= state.reservoirFractionUnits {
            state.reservoirFractionUnits -= units
            return
        }
        let perMicroliter = state.unitsPerMicroliter
        let beyond = units - state.reservoirFractionUnits
        let wholeMicroliters = (beyond + perMicroliter - 1) / perMicroliter
        guard wholeMicroliters <= state.reservoirMicroliters else {
            state.reservoirMicroliters = 0
            state.reservoirFractionUnits = 0
            return
        }
        state.reservoirMicroliters -= wholeMicroliters
        state.reservoirFractionUnits = wholeMicroliters * perMicroliter - beyond
    }

    private static let alarmsAscending = AlarmCode.allCases.sorted { $0.rawValue < $1.rawValue }

    /// What happens at the end of an integration step: alarms, bolus ends, scheduled starts.
    private mutating func arrive() {
        settle(requestId: 0)
        if let bolus = state.bolus, state.referenceTimeMs >= bolus.endMs { endBolus() }
        guard state.therapyState == .running, let schedule else { return }
        if state.bolus == nil, !state.pendingPeriodicBoluses.isEmpty {
            startPeriodic(state.pendingPeriodicBoluses.removeFirst())
        }
        let position = PumpCalendar.millisecondOfWeek(localMs: localMs(atReference: state.referenceTimeMs))
        for periodic in schedule.boluses(startingAtMillisecondOfWeek: position) {
            if state.bolus == nil { startPeriodic(periodic) } else { state.pendingPeriodicBoluses.append(periodic) }
        }
    }

    /// Brings the reservoir and battery alarm conditions in line with the state, together with
    /// the conditions in `raising` and `clearing` (one cause), logging the changes in ascending
    /// AlarmCode order (SPEC §11.2); then stops boluses if therapy no longer runs.
    private mutating func settle(requestId: UInt32, raising: UInt32 = 0, clearing: UInt32 = 0) {
        var target = state.alarmConditionMask
        func set(_ alarm: AlarmCode, _ present: Bool) {
            if present { target |= alarm.mask } else { target &= ~alarm.mask }
        }
        // reservoirLow: an active program and the reported volume ≤ its threshold, that is the
        // exact volume ≤ the threshold (the report rounds up).
        var low = false
        if let program = state.program {
            let threshold = UInt64(program.lowReservoirThresholdMicroliters)
            low = state.reservoirMicroliters < threshold
                || (state.reservoirMicroliters == threshold && state.reservoirFractionUnits == 0)
        }
        set(.reservoirLow, low)
        set(.reservoirEmpty, state.isReservoirEmpty)
        let battery = state.configuration.battery
        set(.electiveReplacement, state.batteryUsedUnits >= battery.electiveReplacementUnits)
        set(.batteryEndOfService, state.batteryUsedUnits >= battery.capacityUnits)
        target = (target | raising) & ~clearing
        for alarm in Self.alarmsAscending where (target ^ state.alarmConditionMask) & alarm.mask != 0 {
            if target & alarm.mask != 0 { raise(alarm, requestId: requestId) } else { clearCondition(alarm, requestId: requestId) }
        }
        if state.therapyState != .running {
            if state.bolus != nil { endBolus() }
            state.pendingPeriodicBoluses = []
        }
    }

    // MARK: - Boluses

    private mutating func startPeriodic(_ periodic: PeriodicBolus) {
        startBolus(kind: .periodic, units: UInt64(periodic.doseMicrograms) * DoseUnits.perMicrogram,
                   durationMs: UInt64(periodic.durationMinutes) * UInt64(PumpCalendar.millisecondsPerMinute), requestId: 0)
    }

    @discardableResult
    private mutating func startBolus(kind: BolusKind, units: UInt64, durationMs: UInt64, requestId: UInt32) -> UInt32 {
        state.bolus = ActiveBolus(kind: kind, requestId: requestId, startMs: state.referenceTimeMs,
                                  durationMs: durationMs, totalUnits: units, deliveredUnits: 0)
        return log(.bolusStarted, code: kind.rawValue, requestId: requestId,
                   value1: UInt32(clamping: units / DoseUnits.perMicrogram),
                   value2: UInt32(clamping: units / state.unitsPerMicroliter))
    }

    /// Ends the running bolus: completed if all of it was delivered, else interrupted. The
    /// event carries the request id of the bolus itself.
    private mutating func endBolus() {
        guard let bolus = state.bolus else { return }
        state.bolus = nil
        let kind: EventKind = bolus.deliveredUnits >= bolus.totalUnits ? .bolusCompleted : .bolusInterrupted
        log(kind, code: bolus.kind.rawValue, requestId: bolus.requestId,
            value1: UInt32(clamping: bolus.deliveredUnits / DoseUnits.perMicrogram),
            value2: UInt32(clamping: bolus.deliveredUnits / state.unitsPerMicroliter))
    }

    // MARK: - Alarms and events

    /// Condition present: active (or acknowledged once acknowledged).
    private mutating func raise(_ alarm: AlarmCode, requestId: UInt32) {
        guard state.alarmConditionMask & alarm.mask == 0 else { return }
        state.alarmConditionMask |= alarm.mask
        state.alarmUnacknowledgedMask |= alarm.mask
        log(.alarmRaised, code: alarm.rawValue, requestId: requestId, value1: state.reportedReservoirMicroliters)
    }

    /// Condition gone: latched if not yet acknowledged, else the alarm disappears.
    private mutating func clearCondition(_ alarm: AlarmCode, requestId: UInt32) {
        guard state.alarmConditionMask & alarm.mask != 0 else { return }
        state.alarmConditionMask &= ~alarm.mask
        log(.alarmCleared, code: alarm.rawValue, requestId: requestId, value1: state.reportedReservoirMicroliters)
    }

    @discardableResult
    private mutating func log(_ kind: EventKind, code: UInt8 = 0, requestId: UInt32, value1: UInt32 = 0, value2: UInt32 = 0) -> UInt32 {
        state.lastEventSequence &+= 1
        state.events.append(Event(sequence: state.lastEventSequence, timeMs: state.pumpTimeMs, kind: kind, code: code,
                                  requestId: requestId, value1: value1, value2: value2))
        let excess = state.events.count - state.configuration.eventLogCapacity
        if excess > 0 { state.events.removeFirst(excess) }
        return state.lastEventSequence
    }
}
