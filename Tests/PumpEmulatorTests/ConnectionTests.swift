import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// A connection that outlives its links: down when the cable is pulled, back when it returns,
/// and the event log followed without a gap.
@Suite("Connection across hang-ups", .serialized)
struct ConnectionTests {
    actor Collected {
        var states: [PumpConnection.State] = []
        var events: [Event] = []
        func add(_ state: PumpConnection.State) { states.append(state) }
        func add(_ event: Event) { events.append(event) }
        var upCount: Int { states.filter { if case .up = $0 { true } else { false } }.count }
        var downCount: Int { states.filter { if case .down = $0 { true } else { false } }.count }
    }

    private func waitFor(_ timeout: Duration, _ condition: () async -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        while !(await condition()) {
            guard ContinuousClock.now - start < timeout else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        return ContinuousClock.now - start
    }

    @Test func reconnectsAndCatchesUpTheEventLog() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-conn-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = PairingKey.generate()
        var configuration = PumpConfiguration()
        configuration.initialProgram = ModelPump.defaultProgram
        let startMs = VirtualClock.wallClockMs()
        let pump = EmulatedPump(
            endpoint: PumpEndpoint(device: ModelPump(Pump(configuration: configuration, nowMs: startMs)), key: key),
            clock: VirtualClock(startMs: startMs)
        )
        let linkPath = directory.appendingPathComponent("pump0").path
        let host = PumpHost(index: 0, serial: "CONN-1", pump: pump, linkPath: linkPath, portPath: nil, announce: { _ in })
        try await host.start()

        var options = PumpConnection.Options()
        options.telemetryIntervalMs = 100
        let connection = PumpConnection(path: linkPath, key: key, options: options)
        let collected = Collected()
        let states = await connection.states()
        let events = await connection.events()
        let stateTask = Task { for await state in states { await collected.add(state) } }
        let eventTask = Task { for await event in events { await collected.add(event) } }
        let running = Task { await connection.run() }
        defer { running.cancel() }

        _ = try await waitFor(.seconds(20)) { await collected.upCount == 1 }
        try #require(await collected.upCount == 1)
        _ = try await waitFor(.seconds(2)) { await collected.events.count >= 2 }
        let bolus = try await connection.session().patientBolus()
        #expect(bolus.outcome == .started)

        // Pull the cable for a second; meanwhile the pump logs an alarm.
        let hangUp = Task { await host.hangUp(downFor: .seconds(1)) }
        let downAfter = try await waitFor(.seconds(3)) { await collected.downCount >= 1 }
        #expect(downAfter < .seconds(3))
        await pump.withDevice { device, now in device.inject(.motorStall, nowMs: now) }
        await hangUp.value
        let upAfter = try await waitFor(.seconds(5)) { await collected.upCount >= 2 }
        #expect(upAfter < .seconds(5), "link back within 5 s of the port returning")
        let lastSequence = await pump.status().lastEventSequence
        _ = try await waitFor(.seconds(3)) { await collected.events.last?.sequence == lastSequence }

        let seen = await collected.events
        #expect(seen.map(\.sequence) == Array(1...lastSequence), "every event once, in order, no gap")
        #expect(seen.contains { $0.kind == .alarmRaised && $0.code == AlarmCode.motorStall.rawValue })
        #expect(seen.contains { $0.kind == .bolusStarted })

        running.cancel()
        await running.value
        stateTask.cancel()
        eventTask.cancel()
        await host.stop()
    }
}
