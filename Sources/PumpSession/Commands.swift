import PumpProtocol
import Synchronization

/// The protocol's commands as calls, each returning the pump's answer or throwing how it ended.
extension PumpSession {
    public func ping(_ echo: UInt64 = 0) async throws(SessionError) -> UInt64 {
        try await request(PingRequest(echo: echo), expecting: PingResponse.self).echo
    }

    public func status() async throws(SessionError) -> Status {
        try await request(GetStatusRequest(), expecting: GetStatusResponse.self).status
    }

    /// Asks the pump to stream Status every `intervalMs` (0 stops it); see `telemetry()`.
    public func setTelemetry(intervalMs: UInt32) async throws(SessionError) {
        _ = try await request(SetTelemetryRequest(intervalMs: intervalMs), expecting: SetTelemetryResponse.self)
    }

    public func refill(aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32) async throws(SessionError) -> RefillResponse {
        try await request(RefillRequest(aspiratedMicroliters: aspiratedMicroliters, newVolumeMicroliters: newVolumeMicroliters))
    }

    public func setClock(timeMs: UInt64, utcOffsetMinutes: Int16) async throws(SessionError) -> SetClockResponse {
        try await request(SetClockRequest(timeMs: timeMs, utcOffsetMinutes: utcOffsetMinutes))
    }

    public func acknowledgeAlarms(_ mask: UInt32) async throws(SessionError) -> AcknowledgeAlarmsResponse {
        try await request(AcknowledgeAlarmsRequest(alarmMask: mask))
    }

    public func suspend() async throws(SessionError) -> SuspendResponse {
        try await request(SuspendRequest())
    }

    public func resume() async throws(SessionError) -> ResumeResponse {
        try await request(ResumeRequest())
    }

    public func clinicianBolus(_ bolus: ClinicianBolusRequest) async throws(SessionError) -> ClinicianBolusResponse {
        try await request(bolus)
    }

    public func patientBolus() async throws(SessionError) -> PatientBolusResponse {
        try await request(PatientBolusRequest())
    }

    // MARK: Resolving an uncertain outcome

    public enum Resolution: Sendable, Hashable {
        /// The pump executed it; this is the response it gave.
        case executed(Message)
        /// The pump received it and refused it: nothing was done. This is its answer.
        case refused(ErrorResponse)
        /// The pump never received it: its id is above the last one the pump answered, or
        /// among those it still remembers without being one of them.
        case notExecuted
        /// The pump no longer remembers: consult its event log (events carry request ids).
        case unknown
    }

    /// Learns from the pump's request record whether a request ran (SPEC §7.4). Executes nothing.
    public func resolve(requestID: UInt32) async throws(SessionError) -> Resolution {
        let answer = try await request(QueryRequestRequest(requestId: requestID), expecting: QueryRequestResponse.self)
        // Only an answer about this very request is evidence about it (SPEC §7.6).
        guard answer.requestId == requestID else {
            throw .inconsistentData("QueryRequest for \(requestID) answered about request \(answer.requestId)")
        }
        switch answer.state {
        case .executed:
            guard let type = MessageType(rawValue: answer.responseType) else {
                throw .inconsistentData("stored response of unknown type \(answer.responseType)")
            }
            let message: Message
            do {
                message = try Message(type: type, isResponse: true, payload: answer.responsePayload[...])
            } catch {
                throw .malformedResponse(.queryRequest, error)
            }
            if case .errorResponse(let refusal) = message { return .refused(refusal) }
            return .executed(message)
        case .notRemembered:
            // The pump remembers every request it answered from the oldest it still holds on;
            // ids strictly increase, so an id from there on that it does not hold never came.
            let remembersFrom = answer.oldestRememberedRequestId
            if requestID > answer.lastExecutedRequestId || (remembersFrom != 0 && requestID >= remembersFrom) {
                return .notExecuted
            }
            return .unknown
        }
    }

    // MARK: Bulk transfers

