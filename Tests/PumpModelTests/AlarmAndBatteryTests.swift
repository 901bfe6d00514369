import PumpModel
import PumpProtocol
import Testing

@Suite struct AlarmAndBatteryTests {
    @Test func acknowledgedThenClearedDisappears() throws {
        // 1 µL/min; 2010 µL, threshold 2000: low reached after 10 min.
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]), reservoir: 2010)
        let low = AlarmCode.reservoirLow.mask
        pump.advance(to: monday + hour)
        // Active: condition and unacknowledged.
        #expect(pump.status.alarmConditionMask == low && pump.status.alarmUnacknowledgedMask == low)
        // Acknowledged: condition only.
        let acknowledged = pump.acknowledgeAlarms(mask: low, nowMs: monday + hour, requestId: 2)
        #expect(acknowledged == AlarmMasks(conditionMask: low, unacknowledgedMask: 0))
        #expect(pump.state.events.last?.kind == .alarmAcknowledged && pump.state.events.last?.requestId == 2)
        // Acknowledging again changes nothing and logs nothing.
        let count = pump.state.events.count
        _ = pump.acknowledgeAlarms(mask: low, nowMs: monday + hour, requestId: 3)
        #expect(pump.state.events.count == count)
        // Condition gone after a refill: the alarm disappears.
        _ = try pump.refill(aspiratedMicroliters: 1950, newVolumeMicroliters: 20_000, nowMs: monday + hour, requestId: 4)
        #expect(pump.status.alarmConditionMask == 0 && pump.status.alarmUnacknowledgedMask == 0)
        let cleared = try #require(pump.alarmEvents(.alarmCleared, .reservoirLow).first)
        #expect(cleared.requestId == 4 && cleared.value1 == 20_000)
    }

    @Test func clearedThenAcknowledgedPassesThroughLatched() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        let stall = AlarmCode.motorStall.mask
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10,
                                    nowMs: monday, requestId: 2)
        pump.injectFault(.motorStall, nowMs: monday + 5 * minute)
        #expect(pump.status.therapyState == .stopped)
        #expect(pump.events(.bolusInterrupted).first?.value1 == 50)
        #expect(pump.status.alarmConditionMask == stall && pump.status.alarmUnacknowledgedMask == stall)
        let stoppedAt = pump.status.totalDeliveredMicrograms // 5 basal + 50 bolus
        #expect(stoppedAt == 55)
        #expect(pump.status(nowMs: monday + hour).totalDeliveredMicrograms == 55)
        // Condition gone, not acknowledged: latched; delivery resumes.
        pump.clearFault(.motorStall, nowMs: monday + hour)
        #expect(pump.status.alarmConditionMask == 0 && pump.status.alarmUnacknowledgedMask == stall)
        #expect(pump.status.therapyState == .running)
        // Acknowledged: gone.
        _ = pump.acknowledgeAlarms(mask: 0xFFFF_FFFF, nowMs: monday + hour, requestId: 3)
        #expect(pump.status.alarmUnacknowledgedMask == 0)
        #expect(pump.status(nowMs: monday + 2 * hour).totalDeliveredMicrograms == 55 + 60)
    }

    @Test func lowBatteryResetStopsUntilAcknowledged() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        pump.injectFault(.lowBatteryReset, nowMs: monday)
        #expect(pump.status(nowMs: monday + hour).therapyState == .stopped)
        _ = pump.acknowledgeAlarms(mask: AlarmCode.lowBatteryReset.mask, nowMs: monday + hour, requestId: 2)
        #expect(pump.status.therapyState == .running)
        #expect(pump.status.alarmConditionMask == 0 && pump.status.alarmUnacknowledgedMask == 0)
    }

    @Test func programChecksumErrorIsClearedByANewProgram() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        pump.injectFault(.programChecksumError, nowMs: monday)
        #expect(pump.status.therapyState == .stopped)
        _ = try pump.activate(makeProgram(id: 2, steps: [everyDay(0, 1440)]), nowMs: monday + hour, requestId: 2)
        #expect(pump.status.therapyState == .running)
        #expect(pump.status.alarmConditionMask == 0)
        #expect(pump.status.totalDeliveredMicrograms == 0)
    }

    @Test func batteryCrossesElectiveReplacementThenEndOfService() throws {
        // 1000 µAh; 10 µAh/day idle; 1000 µAh/mL = 1 µAh per µL; reserve 100 µAh.
        // 10 µg/day at 1000 µg/mL = 10 µL/day: drain 10 + 10 = 20 µAh/day.
        // Elective replacement at 900 µAh used: day 45; end of service at 1000 µAh: day 50.
        let battery = BatteryModel(capacityMicroampHours: 1000, idleDrainMicroampHoursPerDay: 10,
                                   drainMicroampHoursPerMilliliter: 1000, electiveReplacementReserveMicroampHours: 100)
        var pump = try makePump(program: makeProgram(threshold: 0, steps: [everyDay(0, 10)]), battery: battery)
        #expect(pump.status.batteryState == .ok && pump.status.batteryPercent == 100)
        #expect(pump.status.batteryDaysToEndOfService == 50) // 1000 / 20
        pump.advance(to: monday + 45 * day - 1)
        #expect(pump.status.batteryState == .ok)
        pump.advance(to: monday + 45 * day)
        #expect(pump.status.batteryState == .electiveReplacement)
        #expect(pump.alarmEvents(.alarmRaised, .electiveReplacement).first?.timeMs == monday + 45 * day)
        #expect(pump.status.batteryPercent == 10 && pump.status.batteryDaysToEndOfService == 5)
        #expect(pump.status.therapyState == .running)

        // A single long step finds the same instants.
        var oneStep = try makePump(program: makeProgram(threshold: 0, steps: [everyDay(0, 10)]), battery: battery)
        oneStep.advance(to: monday + 60 * day)
        #expect(oneStep.alarmEvents(.alarmRaised, .electiveReplacement).first?.timeMs == monday + 45 * day)
        let endOfService = try #require(oneStep.alarmEvents(.alarmRaised, .batteryEndOfService).first)
        #expect(endOfService.timeMs == monday + 50 * day)
        let status = oneStep.status
        #expect(status.batteryState == .endOfService && status.batteryPercent == 0 && status.therapyState == .stopped)
        #expect(status.totalDeliveredMicroliters == 500) // 50 days × 10 µL, then nothing
    }
}
