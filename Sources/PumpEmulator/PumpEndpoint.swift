import PumpProtocol

/// The pump side of the protocol (SPEC §5-§9): turns each request frame into the bytes of
/// its response. Pure: no I/O, time is passed in, nonces come from the given generator.
///
/// It authenticates, keeps the request record (a retransmitted request is answered from it,
/// never executed twice; a replay is refused), stages program uploads, and hands everything
/// else to the `PumpDevice`.
public struct PumpEndpoint<Device: PumpDevice>: Sendable {
    public var device: Device
    public let key: PairingKey
    public var record: RequestRecord
    public var staging: ProgramStaging?
    /// Requests the pump accepts in flight (Hello tells the host); within the replay window.
    public var receiveWindowFrames: UInt8 = 8
    /// The protocol versions this pump speaks (SPEC §5.2). Version 1 sends everything in
    /// clear and serves untagged reads to anyone on the line, so a pump offers it only when
    /// it must serve version 1 hosts.
    public var protocolVersions: ClosedRange<UInt8>
    /// The message definitions the pump states in Hello and Definitions (SPEC §5.4).
    public var definitions = MessageDefinitions.current
    /// The interval of unsolicited Status frames the host asked for (0 = none).
    public private(set) var telemetryIntervalMs: UInt32 = 0
    /// Sealed frames dropped because they did not open (forged, replayed, other keys; SPEC §8.4).
    public private(set) var framesNotOpened = 0
    private var session: Session?
    /// The capability bits the Hello answer granted: only these are in force (SPEC §5.3).
    public private(set) var capabilitiesInForce: UInt32 = 0
    private var encoder = FrameEncoder()
    private var nonceSource: @Sendable () -> [UInt8]

    /// The session a Hello opened: version 1 tags (SPEC §8.2) or a version 2 sealed channel.
    private enum Session {
        case tagged(FrameAuthenticator)
        case sealed(SecureChannel)
    }

    /// How an answer goes out: in clear, tagged (version 1), or sealed (version 2).
    private enum Protection {
        case clear
        case tagged(FrameAuthenticator)
        case sealed
    }

    public init(
        device: Device,
        key: PairingKey,
        record: RequestRecord = RequestRecord(),
        staging: ProgramStaging? = nil,
        protocolVersions: ClosedRange<UInt8> = 2...2,
        nonceSource: @escaping @Sendable () -> [UInt8] = PumpEndpoint.randomNonce
    ) {
        self.device = device
        self.key = key
        self.record = record
        self.staging = staging
        self.protocolVersions = protocolVersions
        self.nonceSource = nonceSource
    }

    @Sendable public static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Whether a session is open (a Hello has been answered).
    public var hasSession: Bool { session != nil }

    /// The version of the open session, 0 without one.
    public var sessionVersion: UInt8 {
        switch session {
        case nil: 0
        case .tagged: 1
        case .sealed: SecureChannel.version
        }
    }

    /// Forgets the session, as when the link drops: the next host must say Hello again.
    public mutating func endSession() {
        session = nil
        telemetryIntervalMs = 0
        capabilitiesInForce = 0
    }

    /// The wire bytes answering `frame`; empty if nothing is to be sent (a stray response, or
    /// a sealed frame that does not open).
    public mutating func handle(_ frame: Frame, nowMs: UInt64) -> [UInt8] {
        guard !frame.header.isResponse else { return [] }
        device.advance(to: nowMs)
        let requestID = frame.header.requestID
        let version = frame.header.version
        if frame.header.isSealed {
            // SPEC §6.2 step 0: a sealed frame is opened first, and dropped if it does not open.
            guard case .sealed(var channel) = session else {
                return refusal(ProtocolRefusal(.noSession), requestID, type: frame.header.messageType, .clear, version: version)
            }
            let opened: Frame
            do {
                opened = try channel.open(frame)
            } catch {
                framesNotOpened += 1
                return []
            }
            session = .sealed(channel)
            guard let type = opened.messageType, type != .error else {
                return refusal(ProtocolRefusal(.unknownMessageType), requestID, type: opened.header.messageType, .sealed, version: version)
            }
            // Hello travels in clear; a sealed one is no Hello the pump could answer.
            guard type != .hello else { return [] }
            return process(opened, type, .sealed, nowMs: nowMs)
        }
        guard let type = frame.messageType, type != .error else {
            return refusal(ProtocolRefusal(.unknownMessageType), requestID, type: frame.header.messageType, .clear, version: version)
        }
        if type == .hello {
            return hello(frame, nowMs: nowMs)
        }
        // Outside Hello, a version 2 session and a version 2 frame are sealed: nothing else is
        // read or executed (SPEC §8.3).
        if case .sealed = session {
            return refusal(ProtocolRefusal(.authenticationRequired), requestID, type: type.rawValue, .clear, version: version)
        }
        guard version == 1, protocolVersions.contains(1) else {
            return refusal(ProtocolRefusal(.noSession), requestID, type: type.rawValue, .clear, version: version)
        }

        var protection = Protection.clear
        if frame.header.isAuthenticated {
            guard case .tagged(let authenticator) = session else {
                return refusal(ProtocolRefusal(.noSession), requestID, type: type.rawValue, .clear, version: version)
            }
            guard authenticator.isAuthentic(frame) else {
                return refusal(ProtocolRefusal(.authenticationFailed), requestID, type: type.rawValue, .clear, version: version)
            }
            protection = .tagged(authenticator)
        } else if type.requiresAuthentication {
            let code: ErrorCode = session == nil ? .noSession : .authenticationRequired
            return refusal(ProtocolRefusal(code), requestID, type: type.rawValue, .clear, version: version)
        }
        return process(frame, type, protection, nowMs: nowMs)
    }

