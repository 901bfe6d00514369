import PumpCapture
import PumpProtocol
import SerialTransport
import Testing

@Suite("recording link")
struct CapturingLinkTests {
    /// Frames, garbage and an oversize candidate, as one direction of a line.
    static func traffic(seed: UInt64, response: Bool) throws -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        for line in try pingLines(count: 20, response: response, using: &rng) {
            bytes += line
            if Int.random(in: 0..<5, using: &rng) == 0 {
                bytes += randomBytes(Int.random(in: 1...30, using: &rng), nonZero: true, using: &rng) + [0]
            }
        }
        bytes += randomBytes(3000, nonZero: true, using: &rng) + [0, 0]
        bytes += try pingLines(count: 3, firstID: 100, response: response, using: &rng).joined()
        return bytes
    }

    /// Reads `count` bytes from `incoming`, keeping the chunks as they came.
    static func read(_ count: Int, from iterator: inout AsyncThrowingStream<[UInt8], any Error>.AsyncIterator) async throws -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var total = 0
        while total < count {
            guard let chunk = try await iterator.next() else { break }
            chunks.append(chunk)
            total += chunk.count
        }
        return chunks
    }

    @Test("passes bytes through unchanged and records each direction's candidates", arguments: [1, 5, 64] as [Int])
    func recordsBothDirections(maxChunk: Int) async throws {
        var rng = SeededGenerator(seed: UInt64(maxChunk))
        let (near, far) = MemoryPipe.makePair()
        let sink = MemorySink()
        let link = CapturingLink(wrapping: near, tap: CaptureTap(recordingTo: sink, interface: CaptureInterfaceID(rawValue: 3)))
        defer {
            link.close()
            far.close()
        }

        let outbound = try Self.traffic(seed: 1, response: false)
        for chunk in randomChunks(outbound, maxChunk: maxChunk, using: &rng) { try await link.send(chunk) }
        var farIterator = far.incoming.makeAsyncIterator()
        #expect(try await Self.read(outbound.count, from: &farIterator).joined().elementsEqual(outbound))

        let inbound = try Self.traffic(seed: 2, response: true)
        let inboundChunks = randomChunks(inbound, maxChunk: maxChunk, using: &rng)
        for chunk in inboundChunks { try await far.send(chunk) }
        var nearIterator = link.incoming.makeAsyncIterator()
        #expect(try await Self.read(inbound.count, from: &nearIterator) == inboundChunks)

        #expect(sink.candidates(.outbound) == referenceCandidates(outbound))
        #expect(sink.candidates(.inbound) == referenceCandidates(inbound))
        #expect(sink.candidates(.outbound).count >= 24)  // 23 frames, the oversize one, garbage
        #expect(sink.candidates(.inbound).contains { $0.originalLength == 3000 && $0.bytes.count == 2048 })
        #expect(sink.entries.allSatisfy { $0.interface.rawValue == 3 })
    }

    @Test("records nothing while off; a start mid-frame skips that frame; stop stops")
    func switchedAtRunTime() async throws {
        var rng = SeededGenerator(seed: 3)
        let (near, far) = MemoryPipe.makePair()
        let sink = MemorySink()
        let tap = CaptureTap()
        let link = CapturingLink(wrapping: near, tap: tap)
        defer {
            link.close()
            far.close()
        }
        var farIterator = far.incoming.makeAsyncIterator()
        var nearIterator = link.incoming.makeAsyncIterator()
        let requests = try pingLines(count: 4, using: &rng)
        let responses = try pingLines(count: 4, response: true, using: &rng)

        // Off: everything passes, nothing is recorded.
        try await link.send(requests[0])
        try await far.send(responses[0])
        #expect(try await Self.read(requests[0].count, from: &farIterator).joined().elementsEqual(requests[0]))
        #expect(try await Self.read(responses[0].count, from: &nearIterator).joined().elementsEqual(responses[0]))
        #expect(!tap.isRecording)
        #expect(sink.entries.isEmpty)

        // Half of a frame each way, then the tap starts: those frames are not recorded.
        let half = requests[1].count / 2
        try await link.send(Array(requests[1][..<half]))
        try await far.send(Array(responses[1][..<half]))
        _ = try await Self.read(half, from: &nearIterator)
        tap.start(recordingTo: sink, interface: CaptureInterfaceID(rawValue: 1))
        #expect(tap.isRecording)
        try await link.send(Array(requests[1][half...]) + requests[2])
        try await far.send(Array(responses[1][half...]) + responses[2])
        _ = try await Self.read(responses[1].count - half + responses[2].count, from: &nearIterator)
        #expect(sink.candidates(.outbound) == referenceCandidates(requests[2]))
        #expect(sink.candidates(.inbound) == referenceCandidates(responses[2]))

        // Stopped: nothing more.
        tap.stop()
        try await link.send(requests[3])
        try await far.send(responses[3])
        _ = try await Self.read(responses[3].count, from: &nearIterator)
        #expect(sink.entries.count == 2)

        // Restarted onto another interface, between frames: the next frames are recorded there.
        let other = MemorySink()
        tap.start(recordingTo: other, interface: CaptureInterfaceID(rawValue: 2))
        try await link.send(requests[0])
        try await far.send(responses[0])
        _ = try await Self.read(responses[0].count, from: &nearIterator)
        #expect(other.candidates(.outbound) == referenceCandidates(requests[0]))
        #expect(other.candidates(.inbound) == referenceCandidates(responses[0]))
        #expect(other.entries.allSatisfy { $0.interface.rawValue == 2 })
        #expect(sink.entries.count == 2)
    }

    @Test("closing closes the wrapped link; incoming ends as the wrapped one does")
    func linkContract() async throws {
        let (near, far) = MemoryPipe.makePair()
        let link = CapturingLink(wrapping: near, tap: CaptureTap(recordingTo: MemorySink(), interface: CaptureInterfaceID(rawValue: 0)))
        try await far.send([0, 1, 2, 0])
        link.close()
        var chunks: [[UInt8]] = []
        for try await chunk in link.incoming { chunks.append(chunk) }  // finishes without error
        #expect(chunks.flatMap { $0 }.count <= 4)
        await #expect(throws: SerialError.self) { try await link.send([1]) }
        await #expect(throws: SerialError.self) { try await far.send([1]) }  // the far side sees the close

        let (near2, far2) = MemoryPipe.makePair()
        let link2 = CapturingLink(wrapping: near2)
        try await far2.send([5, 0])
        far2.close()
        var received: [UInt8] = []
        let error = await #expect(throws: SerialError.self) {
            for try await chunk in link2.incoming { received += chunk }
        }
        #expect(error?.code == .portVanished)
        #expect(received == [5, 0])
        link2.close()
    }

    @Test("into a capture file, with the interface registered by the tap")
    func intoFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var rng = SeededGenerator(seed: 4)
        let writer = try CaptureWriter(path: directory.file("pump.pcapng"), clock: steppingClock())
        let tap = CaptureTap()
        let id = try tap.start(recordingTo: writer, interface: .init(name: "memory:a", description: "pump 7"))
        #expect(id.rawValue == 0)
        let (near, far) = MemoryPipe.makePair()
        let link = CapturingLink(wrapping: near, tap: tap)
        defer {
            link.close()
            far.close()
        }
        var nearIterator = link.incoming.makeAsyncIterator()
        let requests = try pingLines(count: 3, using: &rng)
        let responses = try pingLines(count: 3, response: true, using: &rng)
        for (request, response) in zip(requests, responses) {
            try await link.send(request)
            try await far.send(response)
            _ = try await Self.read(response.count, from: &nearIterator)
        }
        writer.close()
        let capture = try Capture(contentsOfFile: directory.file("pump.pcapng"))
        #expect(capture.interfaces.map(\.description) == ["pump 7"])
        #expect(capture.packets.map(\.direction) == [.outbound, .inbound, .outbound, .inbound, .outbound, .inbound])
        var expected: [[UInt8]] = []
        for (request, response) in zip(requests, responses) {
            expected.append(Array(request.dropFirst().dropLast()))
            expected.append(Array(response.dropFirst().dropLast()))
        }
        #expect(capture.packets.map(\.data) == expected)
    }
}
