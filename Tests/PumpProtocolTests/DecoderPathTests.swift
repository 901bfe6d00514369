import PumpProtocol
import Testing

/// The decoder takes a candidate that is wholly in one read in one go, and one split across
/// reads byte by byte: both paths must give exactly the same events, for any bytes.
@Suite("Decoder paths")
struct DecoderPathTests {
    /// Random streams of candidates built to reach every branch: runs long enough for full
    /// (0xFF) blocks, code bytes that overrun the delimiter, candidates over the largest
    /// packet, back-to-back delimiters, and real frames with their delimiters.
    @Test("whole reads and byte-by-byte reads give the same events")
    func wholeAndByteByByteAgree() throws {
        var rng = SplitMix64(seed: 0xC0B5)
        var encoder = FrameEncoder()
        var streams = 0
        var frames = 0
        var discarded = 0
        var oversize = 0
        var truncated = 0
        for _ in 0..<3_000 {
            var stream: [UInt8] = [0]
            for _ in 0..<Int(rng.next() % 6) + 1 {
                switch rng.next() % 4 {
                case 0:
                    stream += try lineForm(RandomMessages.message(using: &rng), requestID: UInt32(truncatingIfNeeded: rng.next()), encoder: &encoder)
                case 1:
                    // Non-zero bytes only: full blocks, truncations, oversize candidates.
                    let length = Int(rng.next() % 1_400)
                    stream += (0..<length).map { _ in UInt8(rng.next() % 255) + 1 } + [0]
                case 2:
                    stream += RandomWire.bytes(count: Int(rng.next() % 300), using: &rng) + [0]
                default:
                    stream += [0, 0]
                }
            }
            let whole = decodeEvents(stream, splits: [])
            let byteByByte = decodeByteByByte(stream)
            #expect(whole == byteByByte, "stream \(streams) of \(stream.count) bytes")
            streams += 1
            for event in whole {
                switch event {
                case .frame: frames += 1
                case .discarded(.oversize): oversize += 1
                case .discarded(.truncated): truncated += 1
                case .discarded: discarded += 1
                }
            }
        }
        // Both kinds of outcome were reached in quantity.
        #expect(frames > 2_000)
        #expect(discarded > 10)  // too short, failed checks, bad headers
        #expect(oversize > 100)
        #expect(truncated > 1_000)
    }
}