    /// SPEC §6.2 from step 5, for a request that passed authentication (or needs none).
    private mutating func process(_ frame: Frame, _ type: MessageType, _ protection: Protection, nowMs: UInt64) -> [UInt8] {
        let requestID = frame.header.requestID
        let version = frame.header.version
        guard type.requiresAuthentication else {
            let (responseType, payload) = execute(type, frame.payload, requestID: requestID, nowMs: nowMs)
            return encode(responseType, payload, requestID, protection, version: version)
        }
        switch record.verdict(requestID: requestID, messageType: type.rawValue, payload: frame.payload) {
        case .repeated(let entry):
            return encode(entry.responseType, entry.responsePayload, requestID, protection, version: version)
        case .conflict:
            return refusal(ProtocolRefusal(.requestIdConflict), requestID, type: type.rawValue, protection, version: version)
        case .stale:
            return refusal(ProtocolRefusal(.staleRequestId, detail: record.lastExecutedRequestID), requestID, type: type.rawValue, protection, version: version)
        case .fresh:
            let (responseType, payload) = execute(type, frame.payload, requestID: requestID, nowMs: nowMs)
            record.remember(
                requestID: requestID,
                messageType: type.rawValue,
                payload: frame.payload,
                responseType: responseType,
                responsePayload: payload
            )
            return encode(responseType, payload, requestID, protection, version: version)
        }
    }

    /// An unsolicited Status frame (request id 0), for the telemetry stream: sealed in a
    /// version 2 session, in clear otherwise.
    public mutating func telemetryFrame(nowMs: UInt64) -> [UInt8] {
        device.advance(to: nowMs)
        let payload = Self.payloadBytes(GetStatusResponse(status: currentStatus(nowMs: nowMs)))
        let protection: Protection = if case .sealed = session { .sealed } else { .clear }
        return encode(MessageType.getStatus.rawValue, payload, 0, protection, version: sessionVersion == 0 ? 1 : sessionVersion)
    }

    public func currentStatus(nowMs: UInt64) -> Status {
        var status = device.status(nowMs: nowMs)
        status.lastExecutedRequestId = record.lastExecutedRequestID
        return status
    }

    // MARK: Handshake

