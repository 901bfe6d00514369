import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import Testing

/// Days of pump time in a second: what the emulator reports over the link matches the
/// program to the microlitre, and the low-reservoir alarm comes at the computed instant.
@Suite("Emulator over accelerated time")
struct AcceleratedTimeTests {
    @Test func deliveryAndLowReservoirAlarmToTheMicrolitre() async throws {
        // 3000 µg/day at 10 000 µg/mL = 300 µL/day. From 2500 µL, the 2000 µL threshold is
        // reached after 500 µL = 5/3 day = 144 000 000 ms.
        let program = Program.test(id: 5, doseRateMicrogramsPerDay: 3000, patientBolusMicrograms: 0)
        let rig = MemoryRig.make(program: program, initialVolumeMicroliters: 2500, timeScale: 864_000)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        try await Task.sleep(for: .milliseconds(300))  // about 3 days of pump time
        let status = try await rig.session.status()
        let elapsedMs = status.pumpTimeMs - MemoryRig.startMs
        #expect(elapsedMs > 2 * 86_400_000)
        // On a slow machine more time may pass: the reservoir then empties at 2500 µL.
        let expectedDelivered = min(300 * elapsedMs / 86_400_000, 2500)
        #expect(status.totalDeliveredMicroliters == expectedDelivered)
        let accounted = UInt64(status.reservoirMicroliters) + expectedDelivered
        #expect(accounted == 2500 || accounted == 2499)  // 2499: a microlitre under way
        #expect(status.alarmConditionMask & (1 << UInt32(AlarmCode.reservoirLow.rawValue)) != 0)
        if elapsedMs >= 720_000_000 {
            // 2500 µL at 300 µL/day: empty after 25/3 days.
            #expect(status.reservoirMicroliters == 0)
            #expect(status.therapyState == .stopped)
        }

        let (_, events) = try await rig.session.readEvents(from: 1)
        let raised = try #require(events.first { $0.kind == .alarmRaised && $0.code == AlarmCode.reservoirLow.rawValue })
        #expect(raised.timeMs == MemoryRig.startMs + 144_000_000)
        #expect(raised.value1 == 2000)
    }

    @Test func clinicianBolusAndAlarmAcknowledgement() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let bolus = try await rig.session.clinicianBolus(
            ClinicianBolusRequest(kind: .bridge, doseMicrograms: 500, volumeMicroliters: 0, durationMinutes: 30))
        #expect(bolus.kind == .bridge)
        #expect(bolus.volumeMicroliters == 50)
        #expect(bolus.endsAtMs - bolus.startedAtMs == 30 * 60_000)
        await #expect(throws: SessionError.refused(.bolusInProgress, detail: UInt32(BolusKind.bridge.rawValue), .clinicianBolus)) {
            try await rig.session.clinicianBolus(
                ClinicianBolusRequest(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 5))
        }

        await rig.pump.withDevice { device, now in device.inject(.motorStall, nowMs: now) }
        let stall = UInt32(1) << UInt32(AlarmCode.motorStall.rawValue)
        var status = try await rig.session.status()
        #expect(status.alarmConditionMask & stall != 0)
        #expect(status.alarmUnacknowledgedMask & stall != 0)
        #expect(status.therapyState == .stopped)
        let acknowledged = try await rig.session.acknowledgeAlarms(stall)
        #expect(acknowledged.alarmUnacknowledgedMask & stall == 0)
        #expect(acknowledged.alarmConditionMask & stall != 0)  // acknowledged, still present
        await rig.pump.withDevice { device, now in device.clear(.motorStall, nowMs: now) }
        status = try await rig.session.status()
        #expect(status.alarmConditionMask & stall == 0)
        #expect(status.therapyState == .running)
        let (_, events) = try await rig.session.readEvents(from: 1)
        #expect(events.contains { $0.kind == .bolusInterrupted })
        #expect(events.contains { $0.kind == .alarmAcknowledged && $0.code == AlarmCode.motorStall.rawValue })
    }
}
