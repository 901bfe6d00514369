#if canImport(Glibc)
import Glibc
#endif
import PumpCapture
import Synchronization
import Testing

/// A clock that advances one microsecond per reading, from a fixed start.
func steppingClock(start: UInt64 = 1_741_944_411_000_000_000) -> CaptureWriter.Clock {
    final class Counter: Sendable {
        let next: Atomic<UInt64>
        init(_ start: UInt64) { next = Atomic(start) }
    }
    let counter = Counter(start)
    return { counter.next.add(1000, ordering: .relaxed).oldValue }
}

@Suite("capture files")
struct CaptureWriterTests {
    @Test("a file holds the section, the interfaces and each packet with its time and direction")
    func writeAndRead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try CaptureWriter(
            path: directory.file("link.pcapng"),
            interfaces: [.init(name: "/dev/pts/4", description: "pump 1")],
            options: .init(userApplication: "pumplinkd 1.0"),
            clock: steppingClock(start: 5_000))
        let pump2 = try writer.addInterface(name: "/dev/ttyUSB0", description: "pump 2")
        #expect(pump2.rawValue == 1)
        #expect(try writer.addInterface(name: "/dev/pts/4", description: "pump 1").rawValue == 0)
        writer.record([1, 2, 3], direction: .outbound, interface: CaptureInterfaceID(rawValue: 0))
        writer.record([4, 5], originalLength: 4000, direction: .inbound, interface: pump2)
        writer.record([6], direction: .inbound, interface: CaptureInterfaceID(rawValue: 0), timestampNanoseconds: 42)
        writer.record([7], direction: .inbound, interface: CaptureInterfaceID(rawValue: 9))  // unknown: dropped
        // Registered after packets: its description block comes before its first packet.
        let pump3 = try writer.addInterface(name: "/dev/pts/9", description: nil)
        writer.record([8, 8], direction: .outbound, interface: pump3)
        writer.close()
        writer.record([9], direction: .outbound, interface: pump3)  // closed: dropped

        let statistics = writer.statistics
        #expect(statistics.packetsWritten == 4)
        #expect(statistics.packetsDropped == 2)
        #expect(statistics.failure == nil)
        #expect(statistics.files == [directory.file("link.pcapng")])
        let bytes = directory.contents("link.pcapng")
        #expect(statistics.bytesWritten == bytes.count)

