// Fuzz target: the incremental frame decoder (SPEC §3.4).
//
// Input: byte 0 seeds the read splits; the rest is the byte stream of a line. The stream,
// followed by one delimiter, is decoded three ways (in one read, one byte per read for the
// first 512 bytes, in the reads the seed chooses) and each time the decoder must report exactly
// what a plain reference decoder written from SPEC §3 reports: same frames (header, packet,
// tag), same discarded candidates with the same FrameError, same statistics. So no frame is
// ever accepted whose CRC-32C (computed here bit by bit) is wrong, and chunking changes
// nothing. Every frame must then re-encode, through FrameEncoder, to a line that decodes to the
// same frame, and that line must be the received candidate itself when that was in canonical
// COBS.

import FuzzSupport
import PumpProtocol

runFuzzer { input in
    guard let seed = input.first else { return }
    var stream = Array(input.dropFirst())
    stream.append(0)  // ends the last candidate, so every byte belongs to an outcome
    FrameDecoderProperties.check(stream: stream, seed: seed)
}

enum FrameDecoderProperties {
    static let bytewiseLimit = 512

    static func check(stream: [UInt8], seed: UInt8) {
        let expected = ReferenceDecoder.decode(stream)
        let expectedEvents = expected.map(\.event)

        let whole = decode(stream, chunkSizes: [stream.count])
        compare(whole, expectedEvents, stream: stream, how: "in one read")

        // One byte per read, for the first bytes: reading a long stream so costs more than
        // all other checks together, and every decoder state is reached within a few frames.
        let bytewiseCount = min(stream.count, bytewiseLimit)
        let bytewise = decode(stream, chunkSizes: [Int](repeating: 1, count: bytewiseCount) + [stream.count - bytewiseCount])
        compare(bytewise, expectedEvents, stream: stream, how: "one byte per read for \(bytewiseCount) bytes")

        var generator = SplitGenerator(seed: UInt64(seed))
        let sizes = generator.chunkSizes(covering: stream.count)
        let chunked = decode(stream, chunkSizes: sizes)
        compare(chunked, expectedEvents, stream: stream, how: "in reads of \(sizes)")

        for outcome in expected {
            if case .frame(let frame) = outcome.event {
                checkReencoding(frame, candidate: outcome.candidate, endsWithFullBlock: outcome.endsWithFullBlock)
            }
        }
    }

    struct Decoded {
        var events: [FrameDecoder.Event]
        var statistics: FrameDecoder.Statistics
    }

    static func decode(_ stream: [UInt8], chunkSizes: [Int]) -> Decoded {
        var decoder = FrameDecoder()
        var events: [FrameDecoder.Event] = []
        stream.withUnsafeBytes { raw in
            var start = 0
            for size in chunkSizes {
                decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<start + size])) { events.append($0) }
                start += size
            }
        }
        return Decoded(events: events, statistics: decoder.statistics)
    }

    static func compare(_ decoded: Decoded, _ expected: [FrameDecoder.Event], stream: [UInt8], how: @autoclosure () -> String) {
        guard decoded.events == expected else {
            violated("decoding \(hex(stream)) \(how()) gave \(decoded.events), the reference \(expected)")
        }
        var frames = 0
        var discarded = 0
        var checkFailures = 0
        for event in expected {
            switch event {
            case .frame: frames += 1
            case .discarded(let error):
                discarded += 1
                if case .checkFailed = error { checkFailures += 1 }
            }
        }
        let statistics = decoded.statistics
        require(
            statistics.bytes == stream.count && statistics.frames == frames && statistics.discarded == discarded
                && statistics.checkFailures == checkFailures,
            "statistics \(statistics) after \(hex(stream)) \(how()); expected \(stream.count) bytes, \(frames) frames, \(discarded) discarded, \(checkFailures) check failures")
    }

    /// The frame built again from its fields decodes to itself; authenticated frames are tagged
    /// anew with a test key (the received tag cannot be reproduced without the sender's key).
    static func checkReencoding(_ frame: Frame, candidate: [UInt8], endsWithFullBlock: Bool) {
        var encoder = FrameEncoder()
        var line: [UInt8] = []
        let authenticator = frame.header.isAuthenticated ? testAuthenticator : nil
        do {
            try encoder.encode(
                messageType: frame.header.messageType, response: frame.header.isResponse,
                requestID: frame.header.requestID, payload: frame.payload,
                authenticator: authenticator, into: &line)
        } catch {
            violated("a decoded frame does not encode again: \(error), frame \(frame)")
        }
        var decoder = FrameDecoder()
        let events = decoder.decode(line)
        guard events.count == 1, case .frame(let again) = events[0] else {
            violated("the line \(hex(line)) re-encoding \(frame) decodes to \(events)")
        }
        require(again.header == frame.header && again.packet == frame.packet,
                "re-encoded frame \(again) differs from \(frame)")
        if let authenticator {
            require(authenticator.isAuthentic(again), "re-encoded frame \(again) does not verify under its key")
        } else {
            require(again.tag == nil, "re-encoded frame \(again) has a tag")
            // Canonical COBS: the encoder gives back the candidate, except that it ends a final
            // full block with an empty one (the short form is accepted on input, SPEC §3.2).
            let canonical = endsWithFullBlock ? candidate + [0x01] : candidate
            require(line == [0] + canonical + [0], "frame \(frame) re-encodes to \(hex(line)), received as 00\(hex(candidate))00")
        }
        _ = try? frame.message()
    }

    static let testAuthenticator: FrameAuthenticator = {
        // A fixed key: the tag only has to verify, not to match the received one.
        guard let key = try? PairingKey(bytes: [UInt8](repeating: 0x5A, count: 32)) else {
            violated("a 32-byte pairing key is refused")
        }
        return FrameAuthenticator(key: key, hostNonce: [1, 2, 3, 4, 5, 6, 7, 8], pumpNonce: [9, 10, 11, 12, 13, 14, 15, 16])
    }()
}

