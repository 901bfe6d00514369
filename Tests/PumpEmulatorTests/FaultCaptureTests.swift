import Foundation
import PumpCapture
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Synchronization
import Testing

/// Collects recorded candidates in memory: (interface, direction, bytes).
private final class MemorySink: CaptureSink {
    private let packets = Mutex<[(CaptureInterfaceID, CaptureDirection, [UInt8])]>([])

    func record(_ bytes: UnsafeRawBufferPointer, originalLength: Int, direction: CaptureDirection, interface: CaptureInterfaceID) {
        packets.withLock { $0.append((interface, direction, Array(bytes))) }
    }

    func candidates(_ interface: CaptureInterfaceID, _ direction: CaptureDirection) -> [[UInt8]] {
        packets.withLock { $0.filter { $0.0 == interface && $0.1 == direction }.map(\.2) }
    }
}

/// Whether a recorded candidate (COBS, no delimiters) is an intact frame.
private func isFrame(_ candidate: [UInt8]) -> Bool {
    var decoder = FrameDecoder()
    var frames = 0
    decoder.decode([0] + candidate + [0]) { event in
        if case .frame = event { frames += 1 }
    }
    return frames == 1
}

@Suite("The pump's side of the link faults in a capture")
struct FaultCaptureTests {
    static let line = CaptureInterfaceID(rawValue: 0)
    static let pumpSide = CaptureInterfaceID(rawValue: 1)

    /// Status reads through heavy faults: the line capture shows the damage both ways, the
    /// pump's side shows intact frames written and damaged candidates received, and every
    /// candidate that crossed the line intact is one the other side wrote.
    @Test func pumpSideShowsWhatThePumpWroteAndGot() async throws {
        let key = PairingKey.generate()
        var configuration = PumpConfiguration()
        configuration.serialNumber = "TEST-0001"
        configuration.initialProgram = ModelPump.defaultProgram
        let device = ModelPump(Pump(configuration: configuration, nowMs: MemoryRig.startMs))
        let faults = try LinkFaultSettings(parsing: "seed=5,ber=0.0005,drop=0.002,dup=0.2,garbage=0.2")
        let pump = EmulatedPump(
            endpoint: PumpEndpoint(device: device, key: key), clock: VirtualClock(startMs: MemoryRig.startMs), faults: faults)
        let sink = MemorySink()
        await pump.recordPumpSide(to: sink, interface: Self.pumpSide)
        let (hostEnd, pumpEnd) = MemoryPipe.makePair()
        let wire = CapturingLink(wrapping: pumpEnd, tap: CaptureTap(recordingTo: sink, interface: Self.line))
        let serving = Task { await pump.serve(wire) }

        var sessionConfiguration = SessionConfiguration()
        sessionConfiguration.responseTimeout = .milliseconds(60)
        sessionConfiguration.bitsPerSecond = nil  // a memory link: no line time
        sessionConfiguration.attempts = 8
        let session = PumpSession(link: hostEnd, key: key, configuration: sessionConfiguration)
        var connected = false
        for _ in 0..<20 where !connected {
            connected = (try? await session.connect()) != nil
        }
        try #require(connected)
        var answered = 0
        for _ in 0..<20 where (try? await session.status()) != nil {
            answered += 1
        }
        await session.close()
        await serving.value
        #expect(answered > 0)

        let pumpWrote = sink.candidates(Self.pumpSide, .outbound)
        let hostGot = sink.candidates(Self.line, .outbound)
        let hostWrote = sink.candidates(Self.line, .inbound)
        let pumpGot = sink.candidates(Self.pumpSide, .inbound)
        #expect(pumpWrote.count > 20)
        // Before the faults: every frame the pump wrote is intact, and so is every frame the host wrote.
        #expect(pumpWrote.allSatisfy(isFrame))
        #expect(hostWrote.allSatisfy(isFrame))
        // After them: some candidates each way are damaged, none of those decodes, and each
        // intact one is a frame the other side wrote.
        let written = Set(pumpWrote)
        let damagedToHost = hostGot.filter { !written.contains($0) }
        #expect(!damagedToHost.isEmpty)
        #expect(!damagedToHost.contains(where: isFrame))
        let sent = Set(hostWrote)
        let damagedToPump = pumpGot.filter { !sent.contains($0) }
        #expect(!damagedToPump.isEmpty)
        #expect(!damagedToPump.contains(where: isFrame))
        let counts = await pump.faultCounts
        #expect(counts.framesDuplicated > 0 && counts.bitsFlipped > 0 && counts.garbageBursts > 0)
    }

    /// `pump-emulator --capture FILE --capture-before-faults`: one "host" interface and one
    /// "pump before link faults" interface per terminal, in the file.
    @Test func emulatorWritesBothInterfaces() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-faultcap-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pump.pcapng").path
        let writer = try CaptureWriter(path: file, options: .init(replaceExisting: true, userApplication: "test"))
        let key = PairingKey.generate()
        var configuration = PumpConfiguration()
        configuration.serialNumber = "TEST-0002"
        let pump = EmulatedPump(
            endpoint: PumpEndpoint(device: ModelPump(Pump(configuration: configuration, nowMs: MemoryRig.startMs)), key: key),
            clock: VirtualClock(startMs: MemoryRig.startMs),
            faults: try LinkFaultSettings(parsing: "seed=3,dup=0.5,garbage=0.5"))
        let host = PumpHost(
            index: 0, serial: "TEST-0002", pump: pump, linkPath: nil, portPath: nil, capture: writer,
            capturePumpSide: true, announce: { _ in })
        try await host.start()
        let terminal = try #require(await host.terminalPath)
        let port = try SerialPort.open(path: terminal)
        let session = PumpSession(link: port, key: key, configuration: SessionConfiguration())
        var connected = false
        for _ in 0..<10 where !connected {
            connected = (try? await session.connect()) != nil
        }
        #expect(connected)
        _ = try? await session.status()
        await session.close()
        port.close()
        await host.stop()
        writer.close()

        let capture = try Capture(contentsOfFile: file)
        let descriptions = capture.interfaces.map { $0.description ?? "" }
        #expect(descriptions == ["host", PumpHost<ModelPump>.pumpSideDescription])
        #expect(capture.interfaces.allSatisfy { $0.name == terminal })
        let onPumpSide = capture.packets.filter { $0.interfaceIndex == 1 }
        #expect(onPumpSide.contains { $0.direction == .outbound })
        #expect(onPumpSide.filter { $0.direction == .outbound }.allSatisfy { isFrame($0.data) })
    }

    @Test func controlFileAppliesAppendedLinesOnce() throws {
        #expect(ControlFile.newText("hangup 100\n", after: "") == "hangup 100\n")
        #expect(ControlFile.newText("hangup 100\nfaults none\n", after: "hangup 100\n") == "faults none\n")
        #expect(ControlFile.newText("hangup 100\n", after: "hangup 100\n") == "")
        // Rewritten: applied whole.
        #expect(ControlFile.newText("inject motorStall\n", after: "hangup 100\n") == "inject motorStall\n")
        let lines = try ControlFile.parse("faults none\nfaults\n")
        #expect(lines.map(\.command) == [.faults(LinkFaultSettings.none), .faults(LinkFaultSettings.none)])
        #expect(try LinkFaultSettings(parsing: "none") == LinkFaultSettings.none)
    }
}
