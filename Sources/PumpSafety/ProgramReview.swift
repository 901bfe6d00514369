public import PumpModel
public import PumpProtocol

/// The dry run of a program push: what the new program would do beside the running
/// one, and the drug library's verdict. Pure: the pump's state comes in as a `Status`.
public enum ProgramReview {
    /// Reviews `program` for a pump in `status` running `active` (nil if none).
    ///
    /// Doses: the report's daily doses are SPEC §9.4's (basal rounded down). The library's daily
    /// limits are checked against the largest daily total with every allowed patient bolus, with
    /// the basal rounded up, so that a fraction of a microgram never slips past a limit. The
    /// change against the active program compares SPEC §9.4 daily doses of the same drug;
    /// `changePercent` is rounded toward zero, nil if none is active, if its drug or
    /// concentration differs or if its daily dose is 0. The report's `override` is the one
    /// applied: set only when the verdict is `acceptedWithOverride`.
    public static func review(
        program: Program,
        active: Program?,
        status: Status,
        library: DrugLibrary = .standard,
        override: Override? = nil
    ) -> ProgramReport {
        let byWeekday = program.dailyDoses
        let daily = byWeekday.max() ?? 0
        let patientDaily = UInt64(program.patientBolus.doseMicrograms) * UInt64(program.patientBolus.maxPerDay)
        let dailyWithPatient = daily + patientDaily
        let pumpRule = program.problem(reservoirCapacityMicroliters: status.reservoirCapacityMicroliters)

        let activeDaily = active.map { $0.dailyDoses.max() ?? 0 }
        var changePercent: Int64?
        if let active, let activeDaily, activeDaily > 0, active.drug == program.drug,
           active.concentrationMicrogramsPerMilliliter == program.concentrationMicrogramsPerMilliliter {
            changePercent = (Int64(daily) - Int64(activeDaily)) * 100 / Int64(activeDaily)
        }

        var projection: (lowAtMs: UInt64?, emptyAtMs: UInt64?) = (nil, nil)
        if pumpRule == nil {
            projection = ReservoirProjection.project(program: program, status: status, reservoirMicroliters: status.reservoirMicroliters)
        }

        var findings: [Finding] = []
        if let pumpRule {
            findings.append(Finding(.hard, .pumpRule, "The pump would refuse this program: \(pumpRule.summary) (SPEC §9.5 rule \(pumpRule.rawValue)).",
                                    value: Int64(pumpRule.rawValue)))
        }
        if let limits = library.limits(for: program.drug) {
            findings += checkLabel(program.drug, limits)
            findings += checkConcentration(program, limits)
            findings += checkDailyDose(program, limits, active: active)
            findings += checkPatientBolus(program, limits)
        } else {
            findings.append(Finding(.hard, .drugNotInLibrary, "The drug library has no entry for \(program.drug.name)."))
        }
        if let active, let activeDaily {
            findings += checkChange(program, daily: daily, active: active, activeDaily: activeDaily, library: library)
        }
        if let finding = checkPerHourEntry(program, factor: library.perHourEntryFactor) {
            findings.append(finding)
        }
        if let finding = ReservoirProjection.lowSoonFinding(lowAtMs: projection.lowAtMs, nowMs: status.pumpTimeMs,
                                                           days: library.lowReservoirNoticeDays) {
            findings.append(finding)
        }

        let verdict = Verdict.decide(findings: findings, override: override)
        return ProgramReport(
            programId: program.programId,
            drug: program.drug,
            concentrationMicrogramsPerMilliliter: program.concentrationMicrogramsPerMilliliter,
            dailyDoseMicrogramsByWeekday: byWeekday,
            dailyDoseMicrograms: daily,
            dailyDoseWithPatientBolusesMicrograms: dailyWithPatient,
            activeDailyDoseMicrograms: activeDaily,
            changePercent: changePercent,
            projectedLowReservoirAtMs: projection.lowAtMs,
            projectedEmptyAtMs: projection.emptyAtMs,
            pumpRule: pumpRule?.rawValue,
            findings: findings,
            verdict: verdict,
            override: verdict == .acceptedWithOverride ? override : nil
        )
    }

    /// The largest daily total with every allowed patient bolus, the basal rounded up (µg/day).
    static func largestDailyTotalRoundedUp(_ program: Program) -> UInt64 {
        let scheduled = program.basalDoses.enumerated().map {
            program.dailyDose(weekday: $0.offset, basal: $0.element.roundedUp)
        }.max() ?? 0
        return scheduled + UInt64(program.patientBolus.doseMicrograms) * UInt64(program.patientBolus.maxPerDay)
    }

