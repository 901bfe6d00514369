import PumpEmulator
import PumpModel
import PumpProtocol
import Testing

/// Where the emulator departed from SPEC.md (found by an implementation written from the SPEC
/// alone), and the SetClock value that stopped it; frame by frame through `PumpEndpoint`.
@Suite("Endpoint: conformance to the SPEC's session and read rules")
struct ConformanceTests {
    let key = PairingKey.generate()
    let hostNonce: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
    let startMs: UInt64 = 1_790_000_000_000

    private func makeEndpoint() -> PumpEndpoint<ModelPump> {
        var configuration = PumpConfiguration()
        configuration.initialProgram = ModelPump.defaultProgram
        let device = ModelPump(Pump(configuration: configuration, nowMs: startMs))
        // Version 1 sessions, driven with tags (SPEC §8.2); the same rules hold sealed.
        return PumpEndpoint(device: device, key: key, protocolVersions: 1...1, nonceSource: { [9, 9, 9, 9, 9, 9, 9, 9] })
    }

    /// Opens a session offering `capabilities`; the Hello answer and the session's authenticator.
    private func hello(_ endpoint: inout PumpEndpoint<ModelPump>, capabilities: UInt32) throws -> (HelloResponse, FrameAuthenticator) {
        var encoder = FrameEncoder()
        let request = HelloRequest(
            protocolVersionMin: 1, protocolVersionMax: 1, capabilities: capabilities,
            definitionsHash: ProtocolDefinitions.hash, hostNonce: hostNonce, hostTimeMs: 0)
        let answer = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(request, requestID: 1)), nowMs: startMs))
        let response = try HelloResponse(payload: answer.payload)
        return (response, FrameAuthenticator(key: key, hostNonce: hostNonce, pumpNonce: response.pumpNonce))
    }

    private func send(_ payload: some MessagePayload, id: UInt32, to endpoint: inout PumpEndpoint<ModelPump>,
                      authenticator: FrameAuthenticator? = nil, at nowMs: UInt64? = nil) throws -> Frame {
        var encoder = FrameEncoder()
        let request = try decodeOne(try encoder.encode(payload, requestID: id, authenticator: authenticator))
        return try decodeOne(endpoint.handle(request, nowMs: nowMs ?? startMs))
    }

    private func error(_ frame: Frame) throws -> ErrorResponse? {
        guard frame.header.messageType == MessageType.error.rawValue else { return nil }
        return try ErrorResponse(payload: frame.payload)
    }

    /// SPEC §6.6: SetTelemetry needs a session. It was accepted before any Hello, and the
    /// pump then streamed Status to whoever was on the line.
    @Test func setTelemetryWithoutASessionIsNoSession() throws {
        var endpoint = makeEndpoint()
        let answer = try send(SetTelemetryRequest(intervalMs: 100), id: 2, to: &endpoint)
        #expect(try error(answer)?.code == .noSession)
        #expect(endpoint.telemetryIntervalMs == 0)
        // After the link drops, too.
        _ = try hello(&endpoint, capabilities: 0b111)
        endpoint.endSession()
        #expect(try error(try send(SetTelemetryRequest(intervalMs: 100), id: 3, to: &endpoint))?.code == .noSession)
        #expect(endpoint.telemetryIntervalMs == 0)
    }

    /// SPEC §5.3: only the capabilities the Hello answer granted are in force. Without bit 0
    /// SetTelemetry, without bit 2 QueryRequest, is `unknownMessageType`; without bit 1 the pump
    /// takes one request at a time (§7.7: W = 1), and its Hello answer says so.
    @Test func capabilitiesNotGrantedAreNotServed() throws {
        var endpoint = makeEndpoint()
        let (answer, _) = try hello(&endpoint, capabilities: 0)
        #expect(answer.capabilities == 0)
        #expect(answer.receiveWindowFrames == 1)
        #expect(try error(try send(SetTelemetryRequest(intervalMs: 100), id: 2, to: &endpoint))?.code == .unknownMessageType)
        #expect(endpoint.telemetryIntervalMs == 0)
        #expect(try error(try send(QueryRequestRequest(requestId: 1), id: 3, to: &endpoint))?.code == .unknownMessageType)

        // Granted, they are served.
        let (granted, _) = try hello(&endpoint, capabilities: 0b111)
        #expect(granted.capabilities == 0b111)
        #expect(granted.receiveWindowFrames == endpoint.receiveWindowFrames)
        let telemetry = try send(SetTelemetryRequest(intervalMs: 100), id: 4, to: &endpoint)
        #expect(try SetTelemetryResponse(payload: telemetry.payload).intervalMs == 100)
        let query = try send(QueryRequestRequest(requestId: 1), id: 5, to: &endpoint)
        #expect(try QueryRequestResponse(payload: query.payload).state == .notRemembered)

        // Telemetry only (bit 0): QueryRequest is refused again in the new session.
        _ = try hello(&endpoint, capabilities: 0b001)
        #expect(try error(try send(QueryRequestRequest(requestId: 1), id: 6, to: &endpoint))?.code == .unknownMessageType)
        #expect(try error(try send(SetTelemetryRequest(intervalMs: 0), id: 7, to: &endpoint)) == nil)
    }

    /// SPEC §6.8: for the staged slot ReadProgram reports the checksum stated in
    /// ProgramStageBegin, not one computed over the bytes received so far; the host compares the
    /// read-back with its own bytes, and ProgramVerify reports the pump's own CRC-32C.
    @Test func readProgramOfTheStagedSlotReportsTheStatedChecksum() throws {
        var endpoint = makeEndpoint()
        let (_, authenticator) = try hello(&endpoint, capabilities: 0b111)
        let program = try ModelPump.defaultProgram.encoded()
        let stated = CRC32C.checksum(program)
        let begin = try send(ProgramStageBeginRequest(programId: 1, totalLength: UInt16(program.count), checksum: stated),
                             id: 2, to: &endpoint, authenticator: authenticator)
        #expect(try error(begin) == nil)
        let half = program.count / 2
        _ = try send(ProgramStageDataRequest(programId: 1, offset: 0, data: Array(program[..<half])),
                     id: 3, to: &endpoint, authenticator: authenticator)

        let read = try ReadProgramResponse(payload: try send(ReadProgramRequest(slot: .staged, offset: 0, maxLength: 960),
                                                             id: 4, to: &endpoint).payload)
        #expect(read.checksum == stated)
        #expect(read.programId == 1)
        #expect(read.totalLength == UInt16(program.count))
        #expect(read.data == Array(program[..<half]) + Array(repeating: 0, count: program.count - half))
        let verify = try ProgramVerifyResponse(payload: try send(ProgramVerifyRequest(), id: 5, to: &endpoint).payload)
        #expect(verify.checksum == CRC32C.checksum(read.data))
        #expect(verify.checksum != stated)
    }

    /// SPEC §6.2 step 2: a request of type 127 (Error, which has no request form) is
    /// `unknownMessageType`, not authenticated, like an undefined type; it was `malformedPayload`.
    @Test func aRequestOfTypeErrorIsAnUnknownMessageType() throws {
        var endpoint = makeEndpoint()
        let (_, authenticator) = try hello(&endpoint, capabilities: 0b111)
        for signer in [nil, authenticator] {
            var encoder = FrameEncoder()
            var line: [UInt8] = []
            try encoder.encode(messageType: MessageType.error.rawValue, response: false, requestID: 2,
                               payload: [3, 1, 0, 0, 0, 0, 0], authenticator: signer, into: &line)
            let answer = try decodeOne(endpoint.handle(try decodeOne(line), nowMs: startMs))
            #expect(try error(answer)?.code == .unknownMessageType)
            #expect(!answer.header.isAuthenticated)
        }
    }

    /// The frame of issue 15: an authenticated SetClock of 2^64 − 1 was accepted, and the next
    /// request trapped. Now it is refused (`invalidArgument`, field 0), recorded, changes
    /// nothing, and the pump goes on answering.
    @Test func aSetClockAfter9999IsRefusedAndThePumpGoesOn() throws {
        var endpoint = makeEndpoint()
        let (_, authenticator) = try hello(&endpoint, capabilities: 0b111)
        let before = endpoint.currentStatus(nowMs: startMs + 1000)
        let answer = try send(SetClockRequest(timeMs: .max, utcOffsetMinutes: 0), id: 2, to: &endpoint,
                              authenticator: authenticator, at: startMs + 1000)
        let refusal = try #require(try error(answer))
        #expect(refusal.code == .invalidArgument)
        #expect(refusal.detail == 0)
        #expect(endpoint.record.lastExecutedRequestID == 2)
        #expect(!endpoint.device.pump.state.events.contains { $0.kind == .clockSet })

        let status = try GetStatusResponse(payload: try send(GetStatusRequest(), id: 3, to: &endpoint, at: startMs + 60_000).payload).status
        #expect(status.pumpTimeMs == startMs + 60_000)
        #expect(status.utcOffsetMinutes == before.utcOffsetMinutes)
        let bolus = try send(PatientBolusRequest(), id: 4, to: &endpoint, authenticator: authenticator, at: startMs + 61_000)
        #expect(try PatientBolusResponse(payload: bolus.payload).outcome == .started)

        // The last millisecond of 9999 is a clock the pump accepts and runs on.
        let latest = try send(SetClockRequest(timeMs: PumpCalendar.latestTimeMs, utcOffsetMinutes: 900), id: 5, to: &endpoint,
                              authenticator: authenticator, at: startMs + 62_000)
        #expect(try SetClockResponse(payload: latest.payload).timeMs == PumpCalendar.latestTimeMs)
        let after = try GetStatusResponse(payload: try send(GetStatusRequest(), id: 6, to: &endpoint, at: startMs + 3_600_000).payload).status
        #expect(after.pumpTimeMs == PumpCalendar.latestTimeMs + 3_600_000 - 62_000)
    }
}
