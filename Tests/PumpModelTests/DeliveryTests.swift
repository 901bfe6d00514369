import PumpModel
import PumpProtocol
import Testing

@Suite struct DeliveryTests {
    @Test func continuousRateOverThirtyDaysToTheMicroliter() throws {
        // 1000 µg/day at 7000 µg/mL: 30 days = 30 000 µg = 30 000 × 1000 / 7000 = 4285.714 µL.
        // Delivered: 4285 whole µL; left: 20 000 − 4285.714 = 15 714.286 µL, reported rounded up
        // (15 715) so that SPEC §11.1's conditions on the reported volume hold exactly.
        let program = Program.continuous(programId: 1, drug: .morphine, concentrationMicrogramsPerMilliliter: 7000,
                                         doseRateMicrogramsPerDay: 1000)
        var oneStep = try makePump(program: program)
        let status = oneStep.status(nowMs: monday + 30 * day)
        #expect(status.totalDeliveredMicrograms == 30_000)
        #expect(status.totalDeliveredMicroliters == 4285)
        #expect(status.reservoirMicroliters == 15_715)
        // Flow now: 1000 × 1000 / 7000 = 142.857 → 142 µL/day.
        #expect(status.currentDoseRateMicrogramsPerDay == 1000)
        #expect(status.currentFlowMicrolitersPerDay == 142)
        #expect(status.therapyState == .running)

        // The same month in hourly steps lands on the identical exact state.
        var hourly = try makePump(program: program)
        for hourIndex in 1...(30 * 24) { hourly.advance(to: monday + UInt64(hourIndex) * hour) }
        #expect(hourly == oneStep)
        // And the pure arithmetic agrees.
        let scheduled = program.scheduledDelivery(fromUTCMs: monday, toUTCMs: monday + 30 * day, utcOffsetMinutes: 0)
        #expect(scheduled.micrograms.quotient == 30_000 && scheduled.microliters.quotient == 4285)
    }

    @Test func flexStepsAcrossMidnightAndWeekdayOnlyStep() throws {
        // flexProgram at 1000 µg/mL (1 µg = 1 µL). Monday: 1500 µg (see ProgramMathTests).
        var pump = try makePump(program: flexProgram)
        #expect(pump.status(nowMs: monday).currentDoseRateMicrogramsPerDay == 600)
        // Monday 00:00 → 12:00: 600 × 6 h + 1200 × 6 h = (3600 + 7200) / 24 = 450 µg.
        #expect(pump.status(nowMs: monday + 12 * hour).totalDeliveredMicrograms == 450)
        #expect(pump.status.currentDoseRateMicrogramsPerDay == 2400)
        #expect(pump.status(nowMs: monday + day).totalDeliveredMicrograms == 1500)
        // Saturday 13:00 runs the every-day 06:00 step, not the weekday one.
        #expect(pump.status(nowMs: monday + 5 * day + 13 * hour).currentDoseRateMicrogramsPerDay == 1200)
        // Whole week: 5 × 1500 + 2 × 1000 = 9500 µg = 9500 µL; reservoir 20 000 − 9500 = 10 500.
        let week = pump.status(nowMs: monday + 7 * day)
        #expect(week.totalDeliveredMicrograms == 9500)
        #expect(week.totalDeliveredMicroliters == 9500)
        #expect(week.reservoirMicroliters == 10_500)
    }

