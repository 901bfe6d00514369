// Fuzz target: programs, their rules and the daemon's review of them.
//
// Input:
//     offset  size  field
//     0       4     reservoir capacity, µL (u32 LE)
//     4       4     reservoir volume, µL (u32 LE)
//     8       8     pump clock, ms since the epoch (u64 LE)
//     16      2     UTC offset, minutes (u16 LE, folded into -900...900)
//     18      1     options: bit 0 an active program follows, bit 1 an override is given
//     19      4     a refill's aspirated volume, µL (u32 LE)
//     23      4     a refill's new volume, µL (u32 LE)
//     27      n     a Program encoding, then (option bit 0) the active program's encoding
//
// Properties:
// - a Program that decodes re-encodes to the same bytes and passes the codec's validation;
// - `problem(reservoirCapacityMicroliters:)` (SPEC §9.5) never traps and names exactly the
//   lowest rule that a second implementation here, written from the SPEC text, finds broken;
//   rule 1 never for a decoded program, rule 2 never at all;
// - when the steps are in order (rule 3 holds), the daily doses of every weekday equal SPEC
//   §9.4's, computed here minute by minute over the week;
// - ProgramReview (the push dry run) never traps, reports the same pump rule, rejects what the
//   pump would refuse, and its doses and verdict agree with its findings;
// - RefillReview never traps and rejects a volume above the capacity.

import FuzzSupport
import PumpModel
import PumpProtocol
import PumpSafety

runFuzzer { input in
    var reader = FuzzInput(input)
    let capacity = reader.integer(UInt32.self)
    let reservoir = reader.integer(UInt32.self)
    let clockMs = reader.integer(UInt64.self)
    let offsetMinutes = Int16(Int(reader.integer(UInt16.self) % 1801) - 900)
    let options = reader.u8()
    let aspirated = reader.integer(UInt32.self)
    let newVolume = reader.integer(UInt32.self)
    guard reader.remaining > 0 else { return }

    let rest = Array(reader.rest)
    let decoded: (program: Program, consumed: Int)? = rest.withUnsafeBytes { raw in
        var wire = WireReader(raw)
        guard let program = try? Program(from: &wire) else { return nil }
        return (program, wire.offset)
    }
    guard let decoded else { return }
    let (program, consumed) = decoded
    var active: Program?
    if options & 1 != 0 {
        active = try? Program(payload: rest[consumed...])
    }
    let status = ProgramProperties.status(
        capacity: capacity, reservoir: reservoir, clockMs: clockMs, offsetMinutes: offsetMinutes, active: active)
    let override = options & 2 != 0 ? Override(reason: "fuzz") : nil

    ProgramProperties.checkEncoding(program, bytes: rest[..<consumed])
    // SPEC §9.4's daily doses are defined once the starts are unique (rule 3).
    let referenceDaily = ReferenceRules.stepsInOrder(program) ? ReferenceRules.dailyDoses(program) : nil
    ProgramProperties.checkRules(program, capacity: capacity, referenceDaily: referenceDaily)
    ProgramProperties.checkReview(program, active: active, status: status, override: override, referenceDaily: referenceDaily)
    ProgramProperties.checkRefill(aspirated: aspirated, newVolume: newVolume, status: status, active: active)
}

enum ProgramProperties {
    static func status(capacity: UInt32, reservoir: UInt32, clockMs: UInt64, offsetMinutes: Int16, active: Program?) -> Status {
        Status(
            pumpTimeMs: clockMs, utcOffsetMinutes: offsetMinutes, therapyState: .running,
            reservoirMicroliters: reservoir, reservoirCapacityMicroliters: capacity,
            currentDoseRateMicrogramsPerDay: 0, currentFlowMicrolitersPerDay: 0,
            totalDeliveredMicroliters: 0, totalDeliveredMicrograms: 0,
            activeProgramId: active?.programId ?? 0, activeProgramChecksum: 0,
            bolusActive: 0, bolusRemainingMicroliters: 0, batteryState: .ok, batteryPercent: 80,
            batteryDaysToEndOfService: 1000, alarmConditionMask: 0, alarmUnacknowledgedMask: 0,
            patientBolusAvailableInSeconds: 0, patientBolusesInLast24h: 0, lastEventSequence: 0,
            lastExecutedRequestId: 0)
    }

