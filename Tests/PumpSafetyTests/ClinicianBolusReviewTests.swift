import Foundation
import PumpProtocol
import PumpSafety
import Testing

/// Clinician boluses against the drug library: per-kind dose, volume and rate limits, priming
/// against the catheter, and the day's total with the boluses already given.
@Suite struct ClinicianBolusReviewTests {
    /// Morphine 10 mg/mL, 2 000 µg/day all week, patient boluses of 250 µg.
    static let program = Program(
        programId: 1, drug: .morphine, concentrationMicrogramsPerMilliliter: 10_000, lowReservoirThresholdMicroliters: 2000,
        steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 2000)], periodicBoluses: [],
        patientBolus: PatientBolusSettings(doseMicrograms: 250, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 6))
    static let now: UInt64 = 1_800_000_000_000
    static let hour: UInt64 = 3_600_000

    static func review(
        _ kind: BolusKind, dose: UInt32 = 0, volume: UInt32 = 0, minutes: UInt16 = 30, catheter: UInt32? = nil,
        events: [Event] = [], override: Override? = nil, program: Program? = program
    ) -> ClinicianBolusReport {
        ClinicianBolusReview.review(
            ClinicianBolusRequest(kind: kind, doseMicrograms: dose, volumeMicroliters: volume, durationMinutes: minutes),
            catheterVolumeMicroliters: catheter, program: program, events: events, nowMs: now, override: override)
    }

    static func rules(_ report: ClinicianBolusReport) -> [String] { report.findings.map(\.rule) }

    static func started(_ kind: BolusKind, dose: UInt32, hoursAgo: UInt64, sequence: UInt32) -> Event {
        Event(sequence: sequence, timeMs: now - hoursAgo * hour, kind: .bolusStarted, code: kind.rawValue, requestId: sequence,
              value1: dose, value2: 0)
    }

    /// The two boluses of the report that started this work: both refused by hard limits.
    @Test func theReportedOverdosesAreRefused() {
        let priming = Self.review(.priming, volume: 19_000, minutes: 1)
        #expect(priming.verdict == .rejected)
        #expect(Self.rules(priming).contains("clinicianBolus.volumeHardMaximum"))
        #expect(Self.rules(priming).contains("clinicianBolus.rateHardMaximum"))
        let single = Self.review(.single, dose: 190_000, minutes: 60)
        #expect(single.verdict == .rejected)
        #expect(Self.rules(single).contains("clinicianBolus.doseHardMaximum"))
        #expect(Self.rules(single).contains("clinicianBolus.dailyHardMaximum"))
        #expect(single.findings.first { $0.rule == "clinicianBolus.doseHardMaximum" }?.limit == 2000)
    }

    @Test func softLimitsNeedAnOverrideWithAReason() {
        let plain = Self.review(.single, dose: 1500, minutes: 60)
        #expect(plain.verdict == .overrideRequired)
        #expect(Self.rules(plain) == ["clinicianBolus.doseSoftMaximum"])
        #expect(Self.review(.single, dose: 1500, minutes: 60, override: Override(reason: "  ")).verdict == .overrideRequired)
        let overridden = Self.review(.single, dose: 1500, minutes: 60, override: Override(reason: "breakthrough pain, on call"))
        #expect(overridden.verdict == .acceptedWithOverride)
        #expect(overridden.override?.reason == "breakthrough pain, on call")
        // Within every limit: accepted, nothing to override.
        let small = Self.review(.single, dose: 500, minutes: 30)
        #expect(small.verdict == .accepted && small.findings.isEmpty)
        #expect(small.volumeMicroliters == 50 && small.rateMicrolitersPerHour == 100)
    }

    @Test func rateIsVolumeOverDuration() {
        // 100 µL in one minute: 6 000 µL/h, at the hard limit (not above): soft.
        #expect(Self.rules(Self.review(.single, dose: 1000, minutes: 1)) == ["clinicianBolus.rateSoftMaximum"])
        // 101 µL in one minute: above.
        #expect(Self.rules(Self.review(.single, dose: 1010, minutes: 1)).contains("clinicianBolus.rateHardMaximum"))
    }

    @Test func primingIsCheckedAgainstTheCatheterWhenItIsStated() {
        // No catheter volume: above the library's soft priming volume is refused, override or not.
        let unknown = Self.review(.priming, volume: 400, minutes: 10, override: Override(reason: "new catheter"))
        #expect(unknown.verdict == .rejected)
        #expect(Self.rules(unknown) == ["clinicianBolus.primingWithoutCatheterVolume"])
        #expect(Self.review(.priming, volume: 300, minutes: 10).verdict == .accepted)
        // A stated catheter of 450 µL: 400 µL fills it; above the soft priming volume, an override.
        #expect(Self.rules(Self.review(.priming, volume: 400, minutes: 10, catheter: 450)) == ["clinicianBolus.volumeSoftMaximum"])
        #expect(Self.review(.priming, volume: 400, minutes: 10, catheter: 450, override: Override(reason: "long catheter")).verdict == .acceptedWithOverride)
        #expect(Self.review(.priming, volume: 250, minutes: 10, catheter: 450).verdict == .accepted)
        // More than the catheter holds: refused, whatever the library's limits allow.
        let over = Self.review(.priming, volume: 200, minutes: 10, catheter: 150)
        #expect(over.verdict == .rejected)
        #expect(Self.rules(over) == ["clinicianBolus.aboveCatheterVolume"])
        // A stated catheter never lifts the library's hard limit.
        #expect(Self.rules(Self.review(.priming, volume: 600, minutes: 10, catheter: 5000)).contains("clinicianBolus.volumeHardMaximum"))
        // Priming fills the catheter: it adds nothing to the day's total.
        #expect(Self.review(.priming, volume: 100, minutes: 10).dailyTotalMicrograms == 2000)
    }

    @Test func theDayCountsProgramAndBolusesOfTheLast24Hours() {
        // 2 000 µg/day program + 12 000 µg given in the last day + 900 µg = 14 900: within the soft 15 000.
        let recent = [
            Self.started(.single, dose: 6000, hoursAgo: 23, sequence: 1),
            Self.started(.bridge, dose: 5750, hoursAgo: 5, sequence: 2),
            Self.started(.patient, dose: 250, hoursAgo: 1, sequence: 3),
            // Older than a day, a periodic bolus (in the program's total) and a priming: not counted.
            Self.started(.single, dose: 9000, hoursAgo: 25, sequence: 4),
            Self.started(.periodic, dose: 9000, hoursAgo: 2, sequence: 5),
            Self.started(.priming, dose: 9000, hoursAgo: 2, sequence: 6),
        ]
        let within = Self.review(.single, dose: 900, minutes: 60, events: recent)
        #expect(within.dailyTotalMicrograms == 14_900)
        #expect(within.verdict == .accepted)
        // 200 µg more: 15 100, above the soft daily maximum.
        let soft = Self.review(.single, dose: 1000, minutes: 60, events: recent + [Self.started(.single, dose: 100, hoursAgo: 0, sequence: 7)])
        #expect(Self.rules(soft) == ["clinicianBolus.dailySoftMaximum"])
        // Past the hard 20 000: refused even with an override.
        let hard = Self.review(.single, dose: 900, minutes: 60,
                               events: recent + [Self.started(.single, dose: 5500, hoursAgo: 0, sequence: 7)],
                               override: Override(reason: "agreed"))
        #expect(hard.verdict == .rejected)
        #expect(Self.rules(hard) == ["clinicianBolus.dailyHardMaximum"])
        #expect(hard.findings.first?.limit == 20_000)
    }

    @Test func noProgramOrNoLimitsRefuses() {
        #expect(Self.rules(Self.review(.single, dose: 10, program: nil)) == ["clinicianBolus.noProgram"])
        var library = DrugLibrary.standard
        library.drugs[.morphine]?.clinicianBolus = nil
        let report = ClinicianBolusReview.review(
            ClinicianBolusRequest(kind: .single, doseMicrograms: 10, volumeMicroliters: 0, durationMinutes: 30),
            program: Self.program, events: [], nowMs: Self.now, library: library)
        #expect(report.verdict == .rejected && Self.rules(report) == ["clinicianBolus.notInLibrary"])
        // Ziconotide is given by infusion only: no single bolus.
        var ziconotide = Self.program
        ziconotide.drug = .ziconotide
        ziconotide.concentrationMicrogramsPerMilliliter = 100
        ziconotide.steps = [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 2)]
        ziconotide.patientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 0)
        #expect(Self.review(.single, dose: 1, program: ziconotide).verdict == .rejected)
    }

    /// Every drug of the shipped library has clinician-bolus limits, and a file's drug entry
    /// written without them keeps the standard ones (never none).
    @Test func libraryFilesCarryTheLimits() throws {
        for drug in Drug.allCases {
            #expect(DrugLibrary.standard.drugs[drug]?.clinicianBolus != nil, "\(drug.name)")
        }
        var morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.clinicianBolus = nil
        let encoder = JSONEncoder()
        let entry = String(decoding: try encoder.encode(morphine), as: UTF8.self)
        let library = try DrugLibrary.decode(Data(#"{"drugs": {"morphine": \#(entry)}}"#.utf8))
        #expect(library.drugs[.morphine]?.clinicianBolus == DrugLibrary.standard.drugs[.morphine]?.clinicianBolus)
        // A soft limit above its hard one is refused, as for every other pair.
        morphine.clinicianBolus = DrugLibrary.standard.drugs[.morphine]?.clinicianBolus
        morphine.clinicianBolus?.single.doseMicrograms = SoftHardLimit(soft: 3000, hard: 2000)
        let bad = String(decoding: try encoder.encode(morphine), as: UTF8.self)
        #expect(throws: DrugLibraryError.softAboveHard(drug: "morphine", field: "clinicianBolus.single.doseMicrograms", soft: 3000, hard: 2000)) {
            try DrugLibrary.decode(Data(#"{"drugs": {"morphine": \#(bad)}}"#.utf8))
        }
    }
}
