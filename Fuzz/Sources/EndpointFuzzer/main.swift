// Fuzz target: the pump side of the protocol, PumpEndpoint with the emulator's ModelPump
// (SPEC §5-§13), driven with sequences of frames and times.
//
// Input: a 7-byte header (11 with a raw start time), then at most 200 operations until the input ends.
// - Header: byte 0 options (bit 0: no initial program; bit 1: 40 mL reservoir; bit 2: the
//   start time is a raw u64), a u16 initial reservoir (µL, modulo capacity + 1), then the start
//   time: a u32 of ms after 2026-09-21T14:13:20Z, or with bit 2 a u64 of ms since the epoch.
// - Operations, chosen by one byte modulo 32: 31 is operation 7, 7 is operation 9, any other
//   value v is operation v modulo 10:
//   0 Hello: capabilities u8, versions min and max u8, host nonce 8 bytes;
//   1 a request tagged under the fuzzer's session (it holds the pairing key), 2 the same
//     untagged, 3 the same with one tag bit flipped: request type (index into `requestTypes`,
//     or a raw type byte after 255), request id (mode byte: next id, the last one again, or an
//     explicit u32), then the payload (the type's fixed length; ProgramStageData a u16 data
//     length modulo 961 then the data);
//   4 raw line bytes (u16 length modulo 1100), through the frame decoder to the endpoint;
//   5 time passes (unit byte: ms, s, min, 10 min; then u16);
//   6 the link drops (the session ends);
//   7 the emulator restarts (at most twice per input): the pump's state, request record and staged slot go through the
//     state file's JSON and come back as the emulator loads them (a pumpStarted is logged);
//   8 a whole program upload, tagged: u16 length modulo 961 of program bytes, then
//     ProgramStageBegin (the program's own id, the right CRC-32C), ProgramStageData, Activate;
//   9 an unsolicited Status frame.
//
// Properties, after every frame:
// - nothing traps (the pump must never stop, whatever it receives, SPEC §6.2);
// - a frame that is not a changing request carrying a tag that verifies under the session
//   changes nothing: the pump's state, request record and staged slot equal those of a copy
//   only brought to the same time (so nothing unauthenticated is ever executed, §8.3);
// - the endpoint has a session exactly when the last Hello was answered with a version other
//   than 0 and the link has not dropped since (§5.7, §5.8);
// - every answer is one frame that decodes (§3.4): a response with the request's id, of the
//   request's type or Error, whose payload decodes as that response; authenticated under the
//   session exactly when the request's tag verified (Hello: always, under its own nonces);
// - every state the pump reaches passes `PumpState.problem` (the emulator could load its own
//   state file) and survives the JSON round trip of the state file.

import Foundation
import FuzzSupport
import PumpEmulator
import PumpModel
import PumpProtocol

enum Fixture {
    /// The pairing key both sides hold: the fuzzer is the paired host.
    static let key = try! PairingKey(bytes: Array(0..<32))
    static let pumpNonce: [UInt8] = [0x50, 0x55, 0x4D, 0x50, 0x4E, 0x4F, 0x4E, 0x43]

    /// The requests a host sends, with their fixed payload lengths (nil: ProgramStageData).
    static let requestTypes: [(type: MessageType, length: Int?)] = [
        (.ping, 8), (.getStatus, 0), (.setTelemetry, 4), (.readEvents, 5), (.readProgram, 5),
        (.queryRequest, 4), (.programStageBegin, 10), (.programStageData, nil), (.programVerify, 0),
        (.programActivate, 8), (.refill, 8), (.setClock, 10), (.acknowledgeAlarms, 4),
        (.suspend, 0), (.resume, 0), (.clinicianBolus, 11), (.patientBolus, 0),
    ]
}

struct Harness {
    var endpoint: PumpEndpoint<ModelPump>
    var nowMs: UInt64
    /// The session as the host sees it: the authenticator of the last Hello that opened one.
    var session: FrameAuthenticator?
    var nextRequestID: UInt32 = 1
    var lastRequestID: UInt32 = 1
    var encoder = FrameEncoder()

