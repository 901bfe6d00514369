import PumpModel
import PumpProtocol
import Testing
@testable import PumpSafety

@Suite struct PatientBolusCheckTests {
    /// 200 µg over 10 min, lockout 60 min, at most 4 in 24 h.
    static let program = continuous(rate: 5_000, patient: PatientBolusSettings(doseMicrograms: 200, durationMinutes: 10, lockoutMinutes: 60, maxPerDay: 4))
    static let now = monday + 10 * dayMs

    static func started(_ timeMs: UInt64, kind: BolusKind = .patient, sequence: UInt32 = 1) -> Event {
        Event(sequence: sequence, timeMs: timeMs, kind: .bolusStarted, code: kind.rawValue, requestId: 0, value1: 200, value2: 20)
    }

    @Test func allowedWithNoRecentBolus() {
        #expect(PatientBolusCheck.check(program: Self.program, events: [], nowMs: Self.now) == nil)
        #expect(PatientBolusCheck.check(program: Self.program, events: [Self.started(Self.now - 2 * hourMs)], nowMs: Self.now) == nil)
    }

    @Test func lockout() throws {
        // Started 30 min ago, lockout 60 min: 1 800 000 ms of 3 600 000.
        let finding = try #require(PatientBolusCheck.check(program: Self.program, events: [Self.started(Self.now - 30 * minuteMs)], nowMs: Self.now))
        #expect(finding.rule == SafetyRule.patientBolusLockout.rawValue)
        #expect(finding.severity == .hard)
        #expect(finding.value == 1_800_000)
        #expect(finding.limit == 3_600_000)
        // Exactly 60 min later the lockout is over; 1 ms before it is not.
        #expect(PatientBolusCheck.check(program: Self.program, events: [Self.started(Self.now - 60 * minuteMs)], nowMs: Self.now) == nil)
        #expect(PatientBolusCheck.check(program: Self.program, events: [Self.started(Self.now - 60 * minuteMs + 1)], nowMs: Self.now) != nil)
        // A start stamped after now (clock skew) locks out.
        #expect(PatientBolusCheck.check(program: Self.program, events: [Self.started(Self.now + minuteMs)], nowMs: Self.now)?.rule
            == SafetyRule.patientBolusLockout.rawValue)
    }

    @Test func dailyMaximumOverARolling24Hours() throws {
        // Four starts 23, 20, 10 and 2 h ago: the maximum of 4 is reached.
        let four = [23, 20, 10, 2].map { Self.started(Self.now - UInt64($0) * hourMs) }
        let finding = try #require(PatientBolusCheck.check(program: Self.program, events: four, nowMs: Self.now))
        #expect(finding.rule == SafetyRule.patientBolusDailyMaximum.rawValue)
        #expect(finding.value == 4)
        #expect(finding.limit == 4)
        // The oldest exactly 24 h ago has left the window (the pump counts s + 24 h > now).
        let rolled = [24, 20, 10, 2].map { Self.started(Self.now - UInt64($0) * hourMs) }
        #expect(PatientBolusCheck.check(program: Self.program, events: rolled, nowMs: Self.now) == nil)
        // Other boluses and other events do not count.
        var others = [23, 20, 10].map { Self.started(Self.now - UInt64($0) * hourMs) }
        others.append(Self.started(Self.now - 5 * hourMs, kind: .periodic))
        others.append(Event(sequence: 9, timeMs: Self.now - 4 * hourMs, kind: .patientBolusRefused, code: 2, requestId: 0, value1: 3, value2: 0))
        #expect(PatientBolusCheck.check(program: Self.program, events: others, nowMs: Self.now) == nil)
    }

    @Test func notEnabled() {
        let finding = PatientBolusCheck.check(program: continuous(rate: 5_000), events: [], nowMs: Self.now)
        #expect(finding?.rule == SafetyRule.patientBolusNotEnabled.rawValue)
        #expect(finding?.severity == .hard)
    }

    /// The daemon's check agrees with the pump model's own decision over a day of requests.
    @Test func agreesWithThePumpModel() throws {
        var pump = Pump(configuration: PumpConfiguration(reservoirCapacityMicroliters: 20_000), nowMs: monday)
        _ = try pump.activate(Self.program, nowMs: monday, requestId: 1)
        var requestId: UInt32 = 2
        // A request every 25 min for 30 h.
        for step in 0..<72 {
            let now = monday + UInt64(step) * 25 * minuteMs
            pump.advance(to: now)
            let events = pump.events(from: 1, maxCount: 10_000).events
            let daemon = PatientBolusCheck.check(program: Self.program, events: events, nowMs: now)
            let result = try pump.patientBolus(nowMs: now, requestId: requestId)
            requestId += 1
            #expect((daemon == nil) == (result.outcome == .started), "at step \(step): daemon \(daemon?.rule ?? "allowed"), pump \(result.outcome)")
        }
    }
}