    @Test func periodicBoluses() throws {
        // No basal; 300 µg over 30 min at 08:00 every day, 1000 µg/mL.
        let program = makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 480, doseMicrograms: 300, durationMinutes: 30)])
        var pump = try makePump(program: program)
        // 08:15: half of it, 150 µg; 150 µL still to come.
        let during = pump.status(nowMs: monday + 8 * hour + 15 * minute)
        #expect(during.totalDeliveredMicrograms == 150)
        #expect(during.bolusActive == BolusKind.periodic.rawValue)
        #expect(during.bolusRemainingMicroliters == 150)
        #expect(during.currentDoseRateMicrogramsPerDay == 0) // basal only
        let after = pump.status(nowMs: monday + 2 * day)
        #expect(after.totalDeliveredMicrograms == 600) // two days × 300
        #expect(after.bolusActive == 0)
        let started = pump.events(.bolusStarted)
        let completed = pump.events(.bolusCompleted)
        #expect(started.map(\.timeMs) == [monday + 8 * hour, monday + day + 8 * hour])
        #expect(completed.map(\.timeMs) == [monday + 8 * hour + 30 * minute, monday + day + 8 * hour + 30 * minute])
        #expect(completed.allSatisfy { $0.code == BolusKind.periodic.rawValue && $0.value1 == 300 && $0.value2 == 300 && $0.requestId == 0 })
    }

    @Test func periodicBolusesStartOnTheirDaysAndMinutesOnly() throws {
        // Mondays 08:00, every day 12:00, Wednesdays and Fridays 20:00: a week of starts.
        let program = makeProgram(periodic: [
            PeriodicBolus(dayMask: 0b1, startMinute: 480, doseMicrograms: 100, durationMinutes: 10),
            PeriodicBolus(dayMask: 0x7F, startMinute: 720, doseMicrograms: 50, durationMinutes: 5),
            PeriodicBolus(dayMask: 0b1_0100, startMinute: 1200, doseMicrograms: 200, durationMinutes: 10),
        ])
        var pump = try makePump(program: program)
        _ = pump.status(nowMs: monday + 7 * day)
        var expected: [(UInt64, UInt32)] = [(monday + 8 * hour, 100)]
        for weekday in 0..<7 as Range<UInt64> {
            expected.append((monday + weekday * day + 12 * hour, 50))
            if weekday == 2 || weekday == 4 { expected.append((monday + weekday * day + 20 * hour, 200)) }
        }
        let started = pump.events(.bolusStarted)
        #expect(started.map(\.timeMs) == expected.map(\.0))
        #expect(started.map(\.value1) == expected.map(\.1))
        #expect(pump.status(nowMs: monday + 7 * day).totalDeliveredMicrograms == 850)  // 100 + 7 × 50 + 2 × 200
    }

    @Test func clinicianBolusOnTopOfBasal() throws {
        // 1440 µg/day = 1 µg/min at 1000 µg/mL (1 µL/min).
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        let start = try pump.clinicianBolus(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10,
                                            nowMs: monday + hour, requestId: 7)
        #expect(start.doseMicrograms == 100 && start.volumeMicroliters == 100)
        #expect(start.startedAtMs == monday + hour && start.endsAtMs == monday + hour + 10 * minute)
        // A second one while it runs is refused; detail the kind running.
        #expect(throws: PumpRefusal.bolusInProgress(.single)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 1,
                                    nowMs: monday + hour + minute, requestId: 8)
        }
        // 70 min: basal 70 µg + bolus 100 µg = 170 µg.
        let status = pump.status(nowMs: monday + hour + 10 * minute)
        #expect(status.totalDeliveredMicrograms == 170)
        #expect(status.bolusActive == 0)
        let completed = try #require(pump.events(.bolusCompleted).first)
        #expect(completed.requestId == 7 && completed.value1 == 100 && completed.value2 == 100)
        #expect(completed.timeMs == monday + hour + 10 * minute)

        // Priming by volume: 50 µL at 1000 µg/mL = 50 µg.
        let priming = try pump.clinicianBolus(kind: .priming, doseMicrograms: 0, volumeMicroliters: 50, durationMinutes: 5,
                                              nowMs: monday + 2 * hour, requestId: 9)
        #expect(priming.doseMicrograms == 50 && priming.volumeMicroliters == 50)
    }

    @Test func clinicianBolusRefusals() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 5000)
        let now = monday + hour
        #expect(throws: PumpRefusal.invalidArgument(field: 0)) {
            try pump.clinicianBolus(kind: .patient, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 1, nowMs: now, requestId: 2)
        }
        #expect(throws: PumpRefusal.invalidArgument(field: 2)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 1, volumeMicroliters: 1, durationMinutes: 1, nowMs: now, requestId: 2)
        }
        // The dose field breaks the rule first: detail 1.
        #expect(throws: PumpRefusal.invalidArgument(field: 1)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 0, volumeMicroliters: 5, durationMinutes: 1, nowMs: now, requestId: 2)
        }
        #expect(throws: PumpRefusal.invalidArgument(field: 1)) {
            try pump.clinicianBolus(kind: .priming, doseMicrograms: 5, volumeMicroliters: 0, durationMinutes: 1, nowMs: now, requestId: 2)
        }
        #expect(throws: PumpRefusal.invalidArgument(field: 3)) {
            try pump.clinicianBolus(kind: .bridge, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 0, nowMs: now, requestId: 2)
        }
        // 5000 µL left (minus an hour of 1 µL/min = 4940); 5000 µg needs 5000 µL, 4941 µL too.
        // detail: the reservoir in µL.
        let before = pump
        #expect(throws: PumpRefusal.reservoirEmpty(reservoirMicroliters: 4940)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 5000, volumeMicroliters: 0, durationMinutes: 60, nowMs: now, requestId: 2)
        }
        #expect(throws: PumpRefusal.reservoirEmpty(reservoirMicroliters: 4940)) {
            try pump.clinicianBolus(kind: .priming, doseMicrograms: 0, volumeMicroliters: 4941, durationMinutes: 60, nowMs: now, requestId: 2)
        }
        #expect(pump == before)
        let empty = PumpRefusal.reservoirEmpty(reservoirMicroliters: 4940)
        #expect(empty.errorCode == .reservoirEmpty && empty.detail == 4940)
        // Suspended: therapyNotRunning, detail the TherapyState (2).
        _ = try pump.suspend(nowMs: now, requestId: 3)
        #expect(throws: PumpRefusal.therapyNotRunning(.suspended)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 1, nowMs: now, requestId: 4)
        }
        #expect(PumpRefusal.therapyNotRunning(.suspended).detail == 2)
        _ = try pump.resume(nowMs: now, requestId: 5)
        // A critical alarm: detail alarmConditionMask & 0xFF (motor stall, bit 1; reservoirLow,
        // bit 8, is not part of it).
        pump.injectFault(.motorStall, nowMs: now)
        let stall = AlarmCode.motorStall.mask
        #expect(throws: PumpRefusal.criticalAlarmActive(criticalConditionMask: stall)) {
            try pump.clinicianBolus(kind: .single, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 1, nowMs: now, requestId: 6)
        }
        let critical = PumpRefusal.criticalAlarmActive(criticalConditionMask: stall)
        #expect(critical.errorCode == .criticalAlarmActive && critical.detail == 2)
        // No program: stopped, which is not a critical alarm: therapyNotRunning, detail 3.
        var idle = Pump(nowMs: monday)
        #expect(throws: PumpRefusal.therapyNotRunning(.stopped)) {
            try idle.clinicianBolus(kind: .single, doseMicrograms: 1, volumeMicroliters: 0, durationMinutes: 1, nowMs: monday, requestId: 2)
        }
        #expect(PumpRefusal.therapyNotRunning(.stopped).detail == 3)
    }

    @Test func suspendInterruptsABolusAndResumeContinuesBasal() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10,
                                    nowMs: monday, requestId: 2)
        // 4 of 10 minutes: 40 µg of the bolus, plus 4 µg basal.
        let suspended = try pump.suspend(nowMs: monday + 4 * minute, requestId: 3)
        #expect(suspended.therapyState == .suspended)
        let interrupted = try #require(pump.events(.bolusInterrupted).first)
        #expect(interrupted.value1 == 40 && interrupted.value2 == 40 && interrupted.requestId == 2)
        #expect(pump.state.events.last?.kind == .bolusInterrupted)
        // Suspending again is not refused (SPEC §6.17): nothing logged, eventSequence 0.
        let count = pump.state.events.count
        let again = try pump.suspend(nowMs: monday + 5 * minute, requestId: 4)
        #expect(again == TherapyChange(therapyState: .suspended, eventSequence: 0))
        #expect(pump.state.events.count == count)
        // Nothing while suspended.
        let during = pump.status(nowMs: monday + hour)
        #expect(during.totalDeliveredMicrograms == 44 && during.currentDoseRateMicrogramsPerDay == 0 && during.bolusActive == 0)
        _ = try pump.resume(nowMs: monday + hour, requestId: 5)
        // detail: the TherapyState (1, running).
        #expect(throws: PumpRefusal.therapyNotSuspended(.running)) { try pump.resume(nowMs: monday + hour, requestId: 6) }
        #expect(PumpRefusal.therapyNotSuspended(.running).detail == 1)
        // Another hour of basal only: 44 + 60 = 104; the bolus does not come back.
        #expect(pump.status(nowMs: monday + 2 * hour).totalDeliveredMicrograms == 104)
        #expect(pump.events(.bolusCompleted).isEmpty)
    }

    @Test func lowReservoirAlarmAtTheExactMillisecond() throws {
        // 7 µg/day at 1000 µg/mL = 7 µL/day = 7 units per ms; one µL = 86 400 000 units.
        // From 2001 µL, the 2000 µL threshold is reached after 86 400 000 / 7 = 12 342 857.14 ms,
        // i.e. at the 12 342 858th millisecond.
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 7)]), reservoir: 2001)
        pump.advance(to: monday + 12_342_857)
        #expect(pump.alarmEvents(.alarmRaised, .reservoirLow).isEmpty)
        // 2000.0000001 µL, reported rounded up: 2001, above the threshold, no alarm (SPEC §11.1:
        // reservoirLow while the reported volume ≤ the threshold).
        #expect(pump.status.reservoirMicroliters == 2001)
        var oneStep = try makePump(program: makeProgram(steps: [everyDay(0, 7)]), reservoir: 2001)
        oneStep.advance(to: monday + day)
        for candidate in [pump, oneStep] {
            var candidate = candidate
            candidate.advance(to: monday + day)
            let raised = try #require(candidate.alarmEvents(.alarmRaised, .reservoirLow).first)
            #expect(raised.timeMs == monday + 12_342_858)
            #expect(raised.value1 == 2000) // 1999.99999 µL left, reported rounded up: at the threshold
            #expect(candidate.status.alarmConditionMask == AlarmCode.reservoirLow.mask)
            #expect(candidate.status.therapyState == .running)
        }
    }

    @Test func emptyReservoirStopsDeliveryAtTheExactInstant() throws {
        // 1440 µg/day at 1000 µg/mL: 1 µL/min. 2100 µL, threshold 2000: low after 100 min,
        // empty after 2100 min = 126 000 000 ms.
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 2100)
        let status = pump.status(nowMs: monday + 30 * day)
        #expect(status.reservoirMicroliters == 0)
        #expect(status.totalDeliveredMicroliters == 2100)
        #expect(status.totalDeliveredMicrograms == 2100)
        #expect(status.therapyState == .stopped)
        #expect(status.currentFlowMicrolitersPerDay == 0)
        #expect(pump.alarmEvents(.alarmRaised, .reservoirLow).first?.timeMs == monday + 100 * minute)
        let empty = try #require(pump.alarmEvents(.alarmRaised, .reservoirEmpty).first)
        #expect(empty.timeMs == monday + 126_000_000 && empty.value1 == 0)
        #expect(status.alarmConditionMask == AlarmCode.reservoirLow.mask | AlarmCode.reservoirEmpty.mask)
    }

    @Test func aBolusEmptyingTheReservoirIsInterruptedAtTheExactInstant() throws {
        // Periodic 300 µg over 30 min at 08:00 = 10 µL/min at 1000 µg/mL; 100 µL left, no basal,
        // threshold 50: low at 08:05, empty at 08:10, 100 µg of the bolus delivered.
        let program = makeProgram(threshold: 50, periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 480, doseMicrograms: 300, durationMinutes: 30)])
        var pump = try makePump(program: program, reservoir: 100)
        pump.advance(to: monday + day)
        #expect(pump.alarmEvents(.alarmRaised, .reservoirLow).first?.timeMs == monday + 8 * hour + 5 * minute)
        #expect(pump.alarmEvents(.alarmRaised, .reservoirEmpty).first?.timeMs == monday + 8 * hour + 10 * minute)
        let interrupted = try #require(pump.events(.bolusInterrupted).first)
        #expect(interrupted.value1 == 100 && interrupted.value2 == 100)
        #expect(interrupted.timeMs == monday + 8 * hour + 10 * minute)
        #expect(pump.state.reservoirMicroliters == 0 && pump.state.reservoirFractionUnits == 0)
        #expect(pump.status.totalDeliveredMicrograms == 100)
    }

    @Test func aClinicianBolusDuringAPeriodicOneWaitsForIt() throws {
        // A periodic bolus due while a clinician bolus runs starts when that one ends.
        let program = makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 480, doseMicrograms: 30, durationMinutes: 30)])
        var pump = try makePump(program: program)
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 20, volumeMicroliters: 0, durationMinutes: 20,
                                    nowMs: monday + 7 * hour + 50 * minute, requestId: 2)
        pump.advance(to: monday + 10 * hour)
        let periodic = try #require(pump.events(.bolusStarted).last)
        #expect(periodic.code == BolusKind.periodic.rawValue && periodic.timeMs == monday + 8 * hour + 10 * minute)
        #expect(pump.status.totalDeliveredMicrograms == 50)
    }
}