    static func checkEncoding(_ program: Program, bytes: ArraySlice<UInt8>) {
        do {
            let encoded = try program.encoded()
            require(encoded[...] == bytes, "program \(program) decoded from \(hex(bytes)) encodes to \(hex(encoded))")
            _ = CRC32C.checksum(encoded)
        } catch {
            violated("program \(program) decoded from \(hex(bytes)) does not validate: \(error)")
        }
    }

    static func checkRules(_ program: Program, capacity: UInt32, referenceDaily: [UInt64]?) {
        let found = program.problem(reservoirCapacityMicroliters: capacity)
        let expected = ReferenceRules.problem(program, capacity: capacity, daily: referenceDaily)
        require(found?.rawValue == expected,
                "program \(program), capacity \(capacity) µL: problem \(String(describing: found)), SPEC §9.5 says rule \(String(describing: expected))")
        do {
            try program.validate(reservoirCapacityMicroliters: capacity)
            require(found == nil, "validate(reservoirCapacityMicroliters:) accepts a program with \(String(describing: found))")
        } catch {
            require(error == found, "validate(reservoirCapacityMicroliters:) throws \(error), problem() says \(String(describing: found))")
        }
        guard let daily = referenceDaily else { return }
        for weekday in 0..<7 {
            let dose = program.dailyDose(weekday: weekday)
            require(dose == daily[weekday], "program \(program): daily dose of weekday \(weekday) \(dose) µg, SPEC §9.4 says \(daily[weekday]) µg")
        }
        let maximum = program.maximumDailyDose()
        require(maximum.quotient == daily.max() ?? 0 && maximum.remainder == 0,
                "program \(program): maximum daily dose \(maximum), SPEC §9.4 says \(daily.max() ?? 0) µg")
    }

    static func checkReview(_ program: Program, active: Program?, status: Status, override: Override?, referenceDaily: [UInt64]?) {
        let report = ProgramReview.review(program: program, active: active, status: status, override: override)
        let problem = program.problem(reservoirCapacityMicroliters: status.reservoirCapacityMicroliters)
        func context() -> String { "review of \(program) (active \(String(describing: active)), capacity \(status.reservoirCapacityMicroliters) µL)" }
        require(report.pumpRule == problem?.rawValue, "\(context()): pump rule \(String(describing: report.pumpRule)), problem() \(String(describing: problem))")
        if problem != nil {
            require(report.verdict == .rejected, "\(context()): verdict \(report.verdict) for a program the pump refuses")
        }
        require(report.verdict == Verdict.decide(findings: report.findings, override: override),
                "\(context()): verdict \(report.verdict) disagrees with its findings \(report.findings)")
        require((report.override != nil) == (report.verdict == .acceptedWithOverride),
                "\(context()): override \(String(describing: report.override)) with verdict \(report.verdict)")
        require(report.dailyDoseMicrogramsByWeekday.count == 7 && report.dailyDoseMicrograms == report.dailyDoseMicrogramsByWeekday.max(),
                "\(context()): daily dose \(report.dailyDoseMicrograms) of \(report.dailyDoseMicrogramsByWeekday)")
        let patient = UInt64(program.patientBolus.doseMicrograms) * UInt64(program.patientBolus.maxPerDay)
        require(report.dailyDoseWithPatientBolusesMicrograms == report.dailyDoseMicrograms + patient,
                "\(context()): daily dose with patient boluses \(report.dailyDoseWithPatientBolusesMicrograms)")
        if let daily = referenceDaily {
            require(report.dailyDoseMicrogramsByWeekday == daily, "\(context()): daily doses \(report.dailyDoseMicrogramsByWeekday), SPEC §9.4 says \(daily)")
        }
        if let low = report.projectedLowReservoirAtMs, let empty = report.projectedEmptyAtMs {
            require(low <= empty, "\(context()): projected low reservoir at \(low) ms after empty at \(empty) ms")
        }
    }

    static func checkRefill(aspirated: UInt32, newVolume: UInt32, status: Status, active: Program?) {
        let report = RefillReview.review(
            aspiratedMicroliters: aspirated, newVolumeMicroliters: newVolume, status: status, activeProgram: active)
        let capacity = status.reservoirCapacityMicroliters
        if newVolume > capacity {
            require(report.verdict == .rejected, "refill to \(newVolume) µL of a \(capacity) µL reservoir: \(report.verdict)")
        }
        require(report.verdict == Verdict.decide(findings: report.findings, override: nil),
                "refill: verdict \(report.verdict) disagrees with its findings \(report.findings)")
    }
}