    private mutating func hello(_ frame: Frame, nowMs: UInt64) -> [UInt8] {
        let request: HelloRequest
        do {
            request = try HelloRequest(payload: frame.payload)
        } catch {
            return refusal(refusal(for: error, type: .hello), frame.header.requestID, type: MessageType.hello.rawValue, .clear, version: 1)
        }
        // The highest version both speak; 0 if none, including for min > max (SPEC §5.2).
        var version: UInt8 = 0
        if request.protocolVersionMin <= request.protocolVersionMax {
            let common = request.protocolVersionMin...request.protocolVersionMax
            if common.overlaps(protocolVersions) {
                version = min(common.upperBound, protocolVersions.upperBound)
            }
        }
        let pumpNonce = nonceSource()
        let status = currentStatus(nowMs: nowMs)
        let identity = device.identity
        let response = HelloResponse(
            protocolVersion: version,
            capabilities: request.capabilities & 0b111,
            definitionsHash: definitions.hash,
            pumpNonce: pumpNonce,
            model: identity.model,
            serialNumber: identity.serialNumber,
            firmwareVersion: identity.firmwareVersion,
            reservoirCapacityMicroliters: identity.reservoirCapacityMicroliters,
            pumpTimeMs: status.pumpTimeMs,
            utcOffsetMinutes: status.utcOffsetMinutes,
            lastExecutedRequestId: record.lastExecutedRequestID,
            lastEventSequence: status.lastEventSequence,
            maxPayloadBytes: UInt16(version >= 2 ? FrameLayout.maxSealedPlaintextLength : FrameLayout.maxPayloadLength),
            receiveWindowFrames: request.capabilities & 0b10 != 0 ? receiveWindowFrames : 1
        )
        capabilitiesInForce = version == 0 ? 0 : response.capabilities
        telemetryIntervalMs = 0
        let requestID = frame.header.requestID
        guard version >= 2 else {
            // Version 1 (or none: any earlier session ends, SPEC §5.2): tagged under the nonces.
            // Hello answers carry header version 1 whatever they choose (SPEC §3.1).
            let authenticator = FrameAuthenticator(key: key, hostNonce: request.hostNonce, pumpNonce: pumpNonce)
            session = version == 0 ? nil : .tagged(authenticator)
            return encode(response, requestID: requestID, .tagged(authenticator), version: 1)
        }
        // Version 2: the tag covers the request's payload too, and the session keys come from
        // the whole exchange (SPEC §8.3).
        let authenticator = FrameAuthenticator(key: key, helloRequestPayload: frame.payload)
        let answer = encode(response, requestID: requestID, .tagged(authenticator), version: 1)
        let packet = encoder.lastPacket
        let tagStart = packet.count - FrameLayout.checkLength - FrameLayout.tagLength
        let tag = packet[tagStart...].withUnsafeBytes { AuthenticationTag($0) }
        session = .sealed(SecureChannel(
            key: key,
            helloRequestPayload: frame.payload,
            helloAnswerPacket: packet[..<tagStart],
            helloAnswerTag: tag,
            side: .pump
        ))
        return answer
    }

    // MARK: Commands

    /// Runs one request; the response's type and payload (an Error payload on refusal).
    private mutating func execute(
        _ type: MessageType,
        _ payload: ArraySlice<UInt8>,
        requestID: UInt32,
        nowMs: UInt64
    ) -> (UInt8, [UInt8]) {
        if let refusal = capabilityRefusal(for: type) { return errorPayload(refusal, type: type.rawValue) }
        let message: Message
        do {
            message = try Message(type: type, isResponse: false, payload: payload)
        } catch {
            return errorPayload(refusal(for: error, type: type), type: type.rawValue)
        }
        let outcome: Result<any MessagePayload, ProtocolRefusal> = switch message {
        case .pingRequest(let request):
            .success(PingResponse(echo: request.echo))
        case .getStatusRequest:
            .success(GetStatusResponse(status: currentStatus(nowMs: nowMs)))
        case .setTelemetryRequest(let request):
            setTelemetry(request)
        case .readEventsRequest(let request):
            .success(device.events(from: request.firstSequence, maxCount: Int(request.maxCount)))
        case .readProgramRequest(let request):
            readProgram(request)
        case .queryRequestRequest(let request):
            .success(query(request.requestId))
        case .definitionsRequest:
            .success(DefinitionsResponse(fingerprints: definitions.fingerprints))
        case .programStageBeginRequest(let request):
            stageBegin(request)
        case .programStageDataRequest(let request):
            stageData(request)
        case .programVerifyRequest:
            .success(verify())
        case .programActivateRequest(let request):
            activate(request, nowMs: nowMs, requestID: requestID)
        case .refillRequest(let request):
            device.refill(request, nowMs: nowMs, requestID: requestID).map { $0 }
        case .setClockRequest(let request):
            device.setClock(request, nowMs: nowMs, requestID: requestID).map { $0 }
        case .acknowledgeAlarmsRequest(let request):
            device.acknowledgeAlarms(request.alarmMask, nowMs: nowMs, requestID: requestID).map { $0 }
        case .suspendRequest:
            device.suspend(nowMs: nowMs, requestID: requestID).map { $0 }
        case .resumeRequest:
            device.resume(nowMs: nowMs, requestID: requestID).map { $0 }
        case .clinicianBolusRequest(let request):
            device.clinicianBolus(request, nowMs: nowMs, requestID: requestID).map { $0 }
        case .patientBolusRequest:
            device.patientBolus(nowMs: nowMs, requestID: requestID).map { $0 }
        default:
            // A response type sent as a request: Message(type:isResponse:false) only yields
            // request cases, so this is unreachable for well-formed decoding.
            .failure(ProtocolRefusal(.unknownMessageType))
        }
        switch outcome {
        case .success(let response):
            return (type.rawValue, Self.payloadBytes(response))
        case .failure(let refusal):
            return errorPayload(refusal, type: type.rawValue)
        }
    }

