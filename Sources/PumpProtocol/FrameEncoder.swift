/// Builds frames: header, payload, optional tag, CRC-32C, then COBS between delimiters (SPEC §3).
///
/// Keeps one packet buffer between calls, so encoding into a reused output allocates nothing.
public struct FrameEncoder: Sendable {
    private var packet: [UInt8]

    public init() {
        packet = []
        packet.reserveCapacity(FrameLayout.maxPacketLength)
    }

    /// The packet of the last frame encoded (header, payload, tag, check), before COBS: a
    /// version 2 Hello answer's packet and tag go into the session keys (SPEC §8.3).
    public var lastPacket: [UInt8] { packet }

    /// Appends the line form of a message to `output`. Requests set `requestID`; a response
    /// echoes its request's; unsolicited pump frames use 0. `version` is the header's (SPEC §3.1).
    public mutating func encode<Payload: MessagePayload>(
        _ payload: Payload,
        requestID: UInt32,
        version: UInt8 = FrameLayout.version,
        authenticator: FrameAuthenticator? = nil,
        into output: inout [UInt8]
    ) throws(WireError) {
        try payload.validate()
        beginPacket(version: version, messageType: Payload.messageType.rawValue, requestID: requestID)
        appendPayload(payload)
        try finishPacket(response: Payload.isResponse, authenticator: authenticator, into: &output)
    }

    /// The line form of a message, as a new array.
    public mutating func encode<Payload: MessagePayload>(
        _ payload: Payload,
        requestID: UInt32,
        version: UInt8 = FrameLayout.version,
        authenticator: FrameAuthenticator? = nil
    ) throws(WireError) -> [UInt8] {
        var output: [UInt8] = []
        try encode(payload, requestID: requestID, version: version, authenticator: authenticator, into: &output)
        return output
    }

    /// Appends a frame with raw payload bytes: for replaying captures and building test input.
    public mutating func encode(
        messageType: UInt8,
        response: Bool,
        requestID: UInt32,
        payload: some Collection<UInt8>,
        version: UInt8 = FrameLayout.version,
        authenticator: FrameAuthenticator? = nil,
        into output: inout [UInt8]
    ) throws(WireError) {
        beginPacket(version: version, messageType: messageType, requestID: requestID)
        packet.append(contentsOf: payload)
        try finishPacket(response: response, authenticator: authenticator, into: &output)
    }

    /// Appends a sealed version 2 frame of a message (SPEC §8.4), advancing `channel`'s counter.
    public mutating func encode<Payload: MessagePayload>(
        _ payload: Payload,
        requestID: UInt32,
        sealingWith channel: inout SecureChannel,
        into output: inout [UInt8]
    ) throws(WireError) {
        try payload.validate()
        try beginSealedPacket(messageType: Payload.messageType.rawValue, requestID: requestID, channel: &channel)
        appendPayload(payload)
        try finishSealedPacket(response: Payload.isResponse, channel: channel, into: &output)
    }

    /// Appends a sealed version 2 frame with raw payload bytes, advancing `channel`'s counter.
    public mutating func encode(
        messageType: UInt8,
        response: Bool,
        requestID: UInt32,
        payload: some Collection<UInt8>,
        sealingWith channel: inout SecureChannel,
        into output: inout [UInt8]
    ) throws(WireError) {
        try beginSealedPacket(messageType: messageType, requestID: requestID, channel: &channel)
        packet.append(contentsOf: payload)
        try finishSealedPacket(response: response, channel: channel, into: &output)
    }

    private mutating func appendPayload(_ payload: some MessagePayload) {
        var writer = WireWriter(reservingCapacity: 0)
        swap(&writer.bytes, &packet)
        payload.encode(into: &writer)
        swap(&writer.bytes, &packet)
    }

    private mutating func beginPacket(version: UInt8, messageType: UInt8, requestID: UInt32) {
        packet.removeAll(keepingCapacity: true)
        packet.append(version)
        packet.append(0)  // flags, set when finishing
        packet.append(messageType)
        withUnsafeBytes(of: requestID.littleEndian) { packet.append(contentsOf: $0) }
        packet.append(contentsOf: [0, 0])  // payload length, set when finishing
    }

    private mutating func beginSealedPacket(messageType: UInt8, requestID: UInt32, channel: inout SecureChannel) throws(WireError) {
        guard let counter = channel.nextSendCounter() else {
            throw .outOfRange(field: "counter", value: Int64.max)
        }
        beginPacket(version: SecureChannel.version, messageType: messageType, requestID: requestID)
        withUnsafeBytes(of: counter.littleEndian) { packet.append(contentsOf: $0) }
    }

    private mutating func finishPacket(
        response: Bool,
        authenticator: FrameAuthenticator?,
        into output: inout [UInt8]
    ) throws(WireError) {
        var flags: FrameFlags = response ? .response : []
        if authenticator != nil { flags.insert(.authenticated) }
        try setFlagsAndLength(flags)
        if let authenticator {
            let tag = packet.withUnsafeBytes { authenticator.tag(forPacket: $0) }
            withUnsafeBytes(of: tag.high.bigEndian) { packet.append(contentsOf: $0) }
            withUnsafeBytes(of: tag.low.bigEndian) { packet.append(contentsOf: $0) }
        }
        appendCheckAndLine(into: &output)
    }

    private mutating func finishSealedPacket(
        response: Bool,
        channel: SecureChannel,
        into output: inout [UInt8]
    ) throws(WireError) {
        let plaintextLength = packet.count - FrameLayout.headerLength - FrameLayout.counterLength
        guard plaintextLength <= FrameLayout.maxSealedPlaintextLength else {
            throw .tooLong(field: "payload", count: plaintextLength, max: FrameLayout.maxSealedPlaintextLength)
        }
        try setFlagsAndLength(response ? [.response, .sealed] : .sealed)
        channel.seal(&packet)
        appendCheckAndLine(into: &output)
    }

    private mutating func setFlagsAndLength(_ flags: FrameFlags) throws(WireError) {
        let payloadLength = packet.count - FrameLayout.headerLength
        guard payloadLength <= FrameLayout.maxPayloadLength else {
            throw .tooLong(field: "payload", count: payloadLength, max: FrameLayout.maxPayloadLength)
        }
        packet[1] = flags.rawValue
        packet[7] = UInt8(truncatingIfNeeded: payloadLength)
        packet[8] = UInt8(truncatingIfNeeded: payloadLength >> 8)
    }

    private mutating func appendCheckAndLine(into output: inout [UInt8]) {
        let check = packet.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: check.littleEndian) { packet.append(contentsOf: $0) }
        output.append(0)
        COBS.encode(packet, into: &output)
        output.append(0)
    }
}

/// Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999): removes every zero byte so
/// that zero can delimit frames, at a cost of one byte per 254.
public enum COBS {
    public static func encode(_ data: [UInt8], into output: inout [UInt8]) {
        var codeIndex = output.count
        output.append(0)
        var code: UInt8 = 1
        for byte in data {
            if byte == 0 {
                output[codeIndex] = code
                codeIndex = output.count
                output.append(0)
                code = 1
            } else {
                output.append(byte)
                code += 1
                if code == 0xFF {
                    output[codeIndex] = code
                    codeIndex = output.count
                    output.append(0)
                    code = 1
                }
            }
        }
        output[codeIndex] = code
    }
}
