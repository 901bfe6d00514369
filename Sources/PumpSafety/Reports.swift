import PumpProtocol

/// An explicit decision to go past a soft limit, recorded in the audit log.
public struct Override: Sendable, Hashable, Codable {
    /// Why the clinician accepts the risk; must not be empty.
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}

/// One thing a review found about a program, a refill or a bolus.
public struct Finding: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Hashable, Codable {
        /// Refused; no override can pass it.
        case hard
        /// Refused unless overridden with a reason.
        case soft
        /// Shown to the clinician; blocks nothing.
        case notice
    }

    public var severity: Severity
    /// A stable identifier, e.g. "dailyDose.hardMaximum" (listed in the drug library's documentation).
    public var rule: String
    /// One sentence for the clinician.
    public var message: String
    /// The value found and the limit it was checked against, in the unit the rule names.
    public var value: Int64?
    public var limit: Int64?

    public init(severity: Severity, rule: String, message: String, value: Int64? = nil, limit: Int64? = nil) {
        self.severity = severity
        self.rule = rule
        self.message = message
        self.value = value
        self.limit = limit
    }
}

public enum Verdict: String, Sendable, Hashable, Codable {
    /// Nothing stops it.
    case accepted
    /// Only soft findings, and an override with a reason was given.
    case acceptedWithOverride
    /// Soft findings and no override.
    case overrideRequired
    /// A hard finding.
    case rejected
}

/// The dry run of a program push: what the new program would do, beside what runs now.
public struct ProgramReport: Sendable, Hashable, Codable {
    public var programId: UInt32
    public var drug: Drug
    public var concentrationMicrogramsPerMilliliter: UInt32
    /// Daily dose (basal and periodic boluses, SPEC §9.4) for Monday ... Sunday.
    public var dailyDoseMicrogramsByWeekday: [UInt64]
    /// The largest of them.
    public var dailyDoseMicrograms: UInt64
    /// The largest daily dose if every allowed patient bolus is taken.
    public var dailyDoseWithPatientBolusesMicrograms: UInt64
    /// The active program's daily dose, if one is active.
    public var activeDailyDoseMicrograms: UInt64?
    /// Change of the daily dose against the active program, in percent (nil if none is active
    /// or its drug or concentration differs).
    public var changePercent: Int64?
    /// When the reservoir would reach the low-reservoir threshold and empty under this program,
    /// taking every allowed patient bolus (pump clock, ms since the epoch); nil if beyond a year.
    public var projectedLowReservoirAtMs: UInt64?
    public var projectedEmptyAtMs: UInt64?
    /// SPEC §9.5 rule the pump would refuse it for, if any.
    public var pumpRule: UInt32?
    public var findings: [Finding]
    public var verdict: Verdict
    public var override: Override?

    public init(
        programId: UInt32, drug: Drug, concentrationMicrogramsPerMilliliter: UInt32,
        dailyDoseMicrogramsByWeekday: [UInt64], dailyDoseMicrograms: UInt64,
        dailyDoseWithPatientBolusesMicrograms: UInt64, activeDailyDoseMicrograms: UInt64?,
        changePercent: Int64?, projectedLowReservoirAtMs: UInt64?, projectedEmptyAtMs: UInt64?,
        pumpRule: UInt32?, findings: [Finding], verdict: Verdict, override: Override?
    ) {
        self.programId = programId
        self.drug = drug
        self.concentrationMicrogramsPerMilliliter = concentrationMicrogramsPerMilliliter
        self.dailyDoseMicrogramsByWeekday = dailyDoseMicrogramsByWeekday
        self.dailyDoseMicrograms = dailyDoseMicrograms
        self.dailyDoseWithPatientBolusesMicrograms = dailyDoseWithPatientBolusesMicrograms
        self.activeDailyDoseMicrograms = activeDailyDoseMicrograms
        self.changePercent = changePercent
        self.projectedLowReservoirAtMs = projectedLowReservoirAtMs
        self.projectedEmptyAtMs = projectedEmptyAtMs
        self.pumpRule = pumpRule
        self.findings = findings
        self.verdict = verdict
        self.override = override
    }
}

/// The check of a refill before it is sent (volumes against capacity and expectation).
public struct RefillReport: Sendable, Hashable, Codable {
    public var expectedMicroliters: UInt32
    public var aspiratedMicroliters: UInt32
    public var newVolumeMicroliters: UInt32
    public var capacityMicroliters: UInt32
    /// |expected − aspirated| beyond 1000 µL (20 mL pump) or 2000 µL (40 mL pump).
    public var discrepancy: Bool
    public var projectedLowReservoirAtMs: UInt64?
    public var projectedEmptyAtMs: UInt64?
    public var findings: [Finding]
    public var verdict: Verdict

    public init(
        expectedMicroliters: UInt32, aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32,
        capacityMicroliters: UInt32, discrepancy: Bool, projectedLowReservoirAtMs: UInt64?,
        projectedEmptyAtMs: UInt64?, findings: [Finding], verdict: Verdict
    ) {
        self.expectedMicroliters = expectedMicroliters
        self.aspiratedMicroliters = aspiratedMicroliters
        self.newVolumeMicroliters = newVolumeMicroliters
        self.capacityMicroliters = capacityMicroliters
        self.discrepancy = discrepancy
        self.projectedLowReservoirAtMs = projectedLowReservoirAtMs
        self.projectedEmptyAtMs = projectedEmptyAtMs
        self.findings = findings
        self.verdict = verdict
    }
}
