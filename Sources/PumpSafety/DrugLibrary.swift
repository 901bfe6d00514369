public import Foundation
public import PumpProtocol

/// The clinical limits the daemon checks a program against before it reaches a pump:
/// per drug, the concentrations allowed, the daily-dose limits, the largest increase against
/// the running program, the patient-bolus limits and the clinician-bolus limits
/// (`ClinicianBolusLimits`). Hard limits reject; soft limits need an override with a reason.
///
/// `DrugLibrary.standard` is the shipped default (its JSON form is protocol/drug-library.json).
/// A library file overrides it: `DrugLibrary.load(from:)` starts from the standard library and
/// replaces each drug the file names, whole (every field of that drug must be given, except
/// `clinicianBolus`: without it the drug keeps the standard library's), and each
/// top-level setting the file gives. A drug cannot be removed; to forbid one, give it a
/// concentration range no program can meet (maximum 0).
///
/// Units: concentrations in µg/mL, doses in µg, daily doses in µg/day, all whole numbers.
/// Label figures that are not whole micrograms are rounded down to what a program can state
/// (ziconotide: 19.2 µg/day → 19, start 2.4 µg/day → 2; a program's rates are whole µg/day).
/// Each drug's `assumed` lists the fields that are reasonable defaults rather than label or
/// consensus figures.
///
/// The rules the reviews apply, by the `rule` of their findings:
///
/// | Rule id | Severity | Checked by | Broken when | value / limit |
/// |---|---|---|---|---|
/// | `pump.rule` | hard | program | the pump would refuse the program (SPEC §9.5) | rule number / – |
/// | `drug.notInLibrary` | hard | program | the library has no entry for the drug | – |
/// | `drug.offLabel` | notice | program | the drug is used off-label in these pumps | – |
/// | `concentration.belowMinimum` | hard | program | concentration < the drug's minimum | µg/mL |
/// | `concentration.aboveMaximum` | hard | program | concentration > the drug's maximum | µg/mL |
/// | `concentration.unlistedStrength` | soft | program | the drug lists standard strengths and this is none of them | µg/mL |
/// | `dailyDose.hardMaximum` | hard | program | largest daily total with every patient bolus > hard maximum | µg/day |
/// | `dailyDose.softMaximum` | soft | program | the same > soft maximum (and ≤ hard) | µg/day |
/// | `startingDose.maximum` | soft | program | the drug has a starting-dose limit, no program of that drug runs, and the largest daily total is above it | µg/day |
/// | `change.increase` | soft | program | daily dose up by more than `maximumIncreasePercent` against the active program (same drug) | % |
/// | `change.tenfold` | hard | program | daily dose ≥ `hardIncreaseFactor` × the active one (same drug) | µg/day |
/// | `change.tenfoldDecrease` | soft | program | daily dose × `hardIncreaseFactor` ≤ the active one (withdrawal risk) | µg/day |
/// | `change.drug` | notice | program | the drug differs from the active program's: needs a refill and a bridge bolus | – |
/// | `change.concentration` | notice | program | same drug, other concentration: needs a refill and a bridge bolus | µg/mL |
/// | `step.perHourEntry` | soft | program | a step's rate ≥ `perHourEntryFactor` × the median of the program's non-zero step rates | µg/day |
/// | `patientBolus.doseHardMaximum` | hard | program | patient bolus dose > hard maximum | µg |
/// | `patientBolus.doseSoftMaximum` | soft | program | patient bolus dose > soft maximum (and ≤ hard) | µg |
/// | `patientBolus.dailyHardMaximum` | hard | program | patient dose × maximum per day > hard maximum | µg/day |
/// | `patientBolus.dailySoftMaximum` | soft | program | the same > soft maximum (and ≤ hard) | µg/day |
/// | `reservoir.lowSoon` | notice | program, refill | the low-reservoir alarm is projected within `lowReservoirNoticeDays` | ms from now |
/// | `refill.volumeAboveCapacity` | hard | refill | new volume > reservoir capacity | µL |
/// | `refill.aspiratedAboveCapacity` | hard | refill | aspirated volume > reservoir capacity | µL |
/// | `refill.discrepancy` | notice | refill | \|expected − aspirated\| > 1000 µL (capacity ≤ 20 mL) or 2000 µL (above) | µL |
/// | `patientBolus.notEnabled` | hard | patient bolus | the active program allows no patient bolus | – |
/// | `patientBolus.dailyMaximum` | hard | patient bolus | `maxPerDay` patient boluses already started in the last 24 h | count |
/// | `patientBolus.lockout` | hard | patient bolus | the previous patient bolus started less than the lockout ago | ms since it |
/// | `clinicianBolus.noProgram` | hard | clinician bolus | no program runs, so the drug and its concentration are unknown | – |
/// | `clinicianBolus.notInLibrary` | hard | clinician bolus | the library has no clinician-bolus limits for the drug | – |
/// | `clinicianBolus.doseHardMaximum` | hard | clinician bolus | single or bridge dose > the kind's hard maximum | µg |
/// | `clinicianBolus.doseSoftMaximum` | soft | clinician bolus | the same > soft maximum (and ≤ hard) | µg |
/// | `clinicianBolus.volumeHardMaximum` | hard | clinician bolus | volume (priming: as asked; else dose at the program's concentration, rounded up) > hard maximum | µL |
/// | `clinicianBolus.volumeSoftMaximum` | soft | clinician bolus | the same > soft maximum (and ≤ hard) | µL |
/// | `clinicianBolus.aboveCatheterVolume` | hard | clinician bolus | priming volume > the catheter volume stated with the request | µL |
/// | `clinicianBolus.primingWithoutCatheterVolume` | hard | clinician bolus | no catheter volume stated and priming volume > the priming soft maximum | µL |
/// | `clinicianBolus.rateHardMaximum` | hard | clinician bolus | volume ÷ duration > hard maximum | µL/h |
/// | `clinicianBolus.rateSoftMaximum` | soft | clinician bolus | the same > soft maximum (and ≤ hard) | µL/h |
/// | `clinicianBolus.dailyHardMaximum` | hard | clinician bolus | program's largest scheduled day + single, bridge and patient boluses started in the last 24 h + this dose > the drug's daily hard maximum | µg/day |
/// | `clinicianBolus.dailySoftMaximum` | soft | clinician bolus | the same > daily soft maximum (and ≤ hard) | µg/day |
public struct DrugLibrary: Sendable, Hashable, Codable {
    /// Increases by this factor or more against the active program are refused (a tenfold
    /// entry error); decreases by it need an override.
    public var hardIncreaseFactor: UInt32
    /// A step at this many times the median step rate looks like a per-hour entry (24: µg/h
    /// entered as µg/day).
    public var perHourEntryFactor: UInt32
    /// A low-reservoir alarm projected within this many days is shown.
    public var lowReservoirNoticeDays: UInt32
    /// Free text: where the figures come from.
    public var notes: [String]
    public var drugs: [Drug: DrugLimits]

