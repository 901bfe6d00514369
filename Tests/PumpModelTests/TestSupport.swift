import PumpModel
import PumpProtocol

/// 2024-01-01T00:00:00Z, a Monday: epoch day 19 723, (19 723 + 3) mod 7 = 0.
let monday: UInt64 = 1_704_067_200_000
let minute: UInt64 = 60_000
let hour: UInt64 = 3_600_000
let day: UInt64 = 86_400_000

let noPatientBolus = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 0)

func makeProgram(
    id: UInt32 = 1,
    concentration: UInt32 = 1000,
    threshold: UInt32 = 2000,
    steps: [DoseStep] = [],
    periodic: [PeriodicBolus] = [],
    patient: PatientBolusSettings = noPatientBolus
) -> Program {
    Program(programId: id, drug: .morphine, concentrationMicrogramsPerMilliliter: concentration,
            lowReservoirThresholdMicroliters: threshold, steps: steps, periodicBoluses: periodic, patientBolus: patient)
}

func everyDay(_ startMinute: UInt16, _ rate: UInt32) -> DoseStep {
    DoseStep(dayMask: 0x7F, startMinute: startMinute, doseRateMicrogramsPerDay: rate)
}

/// A pump at `monday` with the given reservoir and program active (request id 1).
func makePump(
    program: Program?,
    reservoir: UInt32 = 20_000,
    capacity: UInt32 = 20_000,
    battery: BatteryModel = .standard,
    eventLogCapacity: Int = 10_000,
    at start: UInt64 = monday
) throws -> Pump {
    var pump = Pump(configuration: PumpConfiguration(reservoirCapacityMicroliters: capacity,
                                                     initialReservoirMicroliters: reservoir,
                                                     eventLogCapacity: eventLogCapacity,
                                                     battery: battery),
                    nowMs: start)
    if let program { _ = try pump.activate(program, nowMs: start, requestId: 1) }
    return pump
}

extension Pump {
    func events(_ kind: EventKind) -> [Event] { state.events.filter { $0.kind == kind } }
    func alarmEvents(_ kind: EventKind, _ alarm: AlarmCode) -> [Event] {
        state.events.filter { $0.kind == kind && $0.code == alarm.rawValue }
    }
}

/// SplitMix64: a small deterministic generator for property tests with a fixed seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
