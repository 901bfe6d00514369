import Crypto
import Foundation

/// The keys and frame counters of one version 2 session, for one side of the link (SPEC §8).
///
/// Both sides derive the same two keys from the pairing key and the whole Hello exchange: the
/// Hello request's payload, the answer's packet and its tag. A changed byte of the exchange (a
/// stripped capability, another version, another nonce) gives other keys, and nothing opens.
/// Every later frame, both ways, is sealed with ChaCha20-Poly1305 under its direction's key:
/// the header and the frame counter in clear as associated data, the payload encrypted. A
/// frame opens only with a counter above the last one opened, so a replayed, reordered or
/// reinserted frame is refused, while a lost one only leaves a gap.
public struct SecureChannel: Sendable {
    public enum Side: Sendable, Hashable {
        case host
        case pump
    }

    /// Why a frame did not open. The receiver drops it and counts it; it never acts on it.
    public enum OpenError: Error, Sendable, Hashable {
        /// Not a sealed version 2 frame.
        case notSealed
        /// A frame in the wrong direction for this side.
        case wrongDirection
        /// Its counter is not above the last one opened: replayed, reordered or reinserted.
        case replayed(counter: UInt64, last: UInt64)
        /// Its tag does not verify: forged, altered, or sealed under other keys.
        case forged
    }

    /// The header version of every frame of a sealed session.
    public static let version: UInt8 = 2
    public static let hostToPumpLabel: [UInt8] = Array("PumpLink/2 host to pump".utf8)
    public static let pumpToHostLabel: [UInt8] = Array("PumpLink/2 pump to host".utf8)

    public let side: Side
    private let sendKey: SymmetricKey
    private let receiveKey: SymmetricKey
    /// The counter of the last frame sealed (0 before the first; the first is 1).
    public private(set) var sentCounter: UInt64 = 0
    /// The counter of the last frame opened.
    public private(set) var receivedCounter: UInt64 = 0

    /// The channel after a version 2 Hello: `helloAnswerPacket` is the answer's header and
    /// payload as sent, `helloAnswerTag` its tag (SPEC §8.3).
    public init(
        key: PairingKey,
        helloRequestPayload: some Collection<UInt8>,
        helloAnswerPacket: some Collection<UInt8>,
        helloAnswerTag: AuthenticationTag,
        side: Side
    ) {
        var transcript = SHA256()
        transcript.update(data: Array(helloRequestPayload))
        transcript.update(data: Array(helloAnswerPacket))
        transcript.update(data: helloAnswerTag.bytes)
        let salt = Array(transcript.finalize())
        let hostToPump = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key.symmetricKey, salt: salt, info: Self.hostToPumpLabel, outputByteCount: 32)
        let pumpToHost = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key.symmetricKey, salt: salt, info: Self.pumpToHostLabel, outputByteCount: 32)
        self.side = side
        (sendKey, receiveKey) = side == .host ? (hostToPump, pumpToHost) : (pumpToHost, hostToPump)
    }

    /// The two keys, host to pump first: for the conformance vectors.
    public var keysForVectors: (hostToPump: [UInt8], pumpToHost: [UInt8]) {
        let send = sendKey.withUnsafeBytes { Array($0) }
        let receive = receiveKey.withUnsafeBytes { Array($0) }
        return side == .host ? (send, receive) : (receive, send)
    }

    /// The 12-byte AEAD nonce of a frame: four zero bytes, then its counter (u64 LE).
    static func nonce(_ counter: UInt64) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: counter.littleEndian) { bytes.replaceSubrange(4..<12, with: $0) }
        do {
            return try ChaChaPoly.Nonce(data: bytes)
        } catch {
            preconditionFailure("a 12-byte nonce was refused: \(error)")
        }
    }

    /// Takes the next counter to send; nil once the counter space is spent (the session must
    /// be renewed with Hello).
    mutating func nextSendCounter() -> UInt64? {
        guard sentCounter < UInt64.max else { return nil }
        sentCounter += 1
        return sentCounter
    }

    /// Seals `packet` in place: header (flags and length set) and counter stay as associated
    /// data, the plaintext after them becomes ciphertext, and the tag is appended.
    func seal(_ packet: inout [UInt8]) {
        let clearEnd = FrameLayout.headerLength + FrameLayout.counterLength
        let counter = packet.withUnsafeBytes {
            UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: FrameLayout.headerLength, as: UInt64.self))
        }
        let box: ChaChaPoly.SealedBox
        do {
            box = try ChaChaPoly.seal(
                packet[clearEnd...], using: sendKey, nonce: Self.nonce(counter), authenticating: packet[..<clearEnd])
        } catch {
            preconditionFailure("ChaCha20-Poly1305 refused a 32-byte key: \(error)")
        }
        packet.replaceSubrange(clearEnd..., with: box.ciphertext)
        packet.append(contentsOf: box.tag)
    }

    /// The frame opened: its header less the sealed flag, with the plaintext as payload.
    public mutating func open(_ frame: Frame) throws(OpenError) -> Frame {
        guard frame.header.isSealed, frame.header.version == Self.version,
              let counter = frame.sealedCounter, let tag = frame.tag
        else { throw .notSealed }
        guard frame.header.isResponse == (side == .host) else { throw .wrongDirection }
        guard counter > receivedCounter else { throw .replayed(counter: counter, last: receivedCounter) }
        let packet = frame.packet
        let clearEnd = packet.startIndex + FrameLayout.headerLength + FrameLayout.counterLength
        let plaintext: Data
        do {
            let box = try ChaChaPoly.SealedBox(nonce: Self.nonce(counter), ciphertext: packet[clearEnd...], tag: tag.bytes)
            plaintext = try ChaChaPoly.open(box, using: receiveKey, authenticating: packet[..<clearEnd])
        } catch {
            throw .forged
        }
        receivedCounter = counter
        var header = frame.header
        header.flags.remove(.sealed)
        header.payloadLength = plaintext.count
        var opened = [UInt8](packet[..<(packet.startIndex + FrameLayout.headerLength)])
        opened[1] = header.flags.rawValue
        opened[7] = UInt8(truncatingIfNeeded: plaintext.count)
        opened[8] = UInt8(truncatingIfNeeded: plaintext.count >> 8)
        opened.append(contentsOf: plaintext)
        return Frame(header: header, packet: opened[...], tag: nil)
    }
}
