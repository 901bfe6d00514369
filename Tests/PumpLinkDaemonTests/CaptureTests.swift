import Foundation
import Logging
import PumpCapture
import PumpEmulator
import PumpLinkDaemon
import PumpProtocol
import Testing

/// pumplinkd's link captures, and a capture replayed to a second daemon through
/// `RecordedPump`, against the real emulator over pseudo-terminals.
@Suite("pumplinkd captures and replay", .serialized)
struct CaptureTests {
    static let clinician = PumpLinkDaemon.Actor(name: "dr-lee", role: .clinician)

    /// A fleet on `configuration`, running, with a way to wait for its pump.
    struct Fleet {
        let fleet: PumpFleet
        let running: Task<Void, Never>

        init(_ configuration: DaemonConfiguration) throws {
            fleet = try PumpFleet(configuration: configuration, logger: Logger(label: "test"))
            let fleet = self.fleet
            running = Task { await fleet.run() }
        }

        /// Waits until `ready` holds for the first pump's summary.
        func wait(_ what: String, _ ready: (PumpSummary) -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if let summary = await fleet.pumps().first, ready(summary) { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("timed out waiting for \(what): \(String(describing: await fleet.pumps().first))")
        }

        func stop() async {
            running.cancel()
            await running.value
        }
    }

    /// A version 1 link in clear, and a version 2 link whose sealed payloads are opened with the
    /// pump's key (SPEC §15).
    @Test("a capture records both directions and replays to the same view", arguments: [1, 2] as [UInt8])
    func aCaptureRecordsBothDirectionsAndReplaysToTheSameView(version: UInt8) async throws {
        let rig = try await DaemonTests.Rig(protocolVersions: version...version)
        defer { Task { await rig.stop() } }
        var configuration = rig.configuration
        let captures = rig.directory.appendingPathComponent("captures").path
        configuration.capture = .init(directory: captures, alwaysOn: true)
        let first = try Fleet(configuration)
        try await first.wait("link up and events read") { $0.link == .up && $0.status != nil }
        // Some history: a patient bolus, an acknowledgement; then the log caught up.
        _ = try await first.fleet.patientBolus("bed-1", by: .init(name: "patient-7", role: .patient))
        _ = try await first.fleet.acknowledgeAlarms("bed-1", mask: 0, by: Self.clinician)
        let last = await rig.pump.status().lastEventSequence
        var stored: [Event] = []
        for _ in 0..<250 where stored.last?.sequence != last {
            stored = try await first.fleet.events("bed-1", from: 1, limit: 1000)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stored.map(\.sequence) == Array(1...last))
        // Statuses keep streaming into the capture; take the view after one more arrives.
        try await Task.sleep(for: .milliseconds(300))
        let running = try await first.fleet.captureStatus("bed-1")
        #expect(running.recording)
        let stopped = try await first.fleet.stopCapture("bed-1", by: Self.clinician)
        #expect(!stopped.recording)
        // The capture records a status as it arrives, before the daemon has handled it: take the
        // view once it holds the last status captured.
        let file = try #require(stopped.files.last)
        let lastCaptured = try #require(
            try RecordedPump(capture: Capture(contentsOfFile: file).decoded().opened(with: rig.key)).statuses.last?.value)
        var view = try await first.fleet.pump("bed-1")
        for _ in 0..<250 where (view.summary.status?.pumpTimeMs ?? 0) < lastCaptured.pumpTimeMs {
            try await Task.sleep(for: .milliseconds(20))
            view = try await first.fleet.pump("bed-1")
        }
        await first.stop()

