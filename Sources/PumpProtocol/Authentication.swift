import Crypto

/// The secret a pump and its programmer share after pairing: 32 random bytes (SPEC §8).
public struct PairingKey: Sendable {
    public let symmetricKey: SymmetricKey

    public init(bytes: [UInt8]) throws(PairingKeyError) {
        guard bytes.count == 32 else { throw .wrongLength(bytes.count) }
        symmetricKey = SymmetricKey(data: bytes)
    }

    /// A key from 64 hexadecimal digits (surrounding whitespace ignored), as stored in key files.
    public init(hex: String) throws(PairingKeyError) {
        let digits = hex.filter { !$0.isWhitespace }
        guard let bytes = [UInt8](hexadecimal: digits) else { throw .notHexadecimal }
        try self.init(bytes: bytes)
    }

    public static func generate() -> PairingKey {
        PairingKey(symmetricKey: SymmetricKey(size: .bits256))
    }

    private init(symmetricKey: SymmetricKey) {
        self.symmetricKey = symmetricKey
    }

    public var hexadecimal: String {
        symmetricKey.withUnsafeBytes { $0.hexadecimal }
    }
}

public enum PairingKeyError: Error, Hashable, Sendable {
    case wrongLength(Int)
    case notHexadecimal
}

/// Computes and checks frame tags (SPEC §8.2):
/// tag = first 16 bytes of HMAC-SHA256(key, prefix || packet), where packet is the frame's header
/// and payload. In version 1 the prefix is "PumpLink/1" || hostNonce || pumpNonce of the
/// session's Hello; a version 2 Hello answer uses "PumpLink/2 hello" || the Hello request's
/// payload (SPEC §8.3), so the tag covers the whole handshake.
public struct FrameAuthenticator: Sendable {
    public static let domain: [UInt8] = Array("PumpLink/1".utf8)
    public static let helloDomain: [UInt8] = Array("PumpLink/2 hello".utf8)
    public let key: PairingKey
    /// What the HMAC covers before the packet.
    public let prefix: [UInt8]

    /// A version 1 session's authenticator; the nonces are the 8-byte fields of the Hello exchange.
    public init(key: PairingKey, hostNonce: [UInt8], pumpNonce: [UInt8]) {
        self.key = key
        self.prefix = Self.domain + hostNonce + pumpNonce
    }

    /// The authenticator of a version 2 Hello answer to a Hello request with this payload.
    public init(key: PairingKey, helloRequestPayload: some Collection<UInt8>) {
        self.key = key
        self.prefix = Self.helloDomain + helloRequestPayload
    }

    public func tag(forPacket packet: UnsafeRawBufferPointer) -> AuthenticationTag {
        var hmac = HMAC<SHA256>(key: key.symmetricKey)
        hmac.update(data: prefix)
        hmac.update(data: packet)
        let code = hmac.finalize()
        return code.withUnsafeBytes { AuthenticationTag($0) }
    }

    /// Whether the frame carries a tag and it is right for this key and session.
    public func isAuthentic(_ frame: Frame) -> Bool {
        guard frame.header.isAuthenticated, let received = frame.tag else { return false }
        let expected = frame.packet.withUnsafeBytes { tag(forPacket: $0) }
        return expected.constantTimeEquals(received)
    }
}

extension Array where Element == UInt8 {
    /// Bytes from an even number of hexadecimal digits; nil if there is anything else.
    public init?(hexadecimal text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }

    public var hexadecimal: String {
        withUnsafeBytes { $0.hexadecimal }
    }
}

extension UnsafeRawBufferPointer {
    var hexadecimal: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

private func hexValue(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Identifies a request's content for the pump's request record (SPEC §7.4): the first 16
/// bytes of SHA-256 over the message type byte followed by the payload.
public func requestDigest(messageType: UInt8, payload: ArraySlice<UInt8>) -> [UInt8] {
    var hash = SHA256()
    hash.update(data: [messageType])
    payload.withUnsafeBytes { hash.update(bufferPointer: $0) }
    return Array(hash.finalize().prefix(16))
}
