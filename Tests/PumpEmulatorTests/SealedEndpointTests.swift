import PumpEmulator
import PumpModel
import PumpProtocol
import Testing

/// The pump side of a version 2 session (SPEC §6.2 step 0, §8.3, §8.4), driven frame by frame
/// by a host written here from the codec's parts.
@Suite("Endpoint: sealed sessions (version 2)")
struct SealedEndpointTests {
    let key = PairingKey.generate()
    let startMs: UInt64 = 1_790_000_000_000

    private func makeEndpoint(versions: ClosedRange<UInt8> = 2...2) -> PumpEndpoint<ModelPump> {
        var configuration = PumpConfiguration()
        configuration.initialProgram = ModelPump.defaultProgram
        return PumpEndpoint(device: ModelPump(Pump(configuration: configuration, nowMs: startMs)), key: key, protocolVersions: versions)
    }

    private func hello(min: UInt8 = 1, max: UInt8 = 2) -> HelloRequest {
        HelloRequest(
            protocolVersionMin: min, protocolVersionMax: max, capabilities: 7,
            definitionsHash: ProtocolDefinitions.hash, hostNonce: [1, 2, 3, 4, 5, 6, 7, 8], hostTimeMs: 0)
    }

    /// Hello; the host's channel for the sealed session it opened.
    private func open(_ endpoint: inout PumpEndpoint<ModelPump>) throws -> SecureChannel {
        var encoder = FrameEncoder()
        let request = try decodeOne(try encoder.encode(hello(), requestID: 1))
        let answer = try decodeOne(endpoint.handle(request, nowMs: startMs))
        let response = try HelloResponse(payload: answer.payload)
        #expect(response.protocolVersion == 2 && answer.header.version == 1)
        #expect(FrameAuthenticator(key: key, helloRequestPayload: request.payload).isAuthentic(answer))
        #expect(endpoint.sessionVersion == 2)
        return SecureChannel(
            key: key, helloRequestPayload: request.payload, helloAnswerPacket: answer.packet,
            helloAnswerTag: try #require(answer.tag), side: .host)
    }

    private func sealed(_ request: some MessagePayload, id: UInt32, _ channel: inout SecureChannel) throws -> Frame {
        var encoder = FrameEncoder()
        var line: [UInt8] = []
        try encoder.encode(request, requestID: id, sealingWith: &channel, into: &line)
        return try decodeOne(line)
    }

    private func errorCode(_ frame: Frame) throws -> ErrorCode? {
        guard frame.header.messageType == MessageType.error.rawValue else { return nil }
        return try ErrorResponse(payload: frame.payload).code
    }

    @Test func aSealedRequestIsExecutedAndAnsweredSealed() throws {
        var endpoint = makeEndpoint()
        var channel = try open(&endpoint)
        let answer = try decodeOne(endpoint.handle(try sealed(SuspendRequest(), id: 2, &channel), nowMs: startMs + 10))
        #expect(answer.header.isSealed && answer.header.version == 2)
        let opened = try channel.open(answer)
        #expect(opened.header.messageType == MessageType.suspend.rawValue && opened.header.requestID == 2)
        #expect(endpoint.currentStatus(nowMs: startMs + 20).therapyState == .suspended)
        // The unsolicited Status is sealed too, under the pump's next counter.
        let status = try channel.open(try decodeOne(endpoint.telemetryFrame(nowMs: startMs + 30)))
        #expect(try GetStatusResponse(payload: status.payload).status.therapyState == .suspended)
    }

    @Test func inASealedSessionNothingInClearIsReadOrExecuted() throws {
        var endpoint = makeEndpoint()
        _ = try open(&endpoint)
        var encoder = FrameEncoder()
        let read = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(GetStatusRequest(), requestID: 2)), nowMs: startMs))
        #expect(try errorCode(read) == .authenticationRequired)
        #expect(!read.header.isSealed && read.tag == nil)
        // A version 1 tag, even a right one for these nonces, is no seal.
        let tagger = FrameAuthenticator(key: key, hostNonce: [1, 2, 3, 4, 5, 6, 7, 8], pumpNonce: [0, 0, 0, 0, 0, 0, 0, 0])
        let tagged = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 3, authenticator: tagger))
        #expect(try errorCode(try decodeOne(endpoint.handle(tagged, nowMs: startMs))) == .authenticationRequired)
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .running)
        #expect(endpoint.record.lastExecutedRequestID == 0)
    }

    @Test func framesThatDoNotOpenAreDroppedUnanswered() throws {
        var endpoint = makeEndpoint()
        var channel = try open(&endpoint)
        let suspend = try sealed(SuspendRequest(), id: 2, &channel)
        #expect(!endpoint.handle(suspend, nowMs: startMs).isEmpty)
        _ = endpoint.handle(try sealed(ResumeRequest(), id: 3, &channel), nowMs: startMs)
        // The Suspend again: its counter is spent.
        #expect(endpoint.handle(suspend, nowMs: startMs).isEmpty)
        // Sealed for another session: other keys.
        var other = makeEndpoint()
        var otherChannel = try open(&other)
        for _ in 0..<5 { _ = try sealed(PingRequest(echo: 0), id: 9, &otherChannel) }
        #expect(endpoint.handle(try sealed(SuspendRequest(), id: 4, &otherChannel), nowMs: startMs).isEmpty)
        #expect(endpoint.framesNotOpened == 2)
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .running)
        #expect(endpoint.record.lastExecutedRequestID == 3)
    }

    @Test func aPumpWithoutVersionOneServesNothingInClear() throws {
        var endpoint = makeEndpoint()
        var encoder = FrameEncoder()
        let read = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(GetStatusRequest(), requestID: 2)), nowMs: startMs))
        #expect(try errorCode(read) == .noSession)
        // A host that offers version 1 only gets no common version, and no session.
        let answer = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(hello(max: 1), requestID: 3)), nowMs: startMs))
        #expect(try HelloResponse(payload: answer.payload).protocolVersion == 0)
        #expect(!endpoint.hasSession)
        // A sealed frame without a session: the hint to say Hello, in clear.
        let before = makeEndpoint()
        var scratch = before
        var channel = try open(&scratch)
        let early = try decodeOne(endpoint.handle(try sealed(SuspendRequest(), id: 4, &channel), nowMs: startMs))
        #expect(try errorCode(early) == .noSession)
    }

    @Test("Hello with any version range gets an answer, never a trap", arguments: [
        (1, 2, 2), (2, 2, 2), (1, 1, 0), (3, 9, 0), (2, 1, 0), (255, 1, 0), (2, 255, 2),
    ] as [(UInt8, UInt8, UInt8)])
    func helloVersionRanges(min: UInt8, max: UInt8, chosen: UInt8) throws {
        var endpoint = makeEndpoint()
        var encoder = FrameEncoder()
        let answer = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(hello(min: min, max: max), requestID: 1)), nowMs: startMs))
        #expect(try HelloResponse(payload: answer.payload).protocolVersion == chosen)
        #expect(endpoint.sessionVersion == chosen)
    }

    @Test func aPumpOfBothVersionsServesAVersionOneHost() throws {
        var endpoint = makeEndpoint(versions: 1...2)
        var encoder = FrameEncoder()
        let answer = try decodeOne(endpoint.handle(try decodeOne(try encoder.encode(hello(max: 1), requestID: 1)), nowMs: startMs))
        let response = try HelloResponse(payload: answer.payload)
        #expect(response.protocolVersion == 1)
        let authenticator = FrameAuthenticator(key: key, hostNonce: [1, 2, 3, 4, 5, 6, 7, 8], pumpNonce: response.pumpNonce)
        #expect(authenticator.isAuthentic(answer))
        let suspend = try decodeOne(try encoder.encode(SuspendRequest(), requestID: 2, authenticator: authenticator))
        #expect(authenticator.isAuthentic(try decodeOne(endpoint.handle(suspend, nowMs: startMs))))
        #expect(endpoint.currentStatus(nowMs: startMs).therapyState == .suspended)
    }
}
