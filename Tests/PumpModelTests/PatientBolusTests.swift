import PumpModel
import PumpProtocol
import Testing

@Suite struct PatientBolusTests {
    // 50 µg over 5 min, lockout 60 min from the start of the previous one, at most 3 per 24 h.
    static let settings = PatientBolusSettings(doseMicrograms: 50, durationMinutes: 5, lockoutMinutes: 60, maxPerDay: 3)
    static let program = makeProgram(steps: [everyDay(0, 1440)], patient: settings)

    @Test func lockoutAndDailyMaximumAreRefusedAndLogged() throws {
        var pump = try makePump(program: Self.program)
        #expect(pump.status.patientBolusAvailableInSeconds == 0)

        let first = try pump.patientBolus(nowMs: monday + hour, requestId: 10)
        #expect(first.outcome == .started && first.doseMicrograms == 50 && first.bolusesInLast24h == 1)
        #expect(first.nextAllowedInSeconds == 3600) // lockout 60 min from the start
        #expect(pump.state.events.last?.kind == .bolusStarted && pump.state.events.last?.requestId == 10)

        // 30 min later: inside the lockout, 1800 s to go.
        let early = try pump.patientBolus(nowMs: monday + hour + 30 * minute, requestId: 11)
        #expect(early.outcome == .refusedLockout && early.nextAllowedInSeconds == 1800 && early.bolusesInLast24h == 1)
        let refusal = try #require(pump.state.events.last)
        #expect(refusal.kind == .patientBolusRefused && refusal.code == PatientBolusOutcome.refusedLockout.rawValue)
        #expect(refusal.value1 == 1 && refusal.value2 == 1800 && refusal.requestId == 11)
        #expect(pump.status.patientBolusAvailableInSeconds == 1800)
        // 1 ms before the lockout ends: still 1 s (rounded up).
        #expect(pump.status(nowMs: monday + 2 * hour - 1).patientBolusAvailableInSeconds == 1)

        // Exactly at the end of the lockout: allowed.
        #expect(try pump.patientBolus(nowMs: monday + 2 * hour, requestId: 12).outcome == .started)
        let third = try pump.patientBolus(nowMs: monday + 3 * hour, requestId: 13)
        #expect(third.outcome == .started && third.bolusesInLast24h == 3)
        #expect(third.nextAllowedInSeconds == Pump.patientBolusNotAvailable)

        // Fourth in 24 h: refused by the daily maximum.
        let fourth = try pump.patientBolus(nowMs: monday + 5 * hour, requestId: 14)
        #expect(fourth.outcome == .refusedDailyMaximum && fourth.bolusesInLast24h == 3)
        #expect(fourth.nextAllowedInSeconds == Pump.patientBolusNotAvailable)
        #expect(pump.state.events.last?.code == PatientBolusOutcome.refusedDailyMaximum.rawValue)
        #expect(pump.status.patientBolusAvailableInSeconds == Pump.patientBolusNotAvailable)
        #expect(pump.status.patientBolusesInLast24h == 3)

        // 24 h after the first, it leaves the window: 2 in the last 24 h, allowed again.
        #expect(pump.status(nowMs: monday + day + hour).patientBolusesInLast24h == 2)
        #expect(try pump.patientBolus(nowMs: monday + day + hour, requestId: 15).outcome == .started)

        // Delivered by 26 h: basal 1 µg/min × 1560 min = 1560 µg, plus 4 patient boluses × 50 = 200.
        #expect(pump.status(nowMs: monday + day + 2 * hour).totalDeliveredMicrograms == 1560 + 200)
        #expect(pump.events(.patientBolusRefused).count == 2)
    }

    @Test func otherRefusals() throws {
        // Not enabled.
        var disabled = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        #expect(disabled.status.patientBolusAvailableInSeconds == Pump.patientBolusNotAvailable)
        #expect(try disabled.patientBolus(nowMs: monday, requestId: 2).outcome == .refusedNotEnabled)

        // Therapy suspended.
        var pump = try makePump(program: Self.program)
        _ = try pump.suspend(nowMs: monday, requestId: 2)
        #expect(try pump.patientBolus(nowMs: monday, requestId: 3).outcome == .refusedTherapyNotRunning)
        _ = try pump.resume(nowMs: monday, requestId: 4)

        // Another bolus running: wait until it ends (10 min clinician bolus, asked 4 min in).
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 10, volumeMicroliters: 0, durationMinutes: 10,
                                    nowMs: monday, requestId: 5)
        #expect(pump.status(nowMs: monday + 4 * minute).patientBolusAvailableInSeconds == 360)
        let busy = try pump.patientBolus(nowMs: monday + 4 * minute, requestId: 6)
        #expect(busy.outcome == .refusedBolusInProgress && busy.nextAllowedInSeconds == 360)