    /// Runs `operation` for every item with at most `window` in flight, results in item order.
    private func pipelined<Item: Sendable, Result: Sendable>(
        _ items: [Item],
        _ operation: @escaping @Sendable (Item) async throws(SessionError) -> Result
    ) async throws(SessionError) -> [Result] {
        let window = max(1, min(configuration.window, identity?.receiveWindowFrames ?? 1))
        var results = [Result?](repeating: nil, count: items.count)
        do {
            try await withThrowingTaskGroup(of: (Int, Result).self) { group in
                var next = 0
                while next < items.count && next < window {
                    let index = next
                    group.addTask { (index, try await operation(items[index])) }
                    next += 1
                }
                while let (index, result) = try await group.next() {
                    results[index] = result
                    if next < items.count {
                        let index = next
                        group.addTask { (index, try await operation(items[index])) }
                        next += 1
                    }
                }
            }
        } catch let error as SessionError {
            throw error
        } catch {
            throw .notConnected
        }
        return results.compactMap { $0 }
    }

    /// The most events one `readEvents` call plans to read: a pump's statement of its newest
    /// sequence number never makes the host plan more (a larger backlog takes several calls).
    public static let eventsPerRead = 4096

    /// Events from `firstSequence` towards the newest, at most `eventsPerRead`, pipelined
    /// (SPEC §10). Checks that the sequence numbers are consecutive and where they start.
    /// `progress` is called with (received, total).
    public func readEvents(
        from firstSequence: UInt32,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws(SessionError) -> (oldestSequence: UInt32, events: [Event]) {
        let perFrame: UInt32 = 38
        let first = try await request(
            ReadEventsRequest(firstSequence: max(firstSequence, 1), maxCount: UInt8(perFrame)),
            expecting: ReadEventsResponse.self
        )
        var events = first.events
        let start = max(firstSequence, first.oldestSequence, 1)
        let nextSequence = start &+ UInt32(events.count)
        let (planEnd, pastTheTop) = start.addingReportingOverflow(UInt32(Self.eventsPerRead - 1))
        let last = pastTheTop ? first.lastSequence : min(first.lastSequence, planEnd)
        let total = last >= start ? Int(last - start) + 1 : 0
        progress?(events.count, total)
        if nextSequence <= last && !events.isEmpty {
            let starts = Array(stride(from: nextSequence, through: last, by: Int(perFrame)))
            let received = ProgressCounter(events.count)
            let rest = try await pipelined(starts) { [self] (sequence: UInt32) async throws(SessionError) -> [Event] in
                let count = UInt8(min(perFrame, last - sequence + 1))
                let response = try await self.request(
                    ReadEventsRequest(firstSequence: sequence, maxCount: count),
                    expecting: ReadEventsResponse.self
                )
                progress?(received.add(response.events.count), total)
                return response.events
            }
            events += rest.joined()
        }
        for (offset, event) in events.enumerated() where event.sequence != start &+ UInt32(offset) {
            throw .inconsistentData("event \(event.sequence) where \(start &+ UInt32(offset)) was expected")
        }
        return (first.oldestSequence, events)
    }

    /// Whether the pump's event log holds an event caused by `requestID` (events carry the id
    /// of the request that caused them, SPEC §10), read in batches from the start.
    public func eventLogHolds(requestID: UInt32) async throws(SessionError) -> Bool {
        var next: UInt32 = 1
        while true {
            let (_, events) = try await readEvents(from: next)
            if events.contains(where: { $0.requestId == requestID }) { return true }
            guard events.count >= Self.eventsPerRead, let last = events.last, last.sequence < UInt32.max else { return false }
            next = last.sequence + 1
        }
    }

    /// The whole encoded program in a slot, pipelined, with its id and checksum as the pump
    /// states them; the checksum is verified over the bytes received.
    public func readProgramBytes(_ slot: ProgramSlot) async throws(SessionError) -> (programID: UInt32, checksum: UInt32, bytes: [UInt8]) {
        let chunk: UInt16 = 960
        let first = try await request(
            ReadProgramRequest(slot: slot, offset: 0, maxLength: chunk),
            expecting: ReadProgramResponse.self
        )
        var bytes = first.data
        if Int(first.totalLength) > bytes.count {
            let offsets = Array(stride(from: bytes.count, to: Int(first.totalLength), by: Int(chunk)))
            let rest = try await pipelined(offsets) { [self] (offset: Int) async throws(SessionError) -> [UInt8] in
                try await self.request(
                    ReadProgramRequest(slot: slot, offset: UInt16(offset), maxLength: chunk),
                    expecting: ReadProgramResponse.self
                ).data
            }
            bytes += rest.joined()
        }
        guard bytes.count == Int(first.totalLength), CRC32C.checksum(bytes) == first.checksum else {
            throw .inconsistentData("program bytes do not match the checksum the pump states")
        }
        return (first.programId, first.checksum, bytes)
    }

    /// The active program, or nil if none.
    public func activeProgram() async throws(SessionError) -> Program? {
        let (programID, _, bytes) = try await readProgramBytes(.active)
        guard programID != 0, !bytes.isEmpty else { return nil }
        do {
            return try Program(payload: bytes)
        } catch {
            throw .malformedResponse(.readProgram, error)
        }
    }

    /// Replaces the active program safely (SPEC §9): staged upload (pipelined), the pump's
    /// verification, a byte-exact read-back, then atomic activation. Any failure before
    /// activation leaves the old program running; an unanswered activation throws `.uncertain`.
    public func pushProgram(_ program: Program) async throws(SessionError) -> ProgramActivateResponse {
        let bytes: [UInt8]
        do {
            bytes = try program.encoded()
        } catch {
            throw .pushFailed("the program does not encode: \(error)")
        }
        let checksum = CRC32C.checksum(bytes)
        do {
            try await stage(program, bytes: bytes, checksum: checksum)
        } catch .uncertain(let requestID, let type) {
            // Staging changes only the staging slot, which the next push starts afresh: an
            // unanswered staging request leaves the active program as it was (SPEC §9.6).
            throw .pushFailed("\(type.name) request \(requestID) was not answered; nothing was activated")
        }
        return try await request(
            ProgramActivateRequest(programId: program.programId, checksum: checksum),
            expecting: ProgramActivateResponse.self
        )
    }

    /// Upload, verify and read back: everything before activation.
    private func stage(_ program: Program, bytes: [UInt8], checksum: UInt32) async throws(SessionError) {
        _ = try await request(
            ProgramStageBeginRequest(programId: program.programId, totalLength: UInt16(bytes.count), checksum: checksum),
            expecting: ProgramStageBeginResponse.self
        )
        let chunk = 960
        let offsets = Array(stride(from: 0, to: bytes.count, by: chunk))
        _ = try await pipelined(offsets) { [self] (offset: Int) async throws(SessionError) -> UInt16 in
            let data = Array(bytes[offset..<min(offset + chunk, bytes.count)])
            return try await self.request(
                ProgramStageDataRequest(programId: program.programId, offset: UInt16(offset), data: data),
                expecting: ProgramStageDataResponse.self
            ).receivedLength
        }
        let verify = try await request(ProgramVerifyRequest(), expecting: ProgramVerifyResponse.self)
        guard verify.verdict == 0 else {
            let reason = ErrorCode(rawValue: verify.verdict)?.name ?? "code \(verify.verdict)"
            throw .pushFailed("the pump rejects the staged program: \(reason) (problem \(verify.problem))")
        }
        guard verify.programId == program.programId, verify.checksum == checksum, Int(verify.totalLength) == bytes.count else {
            throw .pushFailed("the pump staged something else (checksum \(verify.checksum), expected \(checksum))")
        }
        let readBack = try await readProgramBytes(.staged)
        guard readBack.bytes == bytes else {
            throw .pushFailed("read-back of the staged program differs from what was sent")
        }
    }
}

/// Counts progress across the tasks of a pipelined transfer.
private final class ProgressCounter: Sendable {
    private let value: Mutex<Int>

    init(_ value: Int) { self.value = Mutex(value) }

    func add(_ amount: Int) -> Int {
        value.withLock { value in
            value += amount
            return value
        }
    }
}
