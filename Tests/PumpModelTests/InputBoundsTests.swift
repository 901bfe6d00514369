import Foundation
import PumpModel
import PumpProtocol
import Testing

/// Values from a frame or a state file that no pump reaches: refused with the SPEC's Error, or
/// the state refused on restore, never a trap (SPEC §6.15, §10.1).
@Suite("Input bounds: clock values and restored states")
struct InputBoundsTests {
    let program = makeProgram(steps: [everyDay(0, 1000), everyDay(420, 3000)],
                              patient: PatientBolusSettings(doseMicrograms: 100, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 6))

    /// The frame of issue 15: SetClock 2^64 − 1 was accepted, and the next advance trapped.
    @Test(arguments: [UInt64.max, UInt64(Int64.max), PumpCalendar.latestTimeMs + 1])
    func aClockAfter9999IsRefusedAndChangesNothing(timeMs: UInt64) throws {
        var pump = try makePump(program: program)
        pump.advance(to: monday + hour)
        let before = pump
        #expect(throws: PumpRefusal.invalidArgument(field: 0)) {
            try pump.setClock(timeMs: timeMs, utcOffsetMinutes: 0, nowMs: monday + hour, requestId: 2)
        }
        #expect(pump == before)
        pump.advance(to: monday + 2 * day)
        #expect(pump.status.pumpTimeMs == monday + 2 * day)
    }

    /// The extremes that are allowed run on: the last millisecond of 9999 and the epoch, with
    /// the widest offsets, through days of delivery, boluses and the clock's own event.
    @Test(arguments: [(PumpCalendar.latestTimeMs, 900), (PumpCalendar.latestTimeMs, -900), (0, -900), (0, 900)] as [(UInt64, Int16)])
    func theExtremeClocksRunForAWeek(timeMs: UInt64, offsetMinutes: Int16) throws {
        var pump = try makePump(program: program)
        let change = try pump.setClock(timeMs: timeMs, utcOffsetMinutes: offsetMinutes, nowMs: monday, requestId: 2)
        #expect(change.timeMs == timeMs)
        _ = try pump.patientBolus(nowMs: monday + minute, requestId: 3)
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 50, volumeMicroliters: 0, durationMinutes: 30,
                                    nowMs: monday + hour, requestId: 4)
        pump.advance(to: monday + 7 * day)
        let status = pump.status
        #expect(status.therapyState == .running)
        #expect(status.totalDeliveredMicrograms > 7 * 1000)
        // Set to the last millisecond of 9999, the clock runs on past it: only setting it there is refused.
        #expect(status.pumpTimeMs == timeMs + 7 * day)
        #expect(pump.state.problem == nil)
    }

    /// A caller time after 9999 counts as 9999; the pump keeps working and never overflows.
    @Test func aCallerTimeAfter9999CountsAs9999() throws {
        var pump = try makePump(program: program, at: PumpCalendar.latestTimeMs - day)
        pump.advance(to: .max)
        #expect(pump.state.referenceTimeMs == PumpCalendar.latestTimeMs)
        _ = try pump.setClock(timeMs: PumpCalendar.latestTimeMs, utcOffsetMinutes: 900, nowMs: .max, requestId: 2)
        let bolus = try pump.clinicianBolus(kind: .single, doseMicrograms: 50, volumeMicroliters: 0, durationMinutes: 30,
                                            nowMs: .max, requestId: 3)
        #expect(bolus.endsAtMs >= bolus.startedAtMs)
        #expect(pump.status(nowMs: .max).pumpTimeMs == PumpCalendar.latestTimeMs)
    }

    @Test func aRestartLogsPumpStarted() throws {
        var pump = try makePump(program: program)
        pump.advance(to: monday + hour)
        let data = try JSONEncoder().encode(pump.state)
        var restored = try Pump(restoring: JSONDecoder().decode(PumpState.self, from: data))
        restored.restart(nowMs: monday + 2 * hour)
        let started = restored.events(.pumpStarted)
        #expect(started.count == 2)
        #expect(started.last?.timeMs == monday + 2 * hour)
        #expect(started.last?.sequence == restored.state.lastEventSequence)
    }

    /// A state as its file holds it, with one value replaced by `json`.
    private func state(_ pump: Pump, replacing path: [String], with json: String) throws -> PumpState {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(pump.state)) as? [String: Any])
        func replace(_ dictionary: [String: Any], _ path: ArraySlice<String>) -> [String: Any] {
            var dictionary = dictionary
            guard let first = path.first else { return dictionary }
            if path.count == 1 {
                dictionary[first] = value
            } else if let inner = dictionary[first] as? [String: Any] {
                dictionary[first] = replace(inner, path.dropFirst())
            } else if let array = dictionary[first] as? [Any], let index = Int(path.dropFirst().first ?? ""),
                      array.indices.contains(index), let element = array[index] as? [String: Any] {
                var array = array
                array[index] = replace(element, path.dropFirst(2))
                dictionary[first] = array
            }
            return dictionary
        }
        object = replace(object, path[...])
        return try JSONDecoder().decode(PumpState.self, from: JSONSerialization.data(withJSONObject: object))
    }

    /// Each of these states traps or misbehaves if run; restoring refuses it, naming the value.
    @Test(arguments: [
        (["clockOffsetMs"], "9223372036854775807", "clockOffsetMs"),
        (["referenceTimeMs"], "18446744073709551615", "referenceTimeMs"),
        (["utcOffsetMinutes"], "901", "utcOffsetMinutes"),
        (["reservoirMicroliters"], "18446744073709551615", "reservoirMicroliters"),
        (["reservoirFractionUnits"], "18446744073709551615", "reservoirFractionUnits"),
        (["lastEventSequence"], "1", "lastEventSequence"),
        (["events", "1", "sequence"], "99", "events[1].sequence"),
        (["programChecksum"], "12345", "programChecksum"),
        (["program", "concentrationMicrogramsPerMilliliter"], "0", "program"),
        (["configuration", "eventLogCapacity"], "-1", "configuration.eventLogCapacity"),
        (["configuration", "serialNumber"], "\"SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS\"", "configuration.serialNumber"),
        (["bolus", "startMs"], "18446744073709551615", "bolus.startMs"),
        (["bolus", "deliveredUnits"], "18446744073709551615", "bolus.deliveredUnits"),
        (["patientBolusStartTimesMs"], "[18446744073709551615]", "patientBolusStartTimesMs[0]"),
        (["batteryUsedUnits"], "18446744073709551615", "batteryUsedUnits"),
    ] as [([String], String, String)])
    func impossibleStatesAreRefused(path: [String], json: String, field: String) throws {
        var pump = try makePump(program: program)
        _ = try pump.clinicianBolus(kind: .single, doseMicrograms: 50, volumeMicroliters: 0, durationMinutes: 60,
                                    nowMs: monday + minute, requestId: 2)
        _ = try pump.patientBolus(nowMs: monday + 2 * minute, requestId: 3)
        pump.advance(to: monday + 5 * minute)
        #expect(pump.state.problem == nil)
        #expect(throws: Never.self) { try Pump(restoring: pump.state) }

        let broken = try state(pump, replacing: path, with: json)
        #expect(broken != pump.state, "the replacement took effect")
        #expect { try Pump(restoring: broken) } throws: { error in
            (error as? PumpStateProblem)?.field == field
        }
    }
}
