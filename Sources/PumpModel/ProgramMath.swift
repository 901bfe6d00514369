public import PumpProtocol

/// Conversions between dose and volume, exact.
public enum ProgramMath {
    /// The volume holding `doseMicrograms` at `concentration` µg/mL: µL = µg × 1000 / (µg/mL),
    /// as a quotient over the concentration (the remainder is in 1/c µL).
    public static func volumeMicroliters(
        doseMicrograms: UInt64,
        concentrationMicrogramsPerMilliliter concentration: UInt32
    ) -> ExactQuotient {
        precondition(concentration > 0, "concentration must be positive")
        var volume = ExactQuotient(divisor: UInt64(concentration))
        // Added in two parts so that µg × 1000 cannot overflow.
        volume.add((doseMicrograms / 1_000_000) * 1_000_000 * 1000)
        volume.add((doseMicrograms % 1_000_000) * 1000)
        return volume
    }

    /// The flow, in µL/day rounded down, of a dose rate in µg/day.
    public static func flowMicrolitersPerDay(
        doseRateMicrogramsPerDay rate: UInt32,
        concentrationMicrogramsPerMilliliter concentration: UInt32
    ) -> UInt32 {
        guard concentration > 0 else { return 0 }
        return UInt32(clamping: UInt64(rate) * 1000 / UInt64(concentration))
    }
}

/// The part of a program's schedule over one week, sorted for lookups.
struct WeeklySchedule: Sendable, Hashable {
    struct Step: Sendable, Hashable {
        var weekMinute: Int
        var rateMicrogramsPerDay: UInt32
    }

    struct Bolus: Sendable, Hashable {
        var weekMinute: Int
        var bolus: PeriodicBolus
    }

    /// Every (step, day) pair, by minute of the week; equal minutes keep program order.
    let steps: [Step]
    /// Every (periodic bolus, day) pair, by minute of the week.
    let boluses: [Bolus]
    /// Minutes of the day at which any step or periodic bolus starts (on any day), ascending.
    let boundaryMinutesOfDay: [Int]

    init(_ program: Program) {
        var steps: [Step] = []
        var boluses: [Bolus] = []
        var minutes = Set<Int>()
        for step in program.steps {
            minutes.insert(Int(step.startMinute))
            for day in 0..<7 where step.dayMask & (1 << day) != 0 {
                steps.append(Step(weekMinute: day * PumpCalendar.minutesPerDay + Int(step.startMinute),
                                  rateMicrogramsPerDay: step.doseRateMicrogramsPerDay))
            }
        }
        for bolus in program.periodicBoluses {
            minutes.insert(Int(bolus.startMinute))
            for day in 0..<7 where bolus.dayMask & (1 << day) != 0 {
                boluses.append(Bolus(weekMinute: day * PumpCalendar.minutesPerDay + Int(bolus.startMinute), bolus: bolus))
            }
        }
        // Sorting index pairs keeps the sort stable.
        self.steps = steps.enumerated().sorted { ($0.element.weekMinute, $0.offset) < ($1.element.weekMinute, $1.offset) }.map(\.element)
        self.boluses = boluses.enumerated().sorted { ($0.element.weekMinute, $0.offset) < ($1.element.weekMinute, $1.offset) }.map(\.element)
        self.boundaryMinutesOfDay = minutes.sorted()
    }

    /// The rate of the latest step starting at or before `millisecondOfWeek`, looking back across
    /// midnight and across the days of the week; 0 if the program has no steps.
    func rate(atMillisecondOfWeek position: Int64) -> UInt32 {
        guard !steps.isEmpty else { return 0 }
        let minute = Int(position / PumpCalendar.millisecondsPerMinute)
        // First index whose step starts after `minute`.
        var low = 0
        var high = steps.count
        while low < high {
            let middle = (low + high) / 2
            if steps[middle].weekMinute <= minute { low = middle + 1 } else { high = middle }
        }
        var index = low == 0 ? steps.count - 1 : low - 1
        // Among steps starting at the same minute the first listed wins (a program the
        // validation refuses, but the lookup must still be deterministic).
        while index > 0 && steps[index - 1].weekMinute == steps[index].weekMinute { index -= 1 }
        return steps[index].rateMicrogramsPerDay
    }

