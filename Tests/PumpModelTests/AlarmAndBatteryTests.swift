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

    @Test func alarmEventsOfOneCauseAreInAscendingAlarmCodeOrder() throws {
        // Threshold 0: low and empty at the same instant (1 µL/min from 60 µL: at 60 min).
        var pump = try makePump(program: makeProgram(threshold: 0, steps: [everyDay(0, 1440)]), reservoir: 60)
        pump.advance(to: monday + 2 * hour)
        let raised = pump.events(.alarmRaised)
        #expect(raised.map(\.code) == [AlarmCode.reservoirEmpty.rawValue, AlarmCode.reservoirLow.rawValue])
        #expect(raised.allSatisfy { $0.timeMs == monday + hour && $0.value1 == 0 && $0.requestId == 0 })

        // One acknowledgement of three alarms: ascending; lowBatteryReset's condition is cleared
        // by it, its alarmCleared right after its alarmAcknowledged (§11.2).
        pump.injectFault(.lowBatteryReset, nowMs: monday + 2 * hour)
        let count = pump.state.events.count
        let masks = pump.acknowledgeAlarms(mask: 0xFFFF_FFFF, nowMs: monday + 2 * hour, requestId: 5)
        let logged = pump.state.events.dropFirst(count)
        #expect(logged.map(\.kind) == [.alarmAcknowledged, .alarmAcknowledged, .alarmCleared, .alarmAcknowledged])
        #expect(logged.map(\.code) == [0, 4, 4, 8].map { UInt8($0) })
        #expect(logged.allSatisfy { $0.requestId == 5 })
        let present = AlarmCode.reservoirEmpty.mask | AlarmCode.reservoirLow.mask
        #expect(masks == AlarmMasks(conditionMask: present, unacknowledgedMask: 0))
    }

    @Test func suspendWithoutAProgramIsKeptAcrossActivation() throws {
        // SPEC §6.17: never refused; logs suspended if not already suspended. §9.6: activation
        // does not change the clinician suspension. §11.3: stopped without a program.
        var pump = Pump(nowMs: monday)
        let suspended = try pump.suspend(nowMs: monday, requestId: 2)
        #expect(suspended.therapyState == .stopped && suspended.eventSequence == 2)
        #expect(pump.state.events.last?.kind == .suspended && pump.state.events.last?.requestId == 2)
        _ = try pump.activate(makeProgram(steps: [everyDay(0, 1440)]), nowMs: monday, requestId: 3)
        #expect(pump.status.therapyState == .suspended)
        #expect(pump.status(nowMs: monday + hour).totalDeliveredMicrograms == 0)
        let resumed = try pump.resume(nowMs: monday + hour, requestId: 4)
        #expect(resumed.therapyState == .running && pump.state.events.last?.kind == .resumed)

        // Resume while a critical alarm stops therapy: allowed, the answer says stopped.
        _ = try pump.suspend(nowMs: monday + hour, requestId: 5)
        pump.injectFault(.motorStall, nowMs: monday + hour)
        #expect(try pump.resume(nowMs: monday + hour, requestId: 6).therapyState == .stopped)
        // And therapy restarts by itself when the condition clears, with no resumed event.
        let resumedCount = pump.events(.resumed).count
        pump.clearFault(.motorStall, nowMs: monday + hour)
        #expect(pump.status.therapyState == .running && pump.events(.resumed).count == resumedCount)
    }

    @Test func activationLogsTheProgramThenTheClearedChecksumAlarm() throws {
        var pump = try makePump(program: makeProgram(steps: [everyDay(0, 1440)]))
        pump.injectFault(.programChecksumError, nowMs: monday)
        let replacement = makeProgram(id: 2, steps: [everyDay(0, 1440)])
        let activation = try pump.activate(replacement, nowMs: monday + hour, requestId: 7)
        let tail = pump.state.events.suffix(2)
        #expect(tail.map(\.kind) == [.programActivated, .alarmCleared])
        #expect(tail.first?.sequence == activation.eventSequence && tail.first?.value1 == 2 && tail.first?.value2 == replacement.checksum)
        #expect(tail.last?.code == AlarmCode.programChecksumError.rawValue && tail.last?.requestId == 7)
        // An invalid program is refused with its rule number and changes nothing.
        let before = pump
        #expect(throws: PumpRefusal.programInvalid(.impossibleThreshold)) {
            try pump.activate(makeProgram(id: 3, threshold: 20_000), nowMs: monday + hour, requestId: 8)
        }
        #expect(PumpRefusal.programInvalid(.impossibleThreshold).detail == 9)
        #expect(pump == before)
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