    public init(
        hardIncreaseFactor: UInt32 = 10,
        perHourEntryFactor: UInt32 = 24,
        lowReservoirNoticeDays: UInt32 = 7,
        notes: [String] = [],
        drugs: [Drug: DrugLimits]
    ) {
        self.hardIncreaseFactor = hardIncreaseFactor
        self.perHourEntryFactor = perHourEntryFactor
        self.lowReservoirNoticeDays = lowReservoirNoticeDays
        self.notes = notes
        self.drugs = drugs
    }

    public func limits(for drug: Drug) -> DrugLimits? { drugs[drug] }

    // MARK: - Files

    /// The standard library overridden by the JSON file at `url` (see the type's documentation).
    public static func load(from url: URL) throws(DrugLibraryError) -> DrugLibrary {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadable(path: url.path, reason: String(describing: error))
        }
        return try decode(data)
    }

    /// The standard library overridden by a JSON document.
    public static func decode(_ data: Data) throws(DrugLibraryError) -> DrugLibrary {
        do {
            return try JSONDecoder().decode(DrugLibrary.self, from: data)
        } catch let error as DrugLibraryError {
            throw error
        } catch let DecodingError.dataCorrupted(context) {
            throw .invalid(path: Self.describe(context.codingPath), reason: context.debugDescription)
        } catch let DecodingError.keyNotFound(key, context) {
            throw .missingField(path: Self.describe(context.codingPath + [key]))
        } catch let DecodingError.typeMismatch(_, context) {
            throw .invalid(path: Self.describe(context.codingPath), reason: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw .invalid(path: Self.describe(context.codingPath), reason: context.debugDescription)
        } catch {
            throw .invalid(path: "", reason: String(describing: error))
        }
    }

    /// The library as JSON: keys sorted, pretty-printed, every drug given (what `decode` reads).
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Only integers, strings and arrays: encoding cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    private static func describe(_ path: [any CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    // MARK: - Codable

    enum CodingKeys: String, CodingKey, CaseIterable {
        case hardIncreaseFactor, perHourEntryFactor, lowReservoirNoticeDays, notes, drugs
    }

    /// Starts from `standard` and replaces what the document gives (see the type's documentation).
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var library = DrugLibrary.standard
        library.hardIncreaseFactor = try container.decodeIfPresent(UInt32.self, forKey: .hardIncreaseFactor) ?? library.hardIncreaseFactor
        library.perHourEntryFactor = try container.decodeIfPresent(UInt32.self, forKey: .perHourEntryFactor) ?? library.perHourEntryFactor
        library.lowReservoirNoticeDays = try container.decodeIfPresent(UInt32.self, forKey: .lowReservoirNoticeDays) ?? library.lowReservoirNoticeDays
        library.notes = try container.decodeIfPresent([String].self, forKey: .notes) ?? library.notes
        guard library.hardIncreaseFactor >= 2 else {
            throw DrugLibraryError.invalidSetting(name: "hardIncreaseFactor", value: Int64(library.hardIncreaseFactor))
        }
        guard library.perHourEntryFactor >= 2 else {
            throw DrugLibraryError.invalidSetting(name: "perHourEntryFactor", value: Int64(library.perHourEntryFactor))
        }
        let named = try container.decodeIfPresent([String: DrugLimits].self, forKey: .drugs) ?? [:]
        // Sorted so that the first bad entry reported does not depend on dictionary order.
        for (name, limits) in named.sorted(by: { $0.key < $1.key }) {
            guard let drug = Drug(name: name) else { throw DrugLibraryError.unknownDrug(name) }
            var limits = limits
            // A drug entry written before clinician-bolus limits existed keeps the standard ones.
            if limits.clinicianBolus == nil { limits.clinicianBolus = DrugLibrary.standard.drugs[drug]?.clinicianBolus }
            try limits.check(drug: drug)
            library.drugs[drug] = limits
        }
        self = library
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hardIncreaseFactor, forKey: .hardIncreaseFactor)
        try container.encode(perHourEntryFactor, forKey: .perHourEntryFactor)
        try container.encode(lowReservoirNoticeDays, forKey: .lowReservoirNoticeDays)
        try container.encode(notes, forKey: .notes)
        try container.encode(Dictionary(uniqueKeysWithValues: drugs.map { ($0.key.name, $0.value) }), forKey: .drugs)
    }
}

