import PumpCapture
import PumpProtocol

/// A pump that says again what a recorded pump said: the pump side of a capture (SPEC §15),
/// served to a live host so that a field capture becomes a regression test (`pump-emulator
/// --replay`).
///
/// Time runs from the first request on: at a moment `t` after it, status is the last status the
/// recorded pump reported up to `t` after its own first answer, the active program the one it
/// had then, and the event log every event the capture holds up to that status's last sequence.
/// Identity comes from the recorded Hello. It changes nothing: every changing request is
/// refused (`invalidArgument`), so a replay cannot be mistaken for a pump that obeys.
public struct RecordedPump: PumpDevice, Codable {
    public struct Timed<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
        /// Milliseconds after the recorded pump's first answer.
        public var offsetMs: UInt64
        public var value: Value
    }

    public let identity: DeviceIdentity
    /// Every status the pump sent, by time.
    public private(set) var statuses: [Timed<Status>]
    /// The active program, each time the host read it completely.
    public private(set) var programs: [Timed<Program>]
    /// Every event the capture holds, by sequence.
    public private(set) var events: [Event]
    /// The oldest sequence the pump said it kept.
    public private(set) var oldestSequence: UInt32
    private var startMs: UInt64?
    private var nowOffsetMs: UInt64 = 0

    public enum ReplayError: Error, Hashable, CustomStringConvertible {
        case noHello
        case noStatus

        public var description: String {
            switch self {
            case .noHello: "the capture holds no Hello response from the pump: it cannot be replayed"
            case .noStatus: "the capture holds no status from the pump: it cannot be replayed"
            }
        }
    }

    public init(capture: DecodedCapture) throws(ReplayError) {
        var hello: (timeNs: UInt64, response: HelloResponse)?
        var statuses: [(UInt64, Status)] = []
        var events: [UInt32: Event] = [:]
        var oldest: UInt32 = 1
        var programParts: [ProgramKey: [UInt16: [UInt8]]] = [:]
        var programs: [(UInt64, Program)] = []
        for record in capture.records {
            guard case .frame(let frame) = record.outcome, frame.header.isResponse, case .success(let message) = frame.message else {
                continue
            }
            let time = record.timestampNanoseconds
            switch message {
            case .helloResponse(let response):
                if hello == nil { hello = (time, response) }
            case .getStatusResponse(let response):
                statuses.append((time, response.status))
            case .readEventsResponse(let response):
                oldest = response.oldestSequence
                for event in response.events { events[event.sequence] = event }
            case .readProgramResponse(let response) where response.slot == .active && response.programId != 0:
                let key = ProgramKey(programID: response.programId, checksum: response.checksum, length: response.totalLength)
                programParts[key, default: [:]][response.offset] = response.data
                if let program = Self.assemble(key, programParts[key] ?? [:]) { programs.append((time, program)) }
            default:
                break
            }
        }
        guard let hello else { throw .noHello }
        guard !statuses.isEmpty else { throw .noStatus }
        let start = hello.timeNs
        func offset(_ time: UInt64) -> UInt64 { time > start ? (time - start) / 1_000_000 : 0 }
        identity = DeviceIdentity(
            model: hello.response.model,
            serialNumber: hello.response.serialNumber,
            firmwareVersion: hello.response.firmwareVersion,
            reservoirCapacityMicroliters: hello.response.reservoirCapacityMicroliters)
        self.statuses = statuses.map { Timed(offsetMs: offset($0.0), value: $0.1) }.sorted { $0.offsetMs < $1.offsetMs }
        self.programs = programs.map { Timed(offsetMs: offset($0.0), value: $0.1) }.sorted { $0.offsetMs < $1.offsetMs }
        self.events = events.values.sorted { $0.sequence < $1.sequence }
        oldestSequence = oldest
    }

    private struct ProgramKey: Hashable {
        var programID: UInt32
        var checksum: UInt32
        var length: UInt16
    }

    /// The program, once every byte of it was read and its checksum holds.
    private static func assemble(_ key: ProgramKey, _ parts: [UInt16: [UInt8]]) -> Program? {
        var bytes: [UInt8] = []
        while bytes.count < Int(key.length) {
            guard let part = parts[UInt16(bytes.count)], !part.isEmpty else { return nil }
            bytes += part
        }
        guard bytes.count == Int(key.length), CRC32C.checksum(bytes) == key.checksum else { return nil }
        return try? Program(payload: bytes)
    }

    /// The last value recorded at or before the replay's present, else the first.
    private func current<Value>(_ timed: [Timed<Value>], at offsetMs: UInt64) -> Value? {
        timed.last { $0.offsetMs <= offsetMs }?.value ?? timed.first?.value
    }

    private func offset(_ nowMs: UInt64) -> UInt64 {
        guard let startMs, nowMs > startMs else { return 0 }
        return nowMs - startMs
    }

    public mutating func advance(to nowMs: UInt64) {
        if startMs == nil { startMs = nowMs }
        nowOffsetMs = offset(nowMs)
    }

    public func status(nowMs: UInt64) -> Status {
        // `statuses` is never empty (checked when made).
        current(statuses, at: offset(nowMs)) ?? statuses[0].value
    }

    public func events(from firstSequence: UInt32, maxCount: Int) -> ReadEventsResponse {
        let last = current(statuses, at: nowOffsetMs)?.lastEventSequence ?? 0
        let from = max(firstSequence, oldestSequence)
        let chosen = events.lazy.filter { $0.sequence >= from && $0.sequence <= last }.prefix(max(0, maxCount))
        return ReadEventsResponse(oldestSequence: oldestSequence, lastSequence: last, events: Array(chosen))
    }

    public var activeProgram: Program? {
        current(programs, at: nowOffsetMs)
    }

    public func check(_ program: Program) -> (problem: UInt32?, dailyDoseMicrograms: UInt32) {
        (nil, 0)
    }

    private static let replayOnly = ProtocolRefusal(.invalidArgument)

    public mutating func activate(_ program: Program, nowMs: UInt64, requestID: UInt32) -> Result<ProgramActivateResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func refill(_ request: RefillRequest, nowMs: UInt64, requestID: UInt32) -> Result<RefillResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func setClock(_ request: SetClockRequest, nowMs: UInt64, requestID: UInt32) -> Result<SetClockResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func acknowledgeAlarms(_ mask: UInt32, nowMs: UInt64, requestID: UInt32) -> Result<AcknowledgeAlarmsResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func suspend(nowMs: UInt64, requestID: UInt32) -> Result<SuspendResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func resume(nowMs: UInt64, requestID: UInt32) -> Result<ResumeResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func clinicianBolus(_ request: ClinicianBolusRequest, nowMs: UInt64, requestID: UInt32) -> Result<ClinicianBolusResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }

    public mutating func patientBolus(nowMs: UInt64, requestID: UInt32) -> Result<PatientBolusResponse, ProtocolRefusal> {
        .failure(Self.replayOnly)
    }
}
