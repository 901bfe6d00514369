import SerialTransport
import Testing

@Suite("MemoryPipe")
struct MemoryPipeTests {
    @Test("bytes arrive in order, both ways")
    func bytesInOrder() async throws {
        let (a, b) = MemoryPipe.makePair()
        defer {
            a.close()
            b.close()
        }
        var atB = ByteCollector(b)
        var atA = ByteCollector(a)
        var expected: [UInt8] = []
        for chunk in 0..<200 {
            let bytes = pattern(count: chunk % 13, seed: UInt32(chunk))
            expected += bytes
            try await a.send(bytes)
        }
        #expect(try await atB.take(expected.count) == expected)
        try await b.send([9, 8, 7])
        #expect(try await atA.take(3) == [9, 8, 7])
    }

    @Test("close ends the own stream cleanly and the peer's with portVanished")
    func closeEndsStreams() async throws {
        let (a, b) = MemoryPipe.makePair()
        try await a.send([1, 2, 3])
        a.close()

        var received: [UInt8] = []
        for try await chunk in a.incoming { received += chunk }
        #expect(received.isEmpty)

        var atB: [UInt8] = []
        await #expect(throws: SerialError(.portVanished, path: "memory:a")) {
            for try await chunk in b.incoming { atB += chunk }
        }
        // What was sent before the close is still delivered first.
        #expect(atB == [1, 2, 3])

        await #expect(throws: SerialError(.closed, path: "memory:a")) { try await a.send([4]) }
        await #expect(throws: SerialError(.portVanished, path: "memory:b", operation: "send")) {
            try await b.send([5])
        }
    }

    @Test("works through the ByteLink protocol")
    func asByteLink() async throws {
        let (a, b) = MemoryPipe.makePair()
        let link: any ByteLink = a
        try await link.send([0x7E, 0x00, 0x7E])
        var atB = ByteCollector(b)
        #expect(try await atB.take(3) == [0x7E, 0x00, 0x7E])
        link.close()
        b.close()
    }
}
