public import PumpProtocol

/// How the pump's battery drains. The figures are assumed, not published: a battery of about
/// 7 years at a typical flow of 0.5 mL/day, with the elective replacement indicator about
/// 90 days before end of service.
public struct BatteryModel: Sendable, Hashable, Codable {
    public var capacityMicroampHours: UInt64
    /// Drawn every day whatever the pump does (electronics, clock, telemetry).
    public var idleDrainMicroampHoursPerDay: UInt64
    /// Drawn by the pump mechanism per millilitre delivered.
    public var drainMicroampHoursPerMilliliter: UInt64
    /// The elective replacement indicator comes on when this much charge is left.
    public var electiveReplacementReserveMicroampHours: UInt64
    /// Charge already used when the pump model starts (an older pump).
    public var initialUsedMicroampHours: UInt64

    public init(
        capacityMicroampHours: UInt64 = 1_150_650,
        idleDrainMicroampHoursPerDay: UInt64 = 250,
        drainMicroampHoursPerMilliliter: UInt64 = 400,
        electiveReplacementReserveMicroampHours: UInt64 = 40_500,
        initialUsedMicroampHours: UInt64 = 0
    ) {
        // Defaults: 250 + 400 × 0.5 = 450 µAh/day at 0.5 mL/day; 2557 days (7 years) × 450 =
        // 1 150 650 µAh; 90 days × 450 = 40 500 µAh of reserve at the indicator.
        self.capacityMicroampHours = capacityMicroampHours
        self.idleDrainMicroampHoursPerDay = idleDrainMicroampHoursPerDay
        self.drainMicroampHoursPerMilliliter = drainMicroampHoursPerMilliliter
        self.electiveReplacementReserveMicroampHours = electiveReplacementReserveMicroampHours
        self.initialUsedMicroampHours = initialUsedMicroampHours
    }

    public static let standard = BatteryModel()

    // Battery charge is integrated in units of 1/86 400 000 µAh, what 1 µAh/day draws in 1 ms,
    // so that idle drain and pumping drain are both whole numbers.
    static let unitsPerMicroampHour: UInt64 = 86_400_000
    var capacityUnits: UInt64 { capacityMicroampHours.saturatingMultiplied(by: Self.unitsPerMicroampHour) }
    var electiveReplacementUnits: UInt64 {
        let reserve = electiveReplacementReserveMicroampHours.saturatingMultiplied(by: Self.unitsPerMicroampHour)
        return capacityUnits > reserve ? capacityUnits - reserve : 0
    }
    var initialUsedUnits: UInt64 {
        min(initialUsedMicroampHours.saturatingMultiplied(by: Self.unitsPerMicroampHour), capacityUnits)
    }
    /// Units per millisecond of idle drain.
    var idleUnitsPerMillisecond: UInt64 { idleDrainMicroampHoursPerDay }
    /// Units per whole microlitre delivered (µAh/mL ÷ 1000 per µL × 86 400 000).
    var unitsPerMicroliter: UInt64 { drainMicroampHoursPerMilliliter.saturatingMultiplied(by: 86_400) }
}

/// The fixed facts of one pump: identity, reservoir, battery, event log size.
public struct PumpConfiguration: Sendable, Hashable, Codable {
    /// The low-reservoir threshold programs use unless told otherwise (assumed: 2 mL).
    public static let defaultLowReservoirThresholdMicroliters: UInt32 = 2000

    public var model: String
    public var serialNumber: String
    public var firmwareVersion: String
    /// Logged as value1 of the pumpStarted event.
    public var firmwareBuild: UInt32
    /// 20 000 or 40 000 µL.
    public var reservoirCapacityMicroliters: UInt32
    public var initialReservoirMicroliters: UInt32
    /// How many of the newest events the log keeps.
    public var eventLogCapacity: Int
    public var battery: BatteryModel
    /// Activated when the pump model starts (request id 0), if any.
    public var initialProgram: Program?

    public init(
        model: String = "PumpLink Emulated Pump",
        serialNumber: String = "EMU-000001",
        firmwareVersion: String = "1.0.0",
        firmwareBuild: UInt32 = 1,
        reservoirCapacityMicroliters: UInt32 = 20_000,
        initialReservoirMicroliters: UInt32? = nil,
        eventLogCapacity: Int = 10_000,
        battery: BatteryModel = .standard,
        initialProgram: Program? = nil
    ) {
        self.model = model
        self.serialNumber = serialNumber
        self.firmwareVersion = firmwareVersion
        self.firmwareBuild = firmwareBuild
        self.reservoirCapacityMicroliters = reservoirCapacityMicroliters
        self.initialReservoirMicroliters = initialReservoirMicroliters ?? reservoirCapacityMicroliters
        self.eventLogCapacity = max(1, eventLogCapacity)
        self.battery = battery
        self.initialProgram = initialProgram
    }

    /// A refill whose aspirated volume differs from the expected one by more than this is
    /// flagged (SPEC §12): 1000 µL for a capacity up to 20 000 µL, 2000 µL above.
    public var refillDiscrepancyLimitMicroliters: UInt32 {
        reservoirCapacityMicroliters > 20_000 ? 2000 : 1000
    }
}

extension Program {
    /// A simple continuous program: one step at midnight every day.
    public static func continuous(
        programId: UInt32,
        drug: Drug,
        concentrationMicrogramsPerMilliliter: UInt32,
        doseRateMicrogramsPerDay: UInt32,
        lowReservoirThresholdMicroliters: UInt32 = PumpConfiguration.defaultLowReservoirThresholdMicroliters,
        patientBolus: PatientBolusSettings = PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 0)
    ) -> Program {
        Program(
            programId: programId,
            drug: drug,
            concentrationMicrogramsPerMilliliter: concentrationMicrogramsPerMilliliter,
            lowReservoirThresholdMicroliters: lowReservoirThresholdMicroliters,
            steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: doseRateMicrogramsPerDay)],
            periodicBoluses: [],
            patientBolus: patientBolus
        )
    }
}

extension AlarmCode {
    /// Values 0–7 are critical: therapy stopped or about to stop.
    public var isCritical: Bool { rawValue < 8 }
    /// The alarm's bit in the alarm masks.
    public var mask: UInt32 { 1 << UInt32(rawValue) }
    /// The bits of the critical alarms.
    public static let criticalMask: UInt32 = 0xFF
}