    private mutating func setTelemetry(_ request: SetTelemetryRequest) -> Result<any MessagePayload, ProtocolRefusal> {
        telemetryIntervalMs = request.intervalMs == 0 ? 0 : max(request.intervalMs, 50)
        return .success(SetTelemetryResponse(intervalMs: telemetryIntervalMs))
    }

    private func readProgram(_ request: ReadProgramRequest) -> Result<any MessagePayload, ProtocolRefusal> {
        let programID: UInt32
        let bytes: [UInt8]
        let checksum: UInt32
        switch request.slot {
        case .active:
            guard let program = device.activeProgram, let encoded = try? program.encoded() else {
                return .success(ReadProgramResponse(slot: .active, programId: 0, checksum: 0, totalLength: 0, offset: 0, data: []))
            }
            (programID, bytes, checksum) = (program.programId, encoded, CRC32C.checksum(encoded))
        case .staged:
            guard let staging else {
                return .success(ReadProgramResponse(slot: .staged, programId: 0, checksum: 0, totalLength: 0, offset: 0, data: []))
            }
            (programID, bytes, checksum) = (staging.programID, staging.bytes, staging.statedChecksum)
        }
        let offset = Int(request.offset)
        guard offset <= bytes.count else { return .failure(ProtocolRefusal(.invalidArgument, detail: 1)) }
        let end = min(offset + Int(request.maxLength), bytes.count)
        return .success(ReadProgramResponse(
            slot: request.slot,
            programId: programID,
            checksum: checksum,
            totalLength: UInt16(bytes.count),
            offset: request.offset,
            data: Array(bytes[offset..<end])
        ))
    }

    private func query(_ requestID: UInt32) -> QueryRequestResponse {
        let entry = record.entry(for: requestID)
        return QueryRequestResponse(
            requestId: requestID,
            state: entry == nil ? .notRemembered : .executed,
            lastExecutedRequestId: record.lastExecutedRequestID,
            oldestRememberedRequestId: record.oldestRememberedRequestID,
            responseType: entry?.responseType ?? 0,
            responsePayload: entry?.responsePayload ?? []
        )
    }

    private mutating func stageBegin(_ request: ProgramStageBeginRequest) -> Result<any MessagePayload, ProtocolRefusal> {
        staging = ProgramStaging(programID: request.programId, length: Int(request.totalLength), checksum: request.checksum)
        return .success(ProgramStageBeginResponse(programId: request.programId, totalLength: request.totalLength))
    }

    private mutating func stageData(_ request: ProgramStageDataRequest) -> Result<any MessagePayload, ProtocolRefusal> {
        guard var current = staging else { return .failure(ProtocolRefusal(.noStagedProgram)) }
        guard current.programID == request.programId else {
            return .failure(ProtocolRefusal(.programIdMismatch, detail: current.programID))
        }
        guard current.write(request.data, at: Int(request.offset)) else {
            return .failure(ProtocolRefusal(.invalidArgument, detail: 2))  // the data field
        }
        staging = current
        return .success(ProgramStageDataResponse(programId: request.programId, receivedLength: UInt16(current.receivedLength)))
    }

    /// The staged program if it passes the checks of SPEC §9.6 (for Activate also the
    /// request's id and checksum), else the refusal of the first check it fails.
    private func stagedProgram(activating request: ProgramActivateRequest? = nil) -> Result<Program, ProtocolRefusal> {
        guard let staging else { return .failure(ProtocolRefusal(.noStagedProgram)) }
        if let request, request.programId != staging.programID {
            return .failure(ProtocolRefusal(.programIdMismatch, detail: staging.programID))
        }
        guard staging.isComplete else {
            return .failure(ProtocolRefusal(.stagingIncomplete, detail: UInt32(staging.receivedLength)))
        }
        let computed = staging.checksum
        guard computed == staging.statedChecksum, request.map({ $0.checksum == computed }) ?? true else {
            return .failure(ProtocolRefusal(.checksumMismatch, detail: computed))
        }
        switch staging.program() {
        case .failure(.programIDMismatch):
            return .failure(ProtocolRefusal(.programInvalid, detail: 2))
        case .failure:
            return .failure(ProtocolRefusal(.programInvalid, detail: 1))
        case .success(let program):
            if let problem = device.check(program).problem {
                return .failure(ProtocolRefusal(.programInvalid, detail: problem))
            }
            return .success(program)
        }
    }

