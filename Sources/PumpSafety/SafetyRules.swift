internal import PumpModel
import PumpProtocol

/// The `rule` of every finding the reviews make; the table in `DrugLibrary`'s documentation says
/// when each applies and in which unit its `value` and `limit` are.
public enum SafetyRule: String, Sendable, Hashable, CaseIterable, Codable {
    case pumpRule = "pump.rule"
    case drugNotInLibrary = "drug.notInLibrary"
    case drugOffLabel = "drug.offLabel"
    case concentrationBelowMinimum = "concentration.belowMinimum"
    case concentrationAboveMaximum = "concentration.aboveMaximum"
    case concentrationUnlistedStrength = "concentration.unlistedStrength"
    case dailyDoseHardMaximum = "dailyDose.hardMaximum"
    case dailyDoseSoftMaximum = "dailyDose.softMaximum"
    case startingDoseMaximum = "startingDose.maximum"
    case changeIncrease = "change.increase"
    case changeTenfold = "change.tenfold"
    case changeTenfoldDecrease = "change.tenfoldDecrease"
    case changeDrug = "change.drug"
    case changeConcentration = "change.concentration"
    case stepPerHourEntry = "step.perHourEntry"
    case patientBolusDoseHardMaximum = "patientBolus.doseHardMaximum"
    case patientBolusDoseSoftMaximum = "patientBolus.doseSoftMaximum"
    case patientBolusDailyHardMaximum = "patientBolus.dailyHardMaximum"
    case patientBolusDailySoftMaximum = "patientBolus.dailySoftMaximum"
    case reservoirLowSoon = "reservoir.lowSoon"
    case refillVolumeAboveCapacity = "refill.volumeAboveCapacity"
    case refillAspiratedAboveCapacity = "refill.aspiratedAboveCapacity"
    case refillDiscrepancy = "refill.discrepancy"
    case patientBolusNotEnabled = "patientBolus.notEnabled"
    case patientBolusDailyMaximum = "patientBolus.dailyMaximum"
    case patientBolusLockout = "patientBolus.lockout"
    case clinicianBolusNoProgram = "clinicianBolus.noProgram"
    case clinicianBolusNotInLibrary = "clinicianBolus.notInLibrary"
    case clinicianBolusDoseHardMaximum = "clinicianBolus.doseHardMaximum"
    case clinicianBolusDoseSoftMaximum = "clinicianBolus.doseSoftMaximum"
    case clinicianBolusVolumeHardMaximum = "clinicianBolus.volumeHardMaximum"
    case clinicianBolusVolumeSoftMaximum = "clinicianBolus.volumeSoftMaximum"
    case clinicianBolusAboveCatheterVolume = "clinicianBolus.aboveCatheterVolume"
    case clinicianBolusPrimingWithoutCatheterVolume = "clinicianBolus.primingWithoutCatheterVolume"
    case clinicianBolusRateHardMaximum = "clinicianBolus.rateHardMaximum"
    case clinicianBolusRateSoftMaximum = "clinicianBolus.rateSoftMaximum"
    case clinicianBolusDailyHardMaximum = "clinicianBolus.dailyHardMaximum"
    case clinicianBolusDailySoftMaximum = "clinicianBolus.dailySoftMaximum"
}

extension Finding {
    init(_ severity: Severity, _ rule: SafetyRule, _ message: String, value: Int64? = nil, limit: Int64? = nil) {
        self.init(severity: severity, rule: rule.rawValue, message: message, value: value, limit: limit)
    }

    /// The rule as a `SafetyRule`, nil for a rule id this version does not know.
    public var safetyRule: SafetyRule? { SafetyRule(rawValue: rule) }
}

extension Verdict {
    /// Rejected if any finding is hard; with soft findings, accepted with override if `override`
    /// has a reason that is not blank, else override required; accepted otherwise.
    public static func decide(findings: [Finding], override: Override?) -> Verdict {
        if findings.contains(where: { $0.severity == .hard }) { return .rejected }
        guard findings.contains(where: { $0.severity == .soft }) else { return .accepted }
        return override?.hasReason == true ? .acceptedWithOverride : .overrideRequired
    }
}

extension Override {
    /// Whether the reason says something (not empty, not only white space).
    public var hasReason: Bool { !reason.allSatisfy(\.isWhitespace) }
}

/// Reservoir projections: the pump model run forward from a status with a program.
enum ReservoirProjection {
    /// Projections stop here: later alarms are reported as nil.
    static let horizonMs: UInt64 = 365 * UInt64(PumpCalendar.millisecondsPerDay)

