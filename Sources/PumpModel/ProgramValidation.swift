public import PumpProtocol

/// A rule of SPEC §9.5 that a program breaks. The raw value is the rule number: the `problem` of
/// a ProgramVerify response and the `detail` of an Error `programInvalid`. Rules are checked in
/// order of their numbers and the lowest broken one is reported.
public enum ProgramProblem: UInt32, Error, Sendable, Hashable, Codable, CaseIterable {
    /// Rule 1: not exactly one Program encoding. For a program built in memory: a field outside
    /// its codec range (`programId` 0, concentration 0, a `dayMask` 0 or above 127, a
    /// `startMinute` above 1439, a periodic bolus dose 0 or duration outside 1…1440, patient
    /// bolus fields above their maximum, more than 91 steps or 24 periodic boluses).
    case malformed = 1
    /// Rule 2: the encoded `programId` differs from the one stated at ProgramStageBegin. Only
    /// the protocol side, which knows the stated id, can detect it; `problem(…)` never returns
    /// it. Kept so that the numbering is shared.
    case programIdMismatch = 2
    /// Rule 3: on some day the steps that include it, in list order, do not have strictly
    /// increasing `startMinute` (two at the same minute of the same day included).
    case stepsOutOfOrder = 3
    /// Rule 4: `steps` is not empty and some day has no step.
    case dayWithoutStep = 4
    /// Rule 5: more than 13 steps include some day.
    case tooManyStepsOnADay = 5
    /// Rule 6: on some day the periodic boluses that include it, in list order, do not start at
    /// strictly increasing minutes, or one ends after the next starts, or one runs past midnight.
    case periodicBolusesInvalid = 6
    /// Rule 7: patient bolus disabled (dose 0) with another field set, or enabled with
    /// `durationMinutes` 0, `maxPerDay` 0 or `lockoutMinutes` < `durationMinutes`.
    case patientBolusInconsistent = 7
    /// Rule 8: the largest daily total (§9.4) is above 4 294 967 295 µg or its volume, rounded
    /// up, above the reservoir's capacity.
    case impossibleDose = 8
    /// Rule 9: `lowReservoirThresholdMicroliters` is not below the reservoir's capacity.
    case impossibleThreshold = 9
}

extension Program {
    /// At most this many steps may include one day (rule 5).
    static let maximumStepsPerDay = 13

    /// The lowest-numbered rule of SPEC §9.5 this program breaks on a pump with the given
    /// reservoir, or nil if it is valid. Never `.programIdMismatch` (rule 2 needs the id stated
    /// at ProgramStageBegin).
    public func problem(reservoirCapacityMicroliters capacity: UInt32) -> ProgramProblem? {
        do { try validate() } catch { return .malformed }
        if !Self.startsIncrease(steps.map { ($0.dayMask, $0.startMinute) }) { return .stepsOutOfOrder }
        if !steps.isEmpty, steps.reduce(0 as UInt8, { $0 | $1.dayMask }) != 0x7F { return .dayWithoutStep }
        for day in 0..<7 where steps.count(where: { $0.dayMask & (1 << day) != 0 }) > Self.maximumStepsPerDay {
            return .tooManyStepsOnADay
        }
        if !periodicBolusesFit { return .periodicBolusesInvalid }
        if !patientBolusConsistent { return .patientBolusInconsistent }
        let total = largestDailyTotalMicrograms
        if total > UInt64(UInt32.max) { return .impossibleDose }
        let volume = ProgramMath.volumeMicroliters(doseMicrograms: total,
                                                   concentrationMicrogramsPerMilliliter: concentrationMicrogramsPerMilliliter)
        if volume.roundedUp > UInt64(capacity) { return .impossibleDose }
        if lowReservoirThresholdMicroliters >= capacity { return .impossibleThreshold }
        return nil
    }

    /// Throws the lowest-numbered rule broken (see `problem(reservoirCapacityMicroliters:)`).
    public func validate(reservoirCapacityMicroliters capacity: UInt32) throws(ProgramProblem) {
        if let problem = problem(reservoirCapacityMicroliters: capacity) { throw problem }
    }

    /// Whether, for every day, the items that include it have strictly increasing start minutes
    /// in list order.
    private static func startsIncrease(_ items: [(dayMask: UInt8, startMinute: UInt16)]) -> Bool {
        var previous = [Int](repeating: -1, count: 7)
        for item in items {
            for day in 0..<7 where item.dayMask & (1 << day) != 0 {
                guard Int(item.startMinute) > previous[day] else { return false }
                previous[day] = Int(item.startMinute)
            }
        }
        return true
    }

    /// Rule 6 holds: per day, in list order, each periodic bolus starts after the previous one
    /// has ended (strictly later than its start) and ends by midnight.
    private var periodicBolusesFit: Bool {
        var previousEnd = [Int](repeating: -1, count: 7)
        var previousStart = [Int](repeating: -1, count: 7)
        for bolus in periodicBoluses {
            let start = Int(bolus.startMinute)
            let end = start + Int(bolus.durationMinutes)
            guard end <= PumpCalendar.minutesPerDay else { return false }
            for day in 0..<7 where bolus.dayMask & (1 << day) != 0 {
                guard start > previousStart[day], start >= previousEnd[day] else { return false }
                previousStart[day] = start
                previousEnd[day] = end
            }
        }
        return true
    }

    /// Rule 7 holds.
    private var patientBolusConsistent: Bool {
        let patient = patientBolus
        if patient.doseMicrograms == 0 {
            return patient.durationMinutes == 0 && patient.lockoutMinutes == 0 && patient.maxPerDay == 0
        }
        return patient.durationMinutes > 0 && patient.maxPerDay > 0 && patient.lockoutMinutes >= patient.durationMinutes
    }
}
