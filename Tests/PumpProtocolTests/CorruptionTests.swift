import PumpProtocol
import Testing

/// No corrupted frame is ever accepted, and the decoder is back in step at the next intact
/// frame (SPEC §3: integrity and self-synchronising framing).
@Suite("Corruption")
struct CorruptionTests {
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case flipBits
        case replaceBytes
        case dropBytes
        case insertBytes

        var testDescription: String { rawValue }
    }

    static let framesPerDamage = 2_500

    @Test("a damaged frame is never accepted and the next frame is decoded", arguments: Damage.allCases)
    func damagedFrames(damage: Damage) throws {
        var rng = SplitMix64(seed: 0xBAD_F00D + UInt64(Damage.allCases.firstIndex(of: damage) ?? 0))
        let authenticator = FrameAuthenticator(
            key: try PairingKey(bytes: RandomWire.bytes(count: 32, using: &rng)),
            hostNonce: RandomWire.bytes(count: 8, using: &rng),
            pumpNonce: RandomWire.bytes(count: 8, using: &rng)
        )
        var encoder = FrameEncoder()
        var tried = 0
        var unchanged = 0
        var discarded = 0

        func randomLine(requestID: UInt32, rng: inout SplitMix64) throws -> [UInt8] {
            let message = RandomMessages.message(using: &rng)
            let authenticated = rng.next() % 2 == 0
            return try lineForm(message, requestID: requestID, authenticator: authenticated ? authenticator : nil, encoder: &encoder)
        }

        for index in 0..<Self.framesPerDamage {
            let original = try randomLine(requestID: UInt32(index), rng: &rng)
            let next = try randomLine(requestID: 0xFFFF_0000 + UInt32(index), rng: &rng)
            let originalFrame = try #require(decodeWhole(original).first?.frame)
            let nextFrame = try #require(decodeWhole(next).first?.frame)

            let damaged = Self.damage(original, damage, using: &rng)
            if damaged == original { unchanged += 1 }
            tried += 1

            let events = rng.next() % 4 == 0
                ? decodeByteByByte(damaged + next)
                : decodeEvents(damaged + next, splits: randomSplits(count: damaged.count + next.count, maxRead: 64, using: &rng))
            let frames = events.compactMap(\.frame)
            discarded += events.count - frames.count
            for frame in frames where frame != originalFrame && frame != nextFrame {
                Issue.record("\(damage) accepted a corrupted frame: \(frame) from \(damaged.hexadecimal)")
            }
            #expect(frames.last == nextFrame, "\(damage): no resync after \(damaged.hexadecimal)")
        }
        #expect(tried == Self.framesPerDamage)
        // The figures, for the record: damaged frames tried, left unchanged by chance, candidates discarded.
        print("corruption \(damage): \(tried) tried, \(unchanged) unchanged, \(discarded) candidates discarded")
    }

    /// A few random changes anywhere in the line form, delimiters included.
    static func damage(_ line: [UInt8], _ damage: Damage, using rng: inout SplitMix64) -> [UInt8] {
        var bytes = line
        let changes = Int.random(in: 1...3, using: &rng)
        for _ in 0..<changes {
            switch damage {
            case .flipBits:
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case .replaceBytes:
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[index] = UInt8.random(in: 0...255, using: &rng)
            case .dropBytes:
                guard bytes.count > 1 else { break }
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
            case .insertBytes:
                // Zeros one time in four: a delimiter in the middle of a frame.
                let byte = rng.next() % 4 == 0 ? 0 : UInt8.random(in: 0...255, using: &rng)
                bytes.insert(byte, at: Int.random(in: 0...bytes.count, using: &rng))
            }
        }
        return bytes
    }

    @Test("every single-bit error in a frame is detected")
    func everySingleBitError() throws {
        var rng = SplitMix64(seed: 0x1B17)
        var encoder = FrameEncoder()
        var tried = 0
        for _ in 0..<6 {
            let line = try lineForm(RandomMessages.message(using: &rng), requestID: 7, encoder: &encoder)
            let original = try #require(decodeWhole(line).first?.frame)
            for index in 1..<line.count - 1 {
                for bit in 0..<8 {
                    var damaged = line
                    damaged[index] ^= 1 << UInt8(bit)
                    tried += 1
                    for frame in decodeWhole(damaged).compactMap(\.frame) where frame != original {
                        Issue.record("bit \(bit) of byte \(index) flipped and accepted")
                    }
                }
            }
        }
        #expect(tried > 1_000)
        print("corruption single bits: \(tried) tried")
    }
}