    private static func checkLabel(_ drug: Drug, _ limits: DrugLimits) -> [Finding] {
        guard limits.label == .offLabel else { return [] }
        return [Finding(.notice, .drugOffLabel, "\(drug.displayName) is not approved for intrathecal use in these pumps (off-label).")]
    }

    private static func checkConcentration(_ program: Program, _ limits: DrugLimits) -> [Finding] {
        let concentration = program.concentrationMicrogramsPerMilliliter
        let allowed = limits.concentrationMicrogramsPerMilliliter
        let name = program.drug.name
        if concentration < allowed.minimum {
            return [Finding(.hard, .concentrationBelowMinimum,
                            "\(concentration) µg/mL is below the lowest concentration allowed for \(name), \(allowed.minimum) µg/mL.",
                            value: Int64(concentration), limit: Int64(allowed.minimum))]
        }
        if concentration > allowed.maximum {
            return [Finding(.hard, .concentrationAboveMaximum,
                            "\(concentration) µg/mL is above the highest concentration allowed for \(name), \(allowed.maximum) µg/mL.",
                            value: Int64(concentration), limit: Int64(allowed.maximum))]
        }
        if !allowed.standard.isEmpty, !allowed.standard.contains(concentration) {
            let strengths = allowed.standard.map { "\($0)" }.joined(separator: ", ")
            return [Finding(.soft, .concentrationUnlistedStrength,
                            "\(concentration) µg/mL is not a standard strength of \(name) (\(strengths) µg/mL).",
                            value: Int64(concentration))]
        }
        return []
    }

    private static func checkDailyDose(_ program: Program, _ limits: DrugLimits, active: Program?) -> [Finding] {
        var findings: [Finding] = []
        let total = largestDailyTotalRoundedUp(program)
        let name = program.drug.name
        let limit = limits.dailyDoseMicrograms
        if total > limit.hard {
            findings.append(Finding(.hard, .dailyDoseHardMaximum,
                                    "Up to \(total) µg/day of \(name) with every allowed patient bolus, above the hard maximum of \(limit.hard) µg/day.",
                                    value: Int64(clamping: total), limit: Int64(clamping: limit.hard)))
        } else if total > limit.soft {
            findings.append(Finding(.soft, .dailyDoseSoftMaximum,
                                    "Up to \(total) µg/day of \(name) with every allowed patient bolus, above the soft maximum of \(limit.soft) µg/day.",
                                    value: Int64(clamping: total), limit: Int64(clamping: limit.soft)))
        }
        if let starting = limits.startingDoseMaximumMicrogramsPerDay, active?.drug != program.drug, total > starting {
            findings.append(Finding(.soft, .startingDoseMaximum,
                                    "\(program.drug.displayName) is being started at up to \(total) µg/day; the starting dose is at most \(starting) µg/day.",
                                    value: Int64(clamping: total), limit: Int64(clamping: starting)))
        }
        return findings
    }

    private static func checkPatientBolus(_ program: Program, _ limits: DrugLimits) -> [Finding] {
        let settings = program.patientBolus
        guard settings.doseMicrograms > 0 else { return [] }
        var findings: [Finding] = []
        let dose = UInt64(settings.doseMicrograms)
        let perBolus = limits.patientBolusDoseMicrograms
        if dose > perBolus.hard {
            findings.append(Finding(.hard, .patientBolusDoseHardMaximum,
                                    "A patient bolus of \(dose) µg is above the hard maximum of \(perBolus.hard) µg.",
                                    value: Int64(dose), limit: Int64(clamping: perBolus.hard)))
        } else if dose > perBolus.soft {
            findings.append(Finding(.soft, .patientBolusDoseSoftMaximum,
                                    "A patient bolus of \(dose) µg is above the soft maximum of \(perBolus.soft) µg.",
                                    value: Int64(dose), limit: Int64(clamping: perBolus.soft)))
        }
        let daily = dose * UInt64(settings.maxPerDay)
        let perDay = limits.patientBolusDailyMicrograms
        if daily > perDay.hard {
            findings.append(Finding(.hard, .patientBolusDailyHardMaximum,
                                    "\(settings.maxPerDay) patient boluses of \(dose) µg a day allow \(daily) µg/day, above the hard maximum of \(perDay.hard) µg/day.",
                                    value: Int64(daily), limit: Int64(clamping: perDay.hard)))
        } else if daily > perDay.soft {
            findings.append(Finding(.soft, .patientBolusDailySoftMaximum,
                                    "\(settings.maxPerDay) patient boluses of \(dose) µg a day allow \(daily) µg/day, above the soft maximum of \(perDay.soft) µg/day.",
                                    value: Int64(daily), limit: Int64(clamping: perDay.soft)))
        }
        return findings
    }