    init(_ input: inout FuzzInput) {
        let options = input.u8()
        var configuration = PumpConfiguration()
        configuration.reservoirCapacityMicroliters = options & 2 == 0 ? 20_000 : 40_000
        configuration.initialReservoirMicroliters = UInt32(input.integer(UInt16.self)) % (configuration.reservoirCapacityMicroliters + 1)
        configuration.initialProgram = options & 1 == 0 ? ModelPump.defaultProgram : nil
        nowMs = options & 4 == 0
            ? 1_790_000_000_000 + UInt64(input.integer(UInt32.self))
            : input.integer(UInt64.self)
        let device = ModelPump(Pump(configuration: configuration, nowMs: nowMs))
        // The version 1 rules (tags, SPEC §8.2, §8.5): sealed sessions are SealedEndpointTests'.
        endpoint = PumpEndpoint(device: device, key: Fixture.key, protocolVersions: 1...1, nonceSource: { Fixture.pumpNonce })
    }

    /// Hands one frame to the endpoint and checks every property of its answer.
    mutating func deliver(_ frame: Frame) {
        // What the frame may do without a verified tag: bring the pump to the time (a response
        // frame is ignored before that, SPEC §6.2 step 1).
        var expected = endpoint
        if !frame.header.isResponse { expected.device.advance(to: nowMs) }
        let type = frame.messageType
        // SPEC §6.2 step 2: a type with no request form is refused before authentication.
        let isRequestType = type != nil && type != .error
        let verified = isRequestType && frame.header.isAuthenticated && type != .hello && (session?.isAuthentic(frame) ?? false)
        let hostNonce: [UInt8]? = type == .hello && !frame.header.isResponse
            ? (try? HelloRequest(payload: frame.payload))?.hostNonce : nil

        let answer = endpoint.handle(frame, nowMs: nowMs)

        let changing = type?.requiresAuthentication ?? false
        if !(changing && verified) {
            require(endpoint.device.pump.state == expected.device.pump.state,
                    "\(Self.describe(frame)) changed the pump: \(Self.diff(expected.device.pump.state, endpoint.device.pump.state))")
            require(endpoint.record == expected.record, "\(Self.describe(frame)) changed the request record")
            require(endpoint.staging == expected.staging, "\(Self.describe(frame)) changed the staged program")
        }
        checkState(after: frame)

        if frame.header.isResponse {
            require(answer.isEmpty, "\(Self.describe(frame)): a response frame was answered")
            return
        }
        let response = decodeOne(answer, answering: frame)
        require(response.header.isResponse, "\(Self.describe(frame)): the answer is not a response")
        require(response.header.requestID == frame.header.requestID,
                "\(Self.describe(frame)): answered with request id \(response.header.requestID)")
        let responseType = response.header.messageType
        require(responseType == frame.header.messageType || responseType == MessageType.error.rawValue,
                "\(Self.describe(frame)): answered with type \(responseType)")
        guard let decodedType = MessageType(rawValue: responseType) else { violated("\(Self.describe(frame)): answer of unknown type") }
        let message: Message
        do {
            message = try Message(type: decodedType, isResponse: true, payload: response.payload)
        } catch {
            violated("\(Self.describe(frame)): the answer \(hex(response.packet)) does not decode: \(error)")
        }

        if !isRequestType {
            guard case .errorResponse(let refusal) = message, refusal.code == .unknownMessageType, !response.header.isAuthenticated else {
                violated("\(Self.describe(frame)): a type with no request form answered \(message), authenticated: \(response.header.isAuthenticated)")
            }
        } else if type == .hello {
            let helloAnswer: HelloResponse?
            if case .helloResponse(let hello) = message { helloAnswer = hello } else { helloAnswer = nil }
            if let helloAnswer, let hostNonce {
                let authenticator = FrameAuthenticator(key: Fixture.key, hostNonce: hostNonce, pumpNonce: helloAnswer.pumpNonce)
                require(response.header.isAuthenticated && authenticator.isAuthentic(response),
                        "\(Self.describe(frame)): the Hello answer is not authenticated under its nonces")
                session = helloAnswer.protocolVersion == 0 ? nil : authenticator
                require(helloAnswer.capabilities & ~0b111 == 0, "\(Self.describe(frame)): reserved capability bits answered")
            } else {
                // A Hello refused for its payload leaves the session as it was.
                require(responseType == MessageType.error.rawValue, "\(Self.describe(frame)): a Hello answered without a Hello answer")
            }
        } else if verified {
            require(response.header.isAuthenticated && session!.isAuthentic(response),
                    "\(Self.describe(frame)): the answer to a verified request is not authenticated")
        } else {
            require(!response.header.isAuthenticated, "\(Self.describe(frame)): an unverified request got an authenticated answer")
        }
        require(endpoint.hasSession == (session != nil),
                "\(Self.describe(frame)): the pump \(endpoint.hasSession ? "has" : "has no") session, the host \(session == nil ? "none" : "one")")
    }

