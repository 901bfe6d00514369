import PumpModel
import PumpProtocol
import Testing

/// SPEC §9.5: one broken program per rule, each reported by its number; valid edge cases pass.
@Suite struct ProgramValidationTests {
    /// Monday basal (1000 × 480 + 2000 × 960) / 1440 = 1666.67 → 1666 µg, + 100 periodic = 1766;
    /// + 6 × 50 patient = 2066 µg = 206.6 µL at 10 mg/mL: far below 20 mL.
    static let valid = makeProgram(
        concentration: 10_000,
        steps: [everyDay(0, 1000), DoseStep(dayMask: 0x1F, startMinute: 480, doseRateMicrogramsPerDay: 2000)],
        periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 720, doseMicrograms: 100, durationMinutes: 60)],
        patient: PatientBolusSettings(doseMicrograms: 50, durationMinutes: 10, lockoutMinutes: 120, maxPerDay: 6)
    )

    @Test func aValidProgramPasses() throws {
        #expect(Self.valid.problem(reservoirCapacityMicroliters: 20_000) == nil)
        try Self.valid.validate(reservoirCapacityMicroliters: 20_000)
    }

    @Test func rulesAreNumberedAsInTheSpecification() {
        #expect(ProgramProblem.allCases.map(\.rawValue) == Array(1...9))
        #expect(ProgramProblem.malformed.rawValue == 1 && ProgramProblem.programIdMismatch.rawValue == 2)
        #expect(ProgramProblem.impossibleThreshold.rawValue == 9)
    }

    static let broken: [(String, @Sendable (inout Program) -> Void, UInt32)] = [
        // Rule 1: codec ranges.
        ("id 0", { $0.programId = 0 }, 1),
        ("concentration 0", { $0.concentrationMicrogramsPerMilliliter = 0 }, 1),
        ("92 steps", { $0.steps = (0..<92).map { everyDay(UInt16($0), 1) } }, 1),
        ("step mask 0", { $0.steps[1].dayMask = 0 }, 1),
        ("step mask bit 7", { $0.steps[1].dayMask = 0x80 }, 1),
        ("step minute 1440", { $0.steps[1].startMinute = 1440 }, 1),
        ("25 periodic boluses", {
            $0.periodicBoluses = (0..<25).map { PeriodicBolus(dayMask: 0x7F, startMinute: UInt16($0 * 10), doseMicrograms: 1, durationMinutes: 1) }
        }, 1),
        ("periodic mask 0", { $0.periodicBoluses[0].dayMask = 0 }, 1),
        ("periodic minute 1440", { $0.periodicBoluses[0].startMinute = 1440 }, 1),
        ("periodic dose 0", { $0.periodicBoluses[0].doseMicrograms = 0 }, 1),
        ("periodic duration 0", { $0.periodicBoluses[0].durationMinutes = 0 }, 1),
        ("periodic duration 1441", { $0.periodicBoluses[0].durationMinutes = 1441 }, 1),
        ("patient maxPerDay 49", { $0.patientBolus.maxPerDay = 49 }, 1),
        ("patient duration 1441", { $0.patientBolus.durationMinutes = 1441 }, 1),
        ("patient lockout 1441", { $0.patientBolus.lockoutMinutes = 1441 }, 1),
        // Rule 3: per day, list order, strictly increasing start.
        ("steps listed out of order", { $0.steps.reverse() }, 3),
        // Monday 08:00 twice: the every-day step moved onto the weekday one.
        ("two steps at the same minute of a day", { $0.steps[0].startMinute = 480 }, 3),
        // Rule 4: Sunday has no step.
        ("a day without a step", { $0.steps[0].dayMask = 0x3F }, 4),
        // Rule 5: 14 steps on every day.
        ("14 steps on a day", { $0.steps = (0..<14).map { everyDay(UInt16($0 * 60), 1000) } }, 5),
        // Rule 6: periodic boluses.
        ("periodic boluses out of order", {
            $0.periodicBoluses.append(PeriodicBolus(dayMask: 0b1, startMinute: 600, doseMicrograms: 1, durationMinutes: 10))
        }, 6),
        ("periodic boluses at the same minute", {
            $0.periodicBoluses.append(PeriodicBolus(dayMask: 0b1, startMinute: 720, doseMicrograms: 1, durationMinutes: 10))
        }, 6),
        // 12:00 for 60 min, then 12:30: overlap on Monday.
        ("periodic boluses overlap", {
            $0.periodicBoluses.append(PeriodicBolus(dayMask: 0b1, startMinute: 750, doseMicrograms: 1, durationMinutes: 10))
        }, 6),
        // 23:30 for 60 min runs past midnight.
        ("periodic bolus past midnight", { $0.periodicBoluses[0].startMinute = 1410 }, 6),
        // Rule 7: patient bolus.
        ("patient disabled with lockout", {
            $0.patientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 30, maxPerDay: 0)
        }, 7),
        ("patient disabled with duration", {
            $0.patientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 5, lockoutMinutes: 0, maxPerDay: 0)
        }, 7),
        ("patient disabled with maximum", {
            $0.patientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 1)
        }, 7),
        ("patient enabled without maximum", { $0.patientBolus.maxPerDay = 0 }, 7),
        ("patient enabled without duration", { $0.patientBolus.durationMinutes = 0 }, 7),
        ("patient lockout shorter than its duration", { $0.patientBolus.lockoutMinutes = 9 }, 7),
        // Rule 8: 1 440 000 µg/day meant per hour: Monday (1000 × 480 + 1 440 000 × 960) / 1440
        // = 960 333 µg + 100 + 300 = 960 733 µg = 96 073.3 µL at 10 mg/mL > 20 mL.
        ("daily volume above capacity", { $0.steps[1].doseRateMicrogramsPerDay = 1_440_000 }, 8),
        // 4 294 967 295 µg/day of basal + 100 periodic: above u32 (volume tiny at that concentration).
        ("daily total above 4 294 967 295 µg", {
            $0.concentrationMicrogramsPerMilliliter = .max
            $0.steps = [everyDay(0, .max)]
        }, 8),
        // Rule 9.
        ("threshold equal to capacity", { $0.lowReservoirThresholdMicroliters = 20_000 }, 9),
        ("threshold above capacity", { $0.lowReservoirThresholdMicroliters = 20_001 }, 9),
        // The lowest broken rule wins.
        ("rules 1 and 3", { $0.programId = 0; $0.steps.reverse() }, 1),
        ("rules 3 and 9", { $0.steps.reverse(); $0.lowReservoirThresholdMicroliters = 30_000 }, 3),
        ("rules 4 and 6", { $0.steps[0].dayMask = 0x3F; $0.periodicBoluses[0].startMinute = 1410 }, 4),
        ("rules 6 and 7", { $0.periodicBoluses[0].startMinute = 1410; $0.patientBolus.maxPerDay = 0 }, 6),
        ("rules 8 and 9", { $0.steps[1].doseRateMicrogramsPerDay = 1_440_000; $0.lowReservoirThresholdMicroliters = 20_000 }, 8),
    ]

    @Test(arguments: 0..<broken.count)
    func eachRuleIsReportedByItsNumber(index: Int) throws {
        let (name, breakIt, rule) = Self.broken[index]
        var program = Self.valid
        breakIt(&program)
        let problem = try #require(program.problem(reservoirCapacityMicroliters: 20_000), "\(name)")
        #expect(problem.rawValue == rule, "\(name)")
        #expect(throws: problem) { try program.validate(reservoirCapacityMicroliters: 20_000) }
        #expect(PumpRefusal.programInvalid(problem).detail == rule)
    }

    static let validEdges: [(String, Program)] = [
        ("no steps: no basal", makeProgram(steps: [])),
        ("the same minute on different days",
         makeProgram(steps: [DoseStep(dayMask: 0b1, startMinute: 0, doseRateMicrogramsPerDay: 10),
                             DoseStep(dayMask: 0x7E, startMinute: 0, doseRateMicrogramsPerDay: 20)])),
        ("a step on Wednesdays only, another on the other days",
         makeProgram(steps: [DoseStep(dayMask: 0b100, startMinute: 480, doseRateMicrogramsPerDay: 777),
                             DoseStep(dayMask: 0x7B, startMinute: 0, doseRateMicrogramsPerDay: 1)])),
        ("13 steps on every day", makeProgram(steps: (0..<13).map { everyDay(UInt16($0 * 60), 1000) })),
        ("91 steps, 13 per day",
         makeProgram(steps: (0..<7).flatMap { day in
             (0..<13).map { DoseStep(dayMask: UInt8(1 << day), startMinute: UInt16($0 * 100), doseRateMicrogramsPerDay: 10) }
         })),
        ("a periodic bolus ending as the next starts, one ending at midnight",
         makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 600, doseMicrograms: 1, durationMinutes: 60),
                                PeriodicBolus(dayMask: 0x7F, startMinute: 660, doseMicrograms: 1, durationMinutes: 60),
                                PeriodicBolus(dayMask: 0x7F, startMinute: 1410, doseMicrograms: 1, durationMinutes: 30)])),
        ("a periodic bolus lasting all day every day",
         makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 0, doseMicrograms: 10, durationMinutes: 1440)])),
        ("periodic boluses out of list order on disjoint days",
         makeProgram(periodic: [PeriodicBolus(dayMask: 0b1, startMinute: 900, doseMicrograms: 1, durationMinutes: 10),
                                PeriodicBolus(dayMask: 0b10, startMinute: 100, doseMicrograms: 1, durationMinutes: 10)])),
        ("lockout equal to the duration",
         makeProgram(patient: PatientBolusSettings(doseMicrograms: 10, durationMinutes: 30, lockoutMinutes: 30, maxPerDay: 48))),
        ("threshold 0", makeProgram(threshold: 0)),
        ("threshold one below capacity", makeProgram(threshold: 19_999)),
        // 4 294 967 295 µg exactly, 1000 µL at 4 294 967 295 µg/mL.
        ("daily total exactly 4 294 967 295 µg",
         makeProgram(concentration: .max, steps: [everyDay(0, .max)])),
        // 60 000 µg = 20 000 µL at 3000 µg/mL: exactly the capacity.
        ("daily volume exactly the capacity", makeProgram(concentration: 3000, threshold: 0, steps: [everyDay(0, 60_000)])),
        // §9.4 rounds the basal dose down: (60 000 × 1439 + 60 001) / 1440 = 60 000.0007 → 60 000 µg.
        ("basal dose rounded down",
         makeProgram(concentration: 3000, threshold: 0, steps: [everyDay(0, 60_000), everyDay(1439, 60_001)])),
    ]

    @Test(arguments: 0..<validEdges.count)
    func validEdgeCasesPass(index: Int) {
        let (name, program) = Self.validEdges[index]
        #expect(program.problem(reservoirCapacityMicroliters: 20_000) == nil, "\(name)")
    }

    @Test func impossibleDoseRoundsTheVolumeUpAndCountsEveryPatientBolus() {
        // 60 001 µg at 3000 µg/mL = 20 000.33 µL, rounded up 20 001 > 20 000.
        let justOver = makeProgram(concentration: 3000, threshold: 0, steps: [everyDay(0, 60_001)])
        #expect(justOver.problem(reservoirCapacityMicroliters: 20_000) == .impossibleDose)
        #expect(justOver.problem(reservoirCapacityMicroliters: 20_001) == nil)
        // Basal 1000 + periodic 100 + 6 × 50 patient = 1400 µg = 140 µL at 10 mg/mL: fits a
        // 141 µL reservoir (the threshold, 0, must be below it), not a 139 µL one.
        var program = Self.valid
        program.lowReservoirThresholdMicroliters = 0
        program.steps = [everyDay(0, 1000)]
        #expect(program.problem(reservoirCapacityMicroliters: 140) == nil)
        #expect(program.problem(reservoirCapacityMicroliters: 139) == .impossibleDose)
    }
}
