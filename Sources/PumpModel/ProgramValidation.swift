public import PumpProtocol

/// Why a program cannot run on a pump. The raw value is stable: it is the `problem` of a
/// ProgramVerify response and the `detail` of an Error `programInvalid` (SPEC §9).
/// Rules are checked in the order of the codes; the first broken one is reported.
public enum ProgramProblem: UInt32, Error, Sendable, Hashable, Codable, CaseIterable {
    /// programId is 0 (also refused by the codec).
    case programIdZero = 1
    /// concentrationMicrogramsPerMilliliter is 0 (also refused by the codec).
    case concentrationZero = 2
    /// More than 91 dose steps (also refused by the codec).
    case tooManySteps = 3
    /// A dose step's dayMask is 0 or has bit 7 set (also refused by the codec).
    case stepDayMaskInvalid = 4
    /// A dose step's startMinute is above 1439 (also refused by the codec).
    case stepStartMinuteInvalid = 5
    /// Two dose steps start at the same minute of the same day.
    case duplicateStepStart = 6
    /// More than 24 periodic boluses (also refused by the codec).
    case tooManyPeriodicBoluses = 7
    /// A periodic bolus's dayMask is 0 or has bit 7 set (also refused by the codec).
    case periodicBolusDayMaskInvalid = 8
    /// A periodic bolus's startMinute is above 1439 (also refused by the codec).
    case periodicBolusStartMinuteInvalid = 9
    /// A periodic bolus's dose is 0 (also refused by the codec).
    case periodicBolusDoseZero = 10
    /// A periodic bolus's duration is 0 or above 1440 minutes (also refused by the codec).
    case periodicBolusDurationInvalid = 11
    /// A periodic bolus starts before another one (on the same or the previous day) has ended.
    case periodicBolusesOverlap = 12
    /// Patient bolus duration or lockout above 1440 minutes, or maxPerDay above 48 (also
    /// refused by the codec).
    case patientBolusOutOfRange = 13
    /// Patient bolus disabled (dose 0) with other fields set, or enabled (dose > 0) with
    /// maxPerDay 0 or durationMinutes 0.
    case patientBolusInconsistent = 14
    /// The low-reservoir threshold is above the reservoir's capacity.
    case lowReservoirThresholdAboveCapacity = 15
    /// On some day of the week the program (basal, periodic boluses and every allowed patient
    /// bolus) needs more volume than the reservoir holds.
    case dailyVolumeExceedsCapacity = 16
}

extension Program {
    /// The first rule of the program model this program breaks on a pump with the given
    /// reservoir, or nil if it can be activated.
    public func problem(reservoirCapacityMicroliters capacity: UInt32) -> ProgramProblem? {
        if programId == 0 { return .programIdZero }
        if concentrationMicrogramsPerMilliliter == 0 { return .concentrationZero }
        if steps.count > 91 { return .tooManySteps }
        if steps.contains(where: { $0.dayMask == 0 || $0.dayMask > 127 }) { return .stepDayMaskInvalid }
        if steps.contains(where: { $0.startMinute > 1439 }) { return .stepStartMinuteInvalid }
        let schedule = WeeklySchedule(self)
        if zip(schedule.steps, schedule.steps.dropFirst()).contains(where: { $0.weekMinute == $1.weekMinute }) {
            return .duplicateStepStart
        }
        if periodicBoluses.count > 24 { return .tooManyPeriodicBoluses }
        if periodicBoluses.contains(where: { $0.dayMask == 0 || $0.dayMask > 127 }) { return .periodicBolusDayMaskInvalid }
        if periodicBoluses.contains(where: { $0.startMinute > 1439 }) { return .periodicBolusStartMinuteInvalid }
        if periodicBoluses.contains(where: { $0.doseMicrograms == 0 }) { return .periodicBolusDoseZero }
        if periodicBoluses.contains(where: { $0.durationMinutes == 0 || $0.durationMinutes > 1440 }) {
            return .periodicBolusDurationInvalid
        }
        if periodicBolusesOverlap(schedule) { return .periodicBolusesOverlap }
        let patient = patientBolus
        if patient.durationMinutes > 1440 || patient.lockoutMinutes > 1440 || patient.maxPerDay > 48 {
            return .patientBolusOutOfRange
        }
        if patient.doseMicrograms == 0 {
            if patient.durationMinutes != 0 || patient.lockoutMinutes != 0 || patient.maxPerDay != 0 {
                return .patientBolusInconsistent
            }
        } else if patient.maxPerDay == 0 || patient.durationMinutes == 0 {
            return .patientBolusInconsistent
        }
        if lowReservoirThresholdMicroliters > capacity { return .lowReservoirThresholdAboveCapacity }
        let patientBoluses = Int(patient.maxPerDay)
        for weekday in 0..<7 {
            // µL = µg × 1000 / c; the dose is a quotient over 1440, rounded up.
            let dose = dailyDose(weekday: weekday, patientBoluses: patientBoluses)
            let volume = ProgramMath.volumeMicroliters(doseMicrograms: dose.roundedUp,
                                                       concentrationMicrogramsPerMilliliter: concentrationMicrogramsPerMilliliter)
            if volume.roundedUp > UInt64(capacity) { return .dailyVolumeExceedsCapacity }
        }
        return nil
    }

    /// Throws the first rule broken (see `problem(reservoirCapacityMicroliters:)`).
    public func validate(reservoirCapacityMicroliters capacity: UInt32) throws(ProgramProblem) {
        if let problem = problem(reservoirCapacityMicroliters: capacity) { throw problem }
    }

    /// Periodic boluses overlap if, in the weekly cycle, one starts before the previous ends.
    private func periodicBolusesOverlap(_ schedule: WeeklySchedule) -> Bool {
        let boluses = schedule.boluses
        guard boluses.count > 1 else { return false }
        for index in boluses.indices {
            let current = boluses[index]
            let nextIndex = (index + 1) % boluses.count
            var nextStart = boluses[nextIndex].weekMinute
            if nextIndex == 0 { nextStart += PumpCalendar.minutesPerWeek }
            if current.weekMinute + Int(current.bolus.durationMinutes) > nextStart { return true }
        }
        return false
    }
}