        // §6.20 lists no reservoir check: with 40 µL for a 50 µL dose (1000 µg/mL, no basal) the
        // bolus starts; at 4 min the reservoir is empty, reservoirEmpty stops therapy and the
        // bolus is interrupted with the 40 µg delivered. (The model used to refuse it with an
        // Error; the specification has no such refusal.)
        var dry = try makePump(program: makeProgram(threshold: 0, patient: Self.settings), reservoir: 40)
        let started = try dry.patientBolus(nowMs: monday, requestId: 2)
        #expect(started.outcome == .started && started.doseMicrograms == 50)
        let status = dry.status(nowMs: monday + hour)
        #expect(status.therapyState == .stopped && status.reservoirMicroliters == 0)
        let interrupted = try #require(dry.events(.bolusInterrupted).first)
        #expect(interrupted.value1 == 40 && interrupted.requestId == 2 && interrupted.timeMs == monday + 4 * minute)
        #expect(dry.alarmEvents(.alarmRaised, .reservoirEmpty).first?.timeMs == monday + 4 * minute)
    }

    /// SPEC §6.20's order: not enabled, therapy not running, bolus in progress, daily maximum,
    /// lockout. `nextAllowedInSeconds` counts both the lockout and the running bolus.
    @Test func refusalsAreEvaluatedInTheSpecifiedOrder() throws {
        var pump = try makePump(program: Self.program)
        #expect(try pump.patientBolus(nowMs: monday, requestId: 2).outcome == .started)
        // 2 min in: the bolus (5 min) runs and the lockout (60 min) too: bolus in progress comes
        // first; allowed again when both are over, 58 min from now.
        let during = try pump.patientBolus(nowMs: monday + 2 * minute, requestId: 3)
        #expect(during.outcome == .refusedBolusInProgress && during.nextAllowedInSeconds == 58 * 60)
        let refusal = try #require(pump.state.events.last)
        #expect(refusal.kind == .patientBolusRefused && refusal.value2 == 58 * 60 && refusal.requestId == 3)
        // After the bolus, inside the lockout.
        #expect(try pump.patientBolus(nowMs: monday + 10 * minute, requestId: 4).outcome == .refusedLockout)
        // Reach the daily maximum (3), then a clinician bolus: in progress before daily maximum,
        // and none allowed until something changes.
        #expect(try pump.patientBolus(nowMs: monday + hour, requestId: 5).outcome == .started)
        #expect(try pump.patientBolus(nowMs: monday + 2 * hour, requestId: 6).outcome == .started)
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 10, volumeMicroliters: 0, durationMinutes: 30,
                                    nowMs: monday + 3 * hour, requestId: 7)
        let busy = try pump.patientBolus(nowMs: monday + 3 * hour + minute, requestId: 8)
        #expect(busy.outcome == .refusedBolusInProgress && busy.nextAllowedInSeconds == Pump.patientBolusNotAvailable)
        #expect(try pump.patientBolus(nowMs: monday + 4 * hour, requestId: 9).outcome == .refusedDailyMaximum)
        // Suspended while a bolus runs: therapy not running comes first.
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 10, volumeMicroliters: 0, durationMinutes: 30,
                                    nowMs: monday + 4 * hour, requestId: 10)
        _ = try pump.suspend(nowMs: monday + 4 * hour + minute, requestId: 11)
        #expect(try pump.patientBolus(nowMs: monday + 4 * hour + minute, requestId: 12).outcome == .refusedTherapyNotRunning)
        // No program at all: not enabled.
        var idle = Pump(nowMs: monday)
        let none = try idle.patientBolus(nowMs: monday, requestId: 2)
        #expect(none.outcome == .refusedNotEnabled && none.nextAllowedInSeconds == Pump.patientBolusNotAvailable)
        #expect(idle.state.events.last?.kind == .patientBolusRefused && idle.state.events.last?.requestId == 2)
    }
}
