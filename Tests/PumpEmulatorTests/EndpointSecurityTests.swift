import PumpEmulator
import PumpModel
import PumpProtocol
import Testing

/// The pump side's authentication and replay rules (SPEC §6.2, §8.4), driven frame by frame.
@Suite("Endpoint: authentication and replay")
struct EndpointSecurityTests {
    let key = PairingKey.generate()
    let hostNonce: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
    let startMs: UInt64 = 1_790_000_000_000

    private func makeEndpoint() -> PumpEndpoint<ModelPump> {
        var configuration = PumpConfiguration()
        configuration.initialProgram = ModelPump.defaultProgram
        let device = ModelPump(Pump(configuration: configuration, nowMs: startMs))
        // These are version 1 rules (SPEC §8.2, §8.5, §8.6); sealed sessions are SealedEndpointTests'.
        return PumpEndpoint(device: device, key: key, protocolVersions: 1...1, nonceSource: { [9, 9, 9, 9, 9, 9, 9, 9] })
    }

    /// Opens a session; returns the authenticator both sides now share.
    private func hello(_ endpoint: inout PumpEndpoint<ModelPump>, nonce: [UInt8]? = nil) throws -> FrameAuthenticator {
        var encoder = FrameEncoder()
        let request = HelloRequest(
            protocolVersionMin: 1, protocolVersionMax: 1, capabilities: 7,
            definitionsHash: ProtocolDefinitions.hash, hostNonce: nonce ?? hostNonce, hostTimeMs: 0)
        let answer = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(request, requestID: 1)), nowMs: startMs))
        let response = try HelloResponse(payload: answer.payload)
        let authenticator = FrameAuthenticator(key: key, hostNonce: nonce ?? hostNonce, pumpNonce: response.pumpNonce)
        #expect(authenticator.isAuthentic(answer))
        return authenticator
    }

    private func errorCode(_ frame: Frame) throws -> ErrorCode? {
        guard frame.header.messageType == MessageType.error.rawValue else { return nil }
        return try ErrorResponse(payload: frame.payload).code
    }

    private func bolusEvents(_ endpoint: PumpEndpoint<ModelPump>) -> Int {
        endpoint.device.events(from: 1, maxCount: 1000).events.filter { $0.kind == .bolusStarted }.count
    }

    @Test func aRetransmittedBolusIsAnsweredFromTheRecordNotRepeated() throws {
        var endpoint = makeEndpoint()
        let authenticator = try hello(&endpoint)
        var encoder = FrameEncoder()
        let request = try decodeOne(try encoder.encode(PatientBolusRequest(), requestID: 5, authenticator: authenticator))
        let first = endpoint.handle(request, nowMs: startMs + 1000)
        let again = endpoint.handle(request, nowMs: startMs + 2000)
        #expect(first == again)
        #expect(try PatientBolusResponse(payload: try decodeOne(first).payload).outcome == .started)
        #expect(bolusEvents(endpoint) == 1)
    }

    @Test func replaysForgeriesAndOtherSessionsAreRefused() throws {
        var endpoint = makeEndpoint()
        let oldSession = try hello(&endpoint, nonce: [7, 7, 7, 7, 7, 7, 7, 7])
        var encoder = FrameEncoder()
        let recorded = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 10, authenticator: oldSession))

        let authenticator = try hello(&endpoint)
        // A frame tagged in an earlier session.
        #expect(try errorCode(try decodeOne(endpoint.handle(recorded, nowMs: startMs))) == .authenticationFailed)
        // No tag at all.
        let bare = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 11))
        #expect(try errorCode(try decodeOne(endpoint.handle(bare, nowMs: startMs))) == .authenticationRequired)
        // A forged tag: the right frame with one tag bit flipped.
        var forged = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 12, authenticator: authenticator))
        forged.tag?.low ^= 1
        #expect(try errorCode(try decodeOne(endpoint.handle(forged, nowMs: startMs))) == .authenticationFailed)
        // Nothing of the above changed the pump.
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .running)

        // A genuine request runs; an older id afterwards is a replay.
        let genuine = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 20, authenticator: authenticator))
        #expect(try errorCode(try decodeOne(endpoint.handle(genuine, nowMs: startMs))) == nil)
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .suspended)
        let older = try decodeOne(try encoder.encode(ResumeRequest(), requestID: 19, authenticator: authenticator))
        #expect(try errorCode(try decodeOne(endpoint.handle(older, nowMs: startMs))) == .staleRequestId)
        // The same id with other content is a conflict.
        let conflicting = try decodeOne(try encoder.encode(ResumeRequest(), requestID: 20, authenticator: authenticator))
        #expect(try errorCode(try decodeOne(endpoint.handle(conflicting, nowMs: startMs))) == .requestIdConflict)
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .suspended)
    }

    @Test func theRecordSurvivesANewSession() throws {
        var endpoint = makeEndpoint()
        var authenticator = try hello(&endpoint)
        var encoder = FrameEncoder()
        let request = try decodeOne(try encoder.encode(PatientBolusRequest(), requestID: 30, authenticator: authenticator))
        _ = endpoint.handle(request, nowMs: startMs)
        endpoint.endSession()
        // After a reconnect the host retransmits the uncertain request, tagged anew.
        authenticator = try hello(&endpoint, nonce: [5, 5, 5, 5, 5, 5, 5, 5])
        let retransmitted = try decodeOne(try encoder.encode(PatientBolusRequest(), requestID: 30, authenticator: authenticator))
        let answer = try decodeOne(endpoint.handle(retransmitted, nowMs: startMs + 1000))
        #expect(authenticator.isAuthentic(answer))
        #expect(try PatientBolusResponse(payload: answer.payload).outcome == .started)
        #expect(bolusEvents(endpoint) == 1)
        // And QueryRequest tells the same without executing anything.
        let query = try decodeOne(try encoder.encode(QueryRequestRequest(requestId: 30), requestID: 31))
        let stored = try QueryRequestResponse(payload: try decodeOne(endpoint.handle(query, nowMs: startMs)).payload)
        #expect(stored.state == .executed)
        #expect(stored.responseType == MessageType.patientBolus.rawValue)
        #expect(bolusEvents(endpoint) == 1)
    }

    @Test func outOfRangeFieldsNameTheField() throws {
        var endpoint = makeEndpoint()
        let authenticator = try hello(&endpoint)
        var encoder = FrameEncoder()
        // durationMinutes 0 is outside 1...1440: field 3 of ClinicianBolus.
        var payload = WireWriter()
        ClinicianBolusRequest(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 0).encode(into: &payload)
        var bytes: [UInt8] = []
        try encoder.encode(messageType: MessageType.clinicianBolus.rawValue, response: false, requestID: 40,
                           payload: payload.bytes, authenticator: authenticator, into: &bytes)
        let answer = try decodeOne(endpoint.handle(try decodeOne(bytes), nowMs: startMs))
        let error = try ErrorResponse(payload: answer.payload)
        #expect(error.code == .invalidArgument)
        #expect(error.detail == 3)
        #expect(bolusEvents(endpoint) == 0)
    }
}
