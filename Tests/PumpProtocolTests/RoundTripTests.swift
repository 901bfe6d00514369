import PumpProtocol
import Testing

/// Property tests over random messages of every form (Generated/RandomMessages.swift), drawn
/// from a fixed seed so that a failure reproduces.
@Suite("Round trips")
struct RoundTripTests {
    static let forms = Array(RandomMessages.forms.indices)
    static let payloadsPerForm = 1_000
    static let framesPerForm = 150

    @Test("payload: encode, decode, equal", arguments: forms)
    func payloadRoundTrip(form: Int) throws {
        var rng = SplitMix64(seed: 0x5EED_0000 + UInt64(form))
        for iteration in 0..<Self.payloadsPerForm {
            let message = RandomMessages.message(form: form, using: &rng)
            let payload = message.payload
            let bytes = try payload.encoded()
            #expect(bytes.count <= FrameLayout.maxPayloadLength)
            let kind = type(of: payload)
            let decoded = try Message(type: kind.messageType, isResponse: kind.isResponse, payload: bytes[...])
            guard decoded == message else {
                Issue.record("form \(RandomMessages.forms[form]), iteration \(iteration): \(decoded) != \(message)")
                return
            }
            #expect(try decoded.payload.encoded() == bytes)
            #expect(decoded.payload.wireValue == payload.wireValue)
        }
    }

    @Test("payload: every strict prefix is truncated, any extra byte is trailing", arguments: forms)
    func prefixesAndSuffixes(form: Int) throws {
        var rng = SplitMix64(seed: 0x0FF5_E700 + UInt64(form))
        for _ in 0..<20 {
            let message = RandomMessages.message(form: form, using: &rng)
            let kind = type(of: message.payload)
            let bytes = try message.payload.encoded()
            for length in 0..<bytes.count {
                do {
                    _ = try Message(type: kind.messageType, isResponse: kind.isResponse, payload: bytes[..<length])
                    Issue.record("\(RandomMessages.forms[form]): a \(length)-byte prefix of \(bytes.count) decoded")
                } catch {
                    guard case .truncated = error else {
                        Issue.record("\(RandomMessages.forms[form]): prefix \(length): \(error)")
                        return
                    }
                }
            }
            let extra = RandomWire.bytes(count: Int.random(in: 1...3, using: &rng), using: &rng)
            #expect(throws: WireError.trailingBytes(count: extra.count)) {
                try Message(type: kind.messageType, isResponse: kind.isResponse, payload: (bytes + extra)[...])
            }
        }
    }

    @Test("frames: encode, stream with noise, decode in any reads, same messages in order", arguments: forms)
    func frameRoundTrip(form: Int) throws {
        var rng = SplitMix64(seed: 0xF4A3_E000 + UInt64(form))
        let key = try PairingKey(bytes: RandomWire.bytes(count: 32, using: &rng))
        let authenticator = FrameAuthenticator(
            key: key,
            hostNonce: RandomWire.bytes(count: 8, using: &rng),
            pumpNonce: RandomWire.bytes(count: 8, using: &rng)
        )
        var encoder = FrameEncoder()
        var stream = RandomWire.bytes(maxCount: 40, using: &rng)  // noise before the first frame
        var sent: [(message: Message, requestID: UInt32, authenticated: Bool)] = []
        for _ in 0..<Self.framesPerForm {
            let message = RandomMessages.message(form: form, using: &rng)
            let requestID = RandomWire.integer(UInt32.min...UInt32.max, using: &rng)
            let authenticated = Bool.random(using: &rng)
            try encoder.encode(
                message.payload,
                requestID: requestID,
                authenticator: authenticated ? authenticator : nil,
                into: &stream
            )
            sent.append((message, requestID, authenticated))
            // Noise between frames: it may hold zeros, so it can be several discarded candidates,
            // but it never touches a frame's own bytes.
            if rng.next() % 3 == 0 {
                stream += RandomWire.bytes(maxCount: 24, using: &rng)
            }
        }

        let runs = [
            ("whole", decodeWhole(stream)),
            ("random reads", decodeEvents(stream, splits: randomSplits(count: stream.count, maxRead: 97, using: &rng))),
            ("byte by byte", decodeByteByByte(stream)),
        ]
        for (how, events) in runs {
            let frames = events.compactMap(\.frame)
            try #require(frames.count == sent.count, "\(how): \(frames.count) frames for \(sent.count) sent")
            for (frame, original) in zip(frames, sent) {
                #expect(frame.header.requestID == original.requestID, "\(how)")
                #expect(frame.header.isAuthenticated == original.authenticated, "\(how)")
                #expect(try frame.message() == original.message, "\(how)")
                if original.authenticated {
                    #expect(authenticator.isAuthentic(frame), "\(how)")
                } else {
                    #expect(frame.tag == nil && !authenticator.isAuthentic(frame), "\(how)")
                }
            }
        }
    }

    @Test("frames: a frame tagged in one session is not authentic in another")
    func authenticationIsBoundToSession() throws {
        var rng = SplitMix64(seed: 0xA07)
        let key = try PairingKey(bytes: RandomWire.bytes(count: 32, using: &rng))
        let otherKey = try PairingKey(bytes: RandomWire.bytes(count: 32, using: &rng))
        var encoder = FrameEncoder()
        for _ in 0..<500 {
            let host = RandomWire.bytes(count: 8, using: &rng)
            let pump = RandomWire.bytes(count: 8, using: &rng)
            let session = FrameAuthenticator(key: key, hostNonce: host, pumpNonce: pump)
            let message = RandomMessages.message(using: &rng)
            let line = try lineForm(message, requestID: UInt32.random(in: 1...1000, using: &rng), authenticator: session, encoder: &encoder)
            let frame = try #require(decodeWhole(line).first?.frame)
            #expect(session.isAuthentic(frame))
            var otherPump = pump
            otherPump[Int.random(in: 0..<8, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            #expect(!FrameAuthenticator(key: key, hostNonce: host, pumpNonce: otherPump).isAuthentic(frame))
            #expect(!FrameAuthenticator(key: key, hostNonce: pump, pumpNonce: host).isAuthentic(frame))
            #expect(!FrameAuthenticator(key: otherKey, hostNonce: host, pumpNonce: pump).isAuthentic(frame))
        }
    }

    @Test("CRC-32C: slicing-by-8 agrees with the bitwise definition at every length and alignment")
    func crcAgreesWithBitwise() {
        var rng = SplitMix64(seed: 0xC4C)
        let data = RandomWire.bytes(count: 300, using: &rng)
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                let slice = data[start..<end]
                #expect(CRC32C.checksum(slice) == bitwiseCRC32C(slice))
            }
        }
    }
}

/// CRC-32C one bit at a time, straight from the definition.
func bitwiseCRC32C(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
    }
    return ~crc
}