/// SPEC §9.4 and §9.5 read literally, sharing nothing with PumpModel.
enum ReferenceRules {
    static let minutesPerDay = 1440

    static func includes(_ mask: UInt8, _ day: Int) -> Bool {
        mask & (1 << day) != 0
    }

    static func stepsInOrder(_ program: Program) -> Bool {
        for day in 0..<7 {
            let starts = program.steps.filter { includes($0.dayMask, day) }.map(\.startMinute)
            for index in starts.indices.dropFirst() where starts[index] <= starts[index - 1] {
                return false
            }
        }
        return true
    }

    /// The lowest-numbered rule broken, or nil; `daily` is `dailyDoses(program)` if the steps
    /// are in order.
    static func problem(_ program: Program, capacity: UInt32, daily: [UInt64]?) -> UInt32? {
        // Rule 1: the program came from its encoding (and the caller checked it encodes back);
        // rule 2 needs the id stated at ProgramStageBegin, which a program alone does not have.
        guard let daily, stepsInOrder(program) else { return 3 }
        if !program.steps.isEmpty, program.steps.reduce(0, { $0 | $1.dayMask }) != 0x7F { return 4 }
        for day in 0..<7 where program.steps.filter({ includes($0.dayMask, day) }).count > 13 {
            return 5
        }
        for bolus in program.periodicBoluses where Int(bolus.startMinute) + Int(bolus.durationMinutes) > minutesPerDay {
            return 6
        }
        for day in 0..<7 {
            let boluses = program.periodicBoluses.filter { includes($0.dayMask, day) }
            for index in boluses.indices.dropFirst() {
                let previous = boluses[index - 1]
                let next = boluses[index]
                if next.startMinute <= previous.startMinute { return 6 }
                if Int(previous.startMinute) + Int(previous.durationMinutes) > Int(next.startMinute) { return 6 }
            }
        }
        let patient = program.patientBolus
        if patient.doseMicrograms == 0 {
            if patient.durationMinutes != 0 || patient.lockoutMinutes != 0 || patient.maxPerDay != 0 { return 7 }
        } else if patient.durationMinutes == 0 || patient.maxPerDay == 0 || patient.lockoutMinutes < patient.durationMinutes {
            return 7
        }
        let total = (daily.max() ?? 0) + UInt64(patient.doseMicrograms) * UInt64(patient.maxPerDay)
        if total > UInt64(UInt32.max) { return 8 }
        let concentration = UInt64(program.concentrationMicrogramsPerMilliliter)
        let volume = (total * 1000 + concentration - 1) / concentration  // total < 2^32: no overflow
        if volume > UInt64(capacity) { return 8 }
        if program.lowReservoirThresholdMicroliters >= capacity { return 9 }
        return nil
    }

    /// daily(d) for d = 0 (Monday) ... 6: the basal of every minute of the day (the rate of the
    /// step that started last at or before it, wrapping around the week) summed and divided by
    /// 1440, rounded down, plus the periodic boluses of the day. Needs rule 3 (unique starts).
    static func dailyDoses(_ program: Program) -> [UInt64] {
        var rateAt = [UInt32?](repeating: nil, count: 7 * minutesPerDay)
        var lastRate: UInt32 = 0
        var lastPosition = -1
        for step in program.steps {
            for day in 0..<7 where includes(step.dayMask, day) {
                let position = day * minutesPerDay + Int(step.startMinute)
                rateAt[position] = step.doseRateMicrogramsPerDay
                if position > lastPosition {
                    lastPosition = position
                    lastRate = step.doseRateMicrogramsPerDay
                }
            }
        }
        var rate = program.steps.isEmpty ? 0 : lastRate  // before the week's first start
        var doses: [UInt64] = []
        for day in 0..<7 {
            var sum: UInt64 = 0
            for minute in 0..<minutesPerDay {
                if let started = rateAt[day * minutesPerDay + minute] { rate = started }
                sum += UInt64(rate)
            }
            var dose = sum / UInt64(minutesPerDay)
            for bolus in program.periodicBoluses where includes(bolus.dayMask, day) {
                dose += UInt64(bolus.doseMicrograms)
            }
            doses.append(dose)
        }
        return doses
    }
}
