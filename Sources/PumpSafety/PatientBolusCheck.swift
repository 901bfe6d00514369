internal import PumpModel
public import PumpProtocol

/// The daemon's own check of a patient bolus request before it is sent: the pump
/// enforces the lockout and the daily maximum, and the daemon checks them again from the
/// pump's event log.
public enum PatientBolusCheck {
    /// Nil if `program` allows a patient bolus at pump time `nowMs` given `events` (the pump's
    /// recent events; those other than `bolusStarted` with code `patient` are ignored), else
    /// the hard finding that refuses it, in the pump's order (SPEC §6.20): not enabled, daily
    /// maximum (`maxPerDay` starts within the 24 h before `nowMs`), lockout (the latest start
    /// less than `lockoutMinutes` before `nowMs`). A start stamped after `nowMs` (clock skew)
    /// counts as within both windows: the check errs on refusing.
    public static func check(program: Program, events: [Event], nowMs: UInt64) -> Finding? {
        let settings = program.patientBolus
        guard settings.doseMicrograms > 0, settings.maxPerDay > 0 else {
            return Finding(.hard, .patientBolusNotEnabled, "The active program allows no patient bolus.")
        }
        let starts = events
            .filter { $0.kind == .bolusStarted && $0.code == BolusKind.patient.rawValue }
            .map(\.timeMs)
        let day = UInt64(PumpCalendar.millisecondsPerDay)
        // As the pump counts: a start at s is within the last 24 h while s + 24 h > now.
        let recent = starts.count { saturatingSum($0, day) > nowMs }
        if recent >= Int(settings.maxPerDay) {
            return Finding(.hard, .patientBolusDailyMaximum,
                           "\(recent) patient boluses in the last 24 hours: the maximum is \(settings.maxPerDay).",
                           value: Int64(recent), limit: Int64(settings.maxPerDay))
        }
        let lockoutMs = UInt64(settings.lockoutMinutes) * UInt64(PumpCalendar.millisecondsPerMinute)
        if let latest = starts.max(), saturatingSum(latest, lockoutMs) > nowMs {
            let since = nowMs > latest ? nowMs - latest : 0
            return Finding(.hard, .patientBolusLockout,
                           "The previous patient bolus started \(since / 60_000) min ago; the lockout is \(settings.lockoutMinutes) min.",
                           value: Int64(since), limit: Int64(lockoutMs))
        }
        return nil
    }
}