        let capture = try Capture(contentsOfFile: directory.file("link.pcapng"))
        #expect(capture.sections.map(\.userApplication) == ["pumplinkd 1.0"])
        #expect(capture.interfaces.map(\.name) == ["/dev/pts/4", "/dev/ttyUSB0", "/dev/pts/9"])
        #expect(capture.interfaces.map(\.description) == ["pump 1", "pump 2", nil])
        #expect(capture.interfaces.allSatisfy { $0.timestampResolution == 9 && $0.linkType == 147 })
        #expect(
            capture.packets == [
                .init(interfaceIndex: 0, timestampNanoseconds: 5_000, direction: .outbound, data: [1, 2, 3], originalLength: 3),
                .init(interfaceIndex: 1, timestampNanoseconds: 6_000, direction: .inbound, data: [4, 5], originalLength: 4000),
                .init(interfaceIndex: 0, timestampNanoseconds: 42, direction: .inbound, data: [6], originalLength: 1),
                .init(interfaceIndex: 2, timestampNanoseconds: 7_000, direction: .outbound, data: [8, 8], originalLength: 2),
            ])
        #expect(!capture.truncatedTail)
    }

    @Test("creating a file fails clearly")
    func creationFailures() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = #expect(throws: CaptureError.self) {
            try CaptureWriter(path: directory.file("no/such/dir.pcapng"))
        }
        #expect(missing?.code == .fileSystem)
        #expect(missing?.errno == ENOENT)
        #expect(missing?.path == directory.file("no/such/dir.pcapng"))
        #expect(missing?.description.contains("No such file") == true)

        directory.write("taken.pcapng", [1, 2, 3])
        let exists = #expect(throws: CaptureError.self) { try CaptureWriter(path: directory.file("taken.pcapng")) }
        #expect(exists?.code == .fileExists)
        #expect(directory.contents("taken.pcapng") == [1, 2, 3])

        let replaced = try CaptureWriter(path: directory.file("taken.pcapng"), options: .init(replaceExisting: true))
        replaced.close()
        #expect(try Capture(contentsOfFile: directory.file("taken.pcapng")).sections.count == 1)

        if access("/dev/full", W_OK) == 0 {
            let full = #expect(throws: CaptureError.self) {
                try CaptureWriter(path: "/dev/full", options: .init(replaceExisting: true))
            }
            #expect(full?.errno == ENOSPC)
        }
    }

    @Test("rotation by size: numbered files, each readable alone, all packets in order")
    func rotation() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var rng = SeededGenerator(seed: 11)
        let limit = 600
        let writer = try CaptureWriter(
            path: directory.file("cap.pcapng"),
            interfaces: [.init(name: "/dev/pts/1", description: "pump 1"), .init(name: "/dev/pts/2", description: "pump 2")],
            options: .init(maxFileBytes: limit), clock: steppingClock())
        var sent: [[UInt8]] = []
        for index in 0..<60 {
            let data = randomBytes(Int.random(in: 1...120, using: &rng), nonZero: true, using: &rng)
            if index == 30 { _ = try writer.addInterface(name: "/dev/pts/3", description: "pump 3") }
            writer.record(
                data, direction: index % 2 == 0 ? .outbound : .inbound,
                interface: CaptureInterfaceID(rawValue: UInt32(index < 30 ? index % 2 : index % 3)))
            sent.append(data)
        }
        writer.close()
        let files = writer.statistics.files
        #expect(files.count > 3)
        #expect(files.first == directory.file("cap.pcapng"))
        #expect(files.dropFirst().first == directory.file("cap-0002.pcapng"))
        #expect(files.last == directory.file("cap-" + String(repeating: "0", count: 4 - String(files.count).count) + "\(files.count).pcapng"))
        var received: [[UInt8]] = []
        var timestamps: [UInt64] = []
        for file in files {
            let capture = try Capture(contentsOfFile: file)
            #expect(capture.sections.count == 1)
            #expect(!capture.truncatedTail)
            #expect(!capture.packets.isEmpty)
            #expect(capture.interfaces.count >= 2)
            #expect(capture.interfaces.prefix(2).map(\.name) == ["/dev/pts/1", "/dev/pts/2"])
            let size = directory.contents(String(file.split(separator: "/").last ?? "")).count
            #expect(size <= limit, "\(file) is \(size) bytes")
            received += capture.packets.map(\.data)
            timestamps += capture.packets.map(\.timestampNanoseconds)
        }
        #expect(received == sent)
        #expect(timestamps == timestamps.sorted())
        #expect(writer.statistics.packetsWritten == 60)
    }

    @Test("rotation keeps the newest files only when asked")
    func rotationKeepsNewest() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try CaptureWriter(
            path: directory.file("ring"), interfaces: [.init(name: "x")],
            options: .init(maxFileBytes: 200, maxFiles: 3), clock: steppingClock())
        for index in 0..<40 {
            writer.record([UInt8](repeating: UInt8(index + 1), count: 60), direction: .inbound, interface: CaptureInterfaceID(rawValue: 0))
        }
        writer.close()
        let files = writer.statistics.files
        #expect(files.count > 5)
        #expect(files.first == directory.file("ring"))
        #expect(files[1] == directory.file("ring-0002.pcapng"))
        let kept = files.suffix(3)
        for file in files {
            #expect((access(file, F_OK) == 0) == kept.contains(file), "\(file)")
        }
        let last = try kept.flatMap { try Capture(contentsOfFile: $0).packets.map { $0.data[0] } }
        #expect(last == Array(UInt8(40 - last.count + 1)...40))
    }

    @Test(
        "rotated file names",
        arguments: [
            ("/tmp/a/cap.pcapng", 2, "/tmp/a/cap-0002.pcapng"),
            ("/tmp/a/cap.pcapng", 1, "/tmp/a/cap.pcapng"),
            ("cap.pcapng", 12, "cap-0012.pcapng"),
            ("cap", 3, "cap-0003.pcapng"),
            ("/tmp/x.d/cap", 3, "/tmp/x.d/cap-0003.pcapng"),
            ("/tmp/.hidden", 2, "/tmp/.hidden-0002.pcapng"),
            ("a.b.pcapng", 12345, "a.b-12345.pcapng"),
        ] as [(String, Int, String)])
    func fileNames(base: String, number: Int, expected: String) {
        #expect(CaptureWriter.fileName(base: base, number: number) == expected)
    }

    @Test("records from many threads land as whole blocks, each thread's in its order")
    func concurrentRecording() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try CaptureWriter(
            path: directory.file("busy.pcapng"),
            interfaces: (0..<8).map { .init(name: "/dev/pts/\($0)") })
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for sequence in 0..<250 {
                        writer.record(
                            [UInt8(task + 1), UInt8(sequence % 255 + 1)] + [UInt8](repeating: 1, count: sequence % 37),
                            direction: .outbound, interface: CaptureInterfaceID(rawValue: UInt32(task)))
                    }
                }
            }
        }
        writer.close()
        let capture = try Capture(contentsOfFile: directory.file("busy.pcapng"))
        #expect(capture.packets.count == 2000)
        for task in 0..<8 {
            let sequence = capture.packets.filter { $0.interfaceIndex == task }.map { Int($0.data[1]) - 1 }
            #expect(sequence == (0..<250).map { $0 % 255 }, "task \(task)")
        }
        #expect(capture.packets.allSatisfy { Int($0.data[0]) == $0.interfaceIndex + 1 })
    }
}
