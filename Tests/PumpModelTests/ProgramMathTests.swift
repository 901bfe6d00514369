import PumpModel
import PumpProtocol
import Testing

/// Flex program used below (all rates µg/day):
///   every day 06:00 → 1200, Monday–Friday (mask 0x1F) 12:00 → 2400, every day 22:00 → 600.
/// (Listed in order of start on every day, as SPEC §9.5 rule 3 requires.)
let flexProgram = makeProgram(steps: [
    everyDay(360, 1200),
    DoseStep(dayMask: 0x1F, startMinute: 720, doseRateMicrogramsPerDay: 2400),
    everyDay(1320, 600),
], patient: noPatientBolus)

@Suite struct ProgramMathTests {
    @Test func volumeFromDoseIsExact() {
        // 5000 µg at 10 000 µg/mL: 5000 × 1000 / 10 000 = 500 µL, remainder 0.
        let even = ProgramMath.volumeMicroliters(doseMicrograms: 5000, concentrationMicrogramsPerMilliliter: 10_000)
        #expect(even.quotient == 500 && even.remainder == 0 && even.divisor == 10_000)
        // 1 µg at 3 µg/mL: 1000 / 3 = 333 remainder 1 (333⅓ µL), rounded up 334.
        let third = ProgramMath.volumeMicroliters(doseMicrograms: 1, concentrationMicrogramsPerMilliliter: 3)
        #expect(third.quotient == 333 && third.remainder == 1 && third.roundedUp == 334)
        // A large dose does not overflow: 2^40 µg at 1 µg/mL = 2^40 × 1000 µL.
        let large = ProgramMath.volumeMicroliters(doseMicrograms: 1 << 40, concentrationMicrogramsPerMilliliter: 1)
        #expect(large.quotient == (1 << 40) * 1000)
    }

    @Test func weekdaysFromTheEpoch() {
        // 1970-01-01 was a Thursday (index 3); 2024-01-01 a Monday; 1969-12-31 a Wednesday.
        #expect(PumpCalendar.weekday(localMs: 0) == 3)
        #expect(PumpCalendar.weekday(localMs: Int64(monday)) == 0)
        #expect(PumpCalendar.weekday(localMs: Int64(monday + 6 * day)) == 6)
        #expect(PumpCalendar.weekday(localMs: -1) == 2)
        // UTC Sunday 23:00 is Monday 01:00 at UTC+2.
        let local = PumpCalendar.localMilliseconds(utcMs: monday - hour, utcOffsetMinutes: 120)
        #expect(PumpCalendar.weekday(localMs: local) == 0)
    }

    @Test func rateSearchesBackAcrossMidnightAndDays() {
        let at = { (offset: UInt64) in flexProgram.doseRate(atUTCMs: monday + offset, utcOffsetMinutes: 0) }
        #expect(at(0) == 600)                   // Monday 00:00: Sunday's 22:00 step still runs
        #expect(at(3 * hour) == 600)            // Monday 03:00
        #expect(at(6 * hour) == 1200)           // Monday 06:00, the step's own start
        #expect(at(6 * hour - 1) == 600)        // one ms before
        #expect(at(13 * hour) == 2400)          // Monday 13:00, weekday step
        #expect(at(5 * day + 13 * hour) == 1200) // Saturday 13:00: no weekday step
        #expect(at(6 * day + 23 * hour) == 600) // Sunday 23:00
        // Local time: at UTC+1, UTC 05:30 is 06:30 local.
        #expect(flexProgram.doseRate(atUTCMs: monday + 5 * hour + 30 * minute, utcOffsetMinutes: 60) == 1200)

        // A single step on Wednesdays at 08:00 runs all week: Monday 10:00 finds last Wednesday's.
        let weekly = makeProgram(steps: [DoseStep(dayMask: 0b100, startMinute: 480, doseRateMicrogramsPerDay: 777)])
        #expect(weekly.doseRate(atUTCMs: monday + 10 * hour, utcOffsetMinutes: 0) == 777)
        #expect(makeProgram(steps: []).doseRate(atUTCMs: monday, utcOffsetMinutes: 0) == 0)
    }

    @Test func dailyDosePerWeekday() {
        // Monday: 600 × 360 min + 1200 × 360 + 2400 × 600 + 600 × 120 = 2 160 000 µg·min/day,
        // / 1440 = 1500 µg exactly.
        let mondayBasal = flexProgram.basalDose(weekday: 0)
        #expect(mondayBasal.quotient == 1500 && mondayBasal.remainder == 0)
        #expect(flexProgram.dailyDose(weekday: 0) == 1500)
        // Saturday: 600 × 360 + 1200 × 960 + 600 × 120 = 1 440 000 → 1000 µg.
        #expect(flexProgram.dailyDose(weekday: 5) == 1000)
        #expect(flexProgram.maximumDailyDose().quotient == 1500)

        // Periodic boluses count on their days; patient boluses only when asked.
        let withBoluses = makeProgram(
            steps: [everyDay(0, 100)],
            periodic: [PeriodicBolus(dayMask: 0b1, startMinute: 480, doseMicrograms: 50, durationMinutes: 30)],
            patient: PatientBolusSettings(doseMicrograms: 10, durationMinutes: 5, lockoutMinutes: 60, maxPerDay: 4)
        )
        #expect(withBoluses.dailyDose(weekday: 0) == 150)   // 100 + 50
        #expect(withBoluses.dailyDose(weekday: 1) == 100)
        #expect(withBoluses.maximumDailyDose().quotient == 150)
        #expect(withBoluses.maximumDailyDose(includingPatientBoluses: true).quotient == 190) // + 4 × 10

        // 1000 µg/day over 7 minutes: 7000/1440 = 4 remainder 1240 (4.86 µg): the basal dose is
        // kept exact; §9.4's daily dose rounds it down.
        let odd = makeProgram(steps: [everyDay(0, 0), everyDay(1433, 1000)])
        let oddBasal = odd.basalDose(weekday: 2)
        #expect(oddBasal.quotient == 4 && oddBasal.remainder == 1240 && oddBasal.roundedUp == 5)
        #expect(odd.dailyDose(weekday: 2) == 4)
    }

