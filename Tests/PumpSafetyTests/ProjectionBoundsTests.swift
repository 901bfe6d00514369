import PumpModel
import PumpProtocol
import PumpSafety
import Testing

/// The reservoir projection ends, whatever clock a status states: the pump's clock stops at
/// `PumpCalendar.latestTimeMs`, and a projection that ran past it never reached its horizon
/// (found by the `programs` fuzz target: Fuzz/Regressions/programs/).
@Suite("Reservoir projection at the end of the pump's time", .timeLimit(.minutes(1)))
struct ProjectionBoundsTests {
    @Test("a clock near or past the end gives no projection, at once", arguments: [
        PumpCalendar.latestTimeMs - 1, PumpCalendar.latestTimeMs - 364 * UInt64(PumpCalendar.millisecondsPerDay),
        PumpCalendar.latestTimeMs, PumpCalendar.latestTimeMs + 1, UInt64.max / 2,
    ])
    func nearTheEnd(nowMs: UInt64) {
        let report = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 10_000, nowMs: nowMs))
        #expect(report.projectedLowReservoirAtMs == nil && report.projectedEmptyAtMs == nil)
    }

    @Test func aClockAYearBeforeTheEndStillProjects() {
        let nowMs = PumpCalendar.latestTimeMs - 400 * UInt64(PumpCalendar.millisecondsPerDay)
        let report = ProgramReview.review(program: continuous(rate: 5_000), active: nil, status: status(reservoir: 10_000, nowMs: nowMs))
        #expect(report.projectedEmptyAtMs != nil)
    }
}
