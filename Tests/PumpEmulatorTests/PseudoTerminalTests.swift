import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// The emulator on a real pseudo-terminal, the session on the port a daemon would open.
@Suite("Emulator on a pseudo-terminal", .serialized)
struct PseudoTerminalTests {
    private func makeHost(directory: URL, key: PairingKey) -> PumpHost<ModelPump> {
        let pump = EmulatedPump.test(serial: "PTY-0001", key: key, stateFile: directory.appendingPathComponent("state.json"))
        return PumpHost(index: 0, serial: "PTY-0001", pump: pump,
                        linkPath: directory.appendingPathComponent("pump0").path, portPath: nil, announce: { _ in })
    }

    @Test func sessionOverThePortThroughAHangUpAndBack() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-pty-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = PairingKey.generate()
        let host = makeHost(directory: directory, key: key)
        try await host.start()
        let linkPath = directory.appendingPathComponent("pump0").path

        // Patient with a loaded machine (the whole suite runs in parallel): this bolus must be
        // answered, not left uncertain.
        var configuration = SessionConfiguration()
        configuration.responseTimeout = .seconds(1)
        var session = PumpSession(link: try SerialPort.open(path: linkPath), key: key, configuration: configuration)
        try await session.connect()
        let bolus = try await session.patientBolus()
        #expect(bolus.outcome == .started)
        let before = try await session.status()
        #expect(before.patientBolusesInLast24h == 1)

        // The cable is pulled: the session sees the port vanish at once.
        let hangUp = Task { await host.hangUp(downFor: .milliseconds(300)) }
        let start = ContinuousClock.now
        while await session.isUp, ContinuousClock.now - start < .seconds(3) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!(await session.isUp))
        #expect(ContinuousClock.now - start < .seconds(1))
        await hangUp.value

        // ... and comes back behind the same link, as the same pump.
        session = PumpSession(link: try SerialPort.open(path: linkPath), key: key, configuration: configuration)
        try await session.connect()
        let after = try await session.status()
        #expect(after.patientBolusesInLast24h == 1)
        #expect(after.lastEventSequence == before.lastEventSequence)
        let lockedOut = try await session.patientBolus()
        #expect(lockedOut.outcome == .refusedBolusInProgress)
        await session.close()
        await host.stop()
        #expect(!FileManager.default.fileExists(atPath: linkPath))
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("state.json").path))
    }

    /// A save goes through one temporary file of a fixed name: one a crash left behind is
    /// replaced by the next save, not kept beside it, and the state file stays whole.
    @Test func aSaveReplacesATemporaryFileLeftByACrash() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-save-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stateFile = directory.appendingPathComponent("state.json")
        try Data("{\"half\": ".utf8).write(to: directory.appendingPathComponent("state.json.tmp"))
        let pump = EmulatedPump.test(serial: "SAVE-0001", key: .generate(), stateFile: stateFile)
        for _ in 0..<3 { try await pump.save() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["state.json"])
        let saved = try #require(try EmulatedPump<ModelPump>.loadState(from: stateFile))
        #expect(saved.device.identity.serialNumber == "SAVE-0001")
    }
}