    private func verify() -> ProgramVerifyResponse {
        var response = ProgramVerifyResponse(
            programId: staging?.programID ?? 0,
            totalLength: UInt16(staging?.bytes.count ?? 0),
            checksum: staging?.checksum ?? 0,
            verdict: 0,
            problem: 0,
            dailyDoseMicrograms: 0
        )
        switch stagedProgram() {
        case .success(let program):
            response.dailyDoseMicrograms = device.check(program).dailyDoseMicrograms
        case .failure(let refusal):
            response.verdict = refusal.code.rawValue
            response.problem = refusal.code == .programInvalid ? refusal.detail : 0
        }
        return response
    }

    private mutating func activate(_ request: ProgramActivateRequest, nowMs: UInt64, requestID: UInt32) -> Result<any MessagePayload, ProtocolRefusal> {
        switch stagedProgram(activating: request) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(let program):
            let result = device.activate(program, nowMs: nowMs, requestID: requestID)
            if case .success = result { staging = nil }
            return result.map { $0 }
        }
    }

    // MARK: Encoding

    /// A field out of range, an unlisted enum value or a count above its maximum is an
    /// `invalidArgument` naming the field by index; anything else is `malformedPayload` (SPEC §6.2).
    private func refusal(for error: WireError, type: MessageType) -> ProtocolRefusal {
        let field: String
        switch error {
        case .outOfRange(let name, _), .invalidEnum(let name, _), .tooLong(let name, _, _): field = name
        default: return ProtocolRefusal(.malformedPayload)
        }
        // Names are "Struct.field"; a field of a nested structure counts as its top-level field.
        let parts = field.split(separator: ".")
        let index = parts.count == 2 ? type.requestFieldNames.firstIndex(of: String(parts[1])) : nil
        return ProtocolRefusal(.invalidArgument, detail: UInt32(index ?? 0))
    }

    private func errorPayload(_ refusal: ProtocolRefusal, type: UInt8) -> (UInt8, [UInt8]) {
        let error = ErrorResponse(requestType: type, code: refusal.code, detail: refusal.detail)
        return (MessageType.error.rawValue, Self.payloadBytes(error))
    }

    private mutating func refusal(_ refusal: ProtocolRefusal, _ requestID: UInt32, type: UInt8, _ protection: Protection, version: UInt8) -> [UInt8] {
        let (responseType, payload) = errorPayload(refusal, type: type)
        return encode(responseType, payload, requestID, protection, version: version)
    }

    private static func payloadBytes(_ payload: some MessagePayload) -> [UInt8] {
        var writer = WireWriter()
        payload.encode(into: &writer)
        return writer.bytes
    }

    private mutating func encode(_ payload: some MessagePayload, requestID: UInt32, _ protection: Protection, version: UInt8) -> [UInt8] {
        encode(type(of: payload).messageType.rawValue, Self.payloadBytes(payload), requestID, protection, version: version)
    }

    private mutating func encode(_ responseType: UInt8, _ payload: [UInt8], _ requestID: UInt32, _ protection: Protection, version: UInt8) -> [UInt8] {
        var output: [UInt8] = []
        do {
            switch protection {
            case .clear, .tagged:
                var authenticator: FrameAuthenticator?
                if case .tagged(let tagging) = protection { authenticator = tagging }
                try encoder.encode(
                    messageType: responseType, response: true, requestID: requestID, payload: payload,
                    version: version, authenticator: authenticator, into: &output)
            case .sealed:
                guard case .sealed(var channel) = session else { return [] }
                try encoder.encode(
                    messageType: responseType, response: true, requestID: requestID, payload: payload,
                    sealingWith: &channel, into: &output)
                session = .sealed(channel)
            }
        } catch {
            // Responses are built from validated values and stay within the payload limit; the
            // counter runs out after 2^64 frames. Neither happens; if one did, nothing is sent.
            return []
        }
        return output
    }
}

extension PumpEndpoint {
    /// SPEC §5.3, §6.6, §6.9: SetTelemetry needs a session (`noSession`); in a session, a
    /// request whose capability the Hello answer did not grant is `unknownMessageType`.
    /// Outside a session QueryRequest is served like the other reads (§5.8).
    fileprivate func capabilityRefusal(for type: MessageType) -> ProtocolRefusal? {
        switch type {
        case .setTelemetry:
            guard hasSession else { return ProtocolRefusal(.noSession) }
            return capabilitiesInForce & 0b1 == 0 ? ProtocolRefusal(.unknownMessageType) : nil
        case .queryRequest:
            return hasSession && capabilitiesInForce & 0b100 == 0 ? ProtocolRefusal(.unknownMessageType) : nil
        default:
            return nil
        }
    }
}
