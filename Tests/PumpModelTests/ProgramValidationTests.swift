import PumpModel
import PumpProtocol
import Testing

@Suite struct ProgramValidationTests {
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

    static let broken: [(String, @Sendable (inout Program) -> Void, ProgramProblem)] = [
        ("id 0", { $0.programId = 0 }, .programIdZero),
        ("concentration 0", { $0.concentrationMicrogramsPerMilliliter = 0 }, .concentrationZero),
        ("92 steps", { $0.steps = (0..<92).map { everyDay(UInt16($0), 1) } }, .tooManySteps),
        ("step mask 0", { $0.steps[1].dayMask = 0 }, .stepDayMaskInvalid),
        ("step mask bit 7", { $0.steps[1].dayMask = 0x80 }, .stepDayMaskInvalid),
        ("step minute 1440", { $0.steps[1].startMinute = 1440 }, .stepStartMinuteInvalid),
        // Monday 08:00 twice: the every-day step moved onto the weekday one.
        ("same minute same day", { $0.steps[0].startMinute = 480 }, .duplicateStepStart),
        ("periodic mask 0", { $0.periodicBoluses[0].dayMask = 0 }, .periodicBolusDayMaskInvalid),
        ("periodic minute", { $0.periodicBoluses[0].startMinute = 2000 }, .periodicBolusStartMinuteInvalid),
        ("periodic dose 0", { $0.periodicBoluses[0].doseMicrograms = 0 }, .periodicBolusDoseZero),
        ("periodic duration 0", { $0.periodicBoluses[0].durationMinutes = 0 }, .periodicBolusDurationInvalid),
        // 12:00 for 60 min and 12:30: overlap on the same day.
        ("periodic overlap", {
            $0.periodicBoluses.append(PeriodicBolus(dayMask: 0b1, startMinute: 750, doseMicrograms: 1, durationMinutes: 10))
        }, .periodicBolusesOverlap),
        // 23:30 for 60 min runs into 00:10 the next day.
        ("periodic overlap across midnight", {
            $0.periodicBoluses = [
                PeriodicBolus(dayMask: 0b1, startMinute: 1410, doseMicrograms: 1, durationMinutes: 60),
                PeriodicBolus(dayMask: 0b10, startMinute: 10, doseMicrograms: 1, durationMinutes: 10),
            ]
        }, .periodicBolusesOverlap),
        ("patient maxPerDay 49", { $0.patientBolus.maxPerDay = 49 }, .patientBolusOutOfRange),
        ("patient disabled with lockout", {
            $0.patientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 30, maxPerDay: 0)
        }, .patientBolusInconsistent),
        ("patient enabled without maximum", { $0.patientBolus.maxPerDay = 0 }, .patientBolusInconsistent),
        ("patient enabled without duration", { $0.patientBolus.durationMinutes = 0 }, .patientBolusInconsistent),
        ("threshold above capacity", { $0.lowReservoirThresholdMicroliters = 20_001 }, .lowReservoirThresholdAboveCapacity),
        // 60 000 µg/day meant as 60 000 µg/hour → 1 440 000 µg/day = 144 000 µL at 10 mg/mL > 20 mL.
        ("daily volume", { $0.steps[1].doseRateMicrogramsPerDay = 1_440_000 }, .dailyVolumeExceedsCapacity),
    ]

    @Test(arguments: 0..<broken.count)
    func eachRuleIsReported(index: Int) {
        let (name, breakIt, expected) = Self.broken[index]
        var program = Self.valid
        breakIt(&program)
        #expect(program.problem(reservoirCapacityMicroliters: 20_000) == expected, "\(name)")
    }

    @Test func dailyVolumeCountsEveryAllowedPatientBolus() {
        // Basal 1000 µg/day + periodic 100 + 6 × 50 patient = 1400 µg = 140 µL at 10 mg/mL:
        // fits a 140 µL reservoir, not a 139 µL one.
        var program = Self.valid
        program.lowReservoirThresholdMicroliters = 0
        program.steps = [everyDay(0, 1000)]
        #expect(program.problem(reservoirCapacityMicroliters: 140) == nil)
        #expect(program.problem(reservoirCapacityMicroliters: 139) == .dailyVolumeExceedsCapacity)
    }

    @Test func codesAreStable() {
        #expect(ProgramProblem.allCases.map(\.rawValue) == Array(1...16))
    }

    @Test func aPeriodicBolusLastingAllDayEveryDayDoesNotOverlapItself() {
        let program = makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 0, doseMicrograms: 10, durationMinutes: 1440)])
        #expect(program.problem(reservoirCapacityMicroliters: 20_000) == nil)
    }
}