/// Whether a drug is approved for intrathecal use in these pumps.
public enum LabelStatus: String, Sendable, Hashable, Codable {
    case approved
    case offLabel
}

/// A pair of limits: above `soft` needs an override, above `hard` is refused.
public struct SoftHardLimit: Sendable, Hashable, Codable {
    public var soft: UInt64
    public var hard: UInt64

    public init(soft: UInt64, hard: UInt64) {
        self.soft = soft
        self.hard = hard
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case soft, hard }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        soft = try container.decode(UInt64.self, forKey: .soft)
        hard = try container.decode(UInt64.self, forKey: .hard)
    }
}

/// The concentrations allowed (hard), and the standard strengths if the drug has any.
public struct ConcentrationLimits: Sendable, Hashable, Codable {
    public var minimum: UInt32
    public var maximum: UInt32
    /// The marketed strengths; another concentration within the range needs an override.
    /// Empty: any concentration within the range.
    public var standard: [UInt32]

    public init(minimum: UInt32, maximum: UInt32, standard: [UInt32] = []) {
        self.minimum = minimum
        self.maximum = maximum
        self.standard = standard
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case minimum, maximum, standard }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        minimum = try container.decode(UInt32.self, forKey: .minimum)
        maximum = try container.decode(UInt32.self, forKey: .maximum)
        standard = try container.decodeIfPresent([UInt32].self, forKey: .standard) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(minimum, forKey: .minimum)
        try container.encode(maximum, forKey: .maximum)
        if !standard.isEmpty { try container.encode(standard, forKey: .standard) }
    }
}