        // The file: one interface for the pump's port, frames both ways, all decoding.
        let capture = try Capture(contentsOfFile: file)
        #expect(!capture.truncatedTail)
        #expect(capture.interfaces.map(\.name) == [configuration.pumps[0].port])
        #expect(capture.interfaces.map(\.description) == ["pump bed-1"])
        #expect(stopped.packets == capture.packets.count && capture.packets.count > 10)
        let decoded = capture.decoded().opened(with: rig.key)
        var sent: [String] = []
        var received: [String] = []
        for record in decoded.records {
            guard case .frame(let frame) = record.outcome, case .success = frame.message else {
                Issue.record("packet \(record.packetNumber) did not decode: \(record.outcome)")
                continue
            }
            // The daemon sends requests and receives responses, and says so.
            #expect((record.direction == .outbound) == !frame.header.isResponse)
            if record.direction == .outbound { sent.append(frame.messageName ?? "?") } else { received.append(frame.messageName ?? "?") }
        }
        #expect(sent.first == "Hello" && received.first == "Hello")
        #expect(Set(sent).isSuperset(of: ["Hello", "GetStatus", "ReadEvents", "ReadProgram", "PatientBolus", "AcknowledgeAlarms"]))
        // A sealed link streams status; on a version 1 link it is read with tagged GetStatus (SPEC §5.10).
        #expect(sent.contains("SetTelemetry") == (version == 2))
        if version == 2 {
            let opened = decoded.records.filter { if case .frame(let frame) = $0.outcome { frame.openedCounter != nil } else { false } }
            let hellos = decoded.records.filter { if case .frame(let frame) = $0.outcome { frame.messageName == "Hello" } else { false } }
            #expect(opened.count == decoded.records.count - hellos.count, "every frame but the Hello exchange was sealed and opens")
            #expect(capture.decoded().records.allSatisfy {
                if case .frame(let frame) = $0.outcome, frame.header.isSealed { (try? frame.message.get()) == nil } else { true }
            }, "without the key nothing sealed decodes")
        }
        #expect(Set(received).isSuperset(of: ["Hello", "GetStatus", "ReadEvents", "ReadProgram", "PatientBolus", "AcknowledgeAlarms"]))

        // Replayed: a second daemon, new database, against the recorded pump, sees what the first saw.
        let recorded = try RecordedPump(capture: decoded)
        let replayPump = EmulatedPump(
            endpoint: PumpEndpoint(device: recorded, key: rig.key), clock: VirtualClock(startMs: VirtualClock.wallClockMs()))
        let replayLink = rig.directory.appendingPathComponent("replay0").path
        let host = PumpHost(index: 0, serial: recorded.identity.serialNumber, pump: replayPump, linkPath: replayLink, portPath: nil, announce: { _ in })
        try await host.start()
        defer { Task { await host.stop() } }
        var replayConfiguration = rig.configuration
        replayConfiguration.pumps = [.init(id: "bed-1", port: replayLink, keyFile: rig.configuration.pumps[0].keyFile)]
        replayConfiguration.dataDirectory = rig.directory.appendingPathComponent("replay-data").path
        let second = try Fleet(replayConfiguration)
        // Played back at the recorded pace, the last recorded status arrives as long after the
        // first Hello as it did in the recording.
        // (All but the request id the pump last executed, which is the replaying pump's own.)
        func replayable(_ status: Status?) -> Status? {
            var status = status
            status?.lastExecutedRequestId = 0
            return status
        }
        let lastRecorded = try #require(recorded.statuses.last?.value)
        #expect(lastRecorded.pumpTimeMs <= view.summary.status?.pumpTimeMs ?? 0)
        try await second.wait("the replayed pump's last status") { replayable($0.status) == replayable(lastRecorded) }
        let replayed = try await second.fleet.pump("bed-1")
        #expect(replayed.summary.serialNumber == view.summary.serialNumber)
        #expect(replayed.summary.model == view.summary.model)
        #expect(replayed.firmwareVersion == view.firmwareVersion)
        #expect(replayed.activeProgram == view.activeProgram)
        var replayedEvents: [Event] = []
        for _ in 0..<250 where replayedEvents.count < stored.count {
            replayedEvents = try await second.fleet.events("bed-1", from: 1, limit: 1000)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(replayedEvents == stored)
        // The recording obeys nothing.
        await #expect(throws: DaemonError.self) { try await second.fleet.suspend("bed-1", by: Self.clinician) }
        #expect(try await second.fleet.events("bed-1", from: 1, limit: 1000) == stored)
        await second.stop()
    }

    @Test func captureStartsAndStopsPerPumpAndRotates() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        var configuration = rig.configuration
        configuration.capture = .init(directory: rig.directory.appendingPathComponent("captures").path, maxFileBytes: 4096, maxFiles: nil)
        let daemon = try Fleet(configuration)
        try await daemon.wait("link up") { $0.link == .up && $0.status != nil }
        #expect(try await daemon.fleet.captureStatus("bed-1") == CaptureStatus(recording: false))
        let started = try await daemon.fleet.startCapture("bed-1", by: Self.clinician)
        #expect(started.recording && started.files.count == 1)
        // Starting again keeps the same capture.
        #expect(try await daemon.fleet.startCapture("bed-1", by: Self.clinician).files == started.files)
        // Status streams at 10 Hz; a few commands add to it, paced so as not to load the machine.
        // Their outcomes do not matter here (under the whole suite's load an answer can be lost,
        // leaving one uncertain): only what the capture records does.
        // What the loop saw goes into the failure message: a short capture has meant a stalled
        // link or a starved test, and these tell which.
        let deadline = ContinuousClock.now + .seconds(20)
        var rounds = 0, refused = 0, longestRound = Duration.zero, linkStates: [LinkState] = []
        while ContinuousClock.now < deadline, try await daemon.fleet.captureStatus("bed-1").files.count < 3 {
            let roundStart = ContinuousClock.now
            do {
                _ = try await daemon.fleet.acknowledgeAlarms("bed-1", mask: 0, by: Self.clinician)
            } catch {
                refused += 1
            }
            if let link = await daemon.fleet.pumps().first?.link, link != linkStates.last { linkStates.append(link) }
            try await Task.sleep(for: .milliseconds(20))
            rounds += 1
            longestRound = max(longestRound, ContinuousClock.now - roundStart)
        }
        let stopped = try await daemon.fleet.stopCapture("bed-1", by: Self.clinician)
        #expect(stopped.files.count >= 3, """
            \(stopped.packets) packets, \(stopped.bytes) bytes in 20 s; \(rounds) commands, \(refused) refused, \
            longest round \(longestRound), link states \(linkStates)
            """)
        #expect(stopped.droppedPackets == 0 && stopped.failure == nil)
        var packets = 0
        for file in stopped.files {
            let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
            #expect(size <= 4096)
            let capture = try Capture(contentsOfFile: file)
            #expect(capture.interfaces.count == 1)
            packets += capture.packets.count
        }
        #expect(packets == stopped.packets)
        // Stopped means stopped: nothing more is written.
        try await Task.sleep(for: .milliseconds(300))
        let last = try #require(stopped.files.last)
        let sizeAfter = try FileManager.default.attributesOfItem(atPath: last)[.size] as? Int
        try await Task.sleep(for: .milliseconds(300))
        #expect(try FileManager.default.attributesOfItem(atPath: last)[.size] as? Int == sizeAfter)
        await #expect(throws: DaemonError.self) { try await daemon.fleet.startCapture("nope", by: Self.clinician) }
        await daemon.stop()
    }
}
