internal import PumpModel
public import PumpProtocol

/// The limits of one kind of clinician bolus. A soft limit needs an override with a reason, a
/// hard one refuses (like a program's).
public struct BolusLimits: Sendable, Hashable, Codable {
    /// One bolus, µg. Single and bridge boluses only (a priming bolus is given by volume).
    public var doseMicrograms: SoftHardLimit?
    /// One bolus, µL: a priming bolus's volume, or a dose at the program's concentration.
    public var volumeMicroliters: SoftHardLimit
    /// The bolus's volume over its duration, µL/h.
    public var rateMicrolitersPerHour: SoftHardLimit

    public init(doseMicrograms: SoftHardLimit? = nil, volumeMicroliters: SoftHardLimit, rateMicrolitersPerHour: SoftHardLimit) {
        self.doseMicrograms = doseMicrograms
        self.volumeMicroliters = volumeMicroliters
        self.rateMicrolitersPerHour = rateMicrolitersPerHour
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case doseMicrograms, volumeMicroliters, rateMicrolitersPerHour }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        doseMicrograms = try container.decodeIfPresent(SoftHardLimit.self, forKey: .doseMicrograms)
        volumeMicroliters = try container.decode(SoftHardLimit.self, forKey: .volumeMicroliters)
        rateMicrolitersPerHour = try container.decode(SoftHardLimit.self, forKey: .rateMicrolitersPerHour)
    }
}

/// A drug's limits for the boluses a clinician gives (SPEC §6.19): single and bridge by dose,
/// priming by volume. Every one of them also counts toward the drug's daily limit.
public struct ClinicianBolusLimits: Sendable, Hashable, Codable {
    public var single: BolusLimits
    public var bridge: BolusLimits
    public var priming: BolusLimits

    public init(single: BolusLimits, bridge: BolusLimits, priming: BolusLimits) {
        self.single = single
        self.bridge = bridge
        self.priming = priming
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case single, bridge, priming }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        single = try container.decode(BolusLimits.self, forKey: .single)
        bridge = try container.decode(BolusLimits.self, forKey: .bridge)
        priming = try container.decode(BolusLimits.self, forKey: .priming)
    }

    /// The standard library's figures with a drug's single and bridge dose limits: single and
    /// bridge volume 200 / 500 µL and rate 1 000 / 6 000 µL/h; priming volume 300 / 500 µL
    /// (about a catheter and the pump's outlet) and rate 3 000 / 15 000 µL/h. All assumed.
    static func standard(singleDose: SoftHardLimit, bridgeDose: SoftHardLimit) -> ClinicianBolusLimits {
        let volume = SoftHardLimit(soft: 200, hard: 500)
        let rate = SoftHardLimit(soft: 1_000, hard: 6_000)
        return ClinicianBolusLimits(
            single: BolusLimits(doseMicrograms: singleDose, volumeMicroliters: volume, rateMicrolitersPerHour: rate),
            bridge: BolusLimits(doseMicrograms: bridgeDose, volumeMicroliters: volume, rateMicrolitersPerHour: rate),
            priming: BolusLimits(volumeMicroliters: SoftHardLimit(soft: 300, hard: 500),
                                 rateMicrolitersPerHour: SoftHardLimit(soft: 3_000, hard: 15_000)))
    }

    /// The limits of `kind`, nil for the kinds a clinician does not give.
    public func limits(for kind: BolusKind) -> BolusLimits? {
        switch kind {
        case .single: single
        case .bridge: bridge
        case .priming: priming
        case .periodic, .patient: nil
        }
    }

    /// Every soft/hard pair with its field name, for the library's consistency check.
    var namedLimits: [(String, SoftHardLimit)] {
        [("single", single), ("bridge", bridge), ("priming", priming)].flatMap { name, limits in
            [("clinicianBolus.\(name).volumeMicroliters", limits.volumeMicroliters),
             ("clinicianBolus.\(name).rateMicrolitersPerHour", limits.rateMicrolitersPerHour)]
                + (limits.doseMicrograms.map { [("clinicianBolus.\(name).doseMicrograms", $0)] } ?? [])
        }
    }
}

