/// Frame layout and limits (SPEC §3).
///
/// A packet, before COBS encoding:
///
///     offset  size  field
///     0       1     version          protocol version, 1 or 2
///     1       1     flags            bit 0 response, bit 1 authenticated, bit 2 sealed (version 2)
///     2       1     messageType
///     3       4     requestId        u32 LE; 0 on unsolicited pump frames
///     7       2     payloadLength    u16 LE, at most 1024
///     9       n     payload          sealed: counter (u64 LE) then the ciphertext
///     9+n     16    tag              authenticated: HMAC-SHA256, first 16 bytes; sealed: Poly1305
///     end-4   4     check            CRC-32C over every byte before it, u32 LE
///
/// On the line: 0x00, COBS(packet), 0x00.
public enum FrameLayout {
    /// The version of frames that open a session: a Hello request is always version 1, so that
    /// a pump of any version reads it (SPEC §5.2).
    public static let version: UInt8 = 1
    /// The frame versions a decoder accepts.
    public static let versions: ClosedRange<UInt8> = 1...2
    public static let headerLength = 9
    public static let tagLength = 16
    public static let checkLength = 4
    /// A sealed payload starts with the sender's frame counter (SPEC §8.4).
    public static let counterLength = 8
    public static let maxPayloadLength = 1024
    /// The largest plaintext a sealed frame carries: the payload limit less the counter.
    public static let maxSealedPlaintextLength = maxPayloadLength - counterLength
    public static let minPacketLength = headerLength + checkLength
    public static let maxPacketLength = headerLength + maxPayloadLength + tagLength + checkLength
    /// COBS adds one code byte per 254 bytes, plus the first.
    public static let maxEncodedLength = maxPacketLength + maxPacketLength / 254 + 1
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Sent by the pump.
    public static let response = FrameFlags(rawValue: 1 << 0)
    /// Carries an authentication tag.
    public static let authenticated = FrameFlags(rawValue: 1 << 1)
    /// The payload is sealed (version 2 only): a counter, ciphertext, and an AEAD tag.
    public static let sealed = FrameFlags(rawValue: 1 << 2)
    /// The flags a frame of `version` may carry.
    public static func defined(version: UInt8) -> FrameFlags {
        version >= 2 ? [.response, .authenticated, .sealed] : [.response, .authenticated]
    }
}

public struct FrameHeader: Sendable, Hashable {
    /// The header's version byte: 1, or 2 in a version 2 session (SPEC §3.1).
    public var version: UInt8
    public var flags: FrameFlags
    public var messageType: UInt8
    public var requestID: UInt32
    public var payloadLength: Int

    public init(version: UInt8 = FrameLayout.version, flags: FrameFlags, messageType: UInt8, requestID: UInt32, payloadLength: Int) {
        self.version = version
        self.flags = flags
        self.messageType = messageType
        self.requestID = requestID
        self.payloadLength = payloadLength
    }

    public var isResponse: Bool { flags.contains(.response) }
    public var isAuthenticated: Bool { flags.contains(.authenticated) }
    public var isSealed: Bool { flags.contains(.sealed) }
}

/// The 16-byte truncated HMAC-SHA256 tag of an authenticated frame, kept inline (no allocation).
public struct AuthenticationTag: Sendable, Hashable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The first 16 bytes of `bytes`, in order.
    public init(_ bytes: UnsafeRawBufferPointer) {
        high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    public var bytes: [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(16)
        withUnsafeBytes(of: high.bigEndian) { result.append(contentsOf: $0) }
        withUnsafeBytes(of: low.bigEndian) { result.append(contentsOf: $0) }
        return result
    }

    /// Compares in constant time, so a forger learns nothing from how long a rejection takes.
    public func constantTimeEquals(_ other: AuthenticationTag) -> Bool {
        ((high ^ other.high) | (low ^ other.low)) == 0
    }
}

/// One decoded frame whose check passed.
///
/// `packet` shares storage with the decoder's buffer: keeping it beyond the decoder's next
/// call is safe (copy on write) but costs a copy.
public struct Frame: Sendable, Hashable {
    public var header: FrameHeader
    /// Header and payload: the bytes the authentication tag covers.
    public var packet: ArraySlice<UInt8>
    public var tag: AuthenticationTag?

    public init(header: FrameHeader, packet: ArraySlice<UInt8>, tag: AuthenticationTag?) {
        self.header = header
        self.packet = packet
        self.tag = tag
    }

    /// The payload as it crossed the line; for a sealed frame, the counter and the ciphertext
    /// (`SecureChannel.open` gives the plaintext).
    public var payload: ArraySlice<UInt8> {
        packet[(packet.startIndex + FrameLayout.headerLength)...]
    }

    /// The sender's frame counter of a sealed frame (the first 8 payload bytes, little-endian).
    public var sealedCounter: UInt64? {
        guard header.isSealed, packet.count >= FrameLayout.headerLength + FrameLayout.counterLength else { return nil }
        return packet.withUnsafeBytes {
            UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: FrameLayout.headerLength, as: UInt64.self))
        }
    }

    /// The message type, if the definitions know it.
    public var messageType: MessageType? { MessageType(rawValue: header.messageType) }

    /// Decodes the payload as the message its type and direction say.
    public func message() throws(FrameMessageError) -> Message {
        if header.isSealed, let counter = sealedCounter { throw .sealed(counter: counter) }
        guard let type = messageType else { throw .unknownMessageType(header.messageType) }
        do {
            return try Message(type: type, isResponse: header.isResponse, payload: payload)
        } catch {
            throw .payload(type: type, error)
        }
    }
}

public enum FrameMessageError: Error, Hashable, Sendable {
    case unknownMessageType(UInt8)
    /// A sealed payload (version 2, SPEC §8.4): only the session's keys open it.
    case sealed(counter: UInt64)
    case payload(type: MessageType, WireError)
}

/// Why bytes between two delimiters were not a frame (SPEC §3.4). The decoder drops them
/// and carries on at the next delimiter.
public enum FrameError: Error, Hashable, Sendable {
    /// The candidate decodes to more than `FrameLayout.maxPacketLength` bytes.
    case oversize
    /// A delimiter came inside a COBS block: the frame was cut short.
    case truncated(length: Int)
    /// Shorter than the smallest packet.
    case tooShort(length: Int)
    /// The CRC-32C does not match: the frame was corrupted.
    case checkFailed(received: UInt32, computed: UInt32)
    case unsupportedVersion(UInt8)
    /// Flags this version does not define, or both authenticated and sealed.
    case reservedFlags(UInt8)
    /// The payload length field disagrees with the packet's length, or a sealed payload is
    /// shorter than its counter.
    case lengthMismatch(declared: Int, packetLength: Int)
}