@Suite struct ConcentrationChangeTests {
    @Test func aNewConcentrationKeepsTheReservoirVolume() throws {
        // 1000 µg/day at 7000 µg/mL for a day: 142.857 µL used, 19 857.142 µL left (19 858 shown:
        // reports round up).
        var pump = try makePump(program: Program.continuous(programId: 1, drug: .baclofen,
                                                            concentrationMicrogramsPerMilliliter: 7000, doseRateMicrogramsPerDay: 1000))
        pump.advance(to: monday + day)
        #expect(pump.status.reservoirMicroliters == 19_858)
        // Now 2000 µg/mL at 2000 µg/day: 1000 µL/day. The volume left is the same; after another
        // day 19 857.142 − 1000 = 18 857.142 µL (18 858), and 1000 + 2000 = 3000 µg delivered.
        _ = try pump.activate(Program.continuous(programId: 2, drug: .baclofen,
                                                 concentrationMicrogramsPerMilliliter: 2000, doseRateMicrogramsPerDay: 2000),
                              nowMs: monday + day, requestId: 2)
        #expect(pump.status.reservoirMicroliters == 19_858)
        let status = pump.status(nowMs: monday + 2 * day)
        #expect(status.reservoirMicroliters == 18_858)
        #expect(status.totalDeliveredMicrograms == 3000)
        #expect(status.totalDeliveredMicroliters == 1142) // 142.857 + 1000
    }
}