/// The check of a clinician bolus before it is sent: what it gives, and the drug
/// library's verdict.
public struct ClinicianBolusReport: Sendable, Hashable, Codable {
    public var kind: BolusKind
    /// Single and bridge: as asked; priming: the drug the volume holds at the program's concentration.
    public var doseMicrograms: UInt64
    /// Priming: as asked; single and bridge: the dose at the program's concentration, rounded up.
    public var volumeMicroliters: UInt64
    /// The volume over the duration, rounded up.
    public var rateMicrolitersPerHour: UInt64
    /// The catheter volume the priming volume was checked against, if stated.
    public var catheterVolumeMicroliters: UInt32?
    /// The program's largest scheduled day plus the boluses of the last 24 h plus this one, µg.
    public var dailyTotalMicrograms: UInt64
    public var findings: [Finding]
    public var verdict: Verdict
    /// Set only when the verdict is `acceptedWithOverride`.
    public var override: Override?
}

public enum ClinicianBolusReview {
    /// Reviews a clinician bolus on a pump running `program` (nil if none), at pump time
    /// `nowMs`, with `events` the pump's recent events.
    ///
    /// - Volumes: a single or bridge dose becomes a volume at the program's concentration
    ///   (rounded up); a priming volume above `catheterVolumeMicroliters`, when it is stated, is
    ///   refused (more than the catheter holds pushes drug into the patient), and so is one above
    ///   the library's soft priming volume when no catheter volume is stated; the hard priming
    ///   volume applies always, the soft one (with an override) below a stated catheter volume.
    /// - The day's total: the program's largest scheduled daily dose (basal rounded up and
    ///   periodic boluses), plus the dose of every single, bridge and patient bolus whose
    ///   `bolusStarted` event is within the 24 h before `nowMs` (a start stamped after `nowMs`
    ///   counts), plus this one. A priming bolus adds nothing: it fills the catheter, whose
    ///   content the program then delivers.
    public static func review(
        _ request: ClinicianBolusRequest,
        catheterVolumeMicroliters: UInt32? = nil,
        program: Program?,
        events: [Event],
        nowMs: UInt64,
        library: DrugLibrary = .standard,
        override: Override? = nil
    ) -> ClinicianBolusReport {
        var findings: [Finding] = []
        var dose: UInt64 = request.kind == .priming ? 0 : UInt64(request.doseMicrograms)
        var volume: UInt64 = request.kind == .priming ? UInt64(request.volumeMicroliters) : 0
        var dailyTotal = dose
        guard let program else {
            findings.append(Finding(.hard, .clinicianBolusNoProgram,
                                    "No program runs: the drug and its concentration are unknown, so no clinician bolus can be checked."))
            return report(request, dose, volume, catheterVolumeMicroliters, dailyTotal, findings, override)
        }
        let concentration = UInt64(program.concentrationMicrogramsPerMilliliter)
        if request.kind == .priming {
            dose = volume * concentration / 1000
        } else if concentration > 0 {
            volume = (dose * 1000 + concentration - 1) / concentration
        }
        guard let all = library.limits(for: program.drug)?.clinicianBolus, let limits = all.limits(for: request.kind) else {
            findings.append(Finding(.hard, .clinicianBolusNotInLibrary,
                                    "The drug library has no \(request.kind.name) bolus limits for \(program.drug.name)."))
            return report(request, dose, volume, catheterVolumeMicroliters, dailyTotal, findings, override)
        }
        let kind = request.kind.name
        if let perBolus = limits.doseMicrograms {
            if dose > perBolus.hard {
                findings.append(Finding(.hard, .clinicianBolusDoseHardMaximum,
                                        "A \(kind) bolus of \(dose) µg of \(program.drug.name) is above the hard maximum of \(perBolus.hard) µg.",
                                        value: Int64(dose), limit: Int64(clamping: perBolus.hard)))
            } else if dose > perBolus.soft {
                findings.append(Finding(.soft, .clinicianBolusDoseSoftMaximum,
                                        "A \(kind) bolus of \(dose) µg of \(program.drug.name) is above the soft maximum of \(perBolus.soft) µg.",
                                        value: Int64(dose), limit: Int64(clamping: perBolus.soft)))
            }
        }
        let volumeLimit = limits.volumeMicroliters
        if volume > volumeLimit.hard {
            findings.append(Finding(.hard, .clinicianBolusVolumeHardMaximum,
                                    "A \(kind) bolus of \(volume) µL is above the hard maximum of \(volumeLimit.hard) µL.",
                                    value: Int64(volume), limit: Int64(clamping: volumeLimit.hard)))
        } else if request.kind == .priming, let catheter = catheterVolumeMicroliters, volume > UInt64(catheter) {
            findings.append(Finding(.hard, .clinicianBolusAboveCatheterVolume,
                                    "A priming bolus of \(volume) µL is more than the catheter's \(catheter) µL: the rest would be injected.",
                                    value: Int64(volume), limit: Int64(catheter)))
        } else if request.kind == .priming, catheterVolumeMicroliters == nil, volume > volumeLimit.soft {
            // Nothing says how much the catheter holds: only what certainly fits is primed.
            findings.append(Finding(.hard, .clinicianBolusPrimingWithoutCatheterVolume,
                                    "A priming bolus of \(volume) µL is above the \(volumeLimit.soft) µL allowed when no catheter volume is stated.",
                                    value: Int64(volume), limit: Int64(clamping: volumeLimit.soft)))
        } else if volume > volumeLimit.soft {
            findings.append(Finding(.soft, .clinicianBolusVolumeSoftMaximum,
                                    "A \(kind) bolus of \(volume) µL is above the soft maximum of \(volumeLimit.soft) µL.",
                                    value: Int64(volume), limit: Int64(clamping: volumeLimit.soft)))
        }
        // durationMinutes ≥ 1 (validated); volume < 2^32 · 1000, so no overflow.
        let minutes = UInt64(max(request.durationMinutes, 1))
        let rate = (volume * 60 + minutes - 1) / minutes
        let rateLimit = limits.rateMicrolitersPerHour
        if rate > rateLimit.hard {
            findings.append(Finding(.hard, .clinicianBolusRateHardMaximum,
                                    "\(volume) µL over \(minutes) min is \(rate) µL/h, above the hard maximum of \(rateLimit.hard) µL/h.",
                                    value: Int64(rate), limit: Int64(clamping: rateLimit.hard)))
        } else if rate > rateLimit.soft {
            findings.append(Finding(.soft, .clinicianBolusRateSoftMaximum,
                                    "\(volume) µL over \(minutes) min is \(rate) µL/h, above the soft maximum of \(rateLimit.soft) µL/h.",
                                    value: Int64(rate), limit: Int64(clamping: rateLimit.soft)))
        }
        let counted: Set<UInt8> = [BolusKind.single.rawValue, BolusKind.bridge.rawValue, BolusKind.patient.rawValue]
        let day = UInt64(PumpCalendar.millisecondsPerDay)
        let given = events
            .filter { $0.kind == .bolusStarted && counted.contains($0.code) && saturatingSum($0.timeMs, day) > nowMs }
            .reduce(UInt64(0)) { $0 + UInt64($1.value1) }
        let scheduled = ProgramReview.largestDailyTotalRoundedUp(program)
            - UInt64(program.patientBolus.doseMicrograms) * UInt64(program.patientBolus.maxPerDay)
        dailyTotal = request.kind == .priming ? scheduled + given : scheduled + given + dose
        if let daily = library.limits(for: program.drug)?.dailyDoseMicrograms, request.kind != .priming {
            let message = "The program's \(scheduled) µg/day, \(given) µg of boluses in the last 24 h and this \(dose) µg make \(dailyTotal) µg"
            if dailyTotal > daily.hard {
                findings.append(Finding(.hard, .clinicianBolusDailyHardMaximum,
                                        "\(message), above the daily hard maximum of \(daily.hard) µg.",
                                        value: Int64(clamping: dailyTotal), limit: Int64(clamping: daily.hard)))
            } else if dailyTotal > daily.soft {
                findings.append(Finding(.soft, .clinicianBolusDailySoftMaximum,
                                        "\(message), above the daily soft maximum of \(daily.soft) µg.",
                                        value: Int64(clamping: dailyTotal), limit: Int64(clamping: daily.soft)))
            }
        }
        return report(request, dose, volume, catheterVolumeMicroliters, dailyTotal, findings, override)
    }

    private static func report(
        _ request: ClinicianBolusRequest, _ dose: UInt64, _ volume: UInt64, _ catheter: UInt32?, _ dailyTotal: UInt64,
        _ findings: [Finding], _ override: Override?
    ) -> ClinicianBolusReport {
        let minutes = UInt64(max(request.durationMinutes, 1))
        let verdict = Verdict.decide(findings: findings, override: override)
        return ClinicianBolusReport(
            kind: request.kind, doseMicrograms: dose, volumeMicroliters: volume,
            rateMicrolitersPerHour: (volume * 60 + minutes - 1) / minutes,
            catheterVolumeMicroliters: catheter, dailyTotalMicrograms: dailyTotal, findings: findings, verdict: verdict,
            override: verdict == .acceptedWithOverride ? override : nil)
    }
}
