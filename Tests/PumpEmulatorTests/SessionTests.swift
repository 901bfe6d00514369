import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Synchronization
import Testing

@Suite("Session against the emulated pump, over memory")
struct SessionTests {
    @Test func handshakeGivesIdentityAndStatus() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        let identity = try await rig.session.connect()
        #expect(identity.serialNumber == "TEST-0001")
        #expect(identity.reservoirCapacityMicroliters == 20_000)
        #expect(identity.protocolVersion == 2)
        #expect(await rig.session.isSealed)
        let status = try await rig.session.status()
        #expect(status.activeProgramId == 1)
        #expect(status.therapyState == .running)
        #expect(try await rig.session.ping(42) == 42)
    }

    @Test func changingRequestsAreAnnouncedBeforeSendingAndNotSentWhenRefused() async throws {
        struct NoRecord: Error {}
        let seen = Mutex<[(UInt32, MessageType)]>([])
        let refuse = Mutex(false)
        // No keepalive Pings: one between reading the id and sending would take it.
        let rig = MemoryRig.make(configuration: ResolutionTests.noPings, beforeSendingChange: { id, type in
            if refuse.withLock({ $0 }) { throw NoRecord() }
            seen.withLock { $0.append((id, type)) }
        })
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        _ = try await rig.session.status()
        let id = await rig.session.upcomingRequestID
        _ = try await rig.session.suspend()
        // Reads pass unannounced; the changing request is announced once, with its id.
        #expect(seen.withLock { $0.map(\.0) } == [id])
        #expect(seen.withLock { $0.map(\.1) } == [.suspend])

        refuse.withLock { $0 = true }
        await #expect(throws: SessionError.notSent(.resume, "NoRecord()")) { try await rig.session.resume() }
        // Not sent: the pump is still suspended.
        #expect(try await rig.session.status().therapyState == .suspended)
    }

    @Test func wrongKeyIsRefusedAtHandshake() async throws {
        let rig = MemoryRig.make(sessionKey: PairingKey.generate())
        defer { Task { await rig.stop() } }
        await #expect(throws: SessionError.authenticationFailed) { try await rig.session.connect() }
    }

    @Test func programPushReplacesTheActiveProgram() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let program = Program.test(id: 77, doseRateMicrogramsPerDay: 4000)
        let activated = try await rig.session.pushProgram(program)
        #expect(activated.programId == 77)
        #expect(activated.checksum == CRC32C.checksum(try program.encoded()))
        #expect(try await rig.session.activeProgram() == program)
        let status = try await rig.session.status()
        #expect(status.activeProgramId == 77)
        #expect(status.currentDoseRateMicrogramsPerDay == 4000)
    }

    @Test func anInvalidProgramIsRefusedAndTheOldOneKeepsRunning() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        var program = Program.test(id: 78)
        // Two steps starting at the same minute of the same day break a rule of SPEC §9.5.
        program.steps.append(DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 100))
        await #expect {
            try await rig.session.pushProgram(program)
        } throws: { error in
            guard case SessionError.pushFailed = error else { return false }
            return true
        }
        #expect(try await rig.session.status().activeProgramId == 1)
    }

    @Test func patientBolusLockoutIsEnforcedAndLogged() async throws {
        // 300 times real time: the 10-minute bolus ends after 2 s, the 60-minute lockout after
        // 12 s (at 600 times, a machine starved for a second let the bolus end before the
        // second request).
        let rig = MemoryRig.make(timeScale: 300)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let first = try await rig.session.patientBolus()
        #expect(first.outcome == .started)
        #expect(first.doseMicrograms == 250)
        #expect(try await rig.session.patientBolus().outcome == .refusedBolusInProgress)
        try await Task.sleep(for: .milliseconds(2100))
        let third = try await rig.session.patientBolus()
        #expect(third.outcome == .refusedLockout)
        #expect(third.nextAllowedInSeconds > 0 && third.nextAllowedInSeconds <= 50 * 60)
        let (_, events) = try await rig.session.readEvents(from: 1)
        #expect(events.filter { $0.kind == .bolusStarted }.count == 1)
        #expect(events.filter { $0.kind == .bolusCompleted }.count == 1)
        #expect(events.filter { $0.kind == .patientBolusRefused }.count == 2)
    }

    @Test func refusalsChangeNothing() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let before = try await rig.session.status()
        await #expect(throws: SessionError.refused(.volumeExceedsCapacity, detail: 20_000, .refill)) {
            try await rig.session.refill(aspiratedMicroliters: 1000, newVolumeMicroliters: 40_000)
        }
        await #expect(throws: SessionError.refused(.therapyNotSuspended, detail: UInt32(TherapyState.running.rawValue), .resume)) {
            try await rig.session.resume()
        }
        let after = try await rig.session.status()
        #expect(after.reservoirMicroliters == before.reservoirMicroliters)
        #expect(after.lastEventSequence == before.lastEventSequence)
    }

    @Test func suspendResumeRefillAndClock() async throws {
        let rig = MemoryRig.make(initialVolumeMicroliters: 5000)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        #expect(try await rig.session.suspend().therapyState == .suspended)
        #expect(try await rig.session.status().currentDoseRateMicrogramsPerDay == 0)
        #expect(try await rig.session.resume().therapyState == .running)
        let refill = try await rig.session.refill(aspiratedMicroliters: 4990, newVolumeMicroliters: 18_000)
        #expect(refill.discrepancy == 0)
        #expect(refill.reservoirMicroliters == 18_000)
        let clock = try await rig.session.setClock(timeMs: MemoryRig.startMs + 3_600_000, utcOffsetMinutes: 60)
        #expect(clock.timeMs == MemoryRig.startMs + 3_600_000)
        let status = try await rig.session.status()
        #expect(status.utcOffsetMinutes == 60)
        #expect(status.pumpTimeMs >= MemoryRig.startMs + 3_600_000)
    }

    @Test func manyEventsDownloadInOrderWithoutGaps() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        // 300 suspend/resume pairs: 600 events beyond the first two.
        for _ in 0..<300 {
            _ = await rig.pump.withDevice { device, now in
                _ = device.suspend(nowMs: now, requestID: 0)
                _ = device.resume(nowMs: now, requestID: 0)
            }
        }
        try await rig.session.connect()
        let (oldest, events) = try await rig.session.readEvents(from: 1)
        #expect(oldest == 1)
        #expect(events.count == 602)
        #expect(events.map(\.sequence) == Array(1...602))
        let (_, tail) = try await rig.session.readEvents(from: 590)
        #expect(tail.map(\.sequence) == Array(590...602))
    }

    @Test func telemetryStreamsToSeveralConsumers() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let first = await rig.session.telemetry()
        let second = await rig.session.telemetry()
        try await rig.session.setTelemetry(intervalMs: 50)
        var a = first.makeAsyncIterator()
        var b = second.makeAsyncIterator()
        let one = await a.next()
        let two = await b.next()
        #expect(one?.activeProgramId == 1)
        #expect(two?.activeProgramId == 1)
    }
}
