internal import PumpModel
public import PumpProtocol

/// The check of a refill before it is sent (SPEC §12): the stated volumes against the
/// reservoir's capacity and against what the pump expects to be left.
public enum RefillReview {
    /// Reviews a refill of a pump in `status` running `activeProgram` (nil if none).
    ///
    /// - A new or aspirated volume above the capacity is impossible: a hard finding, rejected
    ///   (a real case: 40 mL entered after a 20 mL fill ran the pump dry two months early).
    /// - |expected − aspirated| above 1000 µL (capacity ≤ 20 mL) or 2000 µL (above) sets
    ///   `discrepancy` and adds a notice: it must be shown, not refused (the refill has happened;
    ///   it may mean a wrong entry, a leak or delivery other than programmed).
    /// - Projections: when the reservoir refilled to the new volume would reach the active
    ///   program's low threshold and empty, every allowed patient bolus taken; nil if no program
    ///   is active, if the refill is rejected or beyond a year.
    public static func review(
        aspiratedMicroliters: UInt32,
        newVolumeMicroliters: UInt32,
        status: Status,
        activeProgram: Program?,
        lowReservoirNoticeDays: UInt32 = DrugLibrary.standard.lowReservoirNoticeDays
    ) -> RefillReport {
        let capacity = status.reservoirCapacityMicroliters
        let expected = status.reservoirMicroliters
        let gap = expected > aspiratedMicroliters ? expected - aspiratedMicroliters : aspiratedMicroliters - expected
        let allowedGap = PumpConfiguration(reservoirCapacityMicroliters: capacity).refillDiscrepancyLimitMicroliters
        let discrepancy = gap > allowedGap

        var findings: [Finding] = []
        if newVolumeMicroliters > capacity {
            findings.append(Finding(.hard, .refillVolumeAboveCapacity,
                                    "A new volume of \(newVolumeMicroliters) µL is more than the reservoir holds (\(capacity) µL): check the volume entered.",
                                    value: Int64(newVolumeMicroliters), limit: Int64(capacity)))
        }
        if aspiratedMicroliters > capacity {
            findings.append(Finding(.hard, .refillAspiratedAboveCapacity,
                                    "An aspirated volume of \(aspiratedMicroliters) µL is more than the reservoir holds (\(capacity) µL): check the volume entered.",
                                    value: Int64(aspiratedMicroliters), limit: Int64(capacity)))
        }
        if discrepancy {
            findings.append(Finding(.notice, .refillDiscrepancy,
                                    "\(aspiratedMicroliters) µL aspirated where \(expected) µL was expected: a gap of \(gap) µL, more than \(allowedGap) µL. Check for a wrong entry, a leak or delivery other than programmed.",
                                    value: Int64(gap), limit: Int64(allowedGap)))
        }

        var projection: (lowAtMs: UInt64?, emptyAtMs: UInt64?) = (nil, nil)
        if let activeProgram, !findings.contains(where: { $0.severity == .hard }) {
            projection = ReservoirProjection.project(program: activeProgram, status: status, reservoirMicroliters: newVolumeMicroliters)
            if let finding = ReservoirProjection.lowSoonFinding(lowAtMs: projection.lowAtMs, nowMs: status.pumpTimeMs,
                                                               days: lowReservoirNoticeDays) {
                findings.append(finding)
            }
        }

        return RefillReport(
            expectedMicroliters: expected,
            aspiratedMicroliters: aspiratedMicroliters,
            newVolumeMicroliters: newVolumeMicroliters,
            capacityMicroliters: capacity,
            discrepancy: discrepancy,
            projectedLowReservoirAtMs: projection.lowAtMs,
            projectedEmptyAtMs: projection.emptyAtMs,
            findings: findings,
            verdict: Verdict.decide(findings: findings, override: nil)
        )
    }
}