    /// The answer is exactly one frame on the line.
    func decodeOne(_ line: [UInt8], answering frame: Frame) -> Frame {
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        var errors: [FrameDecoder.Event] = []
        decoder.decode(line + [0]) { event in
            if case .frame(let frame) = event { frames.append(frame) } else { errors.append(event) }
        }
        require(frames.count == 1 && errors.isEmpty, "\(Self.describe(frame)): the answer \(hex(line)) is \(frames.count) frames, \(errors)")
        return frames[0]
    }

    func checkState(after frame: Frame?) {
        let state = endpoint.device.pump.state
        if let problem = state.problem {
            violated("after \(frame.map(Self.describe) ?? "a restart") the state cannot be restored: \(problem)")
        }
    }

    mutating func encode(_ type: UInt8, _ payload: [UInt8], requestID: UInt32, tagged: Bool) -> Frame? {
        var line: [UInt8] = []
        do {
            try encoder.encode(messageType: type, response: false, requestID: requestID, payload: payload,
                               authenticator: tagged ? (session ?? FrameAuthenticator(key: Fixture.key, hostNonce: [], pumpNonce: [])) : nil,
                               into: &line)
        } catch {
            return nil
        }
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        decoder.decode(line) { event in
            if case .frame(let frame) = event { frames.append(frame) }
        }
        require(frames.count == 1, "an encoded request does not decode: \(hex(line))")
        return frames[0]
    }

    mutating func requestID(_ input: inout FuzzInput) -> UInt32 {
        let mode = input.u8()
        let id: UInt32
        switch mode % 8 {
        case 0: id = lastRequestID
        case 1: id = input.integer(UInt32.self)
        default: id = nextRequestID
        }
        lastRequestID = id
        nextRequestID = max(nextRequestID, id &+ 1)
        return id
    }

    mutating func request(_ input: inout FuzzInput, tagged: Bool, forged: Bool) {
        let selector = input.u8()
        let type: UInt8
        let payload: [UInt8]
        let id = requestID(&input)
        if Int(selector) < Fixture.requestTypes.count * 14 {
            let (messageType, length) = Fixture.requestTypes[Int(selector) % Fixture.requestTypes.count]
            type = messageType.rawValue
            let count = length ?? 6 + Int(input.integer(UInt16.self)) % 961
            payload = (0..<count).map { _ in input.u8() }
        } else {
            type = input.u8()
            payload = (0..<Int(input.u8())).map { _ in input.u8() }
        }
        guard var frame = encode(type, payload, requestID: id, tagged: tagged) else { return }
        if forged, var tag = frame.tag {
            let bit = input.u8()
            if bit & 64 == 0 { tag.low ^= 1 << UInt64(bit % 64) } else { tag.high ^= 1 << UInt64(bit % 64) }
            frame.tag = tag
        }
        deliver(frame)
    }

    mutating func raw(_ input: inout FuzzInput) {
        let count = Int(input.integer(UInt16.self)) % 1100
        let bytes = (0..<count).map { _ in input.u8() }
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        decoder.decode(bytes + [0]) { event in
            if case .frame(let frame) = event { frames.append(frame) }
        }
        for frame in frames { deliver(frame) }
    }

    mutating func hello(_ input: inout FuzzInput) {
        let capabilities = UInt32(input.u8())
        let request = HelloRequest(
            protocolVersionMin: input.u8(), protocolVersionMax: input.u8(), capabilities: capabilities,
            definitionsHash: ProtocolDefinitions.hash, hostNonce: (0..<8).map { _ in input.u8() }, hostTimeMs: nowMs)
        var payload = WireWriter()
        request.encode(into: &payload)
        if let frame = encode(MessageType.hello.rawValue, payload.bytes, requestID: nextRequestID, tagged: false) {
            nextRequestID &+= 1
            deliver(frame)
        }
    }