    private static func checkChange(_ program: Program, daily: UInt64, active: Program, activeDaily: UInt64, library: DrugLibrary) -> [Finding] {
        guard active.drug == program.drug else {
            return [Finding(.notice, .changeDrug,
                            "The drug changes from \(active.drug.name) to \(program.drug.name): the reservoir must be emptied and refilled, and the catheter still holds \(active.drug.name) (bridge bolus).")]
        }
        var findings: [Finding] = []
        let oldConcentration = active.concentrationMicrogramsPerMilliliter
        let newConcentration = program.concentrationMicrogramsPerMilliliter
        if oldConcentration != newConcentration {
            findings.append(Finding(.notice, .changeConcentration,
                                    "The concentration changes from \(oldConcentration) to \(newConcentration) µg/mL: the reservoir must be refilled, and the catheter still holds the old concentration (bridge bolus).",
                                    value: Int64(newConcentration), limit: Int64(oldConcentration)))
        }
        // Doses in µg compare across concentrations of the same drug.
        guard activeDaily > 0 else { return findings }
        let factor = UInt64(library.hardIncreaseFactor)
        let percent = UInt64(library.limits(for: program.drug)?.maximumIncreasePercent ?? 50)
        if daily >= activeDaily * factor {
            findings.append(Finding(.hard, .changeTenfold,
                                    "\(daily) µg/day is \(factor) or more times the running \(activeDaily) µg/day: a \(factor)-fold change is refused as an entry error.",
                                    value: Int64(clamping: daily), limit: Int64(clamping: activeDaily * factor)))
        } else if daily > activeDaily, (daily - activeDaily) * 100 > percent * activeDaily {
            let change = (daily - activeDaily) * 100 / activeDaily
            findings.append(Finding(.soft, .changeIncrease,
                                    "\(daily) µg/day is \(change) % more than the running \(activeDaily) µg/day (more than \(percent) % needs an override).",
                                    value: Int64(clamping: change), limit: Int64(percent)))
        } else if daily * factor <= activeDaily {
            findings.append(Finding(.soft, .changeTenfoldDecrease,
                                    "\(daily) µg/day is a \(factor)-fold or larger cut from the running \(activeDaily) µg/day: risk of withdrawal.",
                                    value: Int64(clamping: daily), limit: Int64(clamping: activeDaily / factor)))
        }
        return findings
    }

    /// A step whose rate is `factor` or more times the median of the non-zero step rates (the
    /// lower median for an even count): a rate per hour entered as a rate per day.
    private static func checkPerHourEntry(_ program: Program, factor: UInt32) -> Finding? {
        let rates = program.steps.map(\.doseRateMicrogramsPerDay).filter { $0 > 0 }.sorted()
        guard rates.count >= 2 else { return nil }
        let median = UInt64(rates[(rates.count - 1) / 2])
        let threshold = median * UInt64(factor)
        guard let index = program.steps.firstIndex(where: { UInt64($0.doseRateMicrogramsPerDay) >= threshold }) else { return nil }
        let step = program.steps[index]
        return Finding(.soft, .stepPerHourEntry,
                       "Step \(index + 1) runs at \(step.doseRateMicrogramsPerDay) µg/day, \(factor) or more times the median step rate of \(median) µg/day: was a rate per hour entered as a rate per day?",
                       value: Int64(step.doseRateMicrogramsPerDay), limit: Int64(threshold))
    }
}

extension ProgramProblem {
    /// What the rule says, for a clinician.
    public var summary: String {
        switch self {
        case .malformed: "a field is out of its range"
        case .programIdMismatch: "the program id differs from the one staged"
        case .stepsOutOfOrder: "the steps of a day are not in increasing order of start time"
        case .dayWithoutStep: "some day has no step"
        case .tooManyStepsOnADay: "a day has more than 13 steps"
        case .periodicBolusesInvalid: "the periodic boluses of a day overlap, are out of order or run past midnight"
        case .patientBolusInconsistent: "the patient bolus settings are inconsistent"
        case .impossibleDose: "the largest daily total is more than the reservoir holds"
        case .impossibleThreshold: "the low-reservoir threshold is not below the reservoir's capacity"
        }
    }
}

extension Drug {
    /// The name with a capital, to start a sentence.
    var displayName: String { name.prefix(1).uppercased() + name.dropFirst() }
}
