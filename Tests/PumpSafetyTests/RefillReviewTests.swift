import PumpModel
import PumpProtocol
import Testing
@testable import PumpSafety

@Suite struct RefillReviewTests {
    @Test func ordinaryRefillProjectsTheNextLowReservoir() {
        // Expected 5 000 µL, aspirated 4 500 (gap 500 ≤ 1 000), filled to 20 000 µL.
        // Morphine 10 000 µg/mL at 5 000 µg/day = 500 µL/day: (20 000 − 2 000) / 500 = 36 days
        // to the threshold, 20 000 / 500 = 40 days to empty.
        let report = RefillReview.review(aspiratedMicroliters: 4_500, newVolumeMicroliters: 20_000,
                                         status: status(reservoir: 5_000), activeProgram: continuous(rate: 5_000))
        #expect(report.expectedMicroliters == 5_000)
        #expect(report.capacityMicroliters == 20_000)
        #expect(!report.discrepancy)
        #expect(report.projectedLowReservoirAtMs == monday + 36 * dayMs)
        #expect(report.projectedEmptyAtMs == monday + 40 * dayMs)
        #expect(report.findings.isEmpty)
        #expect(report.verdict == .accepted)
    }

    @Test func newVolumeAboveCapacityIsRefused() {
        // The real case: 40 mL entered on a 20 mL pump.
        let report = RefillReview.review(aspiratedMicroliters: 5_000, newVolumeMicroliters: 40_000,
                                         status: status(reservoir: 5_000, capacity: 20_000), activeProgram: continuous(rate: 5_000))
        #expect(report.rules == [SafetyRule.refillVolumeAboveCapacity.rawValue])
        #expect(report.findings.first?.severity == .hard)
        #expect(report.findings.first?.value == 40_000)
        #expect(report.findings.first?.limit == 20_000)
        #expect(report.projectedLowReservoirAtMs == nil)
        #expect(report.verdict == .rejected)
        // 40 mL on a 40 mL pump is fine.
        let large = RefillReview.review(aspiratedMicroliters: 5_000, newVolumeMicroliters: 40_000,
                                        status: status(reservoir: 5_000, capacity: 40_000), activeProgram: nil)
        #expect(large.verdict == .accepted)
        #expect(large.projectedLowReservoirAtMs == nil)
    }

    @Test func aspiratedAboveCapacityIsRefused() {
        let report = RefillReview.review(aspiratedMicroliters: 20_001, newVolumeMicroliters: 20_000,
                                         status: status(reservoir: 5_000), activeProgram: nil)
        #expect(report.rules.contains(SafetyRule.refillAspiratedAboveCapacity.rawValue))
        #expect(report.verdict == .rejected)
    }

    @Test(arguments: [
        // capacity, expected, aspirated, discrepancy
        (UInt32(20_000), UInt32(5_000), UInt32(4_000), false),   // gap 1 000, not above 1 000
        (UInt32(20_000), UInt32(5_000), UInt32(3_900), true),    // gap 1 100 > 1 000
        (UInt32(20_000), UInt32(5_000), UInt32(6_001), true),    // gap 1 001, more than expected
        (UInt32(40_000), UInt32(10_000), UInt32(8_500), false),  // gap 1 500 ≤ 2 000
        (UInt32(40_000), UInt32(10_000), UInt32(8_000), false),  // gap 2 000, not above 2 000
        (UInt32(40_000), UInt32(10_000), UInt32(7_900), true),   // gap 2 100 > 2 000
    ])
    func discrepancyIsFlaggedNotRefused(capacity: UInt32, expected: UInt32, aspirated: UInt32, discrepancy: Bool) {
        let report = RefillReview.review(aspiratedMicroliters: aspirated, newVolumeMicroliters: capacity,
                                         status: status(reservoir: expected, capacity: capacity), activeProgram: nil)
        #expect(report.discrepancy == discrepancy)
        #expect(report.rules == (discrepancy ? [SafetyRule.refillDiscrepancy.rawValue] : []))
        if discrepancy {
            #expect(report.findings.first?.severity == .notice)
            #expect(report.findings.first?.limit == (capacity > 20_000 ? 2_000 : 1_000))
        }
        #expect(report.verdict == .accepted)
    }

    @Test func smallRefillWarnsOfTheLowReservoir() {
        // Filled to 4 000 µL at 500 µL/day: (4 000 − 2 000) / 500 = 4 days to the threshold.
        let report = RefillReview.review(aspiratedMicroliters: 1_000, newVolumeMicroliters: 4_000,
                                         status: status(reservoir: 1_000), activeProgram: continuous(rate: 5_000))
        #expect(report.projectedLowReservoirAtMs == monday + 4 * dayMs)
        #expect(report.rules == [SafetyRule.reservoirLowSoon.rawValue])
        #expect(report.verdict == .accepted)
    }
}