/// SPEC §3 read literally: cut at every zero, COBS-decode each candidate on its own, then check
/// size, COBS, minimum length, CRC, version, flags and length in that order.
enum ReferenceDecoder {
    struct Outcome {
        var event: FrameDecoder.Event
        /// The bytes between the delimiters.
        var candidate: [UInt8]
        /// The last COBS block was a full one (code 0xFF) with no empty block after it.
        var endsWithFullBlock: Bool
    }

    static let maxPacketLength = 9 + 1024 + 16 + 4

    static func decode(_ stream: [UInt8]) -> [Outcome] {
        var outcomes: [Outcome] = []
        var candidate: [UInt8] = []
        for byte in stream {
            if byte != 0 {
                candidate.append(byte)
                continue
            }
            if !candidate.isEmpty {
                outcomes.append(outcome(of: candidate))
            }
            candidate.removeAll()
        }
        return outcomes  // bytes after the last delimiter belong to no outcome yet
    }

    static func outcome(of candidate: [UInt8]) -> Outcome {
        var packet: [UInt8] = []
        var index = 0
        var cut = false
        var lastCode: UInt8 = 0
        while index < candidate.count {
            let code = candidate[index]
            lastCode = code
            index += 1
            let wanted = Int(code) - 1
            let available = min(wanted, candidate.count - index)
            packet += candidate[index..<index + available]
            index += available
            if available < wanted {
                cut = true
                break
            }
            // A block shorter than 254 data bytes stood for a zero, unless it is the last.
            if code != 0xFF && index < candidate.count {
                packet.append(0)
            }
        }
        let fullBlockLast = !cut && lastCode == 0xFF
        func discarded(_ error: FrameError) -> Outcome {
            Outcome(event: .discarded(error), candidate: candidate, endsWithFullBlock: fullBlockLast)
        }
        if packet.count > maxPacketLength { return discarded(.oversize) }
        if cut { return discarded(.truncated(length: packet.count)) }
        if packet.count < 13 { return discarded(.tooShort(length: packet.count)) }
        let checked = packet.count - 4
        let computed = bitwiseCRC32C(packet[..<checked])
        let received: UInt32 = littleEndian(packet[checked...])
        if computed != received { return discarded(.checkFailed(received: received, computed: computed)) }
        let version = packet[0]
        if version != 1 && version != 2 { return discarded(.unsupportedVersion(version)) }
        let defined: UInt8 = version == 1 ? 0x03 : 0x07
        if packet[1] & ~defined != 0 || packet[1] & 0x06 == 0x06 { return discarded(.reservedFlags(packet[1])) }
        let tagged = packet[1] & 0x06 != 0
        let sealed = packet[1] & 0x04 != 0
        let payloadLength = Int(littleEndian(packet[7..<9]) as UInt16)
        let tagLength = tagged ? 16 : 0
        if payloadLength > 1024 || 9 + payloadLength + tagLength + 4 != packet.count || (sealed && payloadLength < 8) {
            return discarded(.lengthMismatch(declared: payloadLength, packetLength: packet.count))
        }
        let header = FrameHeader(
            version: version, flags: FrameFlags(rawValue: packet[1]), messageType: packet[2],
            requestID: littleEndian(packet[3..<7]), payloadLength: payloadLength)
        let body = 9 + payloadLength
        let tag = tagged ? packet[body..<body + 16].withUnsafeBytes { AuthenticationTag($0) } : nil
        let frame = Frame(header: header, packet: packet[..<body], tag: tag)
        return Outcome(event: .frame(frame), candidate: candidate, endsWithFullBlock: fullBlockLast)
    }

    static func littleEndian<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>) -> T {
        var value: T = 0
        for (shift, byte) in bytes.enumerated() {
            value |= T(byte) << (8 * shift)
        }
        return value
    }

    /// CRC-32C one bit at a time: reflected 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
    static func bitwiseCRC32C(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
        }
        return ~crc
    }
}
