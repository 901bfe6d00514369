import PumpCapture
import Testing

@Suite("pcapng blocks")
struct PcapngTests {
    // MARK: Writing

    @Test("a small capture is byte for byte what the format says")
    func byteExact() throws {
        var bytes: [UInt8] = []
        PcapngBlocks.appendSectionHeader(userApplication: "PumpLink", to: &bytes)
        #expect(
            bytes
                == hex(
                    """
                    0a0d0d0a 2c000000 4d3c2b1a 0100 0000 ffffffffffffffff
                    0400 0800 50756d704c696e6b
                    0000 0000
                    2c000000
                    """))

        bytes = []
        PcapngBlocks.appendInterfaceDescription(name: "/dev/pts/4", description: "pump 1", to: &bytes)
        #expect(
            bytes
                == hex(
                    """
                    01000000 3c000000 9300 0000 00000000
                    0200 0a00 2f6465762f7074732f34 0000
                    0300 0600 70756d702031 0000
                    0900 0100 09 000000
                    0000 0000
                    3c000000
                    """))

        bytes = []
        try PcapngBlocks.appendEnhancedPacket(
            interface: CaptureInterfaceID(rawValue: 0), timestamp: 1_741_944_411_420_123_456, data: [0x02, 0x01, 0x03],
            direction: .outbound, to: &bytes)
        #expect(
            bytes
                == hex(
                    """
                    06000000 30000000 00000000 36a12c18 40612c85 03000000 03000000
                    020103 00
                    0200 0400 02000000
                    0000 0000
                    30000000
                    """))
    }

    @Test("blocks are aligned even when the buffer is not")
    func unalignedBuffer() throws {
        var bytes: [UInt8] = [0xEE]
        try PcapngBlocks.appendEnhancedPacket(
            interface: CaptureInterfaceID(rawValue: 1), timestamp: 5, data: [1, 2, 3, 4, 5], direction: .inbound, to: &bytes)
        #expect(bytes.count == 1 + 8 + 20 + 8 + 8 + 4 + 4)
        #expect(bytes[1..<5] == [6, 0, 0, 0])
        #expect(Array(bytes[5..<9]) == le32(UInt32(bytes.count - 1)))
        #expect(Array(bytes.suffix(4)) == le32(UInt32(bytes.count - 1)))
    }

    // MARK: Reading

    @Test("random packets on several interfaces read back as written", arguments: [1, 2, 3] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var builder = CaptureBuilder()
        builder.section()
        let interfaces: [(String, String?)] = [("/dev/pts/4", "pump 1"), ("/dev/ttyUSB0", nil), ("/dev/pts/7", "pump ü")]
        for (name, description) in interfaces.prefix(2) { builder.interface(name, description) }
        var expected: [Capture.Packet] = []
        for index in 0..<300 {
            if index == 100 { builder.interface(interfaces[2].0, interfaces[2].1) }  // described mid-capture
            let interface = UInt32.random(in: 0..<(index < 100 ? 2 : 3), using: &rng)
            let data = randomBytes(Int.random(in: 0...300, using: &rng), using: &rng)
            let original = data.count + (Bool.random(using: &rng) ? 0 : Int.random(in: 1...5000, using: &rng))
            let direction = [CaptureDirection.inbound, .outbound, nil].randomElement(using: &rng)!
            let timestamp = UInt64.random(in: 0...UInt64.max, using: &rng)
            try builder.packet(interface, timestamp, data, original: original, direction)
            expected.append(
                Capture.Packet(
                    interfaceIndex: Int(interface), timestampNanoseconds: timestamp, direction: direction, data: data,
                    originalLength: original))
        }
        let capture = try Capture(pcapng: builder.bytes)
        #expect(capture.packets == expected)
        #expect(!capture.truncatedTail)
        #expect(capture.skippedBlocks == 0)
        #expect(capture.sections.count == 1)
        #expect(capture.sections.first?.userApplication == "PumpLink tests")
        #expect(capture.sections.first?.byteOrder == .littleEndian)
        #expect(capture.interfaces.map(\.name) == interfaces.map(\.0))
        #expect(capture.interfaces.map(\.description) == interfaces.map(\.1))
        #expect(capture.interfaces.allSatisfy { $0.linkType == 147 && $0.snapLength == 0 && $0.timestampResolution == 9 })
    }

    @Test("sections append their interfaces; packets refer to their own section's")
    func severalSections() throws {
        var first = CaptureBuilder()
        first.section("first")
        first.interface("a", nil)
        first.interface("b", nil)
        try first.packet(1, 10, [1], .inbound)
        var second = CaptureBuilder()
        second.section("second")
        second.interface("c", "third")
        try second.packet(0, 20, [2], .outbound)
        let capture = try Capture(pcapng: first.bytes + second.bytes)
        #expect(capture.sections.map(\.userApplication) == ["first", "second"])
        #expect(capture.sections.map(\.firstInterfaceIndex) == [0, 2])
        #expect(capture.interfaces.map(\.name) == ["a", "b", "c"])
        #expect(capture.interfaces.map(\.section) == [0, 0, 1])
        #expect(capture.packets.map(\.interfaceIndex) == [1, 2])
        #expect(capture.packets.map(\.data) == [[1], [2]])
    }

    @Test("a big-endian section from another tool")
    func bigEndian() throws {
        let bytes = hex(
            """
            0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
            00000001 0000002c 0093 0000 00000000
              0002 0005 6c696e6b30 000000
              0009 0001 06 000000
              0000 0000
            0000002c
            00000bad 00000010 deadbeef 00000010
            00000006 00000030 00000000 00060a24 18202240 00000002 00000005
              abcd 0000
              0002 0004 00000001
              0000 0000
            00000030
            """)
        let capture = try Capture(pcapng: bytes)
        #expect(capture.sections.count == 1)
        #expect(capture.sections.first?.byteOrder == .bigEndian)
        #expect(capture.interfaces.count == 1)
        #expect(capture.interfaces.first?.linkType == 147)
        #expect(capture.interfaces.first?.name == "link0")
        #expect(capture.interfaces.first?.timestampResolution == 6)
        #expect(capture.skippedBlocks == 1)
        #expect(
            capture.packets == [
                Capture.Packet(
                    interfaceIndex: 0, timestampNanoseconds: 1_700_000_000_123_456_000, direction: .inbound,
                    data: [0xAB, 0xCD], originalLength: 5)
            ])
        #expect(!capture.truncatedTail)
    }

    @Test(
        "timestamps in any if_tsresol become nanoseconds",
        arguments: [
            // (if_tsresol, ticks, nanoseconds)
            (nil, 1_234_567, 1_234_567_000),  // absent: microseconds
            (6, 1_234_567, 1_234_567_000),
            (9, 1_741_944_411_420_123_456, 1_741_944_411_420_123_456),
            (3, 1_741_944_411_420, 1_741_944_411_420_000_000),
            (0, 7, 7_000_000_000),
            (12, 1_234_567_890_123, 1_234_567_890),
            (19, 10_000_000_000, 1),
            (127, UInt64.max, 0),
            (0, UInt64.max, UInt64.max),  // saturates
            (0x80 | 10, 1536, 1_500_000_000),  // 2^-10 s
            (0x80, 5, 5_000_000_000),  // 2^0 s
            (0x80 | 30, 1 << 30, 1_000_000_000),
            (0x80 | 64, UInt64.max, 999_999_999),  // 2^-64 s: 2^64 - 1 ticks is just under 1 s
            (0x80 | 100, UInt64.max, 0),
            (0x80 | 1, UInt64.max, UInt64.max),  // saturates
        ] as [(UInt8?, UInt64, UInt64)]
    )
    func timestampResolution(resolution: UInt8?, ticks: UInt64, nanoseconds: UInt64) throws {
        var builder = CaptureBuilder()
        builder.section()
        builder.interface("x", nil, resolution: resolution)
        try builder.packet(0, ticks, [1, 2], .inbound)
        let capture = try Capture(pcapng: builder.bytes)
        #expect(capture.packets.first?.timestampNanoseconds == nanoseconds)
    }

    @Test("a capture cut at every byte offset reads up to its last whole block")
    func truncationAtEveryOffset() throws {
        var rng = SeededGenerator(seed: 7)
        var builder = CaptureBuilder()
        builder.section()
        builder.interface("/dev/pts/1", "pump 1")
        builder.interface("/dev/pts/2", nil)
        for index in 0..<12 {
            try builder.packet(
                UInt32(index % 2), UInt64(index) * 1000, randomBytes(Int.random(in: 0...40, using: &rng), using: &rng),
                index % 3 == 0 ? .inbound : .outbound)
        }
        builder.raw(rawBlock(type: 0x0000_0BAD, body: [1, 2, 3, 4]))
        try builder.packet(1, 99, [9, 9, 9], .outbound)
        let wholeCapture = try Capture(pcapng: builder.bytes)
        #expect(wholeCapture.packets.count == 13)

        // SHB, two IDBs, twelve packets, an unknown block, a packet.
        let isPacket = [false, false, false] + [Bool](repeating: true, count: 12) + [false, true]
        #expect(isPacket.count == builder.blockEnds.count)
        for cut in 0...builder.bytes.count {
            let capture = try Capture(pcapng: Array(builder.bytes[..<cut]))
            let whole = builder.blockEnds.indices.filter { builder.blockEnds[$0] <= cut }
            let packets = whole.filter { isPacket[$0] }.count
            #expect(capture.packets == Array(wholeCapture.packets.prefix(packets)), "cut at \(cut)")
            #expect(capture.truncatedTail == !(cut == 0 || builder.blockEnds.contains(cut)), "cut at \(cut)")
            #expect(capture.interfaces.count == min(2, max(0, whole.count - 1)), "cut at \(cut)")
            #expect(capture.sections.count == (whole.isEmpty ? 0 : 1), "cut at \(cut)")
        }
    }

    // MARK: Malformed input

    static let section = rawBlock(type: 0x0A0D_0D0A, body: hex("4d3c2b1a 0100 0000 ffffffffffffffff"))
    static let interface = rawBlock(type: 1, body: le16(147) + le16(0) + le32(0))

    static func packet(interface: UInt32 = 0, captured: UInt32 = 2, data: [UInt8] = [1, 2], options: [UInt8] = []) -> [UInt8] {
        var padded = data
        while padded.count % 4 != 0 { padded.append(0) }
        return rawBlock(type: 6, body: le32(interface) + le32(0) + le32(0) + le32(captured) + le32(captured) + padded + options)
    }

    static let malformed: [(String, [UInt8], CaptureError.Code, Int)] = [
        ("not a section first", interface, .notPcapng(blockType: 1), 0),
        ("text file", Array("hello, world".utf8), .notPcapng(blockType: 0x6c6c_6568), 0),
        ("one wrong byte", [0x0A, 0x0D, 0x0D, 0x0B], .notPcapng(blockType: 0x0B0D_0D0A), 0),
        ("wrong first byte of few", [0x0B], .notPcapng(blockType: 0x0B), 0),
        (
            "bad byte-order magic", rawBlock(type: 0x0A0D_0D0A, body: hex("11223344 0100 0000 ffffffffffffffff")),
            .badByteOrderMagic(0x4433_2211), 0
        ),
        ("cut bad byte-order magic", hex("0a0d0d0a 1c000000 4d3c2c"), .badByteOrderMagic(0x4d3c2c), 0),
        (
            "version 2", rawBlock(type: 0x0A0D_0D0A, body: hex("4d3c2b1a 0200 0000 ffffffffffffffff")),
            .unsupportedVersion(major: 2, minor: 0), 0
        ),
        ("section header too short", rawBlock(type: 0x0A0D_0D0A, body: hex("4d3c2b1a 0100 0000 ffffffff")), .blockTooShort(blockType: 0x0A0D_0D0A, length: 24), 0),
        ("block length below 12", section + le32(6) + le32(8) + le32(8), .blockTooShort(blockType: 6, length: 8), 28),
        ("block length 0", section + le32(6) + le32(0) + le32(0), .blockTooShort(blockType: 6, length: 0), 28),
        ("block length not aligned", section + le32(6) + le32(30) + [UInt8](repeating: 0, count: 40), .blockLengthNotAligned(length: 30), 28),
        (
            "trailing length differs", section + rawBlock(type: 1, body: le16(147) + le16(0) + le32(0), trailing: 24),
            .trailingLengthMismatch(leading: 20, trailing: 24), 28
        ),
        ("interface block too short", section + rawBlock(type: 1, body: le32(147)), .blockTooShort(blockType: 1, length: 16), 28),
        ("packet block too short", section + interface + rawBlock(type: 6, body: le32(0) + le32(0) + le32(0) + le32(0)), .blockTooShort(blockType: 6, length: 28), 48),
        ("packet before any interface", section + packet(), .unknownInterface(id: 0, interfacesInSection: 0), 28),
        ("packet on an unknown interface", section + interface + packet(interface: 5), .unknownInterface(id: 5, interfacesInSection: 1), 48),
        (
            "packet on an interface of the previous section", section + interface + interface + section + interface + packet(interface: 1),
            .unknownInterface(id: 1, interfacesInSection: 1), 116
        ),
        ("captured length past the block", section + interface + packet(captured: 9), .capturedLengthOverrun(capturedLength: 9, room: 4), 48),
        (
            "captured length near 2^32", section + interface + packet(captured: 0xFFFF_FFF0),
            .capturedLengthOverrun(capturedLength: 0xFFFF_FFF0, room: 4), 48
        ),
        (
            "option past the block", section + rawBlock(type: 1, body: le16(147) + le16(0) + le32(0) + le16(2) + le16(200) + le32(0)),
            .optionOverrun(code: 2, length: 200), 28
        ),
        (
            "if_tsresol of two bytes", section + rawBlock(type: 1, body: le16(147) + le16(0) + le32(0) + le16(9) + le16(2) + [6, 0, 0, 0]),
            .badOptionLength(code: 9, length: 2), 28
        ),
        (
            "epb_flags of two bytes", section + interface + packet(options: le16(2) + le16(2) + [1, 0, 0, 0]),
            .badOptionLength(code: 2, length: 2), 48
        ),
        (
            "section option past the block",
            rawBlock(type: 0x0A0D_0D0A, body: hex("4d3c2b1a 0100 0000 ffffffffffffffff") + le16(4) + le16(0xFFFF)),
            .optionOverrun(code: 4, length: 0xFFFF), 0
        ),
    ]

    @Test("malformed input throws a typed error with the block's offset", arguments: malformed)
    func malformedInput(name: String, bytes: [UInt8], code: CaptureError.Code, offset: Int) {
        let error = #expect(throws: CaptureError.self, "\(name)") { try Capture(pcapng: bytes) }
        #expect(error?.code == code, "\(name)")
        #expect(error?.offset == offset, "\(name)")
    }

    @Test("the bytes a killed writer can leave are fine, a block length past the end is a cut tail")
    func partialInputs() throws {
        #expect(try Capture(pcapng: []).packets.isEmpty)
        #expect(try Capture(pcapng: []).truncatedTail == false)
        #expect(try Capture(pcapng: [0x0A, 0x0D]).truncatedTail)
        #expect(try Capture(pcapng: hex("0a0d0d0a 1c000000 1a2b")).truncatedTail)  // big-endian magic, cut
        let huge = Self.section + le32(6) + le32(0xFFFF_FFFC) + [1, 2, 3, 4]
        let capture = try Capture(pcapng: huge)
        #expect(capture.truncatedTail)
        #expect(capture.sections.count == 1)
    }

    @Test("random and mutated input never traps")
    func garbage() throws {
        var rng = SeededGenerator(seed: 42)
        var builder = CaptureBuilder()
        builder.section()
        builder.interface("/dev/pts/3", "pump 9")
        builder.interface("/dev/pts/4", nil, resolution: 0x80 | 20)
        for index in 0..<8 {
            try builder.packet(UInt32(index % 2), UInt64(index), randomBytes(index * 5, using: &rng), .inbound)
        }
        let valid = builder.bytes
        var parsed = 0
        var failed = 0
        func attempt(_ bytes: [UInt8]) {
            do {
                let capture = try Capture(pcapng: bytes)
                parsed += 1
                // Everything read must lie within the input.
                #expect(capture.packets.reduce(0) { $0 + $1.data.count } <= bytes.count)
            } catch {
                failed += 1
            }
        }
        for _ in 0..<2000 {
            // Pure noise, half of it behind a valid section header so that blocks get parsed.
            var bytes = randomBytes(Int.random(in: 0...200, using: &rng), using: &rng)
            if Bool.random(using: &rng) { bytes = Self.section + bytes }
            attempt(bytes)
        }
        for _ in 0..<3000 {
            // A valid capture with a few bytes changed, and maybe cut.
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[index] = Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : bytes[index] ^ 0x80
            }
            if Int.random(in: 0..<4, using: &rng) == 0 { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            attempt(bytes)
        }
        #expect(parsed > 100)
        #expect(failed > 100)
    }
}
