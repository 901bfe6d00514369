import PumpModel
import PumpProtocol
import PumpSafety

/// 2024-01-01T00:00:00Z, a Monday: local day 0 of the week with offset 0.
let monday: UInt64 = 1_704_067_200_000
let dayMs: UInt64 = 86_400_000
let hourMs: UInt64 = 3_600_000
let minuteMs: UInt64 = 60_000

/// A pump status at `monday` with the given reservoir (the review reads time, offset, reservoir
/// and capacity).
func status(reservoir: UInt32 = 10_000, capacity: UInt32 = 20_000, nowMs: UInt64 = monday) -> Status {
    Status(
        pumpTimeMs: nowMs, utcOffsetMinutes: 0, therapyState: .running,
        reservoirMicroliters: reservoir, reservoirCapacityMicroliters: capacity,
        currentDoseRateMicrogramsPerDay: 0, currentFlowMicrolitersPerDay: 0,
        totalDeliveredMicroliters: 0, totalDeliveredMicrograms: 0,
        activeProgramId: 0, activeProgramChecksum: 0, bolusActive: 0, bolusRemainingMicroliters: 0,
        batteryState: .ok, batteryPercent: 100, batteryDaysToEndOfService: 2557,
        alarmConditionMask: 0, alarmUnacknowledgedMask: 0,
        patientBolusAvailableInSeconds: Pump.patientBolusNotAvailable, patientBolusesInLast24h: 0,
        lastEventSequence: 1, lastExecutedRequestId: 0
    )
}

func continuous(
    _ drug: Drug = .morphine,
    id: UInt32 = 2,
    concentration: UInt32 = 10_000,
    rate: UInt32,
    patient: PatientBolusSettings = .off
) -> Program {
    Program.continuous(programId: id, drug: drug, concentrationMicrogramsPerMilliliter: concentration,
                       doseRateMicrogramsPerDay: rate, patientBolus: patient)
}

extension PatientBolusSettings {
    static let off = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 0)
}

extension ProgramReport {
    var rules: [String] { findings.map(\.rule) }
    func finding(_ rule: SafetyRule) -> Finding? { findings.first { $0.rule == rule.rawValue } }
}

extension RefillReport {
    var rules: [String] { findings.map(\.rule) }
}