    /// The basal dose of one weekday (0 Monday … 6 Sunday): Σ rate × minutes over the day, / 1440.
    func basalDose(weekday: Int) -> ExactQuotient {
        let dayStartMinute = weekday * PumpCalendar.minutesPerDay
        let dayEndMinute = dayStartMinute + PumpCalendar.minutesPerDay
        // Steps start at whole minutes, so Σ rate × minutes between starts is Σ over minutes.
        var numerator: UInt64 = 0
        var minute = dayStartMinute
        var rate = rate(atMillisecondOfWeek: Int64(minute) * PumpCalendar.millisecondsPerMinute)
        for step in steps where step.weekMinute > dayStartMinute && step.weekMinute < dayEndMinute {
            guard step.weekMinute > minute else { continue }
            numerator += UInt64(rate) * UInt64(step.weekMinute - minute)
            minute = step.weekMinute
            rate = self.rate(atMillisecondOfWeek: Int64(minute) * PumpCalendar.millisecondsPerMinute)
        }
        numerator += UInt64(rate) * UInt64(dayEndMinute - minute)
        return ExactQuotient(numerator: numerator, divisor: UInt64(PumpCalendar.minutesPerDay))
    }

    /// The periodic boluses starting exactly at `millisecondOfWeek`.
    func boluses(startingAtMillisecondOfWeek position: Int64) -> [PeriodicBolus] {
        guard position % PumpCalendar.millisecondsPerMinute == 0 else { return [] }
        let minute = Int(position / PumpCalendar.millisecondsPerMinute)
        // `boluses` is sorted by minute: the first at or after it, then those that share it.
        var low = 0
        var high = boluses.count
        while low < high {
            let middle = (low + high) / 2
            if boluses[middle].weekMinute < minute { low = middle + 1 } else { high = middle }
        }
        var starting: [PeriodicBolus] = []
        while low < boluses.count && boluses[low].weekMinute == minute {
            starting.append(boluses[low].bolus)
            low += 1
        }
        return starting
    }

    /// The first local instant after `localMs` at which a step or periodic bolus may start, or
    /// the next local midnight, whichever comes first.
    func nextBoundary(afterLocalMs localMs: Int64) -> Int64 {
        let ofDay = PumpCalendar.millisecondOfDay(localMs: localMs)
        let dayStart = localMs - ofDay
        for minute in boundaryMinutesOfDay {
            let at = Int64(minute) * PumpCalendar.millisecondsPerMinute
            if at > ofDay { return dayStart + at }
        }
        return dayStart + PumpCalendar.millisecondsPerDay
    }
}

extension Program {
    /// CRC-32C of the program's encoding: the checksum staged, verified and activated.
    public var checksum: UInt32 {
        var writer = WireWriter(reservingCapacity: 32 + 7 * steps.count + 9 * periodicBoluses.count)
        encode(into: &writer)
        return CRC32C.checksum(writer.bytes)
    }

    /// The basal dose rate at a local time (ms since the local epoch): the rate of the latest
    /// step at or before it, searching back across midnight and the days of the week.
    public func doseRate(atLocalMs localMs: Int64) -> UInt32 {
        WeeklySchedule(self).rate(atMillisecondOfWeek: PumpCalendar.millisecondOfWeek(localMs: localMs))
    }

    /// The basal dose rate at a UTC instant for a pump whose local time is UTC + `utcOffsetMinutes`.
    public func doseRate(atUTCMs utcMs: UInt64, utcOffsetMinutes: Int16) -> UInt32 {
        doseRate(atLocalMs: PumpCalendar.localMilliseconds(utcMs: utcMs, utcOffsetMinutes: utcOffsetMinutes))
    }

    /// The basal dose of one weekday (0 Monday … 6 Sunday), exact: the rate of every minute of
    /// the local day summed and divided by 1440, in µg, as a quotient over 1440. SPEC §9.4's
    /// basal(d) is its `quotient` (rounded down).
    public func basalDose(weekday: Int) -> ExactQuotient {
        precondition((0..<7).contains(weekday), "weekday is 0 (Monday) … 6 (Sunday)")
        return WeeklySchedule(self).basalDose(weekday: weekday)
    }

    /// `basalDose(weekday:)` of every weekday, Monday first, from one pass over the schedule.
    public var basalDoses: [ExactQuotient] {
        let schedule = WeeklySchedule(self)
        return (0..<7).map(schedule.basalDose(weekday:))
    }

    /// SPEC §9.4's daily dose of one weekday, in µg: the basal dose rounded down plus the doses of
    /// the periodic boluses whose `dayMask` includes the day. Patient boluses are not included.
    public func dailyDose(weekday: Int) -> UInt64 {
        dailyDose(weekday: weekday, basal: basalDose(weekday: weekday).quotient)
    }

    /// `dailyDose(weekday:)` of every weekday, Monday first.
    public var dailyDoses: [UInt64] {
        basalDoses.enumerated().map { dailyDose(weekday: $0.offset, basal: $0.element.quotient) }
    }

    /// `basal` µg plus the periodic boluses of the weekday.
    public func dailyDose(weekday: Int, basal: UInt64) -> UInt64 {
        var dose = basal
        for bolus in periodicBoluses where bolus.dayMask & (1 << weekday) != 0 {
            dose += UInt64(bolus.doseMicrograms)
        }
        return dose
    }