/// One drug's entry in the library.
public struct DrugLimits: Sendable, Hashable, Codable {
    public var label: LabelStatus
    /// What the drug is approved for in these pumps ("pain", "spasticity"), if approved.
    public var approvedIndication: String?
    /// µg/mL.
    public var concentrationMicrogramsPerMilliliter: ConcentrationLimits
    /// The largest daily total with every allowed patient bolus, µg/day.
    public var dailyDoseMicrograms: SoftHardLimit
    /// The largest daily total when starting the drug (no program of it running), µg/day (soft).
    public var startingDoseMaximumMicrogramsPerDay: UInt64?
    /// The largest increase of the daily dose against the running program, percent (soft).
    public var maximumIncreasePercent: UInt32
    /// One patient bolus, µg.
    public var patientBolusDoseMicrograms: SoftHardLimit
    /// Patient bolus dose × maximum per day, µg/day.
    public var patientBolusDailyMicrograms: SoftHardLimit
    /// The clinician boluses (single, bridge, priming). Nil only in a library built in code
    /// without them: every clinician bolus of the drug is then refused. A file's drug entry
    /// that omits them keeps the standard library's for that drug.
    public var clinicianBolus: ClinicianBolusLimits?
    /// The fields whose figures are assumed defaults, not label or consensus figures.
    public var assumed: [String]
    /// Where the figures come from.
    public var note: String

    public init(
        label: LabelStatus,
        approvedIndication: String? = nil,
        concentrationMicrogramsPerMilliliter: ConcentrationLimits,
        dailyDoseMicrograms: SoftHardLimit,
        startingDoseMaximumMicrogramsPerDay: UInt64? = nil,
        maximumIncreasePercent: UInt32 = 50,
        patientBolusDoseMicrograms: SoftHardLimit,
        patientBolusDailyMicrograms: SoftHardLimit,
        clinicianBolus: ClinicianBolusLimits? = nil,
        assumed: [String] = [],
        note: String = ""
    ) {
        self.label = label
        self.approvedIndication = approvedIndication
        self.concentrationMicrogramsPerMilliliter = concentrationMicrogramsPerMilliliter
        self.dailyDoseMicrograms = dailyDoseMicrograms
        self.startingDoseMaximumMicrogramsPerDay = startingDoseMaximumMicrogramsPerDay
        self.maximumIncreasePercent = maximumIncreasePercent
        self.patientBolusDoseMicrograms = patientBolusDoseMicrograms
        self.patientBolusDailyMicrograms = patientBolusDailyMicrograms
        self.clinicianBolus = clinicianBolus
        self.assumed = assumed
        self.note = note
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case label, approvedIndication, concentrationMicrogramsPerMilliliter, dailyDoseMicrograms
        case startingDoseMaximumMicrogramsPerDay, maximumIncreasePercent
        case patientBolusDoseMicrograms, patientBolusDailyMicrograms, clinicianBolus, assumed, note
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        label = try container.decode(LabelStatus.self, forKey: .label)
        approvedIndication = try container.decodeIfPresent(String.self, forKey: .approvedIndication)
        concentrationMicrogramsPerMilliliter = try container.decode(ConcentrationLimits.self, forKey: .concentrationMicrogramsPerMilliliter)
        dailyDoseMicrograms = try container.decode(SoftHardLimit.self, forKey: .dailyDoseMicrograms)
        startingDoseMaximumMicrogramsPerDay = try container.decodeIfPresent(UInt64.self, forKey: .startingDoseMaximumMicrogramsPerDay)
        maximumIncreasePercent = try container.decode(UInt32.self, forKey: .maximumIncreasePercent)
        patientBolusDoseMicrograms = try container.decode(SoftHardLimit.self, forKey: .patientBolusDoseMicrograms)
        patientBolusDailyMicrograms = try container.decode(SoftHardLimit.self, forKey: .patientBolusDailyMicrograms)
        clinicianBolus = try container.decodeIfPresent(ClinicianBolusLimits.self, forKey: .clinicianBolus)
        assumed = try container.decodeIfPresent([String].self, forKey: .assumed) ?? []
        note = try container.decodeIfPresent(String.self, forKey: .note) ?? ""
    }