    /// When the low-reservoir and the empty alarms would be raised (pump clock) if `program`
    /// ran from `status`'s time with `reservoirMicroliters` in the reservoir and every allowed
    /// patient bolus were taken the moment it is allowed (the refill date assumes
    /// every allowed bolus is taken). Assumes therapy runs (a suspension or a critical alarm in
    /// `status` is ignored). Nil for a program the pump would refuse, or beyond the horizon.
    ///
    /// The pump model integrates delivery; this loop only decides when the next patient bolus
    /// can start: the latest of the lockout's end, the running bolus's end and, at the daily
    /// maximum, the moment the oldest start of the last 24 h leaves the window.
    static func project(program: Program, status: Status, reservoirMicroliters: UInt32) -> (lowAtMs: UInt64?, emptyAtMs: UInt64?) {
        let capacity = status.reservoirCapacityMicroliters
        let configuration = PumpConfiguration(
            reservoirCapacityMicroliters: capacity,
            initialReservoirMicroliters: min(reservoirMicroliters, capacity),
            // A small log: only the latest events are read, and trimming a large one on every
            // patient bolus of a year would dominate the run time.
            eventLogCapacity: 64
        )
        var pump = Pump(configuration: configuration, nowMs: status.pumpTimeMs, utcOffsetMinutes: status.utcOffsetMinutes)
        do { _ = try pump.activate(program, nowMs: status.pumpTimeMs, requestId: 0) } catch { return (nil, nil) }

        // A clock this close to the end of the pump's time (only from a corrupt status) has no
        // projection: the pump's clock stops at `PumpCalendar.latestTimeMs`, and the horizon
        // would never be reached.
        guard status.pumpTimeMs <= PumpCalendar.latestTimeMs - horizonMs else { return (nil, nil) }
        let end = status.pumpTimeMs + horizonMs
        let day = UInt64(PumpCalendar.millisecondsPerDay)
        let patient = program.patientBolus
        let lockoutMs = UInt64(patient.lockoutMinutes) * UInt64(PumpCalendar.millisecondsPerMinute)
        var low = raisedAt(.reservoirLow, pump)
        var empty = raisedAt(.reservoirEmpty, pump)
        while empty == nil, pump.state.referenceTimeMs < end {
            let now = pump.state.referenceTimeMs
            var next = min(end, now + day)
            if patient.doseMicrograms > 0, patient.maxPerDay > 0, pump.state.therapyState == .running {
                let starts = pump.state.patientBolusStartTimesMs.filter { $0 + day > now }
                var allowedAt = now
                if let latest = starts.last { allowedAt = max(allowedAt, latest + lockoutMs) }
                if let bolus = pump.state.bolus { allowedAt = max(allowedAt, bolus.endMs) }
                if starts.count >= Int(patient.maxPerDay), let oldest = starts.first { allowedAt = max(allowedAt, oldest + day) }
                if allowedAt <= now, (try? pump.patientBolus(nowMs: now, requestId: 0))?.outcome == .started {
                    // Started: the next one is after its lockout, found on the next turn.
                    continue
                }
                if allowedAt > now { next = min(next, allowedAt) }
            }
            pump.advance(to: next)
            // Time must move on, or the horizon is never reached.
            guard pump.state.referenceTimeMs > now else { break }
            low = low ?? raisedAt(.reservoirLow, pump)
            empty = raisedAt(.reservoirEmpty, pump)
        }
        return (low.flatMap { $0 <= end ? $0 : nil }, empty.flatMap { $0 <= end ? $0 : nil })
    }

    /// The time `alarm` was raised, if its condition is present.
    private static func raisedAt(_ alarm: AlarmCode, _ pump: Pump) -> UInt64? {
        guard pump.state.alarmConditionMask & alarm.mask != 0 else { return nil }
        return pump.state.events.last { $0.kind == .alarmRaised && $0.code == alarm.rawValue }?.timeMs ?? pump.state.pumpTimeMs
    }

    /// The `reservoir.lowSoon` notice, if the low-reservoir alarm is projected within `days`.
    static func lowSoonFinding(lowAtMs: UInt64?, nowMs: UInt64, days: UInt32) -> Finding? {
        guard let lowAtMs else { return nil }
        // days ≤ UInt32.max, so the window cannot overflow.
        let window = UInt64(days) * UInt64(PumpCalendar.millisecondsPerDay)
        let until = lowAtMs > nowMs ? lowAtMs - nowMs : 0
        guard until <= window else { return nil }
        return Finding(.notice, .reservoirLowSoon,
                       "The reservoir is projected to reach its low-reservoir threshold within \(days) days (\(until / 3_600_000) h), taking every allowed patient bolus.",
                       value: Int64(until), limit: Int64(window))
    }
}

/// `a + b`, or `UInt64.max` if it does not fit.
func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? .max : sum
}