    /// SPEC §9.4's daily dose of the program (ProgramVerify `dailyDoseMicrograms`): the largest
    /// `dailyDose(weekday:)` over the week, in µg. With `includingPatientBoluses`, the largest
    /// daily total instead: plus patient `doseMicrograms` × `maxPerDay` (what rule 8 limits).
    /// Always a whole number of micrograms (`remainder` 0, `roundedUp` = `quotient`).
    public func maximumDailyDose(includingPatientBoluses: Bool = false) -> ExactQuotient {
        let dose = includingPatientBoluses ? largestDailyTotalMicrograms : dailyDoses.max() ?? 0
        return ExactQuotient(numerator: dose, divisor: 1)
    }

    /// SPEC §9.4's largest daily total, µg.
    var largestDailyTotalMicrograms: UInt64 {
        let daily = dailyDoses.max() ?? 0
        return daily + UInt64(patientBolus.doseMicrograms) * UInt64(patientBolus.maxPerDay)
    }

    /// What the program delivers by its schedule (basal and periodic boluses, each bolus spread
    /// evenly over its duration) between two UTC instants, exact. Ignores what a pump adds or
    /// stops (clinician and patient boluses, suspension, alarms).
    public func scheduledDelivery(fromUTCMs start: UInt64, toUTCMs end: UInt64, utcOffsetMinutes: Int16) -> DeliveredAmount {
        var amount = DeliveredAmount(concentrationMicrogramsPerMilliliter: concentrationMicrogramsPerMilliliter)
        guard end > start else { return amount }
        let schedule = WeeklySchedule(self)
        let offset = Int64(utcOffsetMinutes) * PumpCalendar.millisecondsPerMinute
        let localStart = Int64(clamping: start) + offset
        let localEnd = Int64(clamping: end) + offset
        var local = localStart
        while local < localEnd {
            let next = min(schedule.nextBoundary(afterLocalMs: local), localEnd)
            let rate = schedule.rate(atMillisecondOfWeek: PumpCalendar.millisecondOfWeek(localMs: local))
            amount.add(units: UInt64(rate) * UInt64(next - local))
            local = next
        }
        // Periodic boluses: any that started up to a day before the window may still run in it.
        let day = PumpCalendar.millisecondsPerDay
        var dayStart = PumpCalendar.floorDivide(localStart, day) * day - day
        while dayStart < localEnd {
            let weekday = PumpCalendar.weekday(localMs: dayStart)
            for bolus in periodicBoluses where bolus.dayMask & (1 << weekday) != 0 {
                let bolusStart = dayStart + Int64(bolus.startMinute) * PumpCalendar.millisecondsPerMinute
                let duration = Int64(bolus.durationMinutes) * PumpCalendar.millisecondsPerMinute
                let from = max(localStart, bolusStart)
                let to = min(localEnd, bolusStart + duration)
                guard to > from, duration > 0 else { continue }
                let total = UInt64(bolus.doseMicrograms) * DoseUnits.perMicrogram
                let delivered = BolusProfile.delivered(total: total, durationMs: UInt64(duration), elapsedMs: UInt64(to - bolusStart))
                    - BolusProfile.delivered(total: total, durationMs: UInt64(duration), elapsedMs: UInt64(from - bolusStart))
                amount.add(units: delivered)
            }
            dayStart += day
        }
        return amount
    }
}

/// An amount of drug delivered, exact in micrograms and in microlitres.
public struct DeliveredAmount: Sendable, Hashable, Codable {
    /// µg, as a quotient over `DoseUnits.perMicrogram`.
    public private(set) var micrograms: ExactQuotient
    /// µL, as a quotient over `DoseUnits.perMicroliter(c)`.
    public private(set) var microliters: ExactQuotient

    public init(concentrationMicrogramsPerMilliliter concentration: UInt32) {
        micrograms = ExactQuotient(divisor: DoseUnits.perMicrogram)
        microliters = ExactQuotient(divisor: DoseUnits.perMicroliter(concentrationMicrogramsPerMilliliter: max(concentration, 1)))
    }

    public mutating func add(units: UInt64) {
        micrograms.add(units)
        microliters.add(units)
    }
}

/// A bolus spreads its dose evenly over its duration: after `elapsed` ms it has delivered
/// ⌊total × elapsed / duration⌋ units. A function of elapsed time alone, so however the time is
/// split the sum is the same, and at the end it is exactly the total.
enum BolusProfile {
    static func delivered(total: UInt64, durationMs: UInt64, elapsedMs: UInt64) -> UInt64 {
        guard durationMs > 0, elapsedMs < durationMs else { return total }
        return total.multiplied(by: elapsedMs, dividedBy: durationMs)
    }
}