    /// Throws the first inconsistency: minimum above maximum, a soft limit above its hard one.
    public func check(drug: Drug) throws(DrugLibraryError) {
        let concentration = concentrationMicrogramsPerMilliliter
        guard concentration.minimum <= concentration.maximum else {
            throw .minimumAboveMaximum(drug: drug.name, field: "concentrationMicrogramsPerMilliliter",
                                       minimum: UInt64(concentration.minimum), maximum: UInt64(concentration.maximum))
        }
        for strength in concentration.standard where !(concentration.minimum...concentration.maximum).contains(strength) {
            throw .standardStrengthOutsideRange(drug: drug.name, strength: strength)
        }
        let pairs: [(String, SoftHardLimit)] = [
            ("dailyDoseMicrograms", dailyDoseMicrograms),
            ("patientBolusDoseMicrograms", patientBolusDoseMicrograms),
            ("patientBolusDailyMicrograms", patientBolusDailyMicrograms),
        ]
        for (field, limit) in pairs + (clinicianBolus?.namedLimits ?? []) where limit.soft > limit.hard {
            throw .softAboveHard(drug: drug.name, field: field, soft: limit.soft, hard: limit.hard)
        }
        if let clinicianBolus {
            for (field, kind) in [("single", clinicianBolus.single), ("bridge", clinicianBolus.bridge)] where kind.doseMicrograms == nil {
                throw .missingField(path: "drugs.\(drug.name).clinicianBolus.\(field).doseMicrograms")
            }
            if clinicianBolus.priming.doseMicrograms != nil {
                throw .unknownField(path: "drugs.\(drug.name).clinicianBolus.priming.doseMicrograms")
            }
        }
        if let starting = startingDoseMaximumMicrogramsPerDay, starting > dailyDoseMicrograms.hard {
            throw .softAboveHard(drug: drug.name, field: "startingDoseMaximumMicrogramsPerDay",
                                 soft: starting, hard: dailyDoseMicrograms.hard)
        }
    }
}

/// Why a drug library file was not loaded.
public enum DrugLibraryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// Not JSON, or a value of the wrong type at `path`.
    case invalid(path: String, reason: String)
    /// A required field is missing (a drug entry must give every field).
    case missingField(path: String)
    /// A field the library does not know (often a misspelling, which would otherwise be ignored).
    case unknownField(path: String)
    /// A drug name that is not one of the protocol's drugs.
    case unknownDrug(String)
    /// A range whose minimum is above its maximum.
    case minimumAboveMaximum(drug: String, field: String, minimum: UInt64, maximum: UInt64)
    /// A standard strength outside the drug's concentration range.
    case standardStrengthOutsideRange(drug: String, strength: UInt32)
    /// A soft limit above its hard limit.
    case softAboveHard(drug: String, field: String, soft: UInt64, hard: UInt64)
    /// A top-level setting out of its range.
    case invalidSetting(name: String, value: Int64)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "drug library \(path) cannot be read: \(reason)"
        case let .invalid(path, reason): "drug library is invalid at '\(path)': \(reason)"
        case let .missingField(path): "drug library is missing '\(path)'"
        case let .unknownField(path): "drug library has an unknown field '\(path)'"
        case let .unknownDrug(name): "drug library names an unknown drug '\(name)' (known: \(Drug.allCases.map(\.name).joined(separator: ", ")))"
        case let .minimumAboveMaximum(drug, field, minimum, maximum): "drug library: \(drug).\(field): \(minimum) is above the maximum \(maximum)"
        case let .standardStrengthOutsideRange(drug, strength): "drug library: \(drug): standard strength \(strength) µg/mL is outside the concentration range"
        case let .softAboveHard(drug, field, soft, hard): "drug library: \(drug).\(field): soft limit \(soft) is above the hard limit \(hard)"
        case let .invalidSetting(name, value): "drug library: \(name) = \(value) is out of range (at least 2)"
        }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Refuses keys outside `known`: a misspelt optional field would otherwise drop a limit silently.
func rejectUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !known.contains(key.stringValue) {
        let path = (decoder.codingPath + [key]).map(\.stringValue).joined(separator: ".")
        throw DrugLibraryError.unknownField(path: path)
    }
}
