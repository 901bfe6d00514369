import Foundation
import PumpModel
import PumpProtocol
import Testing

@Suite struct PumpStateTests {
    @Test func refillWithAndWithoutDiscrepancy() throws {
        // 1 µL/min; after 100 min 20 000 − 100 = 19 900 µL expected.
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        let close = try pump.refill(aspiratedMicroliters: 18_900, newVolumeMicroliters: 20_000, nowMs: monday + 100 * minute, requestId: 2)
        // |19 900 − 18 900| = 1000: not more than 1000 µL, no discrepancy.
        #expect(close == RefillResult(expectedMicroliters: 19_900, aspiratedMicroliters: 18_900, discrepancy: false,
                                      reservoirMicroliters: 20_000, eventSequence: close.eventSequence))
        let event = try #require(pump.state.events.last)
        #expect(event.kind == .refilled && event.code == 0 && event.value1 == 18_900 && event.value2 == 20_000 && event.requestId == 2)
        // 1001 µL short: flagged on a 20 mL pump.
        let far = try pump.refill(aspiratedMicroliters: 18_899, newVolumeMicroliters: 20_000, nowMs: monday + 200 * minute, requestId: 3)
        #expect(far.expectedMicroliters == 19_900 && far.discrepancy)
        #expect(pump.state.events.last?.code == 1)

        // A 40 mL pump allows 2000 µL: 1999 passes, 2001 is flagged.
        var large = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 30_000, capacity: 40_000)
        #expect(large.configuration.refillDiscrepancyLimitMicroliters == 2000)
        #expect(try !large.refill(aspiratedMicroliters: 28_001, newVolumeMicroliters: 40_000, nowMs: monday, requestId: 2).discrepancy)
        #expect(try large.refill(aspiratedMicroliters: 37_999, newVolumeMicroliters: 40_000, nowMs: monday, requestId: 3).discrepancy)
    }

    @Test func refillAboveCapacityIsRefusedAndChangesNothing() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 500)
        pump.advance(to: monday + hour)
        let before = pump
        // SPEC §12: the new or the aspirated volume above capacity; detail the capacity.
        #expect(throws: PumpRefusal.volumeExceedsCapacity(capacityMicroliters: 20_000)) {
            try pump.refill(aspiratedMicroliters: 440, newVolumeMicroliters: 40_000, nowMs: monday + hour, requestId: 2)
        }
        #expect(throws: PumpRefusal.volumeExceedsCapacity(capacityMicroliters: 20_000)) {
            try pump.refill(aspiratedMicroliters: 20_001, newVolumeMicroliters: 20_000, nowMs: monday + hour, requestId: 2)
        }
        #expect(pump == before)
        let refusal = PumpRefusal.volumeExceedsCapacity(capacityMicroliters: 20_000)
        #expect(refusal.errorCode == .volumeExceedsCapacity && refusal.detail == 20_000)
        // Both at exactly the capacity: accepted.
        #expect(try pump.refill(aspiratedMicroliters: 20_000, newVolumeMicroliters: 20_000, nowMs: monday + hour, requestId: 3).discrepancy)
    }

    @Test func refillExpectsTheReportedReservoir() throws {
        // 1000 µg/day at 7000 µg/mL for a day leaves 19 857.142 µL, reported 19 858: that is
        // what the refill expects. The limit is fixed by the capacity (§12), not configurable.
        var pump = try makePump(program: Program.continuous(programId: 1, drug: .baclofen,
                                                            concentrationMicrogramsPerMilliliter: 7000, doseRateMicrogramsPerDay: 1000))
        let result = try pump.refill(aspiratedMicroliters: 18_858, newVolumeMicroliters: 20_000, nowMs: monday + day, requestId: 2)
        #expect(result.expectedMicroliters == 19_858 && !result.discrepancy)
        #expect(PumpConfiguration(reservoirCapacityMicroliters: 20_000).refillDiscrepancyLimitMicroliters == 1000)
        #expect(PumpConfiguration(reservoirCapacityMicroliters: 20_001).refillDiscrepancyLimitMicroliters == 2000)
    }

    @Test func refillAfterEmptyRestartsDelivery() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 2100)
        pump.advance(to: monday + 2 * day) // empty after 2100 min
        #expect(pump.status.therapyState == .stopped)
        let refill = try pump.refill(aspiratedMicroliters: 0, newVolumeMicroliters: 20_000, nowMs: monday + 2 * day, requestId: 2)
        #expect(refill.expectedMicroliters == 0 && !refill.discrepancy)
        // Both conditions gone, both still unacknowledged: latched.
        let both = AlarmCode.reservoirLow.mask | AlarmCode.reservoirEmpty.mask
        #expect(pump.status.alarmConditionMask == 0 && pump.status.alarmUnacknowledgedMask == both)
        // refilled, then the alarm changes it caused, in ascending AlarmCode order (§11.2, §12),
        // all with the refill's request id.
        let tail = pump.state.events.suffix(3)
        #expect(tail.map(\.kind) == [.refilled, .alarmCleared, .alarmCleared])
        #expect(tail.map(\.code) == [0, AlarmCode.reservoirEmpty.rawValue, AlarmCode.reservoirLow.rawValue])
        #expect(tail.allSatisfy { $0.requestId == 2 })
        #expect(pump.status.therapyState == .running)
        #expect(pump.status(nowMs: monday + 2 * day + hour).reservoirMicroliters == 19_940)
    }

    @Test func setClockMovesTheScheduleNotTheDelivery() throws {
        // flexProgram: Monday 03:00 runs 600 µg/day. At 03:00 the clock is set to 13:00 (UTC+0).
        var pump = try makePump(program: flexProgram)
        let delivered = pump.status(nowMs: monday + 3 * hour).totalDeliveredMicrograms // 600 × 3/24 = 75
        #expect(delivered == 75)
        let change = try pump.setClock(timeMs: monday + 13 * hour, utcOffsetMinutes: 0, nowMs: monday + 3 * hour, requestId: 2)
        #expect(change.previousTimeMs == monday + 3 * hour && change.timeMs == monday + 13 * hour)
        let event = try #require(pump.state.events.last)
        #expect(event.kind == .clockSet && event.timeMs == monday + 13 * hour)
        #expect(event.value1 == UInt32(truncatingIfNeeded: (monday + 3 * hour) / 1000))
        #expect(event.value2 == UInt32(truncatingIfNeeded: (monday + 13 * hour) / 1000))
        // Nothing delivered by the change itself; the weekday 12:00 step now runs.
        #expect(pump.status.totalDeliveredMicrograms == 75)
        #expect(pump.status.currentDoseRateMicrogramsPerDay == 2400)
        #expect(pump.status.pumpTimeMs == monday + 13 * hour)
        // One reference hour later: 2400 / 24 = 100 µg more; the pump clock reads 14:00.
        let later = pump.status(nowMs: monday + 4 * hour)
        #expect(later.totalDeliveredMicrograms == 175 && later.pumpTimeMs == monday + 14 * hour)
        // A local offset: UTC+10 makes 14:00 UTC Tuesday 00:00 local → Monday's 22:00 step, 600.
        _ = try pump.setClock(timeMs: monday + 14 * hour, utcOffsetMinutes: 600, nowMs: monday + 4 * hour, requestId: 3)
        #expect(pump.status.currentDoseRateMicrogramsPerDay == 600)
        #expect(throws: PumpRefusal.invalidArgument(field: 1)) {
            try pump.setClock(timeMs: monday, utcOffsetMinutes: 901, nowMs: monday + 4 * hour, requestId: 4)
        }
    }

    @Test func eventSequencesAreContiguousAndTheLogKeepsTheNewest() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)],
                                                     patient: PatientBolusSettings(doseMicrograms: 5, durationMinutes: 1, lockoutMinutes: 10, maxPerDay: 48)))
        for index in 0..<40 {
            _ = try pump.patientBolus(nowMs: monday + UInt64(index) * 5 * minute, requestId: UInt32(10 + index))
        }
        let events = pump.state.events
        #expect(events.map(\.sequence) == Array(1...UInt32(events.count)))
        #expect(events.first?.kind == .pumpStarted && events[1].kind == .programActivated)
        #expect(pump.status.lastEventSequence == UInt32(events.count))
        // Time never goes backwards in the log.
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.timeMs <= $1.timeMs })

        // A log of 5 keeps the newest 5 and reports the oldest.
        var small = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), eventLogCapacity: 5)
        for index in 0..<10 { _ = small.acknowledgeAlarms(mask: 0, nowMs: monday, requestId: 0); small.injectFault(.motorStall, nowMs: monday + UInt64(index)); small.clearFault(.motorStall, nowMs: monday + UInt64(index)) }
        #expect(small.state.events.count == 5)
        let last = small.state.lastEventSequence
        #expect(small.state.oldestEventSequence == last - 4)
        let page = small.events(from: 1, maxCount: 3)
        #expect(page.oldestSequence == last - 4 && page.lastSequence == last)
        #expect(page.events.map(\.sequence) == [last - 4, last - 3, last - 2])
        #expect(small.events(from: last, maxCount: 38).events.map(\.sequence) == [last])
        #expect(small.events(from: last + 1, maxCount: 38).events.isEmpty)
    }

    /// One advance versus thousands of random small ones, with the same operations at the same
    /// instants, ends in the identical state: delivery, alarms, battery, events.
    @Test(arguments: [1 as UInt64, 42, 0xDEAD_BEEF])
    func advancingInOneStepOrManyIsIdentical(seed: UInt64) throws {
        // Flex basal at an awkward concentration (7000 µg/mL: volumes never come out even),
        // periodic boluses, a patient bolus setting; the reservoir empties around day 8.
        let program = makeProgram(
            concentration: 7000, threshold: 1500,
            steps: [everyDay(0, 9000), everyDay(421, 17_333), DoseStep(dayMask: 0b0101010, startMinute: 1001, doseRateMicrogramsPerDay: 4111)],
            periodic: [PeriodicBolus(dayMask: 0x55, startMinute: 77, doseMicrograms: 1234, durationMinutes: 37)],
            patient: PatientBolusSettings(doseMicrograms: 333, durationMinutes: 7, lockoutMinutes: 45, maxPerDay: 8)
        )
        let battery = BatteryModel(capacityMicroampHours: 5000, idleDrainMicroampHoursPerDay: 333,
                                   drainMicroampHoursPerMilliliter: 777, electiveReplacementReserveMicroampHours: 1200)
        var single = try makePump(program: program, reservoir: 3000, battery: battery)
        var split = single
        // The operations: (time, action).
        let operations: [(UInt64, (inout Pump, UInt64) throws -> Void)] = [
            (2 * hour + 17, { pump, now in _ = try pump.patientBolus(nowMs: now, requestId: 2) }),
            (2 * hour + 30 * minute, { pump, now in _ = try pump.patientBolus(nowMs: now, requestId: 3) }),
            (day + 5 * hour + 3, { pump, now in
                _ = try pump.clinicianBolus(kind: .bridge, doseMicrograms: 999, volumeMicroliters: 0, durationMinutes: 13, nowMs: now, requestId: 4)
            }),
            (2 * day + 11, { pump, now in _ = try pump.suspend(nowMs: now, requestId: 5) }),
            (2 * day + 3 * hour + 1, { pump, now in _ = try pump.resume(nowMs: now, requestId: 6) }),
            (4 * day + 7, { pump, now in _ = try pump.setClock(timeMs: monday + 4 * day + 5 * hour, utcOffsetMinutes: -300, nowMs: now, requestId: 7) }),
            (12 * day, { pump, now in _ = try pump.refill(aspiratedMicroliters: 0, newVolumeMicroliters: 19_999, nowMs: now, requestId: 8) }),
        ]
        let end = monday + 20 * day
        var generator = SplitMix64(state: seed)
        var steps = 0
        for (offset, operation) in operations + [(end - monday, { _, _ in })] {
            let at = monday + offset
            single.advance(to: at)
            while split.state.referenceTimeMs < at {
                // Mostly small steps, some of a single millisecond, a few of hours.
                let size: UInt64 = switch generator.next() % 10 {
                case 0: 1
                case 1: generator.next() % (3 * hour)
                default: generator.next() % (10 * minute)
                }
                split.advance(to: min(at, split.state.referenceTimeMs + size))
                steps += 1
            }
            try operation(&single, at)
            try operation(&split, at)
        }
        #expect(steps > 2000)
        #expect(split == single)
        // The run did go through the interesting parts.
        #expect(!single.alarmEvents(.alarmRaised, .reservoirEmpty).isEmpty)
        #expect(!single.alarmEvents(.alarmRaised, .reservoirLow).isEmpty)
        #expect(!single.events(.bolusCompleted).isEmpty)
        #expect(single.state.reservoirMicroliters <= 19_999)
    }

    @Test func stateSurvivesACodableRoundTrip() throws {
        var pump = try makePump(program: flexProgram)
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 60,
                                    nowMs: monday + 30 * minute, requestId: 2)
        pump.advance(to: monday + hour)
        pump.lastExecutedRequestId = 2
        let data = try JSONEncoder().encode(pump.state)
        let decoded = try JSONDecoder().decode(PumpState.self, from: data)
        #expect(decoded == pump.state)
        var restored = Pump(state: decoded)
        #expect(restored.status == pump.status)
        // Restored, it carries on exactly as the original.
        pump.advance(to: monday + 3 * day)
        restored.advance(to: monday + 3 * day)
        #expect(restored == pump)
        #expect(restored.status.lastExecutedRequestId == 2)
    }

    @Test func statusFillsEveryField() throws {
        var pump = try makePump(program: flexProgram)
        let status = pump.status(nowMs: monday + 13 * hour)
        #expect(status.pumpTimeMs == monday + 13 * hour)
        #expect(status.reservoirCapacityMicroliters == 20_000)
        #expect(status.activeProgramId == 1 && status.activeProgramChecksum == flexProgram.checksum)
        #expect(status.currentDoseRateMicrogramsPerDay == 2400 && status.currentFlowMicrolitersPerDay == 2400)
        #expect(status.lastEventSequence == 2) // pumpStarted, programActivated
        #expect(status.patientBolusAvailableInSeconds == Pump.patientBolusNotAvailable)
        try status.validate() // encodable on the wire

        let idle = Pump(nowMs: monday)
        #expect(idle.status.therapyState == .stopped && idle.status.activeProgramId == 0)
        #expect(idle.state.events.map(\.kind) == [.pumpStarted])
    }
}
