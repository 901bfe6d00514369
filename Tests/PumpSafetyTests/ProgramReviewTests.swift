import PumpModel
import PumpProtocol
import Testing
@testable import PumpSafety

@Suite struct ProgramReviewTests {
    // MARK: - Report figures and projections

    @Test func simpleContinuousProgram() {
        // Morphine 10 000 µg/mL at 5 000 µg/day: 5 000 × 1000 / 10 000 = 500 µL/day.
        // Reservoir 10 000 µL, threshold 2 000 µL: low after (10 000 − 2 000) / 500 = 16 days,
        // empty after 10 000 / 500 = 20 days.
        let report = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 10_000))
        #expect(report.programId == 2)
        #expect(report.drug == .morphine)
        #expect(report.dailyDoseMicrogramsByWeekday == [UInt64](repeating: 5_000, count: 7))
        #expect(report.dailyDoseMicrograms == 5_000)
        #expect(report.dailyDoseWithPatientBolusesMicrograms == 5_000)
        #expect(report.activeDailyDoseMicrograms == nil)
        #expect(report.changePercent == nil)
        #expect(report.projectedLowReservoirAtMs == monday + 16 * dayMs)
        #expect(report.projectedEmptyAtMs == monday + 20 * dayMs)
        #expect(report.pumpRule == nil)
        #expect(report.findings.isEmpty)
        #expect(report.verdict == .accepted)
        #expect(report.override == nil)
    }

    @Test func projectionTakesEveryAllowedPatientBolus() {
        // Patient bolus 200 µg (20 µL at 10 000 µg/mL) over 10 min, lockout 60 min, 4 a day:
        // taken at 0, 1, 2 and 3 h of every day (the first of a day is allowed again exactly
        // 24 h after the previous day's first). A day uses 500 + 4 × 20 = 580 µL.
        // After 13 days 13 × 580 = 7 540 µL are gone; 8 000 µL must go to reach the threshold.
        // On day 14 the four boluses (80 µL) are over by 3 h 10 min, then basal alone:
        // 500 × t / 1440 + 80 = 460 → t = 380 × 1440 / 500 = 1 094.4 min = 65 664 000 ms.
        let patient = PatientBolusSettings(doseMicrograms: 200, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 4)
        let report = ProgramReview.review(program: continuous(rate: 5_000, patient: patient), active: nil, status: status(reservoir: 10_000))
        #expect(report.dailyDoseWithPatientBolusesMicrograms == 5_800)
        #expect(report.projectedLowReservoirAtMs == monday + 13 * dayMs + 65_664_000)
        #expect(report.verdict == .accepted)
    }

    @Test func projectionBeyondAYearIsNil() {
        // Baclofen 500 µg/mL at 10 µg/day: 20 µL/day; (10 000 − 2 000) / 20 = 400 days to the
        // threshold, 500 days to empty: both beyond 365 days.
        let report = ProgramReview.review(program: continuous(.baclofen, concentration: 500, rate: 10), active: nil, status: status())
        #expect(report.projectedLowReservoirAtMs == nil)
        #expect(report.projectedEmptyAtMs == nil)
        #expect(report.verdict == .accepted)
    }

    @Test func yearOfFrequentPatientBolusesProjectsQuickly() {
        // 40 mL pump, full; morphine 25 000 µg/mL at 100 µg/day (4 µL/day) and 48 boluses of
        // 10 µg (0.4 µL) a day: 4 + 19.2 = 23.2 µL/day; (40 000 − 2 000) / 23.2 ≈ 1 638 days.
        let patient = PatientBolusSettings(doseMicrograms: 10, durationMinutes: 10, lockoutMinutes: 10, maxPerDay: 48)
        let program = continuous(concentration: 25_000, rate: 100, patient: patient)
        let report = ProgramReview.review(program: program, active: nil, status: status(reservoir: 40_000, capacity: 40_000))
        #expect(report.dailyDoseWithPatientBolusesMicrograms == 580)
        #expect(report.projectedLowReservoirAtMs == nil)
        #expect(report.projectedEmptyAtMs == nil)
    }

    @Test func dailyDoseByWeekday() {
        // Weekdays (mask 0x1F) 1 000 µg/day from midnight, weekend (0x60) 2 000 µg/day; a
        // periodic bolus of 300 µg on Mondays at noon. Monday 1 000 + 300.
        let program = Program(
            programId: 7, drug: .morphine, concentrationMicrogramsPerMilliliter: 10_000, lowReservoirThresholdMicroliters: 2_000,
            steps: [DoseStep(dayMask: 0x1F, startMinute: 0, doseRateMicrogramsPerDay: 1_000),
                    DoseStep(dayMask: 0x60, startMinute: 0, doseRateMicrogramsPerDay: 2_000)],
            periodicBoluses: [PeriodicBolus(dayMask: 0x01, startMinute: 720, doseMicrograms: 300, durationMinutes: 30)],
            patientBolus: .off
        )
        let report = ProgramReview.review(program: program, active: nil, status: status())
        #expect(report.dailyDoseMicrogramsByWeekday == [1_300, 1_000, 1_000, 1_000, 1_000, 2_000, 2_000])
        #expect(report.dailyDoseMicrograms == 2_000)
        // No step rate is 24 × the median (1 000): not a per-hour entry.
        #expect(report.findings.isEmpty)
    }

    // MARK: - Pump rules

    @Test func pumpRuleIsHard() {
        // Threshold 20 000 µL on a 20 000 µL reservoir: SPEC §9.5 rule 9.
        var program = continuous(rate: 5_000)
        program.lowReservoirThresholdMicroliters = 20_000
        let report = ProgramReview.review(program: program, active: nil, status: status())
        #expect(report.pumpRule == 9)
        #expect(report.finding(.pumpRule)?.severity == .hard)
        #expect(report.finding(.pumpRule)?.value == 9)
        #expect(report.projectedLowReservoirAtMs == nil)
        #expect(report.projectedEmptyAtMs == nil)
        #expect(report.verdict == .rejected)
        // Even with an override.
        #expect(ProgramReview.review(program: program, active: nil, status: status(), override: Override(reason: "test")).verdict == .rejected)
    }

    @Test func stepsOutOfOrderIsRuleThree() {
        let program = Program(
            programId: 3, drug: .morphine, concentrationMicrogramsPerMilliliter: 10_000, lowReservoirThresholdMicroliters: 2_000,
            steps: [DoseStep(dayMask: 0x7F, startMinute: 600, doseRateMicrogramsPerDay: 1_000),
                    DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 1_000)],
            periodicBoluses: [], patientBolus: .off
        )
        let report = ProgramReview.review(program: program, active: nil, status: status())
        #expect(report.pumpRule == 3)
        #expect(report.verdict == .rejected)
    }

    // MARK: - Concentration

    @Test(arguments: [(UInt32(5_000), SafetyRule.concentrationBelowMinimum, Int64(10_000)),
                      (UInt32(30_000), SafetyRule.concentrationAboveMaximum, Int64(25_000))])
    func concentrationOutsideTheRangeIsHard(concentration: UInt32, rule: SafetyRule, limit: Int64) {
        let report = ProgramReview.review(program: continuous(concentration: concentration, rate: 5_000), active: nil, status: status())
        #expect(report.rules == [rule.rawValue])
        #expect(report.finding(rule)?.severity == .hard)
        #expect(report.finding(rule)?.limit == limit)
        #expect(report.verdict == .rejected)
    }

    @Test func unlistedStrengthIsSoft() {
        // Ziconotide comes as 25 or 100 µg/mL; 50 is within the range but no standard strength.
        let active = continuous(.ziconotide, id: 1, concentration: 50, rate: 2)
        let report = ProgramReview.review(program: continuous(.ziconotide, concentration: 50, rate: 2), active: active, status: status())
        #expect(report.rules == [SafetyRule.concentrationUnlistedStrength.rawValue])
        #expect(report.verdict == .overrideRequired)
    }

    // MARK: - Daily dose and verdicts

    @Test func dailyDoseOverTheHardMaximumIsRejected() {
        // 21 000 > 20 000 µg/day (at 25 000 µg/mL: 840 µL/day, within the reservoir).
        let report = ProgramReview.review(program: continuous(concentration: 25_000, rate: 21_000), active: nil, status: status(),
                                          override: Override(reason: "pain crisis"))
        #expect(report.rules == [SafetyRule.dailyDoseHardMaximum.rawValue])
        #expect(report.finding(.dailyDoseHardMaximum)?.value == 21_000)
        #expect(report.finding(.dailyDoseHardMaximum)?.limit == 20_000)
        #expect(report.verdict == .rejected)
        #expect(report.override == nil)
    }

    @Test func softMaximumNeedsAnOverrideWithAReason() {
        // 16 000 > 15 000 soft, ≤ 20 000 hard.
        let program = continuous(concentration: 25_000, rate: 16_000)
        let none = ProgramReview.review(program: program, active: nil, status: status())
        #expect(none.rules == [SafetyRule.dailyDoseSoftMaximum.rawValue])
        #expect(none.finding(.dailyDoseSoftMaximum)?.limit == 15_000)
        #expect(none.verdict == .overrideRequired)
        let blank = ProgramReview.review(program: program, active: nil, status: status(), override: Override(reason: " \n\t"))
        #expect(blank.verdict == .overrideRequired)
        #expect(blank.override == nil)
        let empty = ProgramReview.review(program: program, active: nil, status: status(), override: Override(reason: ""))
        #expect(empty.verdict == .overrideRequired)
        let given = Override(reason: "Titration agreed with the pain team")
        let overridden = ProgramReview.review(program: program, active: nil, status: status(), override: given)
        #expect(overridden.verdict == .acceptedWithOverride)
        #expect(overridden.override == given)
    }

    @Test func patientBolusesCountTowardsTheDailyLimits() {
        // 14 000 µg/day basal + 4 × 500 µg = 16 000 µg/day > 15 000 soft. The bolus itself
        // (500 ≤ 500) and its daily total (2 000 ≤ 2 000) are within their soft limits.
        let patient = PatientBolusSettings(doseMicrograms: 500, durationMinutes: 10, lockoutMinutes: 120, maxPerDay: 4)
        let report = ProgramReview.review(program: continuous(concentration: 25_000, rate: 14_000, patient: patient), active: nil, status: status())
        #expect(report.dailyDoseMicrograms == 14_000)
        #expect(report.dailyDoseWithPatientBolusesMicrograms == 16_000)
        #expect(report.rules == [SafetyRule.dailyDoseSoftMaximum.rawValue])
        #expect(report.finding(.dailyDoseSoftMaximum)?.value == 16_000)
    }

    @Test func aFractionOfAMicrogramCountsAgainstALimit() {
        // Ziconotide: 19 µg/day for 23 h, 20 µg/day for 1 h: basal (19 × 1380 + 20 × 60) / 1440
        // = 27 420 / 1440 = 19.04…, SPEC daily dose 19 but above the hard 19 once rounded up (20).
        let program = Program(
            programId: 4, drug: .ziconotide, concentrationMicrogramsPerMilliliter: 100, lowReservoirThresholdMicroliters: 2_000,
            steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 20),
                    DoseStep(dayMask: 0x7F, startMinute: 60, doseRateMicrogramsPerDay: 19)],
            periodicBoluses: [], patientBolus: .off
        )
        let active = continuous(.ziconotide, id: 1, concentration: 100, rate: 18)
        let report = ProgramReview.review(program: program, active: active, status: status())
        #expect(report.dailyDoseMicrograms == 19)
        #expect(report.finding(.dailyDoseHardMaximum)?.value == 20)
        #expect(report.verdict == .rejected)
    }

    // MARK: - Change against the active program

    @Test func increaseOverFiftyPercentIsSoft() {
        // (6 100 − 4 000) × 100 / 4 000 = 52.5 → 52 %.
        let active = continuous(id: 1, rate: 4_000)
        let report = ProgramReview.review(program: continuous(rate: 6_100), active: active, status: status())
        #expect(report.activeDailyDoseMicrograms == 4_000)
        #expect(report.changePercent == 52)
        #expect(report.rules == [SafetyRule.changeIncrease.rawValue])
        #expect(report.finding(.changeIncrease)?.limit == 50)
        #expect(report.verdict == .overrideRequired)
        // Exactly 50 % (6 000) is allowed.
        let fifty = ProgramReview.review(program: continuous(rate: 6_000), active: active, status: status())
        #expect(fifty.changePercent == 50)
        #expect(fifty.verdict == .accepted)
    }

    @Test func tenfoldEntryErrorIsHard() {
        // 1 000 → 10 000 µg/day: 10 × the running dose; change (10 000 − 1 000) × 100 / 1 000 = 900 %.
        let active = continuous(id: 1, rate: 1_000)
        let report = ProgramReview.review(program: continuous(rate: 10_000), active: active, status: status(),
                                          override: Override(reason: "intended"))
        #expect(report.changePercent == 900)
        #expect(report.rules == [SafetyRule.changeTenfold.rawValue])
        #expect(report.finding(.changeTenfold)?.limit == 10_000)
        #expect(report.verdict == .rejected)
    }

    @Test func tenfoldDecreaseIsSoft() {
        // 10 000 → 1 000 µg/day: (1 000 − 10 000) × 100 / 10 000 = −90 %; withdrawal risk.
        let active = continuous(id: 1, rate: 10_000)
        let report = ProgramReview.review(program: continuous(rate: 1_000), active: active, status: status())
        #expect(report.changePercent == -90)
        #expect(report.rules == [SafetyRule.changeTenfoldDecrease.rawValue])
        #expect(report.verdict == .overrideRequired)
        // A −10 % change is nothing.
        #expect(ProgramReview.review(program: continuous(rate: 9_000), active: active, status: status()).verdict == .accepted)
    }

    @Test func drugChangeIsANotice() {
        let active = continuous(.morphine, id: 1, rate: 5_000)
        let report = ProgramReview.review(program: continuous(.hydromorphone, rate: 2_000), active: active, status: status())
        #expect(report.activeDailyDoseMicrograms == 5_000)
        #expect(report.changePercent == nil)
        #expect(Set(report.rules) == [SafetyRule.drugOffLabel.rawValue, SafetyRule.changeDrug.rawValue])
        #expect(report.findings.allSatisfy { $0.severity == .notice })
        #expect(report.verdict == .accepted)
    }

    @Test func concentrationChangeIsANotice() {
        let active = continuous(id: 1, concentration: 10_000, rate: 5_000)
        let report = ProgramReview.review(program: continuous(concentration: 20_000, rate: 5_000), active: active, status: status())
        #expect(report.changePercent == nil)
        #expect(report.rules == [SafetyRule.changeConcentration.rawValue])
        #expect(report.finding(.changeConcentration)?.value == 20_000)
        #expect(report.finding(.changeConcentration)?.limit == 10_000)
        #expect(report.verdict == .accepted)
    }

    // MARK: - Per-hour entry

    @Test func perHourEntryInAFlexStep() {
        // Baclofen 500 µg/mL: 60 µg/day, but 08:00–09:00 entered as 1 440 (60 µg/h × 24).
        // Non-zero rates sorted [60, 60, 1 440], median 60; 1 440 ≥ 24 × 60 = 1 440.
        // Basal (60 × 480 + 1 440 × 60 + 60 × 900) / 1440 = 169 200 / 1440 = 117.5 → 117 µg.
        let program = Program(
            programId: 5, drug: .baclofen, concentrationMicrogramsPerMilliliter: 500, lowReservoirThresholdMicroliters: 2_000,
            steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 60),
                    DoseStep(dayMask: 0x7F, startMinute: 480, doseRateMicrogramsPerDay: 1_440),
                    DoseStep(dayMask: 0x7F, startMinute: 540, doseRateMicrogramsPerDay: 60)],
            periodicBoluses: [], patientBolus: .off
        )
        let report = ProgramReview.review(program: program, active: nil, status: status())
        #expect(report.dailyDoseMicrograms == 117)
        #expect(report.rules == [SafetyRule.stepPerHourEntry.rawValue])
        #expect(report.finding(.stepPerHourEntry)?.value == 1_440)
        #expect(report.finding(.stepPerHourEntry)?.limit == 1_440)
        #expect(report.verdict == .overrideRequired)
        // Against a running 60 µg/day: (117 − 60) × 100 / 60 = 95 % > baclofen's 30 %.
        let withActive = ProgramReview.review(program: program, active: continuous(.baclofen, id: 1, concentration: 500, rate: 60), status: status())
        #expect(withActive.changePercent == 95)
        #expect(withActive.rules == [SafetyRule.changeIncrease.rawValue, SafetyRule.stepPerHourEntry.rawValue])
    }

    @Test func perHourEntryInAContinuousProgramIsATenfoldJump() {
        // 60 µg/h given as a daily rate: 1 440 µg/day against a running 60 µg/day, 24 ≥ 10 times.
        let active = continuous(.baclofen, id: 1, concentration: 500, rate: 60)
        let report = ProgramReview.review(program: continuous(.baclofen, concentration: 500, rate: 1_440), active: active, status: status())
        #expect(report.finding(.changeTenfold)?.severity == .hard)
        #expect(report.verdict == .rejected)
    }

    // MARK: - Patient bolus limits

    @Test(arguments: [
        // dose, per day, expected rules (morphine: bolus 500 / 1 000 µg, per day 2 000 / 4 000 µg)
        (UInt32(1_200), UInt8(1), [SafetyRule.patientBolusDoseHardMaximum]),
        (UInt32(600), UInt8(2), [SafetyRule.patientBolusDoseSoftMaximum]),       // 1 200 µg/day
        (UInt32(500), UInt8(5), [SafetyRule.patientBolusDailySoftMaximum]),      // 2 500 µg/day
        (UInt32(500), UInt8(9), [SafetyRule.patientBolusDailyHardMaximum]),      // 4 500 µg/day
        (UInt32(600), UInt8(8), [SafetyRule.patientBolusDoseSoftMaximum, SafetyRule.patientBolusDailyHardMaximum]), // 4 800
        (UInt32(400), UInt8(4), []),                                             // 1 600 µg/day
    ])
    func patientBolusLimits(dose: UInt32, perDay: UInt8, expected: [SafetyRule]) {
        let patient = PatientBolusSettings(doseMicrograms: dose, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: perDay)
        // Basal 5 000 + at most 4 800 = 9 800 µg/day, within the daily limits.
        let report = ProgramReview.review(program: continuous(rate: 5_000, patient: patient), active: nil, status: status())
        #expect(report.rules == expected.map(\.rawValue))
        let verdict: Verdict = expected.isEmpty ? .accepted
            : expected.contains { [.patientBolusDoseHardMaximum, .patientBolusDailyHardMaximum].contains($0) } ? .rejected : .overrideRequired
        #expect(report.verdict == verdict)
    }

    // MARK: - Ziconotide start

    @Test func ziconotideStartAboveTheStartingDose() {
        // No ziconotide running: 3 µg/day > 2 (label 2.4) needs an override.
        let report = ProgramReview.review(program: continuous(.ziconotide, concentration: 25, rate: 3), active: nil, status: status())
        #expect(report.rules == [SafetyRule.startingDoseMaximum.rawValue])
        #expect(report.verdict == .overrideRequired)
        // Also when switching from another drug.
        let fromMorphine = ProgramReview.review(program: continuous(.ziconotide, concentration: 25, rate: 3),
                                                active: continuous(id: 1, rate: 5_000), status: status())
        #expect(fromMorphine.rules == [SafetyRule.startingDoseMaximum.rawValue, SafetyRule.changeDrug.rawValue])
        // 2 µg/day is a proper start.
        #expect(ProgramReview.review(program: continuous(.ziconotide, concentration: 25, rate: 2), active: nil, status: status()).verdict == .accepted)
        // Titrating a running ziconotide program 2 → 3 µg/day (+50 %) is not a start.
        let titration = ProgramReview.review(program: continuous(.ziconotide, concentration: 25, rate: 3),
                                             active: continuous(.ziconotide, id: 1, concentration: 25, rate: 2), status: status())
        #expect(titration.changePercent == 50)
        #expect(titration.verdict == .accepted)
        // 20 µg/day: above the label maximum 19.2, hard.
        let over = ProgramReview.review(program: continuous(.ziconotide, concentration: 100, rate: 20),
                                        active: continuous(.ziconotide, id: 1, concentration: 100, rate: 18), status: status())
        #expect(over.rules == [SafetyRule.dailyDoseHardMaximum.rawValue])
    }

    // MARK: - Reservoir

    @Test func lowReservoirWithinAWeekIsANotice() {
        // 5 000 µL at 500 µL/day: (5 000 − 2 000) / 500 = 6 days to the threshold.
        let report = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 5_000))
        #expect(report.projectedLowReservoirAtMs == monday + 6 * dayMs)
        #expect(report.rules == [SafetyRule.reservoirLowSoon.rawValue])
        #expect(report.finding(.reservoirLowSoon)?.value == Int64(6 * dayMs))
        #expect(report.finding(.reservoirLowSoon)?.limit == Int64(7 * dayMs))
        #expect(report.verdict == .accepted)
        // 8 000 µL: 12 days, no notice.
        #expect(ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 8_000)).findings.isEmpty)
        // Already at the threshold: now.
        let empty = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 2_000))
        #expect(empty.projectedLowReservoirAtMs == monday)
        #expect(empty.finding(.reservoirLowSoon)?.value == 0)
    }

    @Test func corruptClockDoesNotTrap() {
        let report = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(nowMs: .max))
        #expect(report.projectedLowReservoirAtMs == nil)
        #expect(report.verdict == .accepted)
    }

    @Test func reviewIsDeterministic() {
        let patient = PatientBolusSettings(doseMicrograms: 600, durationMinutes: 15, lockoutMinutes: 90, maxPerDay: 6)
        let program = continuous(rate: 9_000, patient: patient)
        let active = continuous(id: 1, rate: 4_000)
        let first = ProgramReview.review(program: program, active: active, status: status(reservoir: 6_000))
        let second = ProgramReview.review(program: program, active: active, status: status(reservoir: 6_000))
        #expect(first == second)
    }

    @Test func verdicts() {
        let hard = Finding(severity: .hard, rule: "x", message: "")
        let soft = Finding(severity: .soft, rule: "y", message: "")
        let notice = Finding(severity: .notice, rule: "z", message: "")
        let reason = Override(reason: "because")
        #expect(Verdict.decide(findings: [], override: nil) == .accepted)
        #expect(Verdict.decide(findings: [notice], override: reason) == .accepted)
        #expect(Verdict.decide(findings: [soft, notice], override: nil) == .overrideRequired)
        #expect(Verdict.decide(findings: [soft], override: Override(reason: "  ")) == .overrideRequired)
        #expect(Verdict.decide(findings: [soft], override: reason) == .acceptedWithOverride)
        #expect(Verdict.decide(findings: [soft, hard], override: reason) == .rejected)
    }
}
