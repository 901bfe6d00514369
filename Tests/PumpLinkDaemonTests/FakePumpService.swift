import PumpLinkDaemon
import PumpProtocol
import PumpSafety

/// A `PumpService` that records every call and answers with canned values, or with `failure`.
actor FakePumpService: PumpService {
    /// Every call, as "name pumpID actor", in order.
    private(set) var calls: [String] = []
    /// Thrown by every throwing call when set.
    var failure: DaemonError?
    private var subscribers: [AsyncStream<PumpUpdate>.Continuation] = []
    /// The last request body values the service was given.
    private(set) var lastProgram: Program?
    private(set) var lastOverride: Override?
    private(set) var lastMask: UInt32?

    static let pumpID = "pump-1"

    func fail(with error: DaemonError?) { failure = error }

    /// Sends an update to every open `updates()` stream.
    func publish(_ update: PumpUpdate) {
        for subscriber in subscribers { subscriber.yield(update) }
    }

    var subscriberCount: Int { subscribers.count }

    private func record(_ name: String, _ id: String? = nil, _ actor: Actor? = nil) throws(DaemonError) {
        calls.append([name, id, actor.map { "\($0.name)/\($0.role.rawValue)" }].compactMap { $0 }.joined(separator: " "))
        if let failure { throw failure }
        if let id, id != Self.pumpID { throw DaemonError(.unknownPump, "no pump \(id)", details: ["pump": id]) }
    }

    func pumps() async -> [PumpSummary] {
        calls.append("pumps")
        return [Self.summary]
    }

    func pump(_ id: String) async throws(DaemonError) -> PumpDetail {
        try record("pump", id)
        return PumpDetail(
            summary: Self.summary, firmwareVersion: "1.0.0", reservoirCapacityMicroliters: 20_000,
            activeProgram: Self.program, lastStoredEventSequence: 7)
    }

    func events(_ id: String, from sequence: UInt32, limit: Int) async throws(DaemonError) -> [Event] {
        try record("events \(sequence) \(limit)", id)
        return [Self.event(sequence: max(sequence, 1))]
    }

    func activeProgram(_ id: String) async throws(DaemonError) -> Program? {
        try record("activeProgram", id)
        return nil
    }

    func review(_ id: String, program: Program, override: Override?) async throws(DaemonError) -> ProgramReport {
        try record("review", id)
        lastProgram = program
        lastOverride = override
        return Self.report(program, override: override)
    }

    func push(_ id: String, program: Program, override: Override?, by actor: Actor) async throws(DaemonError) -> PushResult {
        try record("push", id, actor)
        lastProgram = program
        lastOverride = override
        return PushResult(
            report: Self.report(program, override: override),
            activated: ProgramActivateResponse(programId: program.programId, checksum: 0xDEAD_BEEF, activatedAtMs: 1_000, eventSequence: 8),
            status: Self.status)
    }

    func refill(_ id: String, aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32, by actor: Actor) async throws(DaemonError) -> RefillResult {
        try record("refill \(aspiratedMicroliters) \(newVolumeMicroliters)", id, actor)
        return RefillResult(
            report: RefillReport(
                expectedMicroliters: 2_000, aspiratedMicroliters: aspiratedMicroliters, newVolumeMicroliters: newVolumeMicroliters,
                capacityMicroliters: 20_000, discrepancy: false, projectedLowReservoirAtMs: nil, projectedEmptyAtMs: nil,
                findings: [], verdict: .accepted),
            pump: RefillResponse(
                expectedMicroliters: 2_000, aspiratedMicroliters: aspiratedMicroliters, discrepancy: 0,
                reservoirMicroliters: newVolumeMicroliters, eventSequence: 9))
    }

    func clinicianBolus(
        _ id: String, _ request: ClinicianBolusRequest, override: Override?, catheterVolumeMicroliters: UInt32?, by actor: Actor
    ) async throws(DaemonError) -> ClinicianBolusResponse {
        try record("clinicianBolus \(request.kind.name) \(request.doseMicrograms)", id, actor)
        return ClinicianBolusResponse(
            kind: request.kind, doseMicrograms: request.doseMicrograms, volumeMicroliters: request.volumeMicroliters,
            startedAtMs: 1_000, endsAtMs: 61_000, eventSequence: 10)
    }

    func patientBolus(_ id: String, by actor: Actor) async throws(DaemonError) -> PatientBolusResponse {
        try record("patientBolus", id, actor)
        return PatientBolusResponse(outcome: .started, doseMicrograms: 50, bolusesInLast24h: 1, nextAllowedInSeconds: 3_600, eventSequence: 11)
    }

    func suspend(_ id: String, by actor: Actor) async throws(DaemonError) -> SuspendResponse {
        try record("suspend", id, actor)
        return SuspendResponse(therapyState: .suspended, eventSequence: 12)
    }

    func resume(_ id: String, by actor: Actor) async throws(DaemonError) -> ResumeResponse {
        try record("resume", id, actor)
        return ResumeResponse(therapyState: .running, eventSequence: 13)
    }

    func acknowledgeAlarms(_ id: String, mask: UInt32, by actor: Actor) async throws(DaemonError) -> AcknowledgeAlarmsResponse {
        try record("acknowledgeAlarms \(mask)", id, actor)
        lastMask = mask
        return AcknowledgeAlarmsResponse(alarmConditionMask: 0, alarmUnacknowledgedMask: 0)
    }

    func setClock(_ id: String, timeMs: UInt64, utcOffsetMinutes: Int16, override: Override?, by actor: Actor) async throws(DaemonError) -> SetClockResponse {
        try record("setClock \(timeMs) \(utcOffsetMinutes)\(override.map { " override \($0.reason)" } ?? "")", id, actor)
        return SetClockResponse(previousTimeMs: 500, timeMs: timeMs, utcOffsetMinutes: utcOffsetMinutes)
    }

    func audit(pump id: String?, limit: Int) async throws(DaemonError) -> [AuditRecord] {
        try record("audit \(id ?? "*") \(limit)")
        return [
            AuditRecord(
                id: 1, timeMs: 1_000, actor: "dr-lee", role: "clinician", pumpID: Self.pumpID, action: "program.push",
                parameters: "{}", outcome: "done", detail: "", requestID: 42)
        ]
    }

    func captureStatus(_ id: String) async throws(DaemonError) -> CaptureStatus {
        try record("captureStatus", id)
        return CaptureStatus(recording: false)
    }

    func startCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus {
        try record("startCapture", id, actor)
        return CaptureStatus(recording: true, files: ["/var/lib/pumplink/captures/pump-1.pcapng"], packets: 0, bytes: 112)
    }

    func stopCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus {
        try record("stopCapture", id, actor)
        return CaptureStatus(recording: false, files: ["/var/lib/pumplink/captures/pump-1.pcapng"], packets: 12, bytes: 1400)
    }

    func updates() async -> AsyncStream<PumpUpdate> {
        calls.append("updates")
        let (stream, continuation) = AsyncStream.makeStream(of: PumpUpdate.self)
        subscribers.append(continuation)
        return stream
    }

    func auditHead() async throws(DaemonError) -> AuditHead {
        AuditHead(rows: 0, headHash: String(repeating: "0", count: 64))
    }

    func metricsText() async -> String {
        calls.append("metrics")
        return "# TYPE pumplink_frames_total counter\npumplink_frames_total 3\n"
    }

    // MARK: Canned values

    static let status = Status(
        pumpTimeMs: 1_700_000_000_000, utcOffsetMinutes: 60, therapyState: .running, reservoirMicroliters: 15_000,
        reservoirCapacityMicroliters: 20_000, currentDoseRateMicrogramsPerDay: 1_000, currentFlowMicrolitersPerDay: 40,
        totalDeliveredMicroliters: 100, totalDeliveredMicrograms: 2_500, activeProgramId: 3, activeProgramChecksum: 0xDEAD_BEEF,
        bolusActive: 0, bolusRemainingMicroliters: 0, batteryState: .ok, batteryPercent: 90, batteryDaysToEndOfService: 2_000,
        alarmConditionMask: 0, alarmUnacknowledgedMask: 0, patientBolusAvailableInSeconds: 0, patientBolusesInLast24h: 0,
        lastEventSequence: 7, lastExecutedRequestId: 41)

    static let summary = PumpSummary(
        id: pumpID, port: "/dev/ttyUSB0", link: .up, serialNumber: "NGP123456", model: "PL-20", status: status,
        uncertainRequests: [])

    static let program = Program(
        programId: 3, drug: .morphine, concentrationMicrogramsPerMilliliter: 25_000, lowReservoirThresholdMicroliters: 2_000,
        steps: [DoseStep(dayMask: 127, startMinute: 0, doseRateMicrogramsPerDay: 1_000)], periodicBoluses: [],
        patientBolus: PatientBolusSettings(doseMicrograms: 50, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 4))

    static func event(sequence: UInt32) -> Event {
        Event(sequence: sequence, timeMs: 1_700_000_000_000 + UInt64(sequence), kind: .alarmRaised, code: 8, requestId: 0, value1: 1_900, value2: 0)
    }

    static func report(_ program: Program, override: Override?) -> ProgramReport {
        ProgramReport(
            programId: program.programId, drug: program.drug,
            concentrationMicrogramsPerMilliliter: program.concentrationMicrogramsPerMilliliter,
            dailyDoseMicrogramsByWeekday: Array(repeating: 1_000, count: 7), dailyDoseMicrograms: 1_000,
            dailyDoseWithPatientBolusesMicrograms: 1_200, activeDailyDoseMicrograms: 1_000, changePercent: 0,
            projectedLowReservoirAtMs: nil, projectedEmptyAtMs: nil, pumpRule: nil,
            findings: [Finding(severity: .notice, rule: "dailyDose.unchanged", message: "The daily dose does not change.")],
            verdict: override == nil ? .accepted : .acceptedWithOverride, override: override)
    }
}