    /// ProgramVerify's `dailyDoseMicrograms` (SPEC §9.4): max over the days of ⌊basal⌋ + periodic
    /// doses, patient boluses excluded; a whole number, so `roundedUp` is the same value.
    @Test func maximumDailyDoseIsTheSpecificationsDailyDose() {
        // Every day 1000 µg/day from 00:00; Mondays 2000 from 23:53 (7 min). Monday:
        // (1000 × 1433 + 2000 × 7) / 1440 = 1 447 000 / 1440 = 1004.86 → 1004 µg.
        // Tuesday to Saturday 1000. Sunday 1000 + a 4 µg periodic bolus = 1004.
        let program = makeProgram(
            steps: [everyDay(0, 1000), DoseStep(dayMask: 0b1, startMinute: 1433, doseRateMicrogramsPerDay: 2000)],
            periodic: [PeriodicBolus(dayMask: 0x40, startMinute: 600, doseMicrograms: 4, durationMinutes: 10)],
            patient: PatientBolusSettings(doseMicrograms: 7, durationMinutes: 5, lockoutMinutes: 60, maxPerDay: 3)
        )
        #expect((0..<7).map(program.dailyDose(weekday:)) == [1004, 1000, 1000, 1000, 1000, 1000, 1004])
        // The whole week at once, from one schedule, agrees with each day alone.
        #expect(program.dailyDoses == [1004, 1000, 1000, 1000, 1000, 1000, 1004])
        #expect(program.basalDoses == (0..<7).map(program.basalDose(weekday:)))
        #expect(program.basalDoses[0].remainder == 1_447_000 % 1440)
        let daily = program.maximumDailyDose()
        #expect(daily.quotient == 1004 && daily.remainder == 0 && daily.roundedUp == 1004)
        // Largest daily total: + 3 × 7 patient.
        #expect(program.maximumDailyDose(includingPatientBoluses: true).roundedUp == 1025)

        // The emulator's default program: morphine 10 mg/mL, 2000 µg/day 00:00–07:00 and
        // 22:00–24:00, 3000 µg/day 07:00–22:00: (2000 × 420 + 3000 × 900 + 2000 × 120) / 1440 =
        // 3 780 000 / 1440 = 2625 µg; with 6 patient boluses of 250 µg, 4125 µg.
        let standard = makeProgram(
            concentration: 10_000,
            steps: [everyDay(0, 2000), everyDay(420, 3000), everyDay(1320, 2000)],
            patient: PatientBolusSettings(doseMicrograms: 250, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 6)
        )
        #expect(standard.maximumDailyDose().roundedUp == 2625)
        #expect(standard.maximumDailyDose(includingPatientBoluses: true).roundedUp == 4125)

        // No steps, no boluses: 0. The largest rate all day, every day: 4 294 967 295 µg.
        #expect(makeProgram().maximumDailyDose().roundedUp == 0)
        #expect(makeProgram(steps: [everyDay(0, .max)]).maximumDailyDose().roundedUp == UInt64(UInt32.max))
    }

    @Test func scheduledDeliveryIsExact() {
        // One flex week: 5 weekdays × 1500 + 2 weekend days × 1000 = 9500 µg = 9500 µL at 1 mg/mL.
        let week = flexProgram.scheduledDelivery(fromUTCMs: monday, toUTCMs: monday + 7 * day, utcOffsetMinutes: 0)
        #expect(week.micrograms.quotient == 9500 && week.micrograms.remainder == 0)
        #expect(week.microliters.quotient == 9500 && week.microliters.remainder == 0)

        // Half of a periodic bolus: 300 µg over 30 min, window ends 15 min in → 150 µg.
        let periodic = makeProgram(periodic: [PeriodicBolus(dayMask: 0x7F, startMinute: 480, doseMicrograms: 300, durationMinutes: 30)])
        let half = periodic.scheduledDelivery(fromUTCMs: monday, toUTCMs: monday + 8 * hour + 15 * minute, utcOffsetMinutes: 0)
        #expect(half.micrograms.quotient == 150)
        // A window starting inside the bolus gets the rest: 08:15 → 09:00 is 150 µg.
        let rest = periodic.scheduledDelivery(fromUTCMs: monday + 8 * hour + 15 * minute, toUTCMs: monday + 9 * hour, utcOffsetMinutes: 0)
        #expect(rest.micrograms.quotient == 150)
    }

    @Test func checksumIsCRC32COfTheEncoding() throws {
        let bytes = try flexProgram.encoded()
        #expect(flexProgram.checksum == CRC32C.checksum(bytes))
        var changed = flexProgram
        changed.steps[0].doseRateMicrogramsPerDay += 1
        #expect(changed.checksum != flexProgram.checksum)
    }
}
