import PumpProtocol
import Testing

/// The codec's limits and refusals, each at its boundary.
@Suite("Limits")
struct LimitTests {
    /// A packet built by hand, with a correct check: for headers the encoder would never write.
    static func line(version: UInt8 = 1, flags: UInt8 = 0, messageType: UInt8, requestID: UInt32 = 1, payload: [UInt8]) -> [UInt8] {
        var packet: [UInt8] = [version, flags, messageType]
        withUnsafeBytes(of: requestID.littleEndian) { packet += $0 }
        withUnsafeBytes(of: UInt16(truncatingIfNeeded: payload.count).littleEndian) { packet += $0 }
        packet += payload
        withUnsafeBytes(of: CRC32C.checksum(packet).littleEndian) { packet += $0 }
        var line: [UInt8] = [0]
        COBS.encode(packet, into: &line)
        return line + [0]
    }

    static let ping: [UInt8] = {
        var encoder = FrameEncoder()
        return (try? encoder.encode(PingRequest(echo: 0x00FF_00FF), requestID: 99)) ?? []
    }()

    @Test("a 1024-byte payload encodes and decodes, authenticated or not", arguments: [false, true])
    func maximumPayload(authenticated: Bool) throws {
        var rng = SplitMix64(seed: 1024)
        // No zeros: the longest COBS form.
        let payload = (0..<FrameLayout.maxPayloadLength).map { _ in UInt8.random(in: 1...255, using: &rng) }
        let authenticator = authenticated
            ? FrameAuthenticator(key: try PairingKey(bytes: Array(repeating: 7, count: 32)), hostNonce: [1], pumpNonce: [2])
            : nil
        var encoder = FrameEncoder()
        var line: [UInt8] = []
        try encoder.encode(messageType: 17, response: false, requestID: 5, payload: payload, authenticator: authenticator, into: &line)
        #expect(line.count <= FrameLayout.maxEncodedLength + 2)
        for events in [decodeWhole(line), decodeByteByByte(line)] {
            let frame = try #require(events.first?.frame)
            #expect(events.count == 1)
            #expect(Array(frame.payload) == payload)
            #expect(frame.packet.count + (authenticated ? FrameLayout.tagLength : 0) + FrameLayout.checkLength
                == (authenticated ? FrameLayout.maxPacketLength : FrameLayout.maxPacketLength - FrameLayout.tagLength))
            if let authenticator { #expect(authenticator.isAuthentic(frame)) }
        }
    }