    /// Through the state file's JSON, as `EmulatedPump.save()` writes it and the emulator loads it.
    mutating func restart() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let decoder = JSONDecoder()
        do {
            var device = try decoder.decode(ModelPump.self, from: encoder.encode(endpoint.device))
            let record = try decoder.decode(RequestRecord.self, from: encoder.encode(endpoint.record))
            let staging = try endpoint.staging.map { try decoder.decode(ProgramStaging.self, from: encoder.encode($0)) }
            require(device.pump == endpoint.device.pump && record == endpoint.record && staging == endpoint.staging,
                    "the state changed through its file")
            device.restart(nowMs: nowMs)
            endpoint = PumpEndpoint(
                device: device, key: Fixture.key, record: record, staging: staging, protocolVersions: 1...1,
                nonceSource: { Fixture.pumpNonce })
            session = nil
        } catch {
            violated("the pump's own state does not load again: \(error)")
        }
        checkState(after: nil)
    }

    mutating func upload(_ input: inout FuzzInput) {
        let count = Int(input.integer(UInt16.self)) % 961
        let program = (0..<count).map { _ in input.u8() }
        guard let session, !program.isEmpty else { return }
        _ = session
        let programID = program.count >= 4
            ? UInt32(program[0]) | UInt32(program[1]) << 8 | UInt32(program[2]) << 16 | UInt32(program[3]) << 24
            : 1
        let checksum = CRC32C.checksum(program)
        var begin = WireWriter()
        ProgramStageBeginRequest(programId: programID, totalLength: UInt16(program.count), checksum: checksum).encode(into: &begin)
        var data = WireWriter()
        ProgramStageDataRequest(programId: programID, offset: 0, data: program).encode(into: &data)
        var activate = WireWriter()
        ProgramActivateRequest(programId: programID, checksum: checksum).encode(into: &activate)
        for (type, payload) in [(MessageType.programStageBegin, begin.bytes), (.programStageData, data.bytes), (.programActivate, activate.bytes)] {
            let id = nextRequestID
            nextRequestID &+= 1
            if let frame = encode(type.rawValue, payload, requestID: id, tagged: true) { deliver(frame) }
        }
    }

    mutating func telemetry() {
        let line = endpoint.telemetryFrame(nowMs: nowMs)
        var decoder = FrameDecoder()
        let events = decoder.decode(line)
        guard events.count == 1, case .frame(let frame) = events[0] else { violated("a Status frame \(hex(line)) does not decode") }
        require(frame.header.isResponse && frame.header.requestID == 0 && !frame.header.isAuthenticated,
                "a Status frame has header \(frame.header)")
        do {
            _ = try GetStatusResponse(payload: frame.payload)
        } catch {
            violated("a Status frame's payload does not decode: \(error)")
        }
    }

    mutating func pass(_ input: inout FuzzInput) {
        // Up to 65 s, 18 h, 45 days or 455 days.
        let unit: UInt64 = [1, 1000, 60_000, 600_000][Int(input.u8() % 4)]
        nowMs = nowMs.addingReportingOverflow(UInt64(input.integer(UInt16.self)) * unit).partialValue
    }
}

extension Harness {
    static func describe(_ frame: Frame) -> String {
        "frame type \(frame.header.messageType) id \(frame.header.requestID) flags \(frame.header.flags.rawValue) payload \(hex(frame.payload))"
    }

    static func diff(_ a: PumpState, _ b: PumpState) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let left = (try? encoder.encode(a)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        let right = (try? encoder.encode(b)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        return "expected \(left), got \(right)"
    }
}

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    var harness = Harness(&input)
    harness.checkState(after: nil)
    var operations = 0
    var restarts = 0
    while input.remaining > 0, operations < 200 {
        operations += 1
        // A restart (a JSON round trip of the whole state) costs as much as dozens of frames:
        // it is one value of 32, the other operations three each, and at most two per input.
        let operation = input.u8() % 32
        switch operation == 31 ? 7 : (operation == 7 ? 9 : operation % 10) {
        case 0: harness.hello(&input)
        case 1: harness.request(&input, tagged: true, forged: false)
        case 2: harness.request(&input, tagged: false, forged: false)
        case 3: harness.request(&input, tagged: true, forged: true)
        case 4: harness.raw(&input)
        case 5: harness.pass(&input)
        case 6: harness.endpoint.endSession(); harness.session = nil
        case 7:
            guard restarts < 2 else { continue }
            restarts += 1
            harness.restart()
        case 8: harness.upload(&input)
        default: harness.telemetry()
        }
    }
}
