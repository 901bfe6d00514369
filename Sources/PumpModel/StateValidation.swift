import PumpProtocol

/// A persisted pump state that this model could never have reached: which value, and why.
public struct PumpStateProblem: Error, Sendable, Hashable, CustomStringConvertible {
    /// The value, as its path in `PumpState` (e.g. `bolus.deliveredUnits`).
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension PumpState {
    /// The first value that no run of the model produces, if any. A state that passes can be
    /// restored and run: every sum and product the model forms on it stays in range, its
    /// answers encode (identity lengths, Status fields), and its event log reads without gaps.
    public var problem: PumpStateProblem? {
        func fail(_ field: String, _ reason: String) -> PumpStateProblem { PumpStateProblem(field: field, reason: reason) }
        let latest = PumpCalendar.latestTimeMs

        // Identity: what Hello answers (SPEC §6.3: model and serial at most 32 bytes, firmware 16).
        if configuration.model.utf8.count > 32 { return fail("configuration.model", "longer than 32 bytes") }
        if configuration.serialNumber.utf8.count > 32 { return fail("configuration.serialNumber", "longer than 32 bytes") }
        if configuration.firmwareVersion.utf8.count > 16 { return fail("configuration.firmwareVersion", "longer than 16 bytes") }
        let capacity = configuration.reservoirCapacityMicroliters
        if capacity == 0 { return fail("configuration.reservoirCapacityMicroliters", "0") }
        if !(1...1_000_000).contains(configuration.eventLogCapacity) {
            return fail("configuration.eventLogCapacity", "\(configuration.eventLogCapacity) is not 1...1000000")
        }

        // Times: the caller's clock and the pump clock within the model's range.
        if referenceTimeMs > latest { return fail("referenceTimeMs", "\(referenceTimeMs) is after 9999-12-31") }
        if clockOffsetMs.magnitude > latest { return fail("clockOffsetMs", "\(clockOffsetMs) puts the pump clock out of range") }
        if !(-900...900).contains(utcOffsetMinutes) { return fail("utcOffsetMinutes", "\(utcOffsetMinutes) is not -900...900") }

        // The program: one the pump would have activated (SPEC §9.5), with its own checksum.
        if let program {
            if let rule = program.problem(reservoirCapacityMicroliters: capacity) {
                return fail("program", "breaks rule \(rule.rawValue) of SPEC §9.5 (\(rule))")
            }
            if programChecksum != program.checksum { return fail("programChecksum", "is not the program's CRC-32C") }
        }

        // Quantities: the reservoir within its capacity, fractions below one microlitre.
        let unitsPerMicroliter = self.unitsPerMicroliter
        if reservoirMicroliters > UInt64(capacity) { return fail("reservoirMicroliters", "\(reservoirMicroliters) is above the capacity \(capacity)") }
        if reservoirFractionUnits >= unitsPerMicroliter { return fail("reservoirFractionUnits", "not below one microlitre") }
        if deliveredMicrograms.divisor != DoseUnits.perMicrogram { return fail("deliveredMicrograms.divisor", "not the dose unit") }
        if deliveredMicroliters.divisor != unitsPerMicroliter { return fail("deliveredMicroliters.divisor", "not the program's units per microlitre") }
        // Totals grow by at most 2^32 µg a day; 2^62 is millions of years away and leaves room to add.
        if deliveredMicrograms.quotient > 1 << 62 { return fail("deliveredMicrograms", "impossibly large") }
        if deliveredMicroliters.quotient > 1 << 62 { return fail("deliveredMicroliters", "impossibly large") }
        if batteryUsedUnits > configuration.battery.capacityUnits { return fail("batteryUsedUnits", "above the battery's capacity") }

        // A running bolus: started in the past, under a day long, not more delivered than due.
        if let bolus {
            if program == nil { return fail("bolus", "runs without a program") }
            if bolus.startMs > referenceTimeMs { return fail("bolus.startMs", "after the reference time") }
            if bolus.durationMs == 0 || bolus.durationMs > UInt64(PumpCalendar.millisecondsPerDay) {
                return fail("bolus.durationMs", "\(bolus.durationMs) is not 1 ms to 24 h")
            }
            // The largest bolus: 2^32 − 1 µg, or a priming volume of the capacity.
            let largest = max(UInt64(UInt32.max) * DoseUnits.perMicrogram, UInt64(capacity).saturatingMultiplied(by: unitsPerMicroliter))
            if bolus.totalUnits > largest { return fail("bolus.totalUnits", "above any bolus") }
            if bolus.deliveredUnits > bolus.totalUnits { return fail("bolus.deliveredUnits", "more than the bolus") }
        }
        let scheduled = program?.periodicBoluses ?? []
        if let index = pendingPeriodicBoluses.firstIndex(where: { !scheduled.contains($0) }) {
            return fail("pendingPeriodicBoluses[\(index)]", "not a periodic bolus of the program")
        }
        // 24 periodic boluses a day at most (SPEC §9.1): more than a week's worth never queue up.
        if pendingPeriodicBoluses.count > 7 * 24 { return fail("pendingPeriodicBoluses", "more than a week's worth") }
        if patientBolusStartTimesMs.count > Int(UInt8.max) { return fail("patientBolusStartTimesMs", "more than 255") }
        if let index = patientBolusStartTimesMs.indices.first(where: { i in
            patientBolusStartTimesMs[i] > referenceTimeMs || (i > 0 && patientBolusStartTimesMs[i - 1] > patientBolusStartTimesMs[i])
        }) {
            return fail("patientBolusStartTimesMs[\(index)]", "not in order up to the reference time")
        }

        // The event log: consecutive sequences ending at lastEventSequence (SPEC §10.1).
        if events.count > configuration.eventLogCapacity { return fail("events", "more than the log holds") }
        if let last = events.last, last.sequence != lastEventSequence {
            return fail("lastEventSequence", "\(lastEventSequence) is not the newest event's \(last.sequence)")
        }
        if events.count > Int(lastEventSequence) { return fail("events", "more events than sequences") }
        for (index, event) in events.enumerated() where event.sequence != lastEventSequence - UInt32(events.count - 1 - index) {
            return fail("events[\(index)].sequence", "\(event.sequence): the log is not consecutive")
        }
        return nil
    }
}
