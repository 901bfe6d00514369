import PumpCapture
import Testing

@Suite("line candidates")
struct CandidateSplitterTests {
    /// A stream of candidates of 0 to `maxLength` non-zero bytes between runs of 1 to 3 zeros,
    /// starting and ending anywhere.
    static func stream(seed: UInt64, candidates: Int, maxLength: Int) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        for _ in 0..<candidates {
            bytes += randomBytes(Int.random(in: 0...maxLength, using: &rng), nonZero: true, using: &rng)
            bytes += [UInt8](repeating: 0, count: Int.random(in: 1...3, using: &rng))
        }
        bytes += randomBytes(Int.random(in: 0...maxLength, using: &rng), nonZero: true, using: &rng)  // unfinished
        return bytes
    }

    static func split(_ chunks: [[UInt8]], splitter: CandidateSplitter = CandidateSplitter()) -> [RecordedCandidate] {
        var splitter = splitter
        return chunks.flatMap { splitter.split($0) }
    }

    @Test("the whole stream at once gives the candidates between delimiters")
    func whole() {
        let bytes = Self.stream(seed: 1, candidates: 200, maxLength: 60)
        let candidates = Self.split([bytes])
        #expect(candidates == referenceCandidates(bytes))
        #expect(candidates.count > 150)
        #expect(candidates.allSatisfy { !$0.bytes.isEmpty && !$0.bytes.contains(0) })
    }

    @Test("any chunking gives the same candidates", arguments: [1, 2, 3, 7, 64, 500] as [Int])
    func randomSplits(maxChunk: Int) {
        var rng = SeededGenerator(seed: UInt64(maxChunk))
        for round in 0..<20 {
            let bytes = Self.stream(seed: UInt64(round), candidates: 30, maxLength: 80)
            let expected = Self.split([bytes])
            #expect(Self.split(randomChunks(bytes, maxChunk: maxChunk, using: &rng)) == expected, "round \(round)")
        }
    }

    @Test("byte by byte gives the same candidates, and the unfinished one is counted")
    func byteByByte() {
        let bytes = Self.stream(seed: 9, candidates: 50, maxLength: 40)
        var splitter = CandidateSplitter()
        var candidates: [RecordedCandidate] = []
        for byte in bytes { candidates += splitter.split([byte]) }
        #expect(candidates == Self.split([bytes]))
        let tail = bytes.count - 1 - (bytes.lastIndex(of: 0) ?? -1)
        #expect(splitter.unfinishedLength == tail)
    }

    @Test(
        "a candidate over 2048 bytes keeps its first 2048 and its full length",
        arguments: [1, 100, 700, 2048, 2049, 10_000] as [Int])
    func oversize(chunk: Int) {
        var rng = SeededGenerator(seed: 5)
        let long = randomBytes(5000, nonZero: true, using: &rng)
        let short = randomBytes(10, nonZero: true, using: &rng)
        let bytes = [0] + long + [0] + short + [0] + long + [0]
        var chunks: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            chunks.append(Array(bytes[index..<min(bytes.count, index + chunk)]))
            index += chunk
        }
        let expected = [
            RecordedCandidate(bytes: Array(long.prefix(2048)), originalLength: 5000),
            RecordedCandidate(bytes: short, originalLength: 10),
            RecordedCandidate(bytes: Array(long.prefix(2048)), originalLength: 5000),
        ]
        #expect(Self.split(chunks) == expected)
    }

    @Test("exactly the limit is not cut")
    func atTheLimit() {
        let bytes = [UInt8](repeating: 7, count: 2048) + [0]
        #expect(Self.split([bytes]) == [RecordedCandidate(bytes: Array(bytes.dropLast()), originalLength: 2048)])
        #expect(Self.split([Array(bytes[..<1000]), Array(bytes[1000...])]) == [RecordedCandidate(bytes: Array(bytes.dropLast()), originalLength: 2048)])
    }

    @Test("joining mid-stream drops everything up to the first delimiter")
    func joinedMidStream() {
        let splitter = CandidateSplitter(joinedMidStream: true)
        #expect(Self.split([[1, 2, 3, 0, 4, 5, 0]], splitter: splitter) == [RecordedCandidate(bytes: [4, 5], originalLength: 2)])
        #expect(Self.split([[1, 2], [3], [0, 4, 5, 0]], splitter: splitter) == [RecordedCandidate(bytes: [4, 5], originalLength: 2)])
        #expect(Self.split([[0, 4, 5, 0]], splitter: splitter) == [RecordedCandidate(bytes: [4, 5], originalLength: 2)])
        var reset = CandidateSplitter()
        _ = reset.split([9, 9])
        reset.reset(joinedMidStream: true)
        #expect(reset.unfinishedLength == 0)
        #expect(reset.split([9, 0, 6, 0]) == [RecordedCandidate(bytes: [6], originalLength: 1)])
    }

    @Test("delimiters only, and nothing, give nothing")
    func empty() {
        #expect(Self.split([[0, 0, 0], [], [0]]).isEmpty)
        #expect(Self.split([[]]).isEmpty)
    }
}