    @Test("a 1025-byte payload is refused by the encoder, which writes nothing")
    func oversizePayloadRefused() {
        var encoder = FrameEncoder()
        var output: [UInt8] = [0xAB]
        #expect(throws: WireError.tooLong(field: "payload", count: 1025, max: 1024)) {
            try encoder.encode(messageType: 17, response: false, requestID: 5, payload: [UInt8](repeating: 1, count: 1025), into: &output)
        }
        #expect(output == [0xAB])
        // The encoder is still usable.
        #expect(throws: Never.self) { try encoder.encode(PingRequest(echo: 1), requestID: 1, into: &output) }
        #expect(decodeWhole(output).compactMap(\.frame).count == 1)
    }

    @Test("the largest typed messages fit: 38 events, 960-byte blobs")
    func largestMessages() throws {
        let events = (1...38).map {
            Event(sequence: UInt32($0), timeMs: UInt64.max, kind: .clockSet, code: 255, requestId: .max, value1: .max, value2: .max)
        }
        let messages: [any MessagePayload] = [
            ReadEventsResponse(oldestSequence: 1, lastSequence: 38, events: events),
            ReadProgramResponse(slot: .staged, programId: 1, checksum: 2, totalLength: 960, offset: 0, data: Array(repeating: 0xEE, count: 960)),
            QueryRequestResponse(requestId: 1, state: .executed, lastExecutedRequestId: 1, oldestRememberedRequestId: 1, responseType: 5, responsePayload: Array(repeating: 0, count: 960)),
            ProgramStageDataRequest(programId: 1, offset: 0, data: Array(repeating: 0x11, count: 960)),
        ]
        var encoder = FrameEncoder()
        for payload in messages {
            let line = try encoder.encode(payload, requestID: 3)
            let frame = try #require(decodeWhole(line).first?.frame)
            #expect(frame.header.payloadLength <= FrameLayout.maxPayloadLength)
            #expect(try frame.message().payload.wireValue == payload.wireValue)
        }
    }

    @Test("an unknown message type is a frame whose message is refused")
    func unknownMessageType() throws {
        let frame = try #require(decodeWhole(Self.line(messageType: 200, payload: [1, 2])).first?.frame)
        #expect(frame.messageType == nil)
        #expect(throws: FrameMessageError.unknownMessageType(200)) { try frame.message() }
        // Type 0 and the gap between 7 and 16 are not defined either.
        for type: UInt8 in [0, 9, 15, 28, 126, 128, 255] {
            let frame = try #require(decodeWhole(Self.line(messageType: type, payload: [])).first?.frame)
            #expect(throws: FrameMessageError.unknownMessageType(type)) { try frame.message() }
        }
    }

    @Test("an unknown version is discarded", arguments: [0, 3, 0x7F, 0xFF] as [UInt8])
    func unsupportedVersion(version: UInt8) {
        let events = decodeWhole(Self.line(version: version, messageType: 2, payload: Array(repeating: 1, count: 8)) + Self.ping)
        #expect(events.first == .discarded(.unsupportedVersion(version)))
        #expect(events.count == 2 && events[1].frame != nil)
    }

    @Test("reserved flags are discarded", arguments: [0x04, 0x08, 0x80, 0xFF] as [UInt8])
    func reservedFlags(flags: UInt8) {
        let events = decodeWhole(Self.line(flags: flags, messageType: 2, payload: Array(repeating: 1, count: 8)))
        #expect(events == [.discarded(.reservedFlags(flags))])
    }

    @Test("an oversize candidate is discarded at the next delimiter, then frames decode again")
    func oversizeThenRecovery() {
        // 1054 decoded bytes: one more than the largest packet.
        var stream: [UInt8] = [0]
        COBS.encode(Array(repeating: 0x42, count: FrameLayout.maxPacketLength + 1), into: &stream)
        stream += Self.ping
        var decoder = FrameDecoder()
        let events = decoder.decode(stream)
        #expect(events.first == .discarded(.oversize))
        #expect(events.count == 2 && events[1].frame != nil)
        #expect(decoder.statistics.discarded == 1 && decoder.statistics.frames == 1)

        // A long run without any delimiter keeps being dropped, without growing, until one comes.
        var noisy = FrameDecoder()
        for _ in 0..<100 {
            #expect(noisy.decode([UInt8](repeating: 0x33, count: 1000)).isEmpty)
        }
        #expect(noisy.decode(Self.ping).map { $0.frame == nil } == [true, false])
    }

    @Test("exactly the largest packet is not oversize")
    func largestPacketIsNotOversize() {
        // 1053 decoded bytes with a wrong check: refused by the check, not by size.
        var stream: [UInt8] = [0]
        COBS.encode([1] + Array(repeating: 0x42, count: FrameLayout.maxPacketLength - 1), into: &stream)
        stream.append(0)
        guard case .discarded(.checkFailed) = decodeWhole(stream).first else {
            Issue.record("\(decodeWhole(stream))")
            return
        }
    }

    static let shortStreams: [([UInt8], FrameError)] = [
        ([0, 1, 0], FrameError.tooShort(length: 0)),
        ([0, 2, 7, 0], .tooShort(length: 1)),
        ([0, 14] + Array(repeating: 9, count: 13) + [0], .checkFailed(received: 0x0909_0909, computed: CRC32C.checksum(Array(repeating: 9, count: 9)))),
        ([0, 13] + Array(repeating: 9, count: 12) + [0], .tooShort(length: 12)),
        ([0, 13] + Array(repeating: 9, count: 11) + [0], .truncated(length: 11)),
        ([0, 5, 1, 0], .truncated(length: 1)),
        ([0, 0xFF, 1, 2, 0], .truncated(length: 2)),
    ]

    @Test("short and cut candidates", arguments: shortStreams)
    func shortCandidates(stream: [UInt8], error: FrameError) {
        #expect(decodeWhole(stream) == [.discarded(error)])
        #expect(decodeByteByByte(stream) == [.discarded(error)])
    }

    @Test("a partial candidate is forgotten on reset")
    func reset() {
        var decoder = FrameDecoder()
        #expect(decoder.decode(Self.ping.prefix(10)).isEmpty)
        decoder.reset()
        let events = decoder.decode(Self.ping.dropFirst(10))
        // The rest of the frame alone is not a frame; the decoder is in step for the next one.
        #expect(events.allSatisfy { $0.frame == nil })
        #expect(decoder.decode(Self.ping).compactMap(\.frame).count == 1)
    }

    // MARK: Payload errors

    static func decode<P: MessagePayload>(_: P.Type, _ bytes: [UInt8]) throws(WireError) -> P {
        try P(payload: bytes)
    }

    @Test("out-of-range fields are refused when decoding and when encoding")
    func outOfRange() throws {
        #expect(throws: WireError.outOfRange(field: "ReadEventsRequest.maxCount", value: 0)) {
            try Self.decode(ReadEventsRequest.self, [1, 0, 0, 0, 0])
        }
        #expect(throws: WireError.outOfRange(field: "ReadEventsRequest.firstSequence", value: 0)) {
            try Self.decode(ReadEventsRequest.self, [0, 0, 0, 0, 38])
        }
        #expect(try Self.decode(ReadEventsRequest.self, [1, 0, 0, 0, 38]) == ReadEventsRequest(firstSequence: 1, maxCount: 38))
        #expect(throws: WireError.outOfRange(field: "SetClockRequest.utcOffsetMinutes", value: 901)) {
            try Self.decode(SetClockRequest.self, Array(repeating: 0, count: 8) + [0x85, 0x03])
        }
        #expect(throws: WireError.outOfRange(field: "SetTelemetryRequest.intervalMs", value: 3_600_001)) {
            try SetTelemetryRequest(intervalMs: 3_600_001).encoded()
        }
        var encoder = FrameEncoder()
        var output: [UInt8] = []
        #expect(throws: WireError.outOfRange(field: "ClinicianBolusRequest.durationMinutes", value: 0)) {
            try encoder.encode(ClinicianBolusRequest(kind: .single, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 0), requestID: 1, into: &output)
        }
        #expect(output.isEmpty)
    }

    @Test("an enumeration value that is not listed is refused")
    func invalidEnum() {
        #expect(throws: WireError.invalidEnum(field: "ReadProgramRequest.slot", value: 2)) {
            try Self.decode(ReadProgramRequest.self, [2, 0, 0, 1, 0])
        }
        #expect(throws: WireError.invalidEnum(field: "ErrorResponse.code", value: 0)) {
            try Self.decode(ErrorResponse.self, [1, 0, 0, 0, 0, 0, 0])
        }
        #expect(throws: WireError.invalidEnum(field: "ErrorResponse.code", value: 0x1600)) {
            try Self.decode(ErrorResponse.self, [1, 0, 0x16, 0, 0, 0, 0])
        }
    }

    @Test("strings, blobs and arrays longer than their maximum are refused")
    func tooLong() {
        #expect(throws: WireError.tooLong(field: "ReadEventsResponse.events", count: 39, max: 38)) {
            try Self.decode(ReadEventsResponse.self, [1, 0, 0, 0, 1, 0, 0, 0, 39])
        }
        #expect(throws: WireError.tooLong(field: "ProgramStageDataRequest.data", count: 961, max: 960)) {
            try Self.decode(ProgramStageDataRequest.self, [1, 0, 0, 0, 0, 0, 0xC1, 0x03] + Array(repeating: 1, count: 961))
        }
        // A string's maximum counts UTF-8 bytes: 9 two-byte characters are 18 bytes, over 16.
        let hello = HelloResponse(
            protocolVersion: 1, capabilities: 0, definitionsHash: Array(repeating: 0, count: 8),
            pumpNonce: Array(repeating: 0, count: 8), model: "m", serialNumber: "s",
            firmwareVersion: String(repeating: "µ", count: 9), reservoirCapacityMicroliters: 20_000, pumpTimeMs: 0,
            utcOffsetMinutes: 0, lastExecutedRequestId: 0, lastEventSequence: 0, maxPayloadBytes: 1024,
            receiveWindowFrames: 1)
        #expect(throws: WireError.tooLong(field: "HelloResponse.firmwareVersion", count: 18, max: 16)) {
            try hello.encoded()
        }
        var fits = hello
        fits.firmwareVersion = String(repeating: "µ", count: 8)
        #expect(throws: Never.self) { try fits.encoded() }
    }

    @Test("fixed-length byte fields must have their length")
    func wrongLength() {
        #expect(throws: WireError.wrongLength(field: "HelloRequest.hostNonce", count: 7, expected: 8)) {
            try HelloRequest(protocolVersionMin: 1, protocolVersionMax: 1, capabilities: 0, definitionsHash: Array(repeating: 0, count: 8),
                             hostNonce: Array(repeating: 0, count: 7), hostTimeMs: 0).encoded()
        }
    }

    @Test("truncated payloads, trailing bytes and invalid UTF-8 are refused")
    func truncatedAndTrailing() {
        #expect(throws: WireError.truncated(offset: 0, needed: 1)) { try Self.decode(PingRequest.self, Array(repeating: 0, count: 7)) }
        #expect(throws: WireError.truncated(offset: 0, needed: 8)) { try Self.decode(PingRequest.self, []) }
        #expect(throws: WireError.trailingBytes(count: 1)) { try Self.decode(PingRequest.self, Array(repeating: 0, count: 9)) }
        #expect(throws: WireError.trailingBytes(count: 3)) { try Self.decode(SuspendRequest.self, [1, 2, 3]) }
        // A blob whose count runs past the end.
        #expect(throws: WireError.truncated(offset: 8, needed: 1)) {
            try Self.decode(ProgramStageDataRequest.self, [1, 0, 0, 0, 0, 0, 2, 0, 0xAA])
        }
        #expect(throws: WireError.noSuchDirection(type: .error, isResponse: false)) {
            try Message(type: .error, isResponse: false, payload: [])
        }
    }

    // MARK: Pairing keys

    static let keyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

    @Test("a pairing key from 64 hexadecimal digits")
    func pairingKeyFromHex() throws {
        #expect(try PairingKey(hex: Self.keyHex).hexadecimal == Self.keyHex)
        #expect(try PairingKey(hex: "  " + Self.keyHex.uppercased() + "\n").hexadecimal == Self.keyHex)
        #expect(try PairingKey(hex: "0001 0203 0405 0607 0809 0a0b 0c0d 0e0f\n1011 1213 1415 1617 1819 1a1b 1c1d 1e1f").hexadecimal == Self.keyHex)
        #expect(try PairingKey(bytes: Array(0..<32)).hexadecimal == Self.keyHex)
        #expect(PairingKey.generate().hexadecimal.count == 64)
    }

    static let badKeys: [(String, PairingKeyError)] = {
        let short = String(keyHex.dropLast(2))
        return [
            ("", .wrongLength(0)),
            (short, .wrongLength(31)),
            (keyHex + "20", .wrongLength(33)),
            (String(keyHex.dropLast()), .notHexadecimal),
            (short + "zz", .notHexadecimal),
            ("0x" + short, .notHexadecimal),
            (short + "\u{B5}", .notHexadecimal),
        ]
    }()

    @Test("a pairing key of the wrong length or not hexadecimal is refused", arguments: badKeys)
    func badPairingKey(hex: String, error: PairingKeyError) {
        #expect(throws: error) { try PairingKey(hex: hex) }
    }

    @Test("a pairing key of other than 32 bytes is refused", arguments: [0, 16, 31, 33, 64])
    func badPairingKeyBytes(count: Int) {
        #expect(throws: PairingKeyError.wrongLength(count)) { try PairingKey(bytes: Array(repeating: 1, count: count)) }
    }
}
