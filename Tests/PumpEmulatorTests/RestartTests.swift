import Foundation
import PumpEmulator
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// The emulator process killed with SIGKILL and started again: the daemon-side connection
/// reports the link down, reconnects when the port returns, and catches up the event log from
/// the pump's state file without a gap or a repeat.
@Suite("Emulator killed and restarted", .serialized)
struct RestartTests {
    actor Seen {
        var events: [Event] = []
        var states: [PumpConnection.State] = []
        func add(_ event: Event) { events.append(event) }
        func add(_ state: PumpConnection.State) { states.append(state) }
        var ups: Int { states.filter { if case .up = $0 { true } else { false } }.count }
        var downs: Int { states.filter { if case .down = $0 { true } else { false } }.count }
    }

    private func waitFor(_ timeout: Duration, _ condition: () async -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        while !(await condition()), ContinuousClock.now - start < timeout {
            try await Task.sleep(for: .milliseconds(20))
        }
        return ContinuousClock.now - start
    }

    @Test func killMinusNineAndRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-restart-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        let arguments = ["--link", link, "--time-scale", "600"]
        var (emulator, _) = try await ExecutableTests.startEmulator(in: directory, arguments: arguments)
        defer { ExecutableTests.stop(emulator) }
        let keyText = try String(contentsOfFile: directory.appendingPathComponent("pumplink-keys/PLE-0001.key").path, encoding: .utf8)
        let key = try PairingKey(hex: keyText)

        var options = PumpConnection.Options()
        options.telemetryIntervalMs = 100
        options.session.keepaliveInterval = .milliseconds(300)
        options.session.linkTimeout = .seconds(1)
        let connection = PumpConnection(path: link, key: key, options: options)
        let seen = Seen()
        let events = await connection.events()
        let states = await connection.states()
        let eventTask = Task { for await event in events { await seen.add(event) } }
        let stateTask = Task { for await state in states { await seen.add(state) } }
        let running = Task { await connection.run() }
        defer { running.cancel(); eventTask.cancel(); stateTask.cancel() }

        _ = try await waitFor(.seconds(20)) { await seen.ups == 1 }
        try #require(await seen.ups == 1)
        let started = try await connection.session().patientBolus()
        #expect(started.outcome == .started)
        _ = try await waitFor(.seconds(2)) { await seen.events.contains { $0.kind == .bolusStarted } }

        kill(emulator.processIdentifier, SIGKILL)
        emulator.waitUntilExit()
        let downAfter = try await waitFor(.seconds(5)) { await seen.downs >= 1 }
        #expect(downAfter < .seconds(3), "link down reported within seconds")

        (emulator, _) = try await ExecutableTests.startEmulator(in: directory, arguments: arguments)
        let upAfter = try await waitFor(.seconds(8)) { await seen.ups >= 2 }
        #expect(upAfter < .seconds(5), "reconnected within 5 s of the port returning")

        // The restarted pump is the same pump: its log goes on, its bolus still runs.
        let refused = try await connection.session().patientBolus()
        #expect(refused.outcome == .refusedBolusInProgress)
        let last = try await connection.session().status().lastEventSequence
        _ = try await waitFor(.seconds(3)) { await seen.events.last?.sequence == last }
        let sequences = await seen.events.map(\.sequence)
        #expect(sequences == Array(1...last), "every event once, in order, across the restart")
        running.cancel()
        await running.value
    }
}
