import PumpModel
import PumpProtocol

/// The pump model (`PumpModel.Pump`) as the protocol side's `PumpDevice`.
public struct ModelPump: PumpDevice, Codable {
    public private(set) var pump: Pump

    public init(_ pump: Pump) {
        self.pump = pump
    }

    /// A realistic starting program: morphine 10 mg/mL, more by day than by night, with a
    /// patient bolus of 250 µg (lockout 60 min, at most 6 a day). About 2.6 mg/day.
    public static let defaultProgram = Program(
        programId: 1,
        drug: .morphine,
        concentrationMicrogramsPerMilliliter: 10_000,
        lowReservoirThresholdMicroliters: 2000,
        steps: [
            DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 2000),
            DoseStep(dayMask: 0x7F, startMinute: 7 * 60, doseRateMicrogramsPerDay: 3000),
            DoseStep(dayMask: 0x7F, startMinute: 22 * 60, doseRateMicrogramsPerDay: 2000),
        ],
        periodicBoluses: [],
        patientBolus: PatientBolusSettings(doseMicrograms: 250, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 6)
    )

    /// Reads a persisted state, refusing one the model could never have reached
    /// (`PumpState.problem`): a corrupt state file must not make the pump fail later.
    public init(from decoder: any Decoder) throws {
        let state = try PumpState(from: decoder)
        do {
            pump = try Pump(restoring: state)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    /// The pump starts again from its saved state (event pumpStarted, SPEC §10.1).
    public mutating func restart(nowMs: UInt64) {
        pump.restart(nowMs: nowMs)
    }

    public func encode(to encoder: any Encoder) throws {
        try pump.state.encode(to: encoder)
    }

    public var identity: DeviceIdentity {
        let configuration = pump.configuration
        return DeviceIdentity(
            model: configuration.model,
            serialNumber: configuration.serialNumber,
            firmwareVersion: configuration.firmwareVersion,
            reservoirCapacityMicroliters: configuration.reservoirCapacityMicroliters
        )
    }

    public mutating func advance(to nowMs: UInt64) {
        pump.advance(to: nowMs)
    }

    public func status(nowMs: UInt64) -> Status {
        var copy = pump
        return copy.status(nowMs: nowMs)
    }

    public func events(from firstSequence: UInt32, maxCount: Int) -> ReadEventsResponse {
        let range = pump.events(from: firstSequence, maxCount: maxCount)
        return ReadEventsResponse(oldestSequence: range.oldestSequence, lastSequence: range.lastSequence, events: range.events)
    }

    public var activeProgram: Program? { pump.state.program }

    public func check(_ program: Program) -> (problem: UInt32?, dailyDoseMicrograms: UInt32) {
        let problem = program.problem(reservoirCapacityMicroliters: pump.configuration.reservoirCapacityMicroliters)
        // SPEC §6.12: the daily dose is reported for every program that decodes.
        let daily = problem == .malformed ? 0 : UInt32(clamping: program.maximumDailyDose().roundedUp)
        return (problem?.rawValue, daily)
    }

    public mutating func activate(_ program: Program, nowMs: UInt64, requestID: UInt32) -> Result<ProgramActivateResponse, ProtocolRefusal> {
        refusing {
            let activation = try pump.activate(program, nowMs: nowMs, requestId: requestID)
            return ProgramActivateResponse(
                programId: activation.programId,
                checksum: activation.checksum,
                activatedAtMs: activation.activatedAtMs,
                eventSequence: activation.eventSequence
            )
        }
    }

    public mutating func refill(_ request: RefillRequest, nowMs: UInt64, requestID: UInt32) -> Result<RefillResponse, ProtocolRefusal> {
        refusing {
            let result = try pump.refill(
                aspiratedMicroliters: request.aspiratedMicroliters,
                newVolumeMicroliters: request.newVolumeMicroliters,
                nowMs: nowMs,
                requestId: requestID
            )
            return RefillResponse(
                expectedMicroliters: result.expectedMicroliters,
                aspiratedMicroliters: result.aspiratedMicroliters,
                discrepancy: result.discrepancy ? 1 : 0,
                reservoirMicroliters: result.reservoirMicroliters,
                eventSequence: result.eventSequence
            )
        }
    }

    public mutating func setClock(_ request: SetClockRequest, nowMs: UInt64, requestID: UInt32) -> Result<SetClockResponse, ProtocolRefusal> {
        refusing {
            let change = try pump.setClock(timeMs: request.timeMs, utcOffsetMinutes: request.utcOffsetMinutes, nowMs: nowMs, requestId: requestID)
            return SetClockResponse(previousTimeMs: change.previousTimeMs, timeMs: change.timeMs, utcOffsetMinutes: change.utcOffsetMinutes)
        }
    }

    public mutating func acknowledgeAlarms(_ mask: UInt32, nowMs: UInt64, requestID: UInt32) -> Result<AcknowledgeAlarmsResponse, ProtocolRefusal> {
        let masks = pump.acknowledgeAlarms(mask: mask, nowMs: nowMs, requestId: requestID)
        return .success(AcknowledgeAlarmsResponse(alarmConditionMask: masks.conditionMask, alarmUnacknowledgedMask: masks.unacknowledgedMask))
    }

    public mutating func suspend(nowMs: UInt64, requestID: UInt32) -> Result<SuspendResponse, ProtocolRefusal> {
        refusing {
            let change = try pump.suspend(nowMs: nowMs, requestId: requestID)
            return SuspendResponse(therapyState: change.therapyState, eventSequence: change.eventSequence)
        }
    }

    public mutating func resume(nowMs: UInt64, requestID: UInt32) -> Result<ResumeResponse, ProtocolRefusal> {
        refusing {
            let change = try pump.resume(nowMs: nowMs, requestId: requestID)
            return ResumeResponse(therapyState: change.therapyState, eventSequence: change.eventSequence)
        }
    }

    public mutating func clinicianBolus(_ request: ClinicianBolusRequest, nowMs: UInt64, requestID: UInt32) -> Result<ClinicianBolusResponse, ProtocolRefusal> {
        refusing {
            let start = try pump.clinicianBolus(
                kind: request.kind,
                doseMicrograms: request.doseMicrograms,
                volumeMicroliters: request.volumeMicroliters,
                durationMinutes: request.durationMinutes,
                nowMs: nowMs,
                requestId: requestID
            )
            return ClinicianBolusResponse(
                kind: start.kind,
                doseMicrograms: start.doseMicrograms,
                volumeMicroliters: start.volumeMicroliters,
                startedAtMs: start.startedAtMs,
                endsAtMs: start.endsAtMs,
                eventSequence: start.eventSequence
            )
        }
    }

    public mutating func patientBolus(nowMs: UInt64, requestID: UInt32) -> Result<PatientBolusResponse, ProtocolRefusal> {
        refusing {
            let result = try pump.patientBolus(nowMs: nowMs, requestId: requestID)
            return PatientBolusResponse(
                outcome: result.outcome,
                doseMicrograms: result.doseMicrograms,
                bolusesInLast24h: result.bolusesInLast24h,
                nextAllowedInSeconds: result.nextAllowedInSeconds,
                eventSequence: result.eventSequence
            )
        }
    }

    /// Injects a pump fault (motor stall, program checksum error, low-battery reset).
    public mutating func inject(_ fault: PumpFault, nowMs: UInt64) {
        pump.injectFault(fault, nowMs: nowMs)
    }

    public mutating func clear(_ fault: PumpFault, nowMs: UInt64) {
        pump.clearFault(fault, nowMs: nowMs)
    }

    /// The model's refusal as the protocol's (the model's operations throw only `PumpRefusal`).
    private func refusing<Response>(_ body: () throws -> Response) -> Result<Response, ProtocolRefusal> {
        do {
            return .success(try body())
        } catch let refusal as PumpRefusal {
            return .failure(ProtocolRefusal(refusal.errorCode, detail: refusal.detail))
        } catch {
            preconditionFailure("the pump model threw something other than a refusal: \(error)")
        }
    }
}
