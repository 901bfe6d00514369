import Foundation
import PumpProtocol
import PumpSafety

/// Text forms of pump values for people.
enum Format {
    static func milliliters(_ microliters: some BinaryInteger) -> String {
        let value = Int64(microliters)
        return String(format: "%d.%03d mL", value / 1000, value % 1000)
    }

    static func milligrams(_ micrograms: some BinaryInteger) -> String {
        let value = Int64(micrograms)
        return value >= 1000 ? String(format: "%d.%03d mg", value / 1000, value % 1000) : "\(value) µg"
    }

    static func time(_ ms: UInt64, offsetMinutes: Int16 = 0) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(secondsFromGMT: Int(offsetMinutes) * 60)
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func alarms(condition: UInt32, unacknowledged: UInt32) -> [String] {
        AlarmCode.allCases.compactMap { code in
            let bit = UInt32(1) << UInt32(code.rawValue)
            let present = condition & bit != 0
            let unacked = unacknowledged & bit != 0
            let critical = code.rawValue < 8 ? "critical" : "non-critical"
            switch (present, unacked) {
            case (true, true): return "\(code.name) (\(critical), active)"
            case (false, true): return "\(code.name) (\(critical), latched: condition gone, not acknowledged)"
            case (true, false): return "\(code.name) (\(critical), acknowledged)"
            case (false, false): return nil
            }
        }
    }

    static func status(_ status: Status) -> String {
        var lines = [
            "pump time        \(time(status.pumpTimeMs, offsetMinutes: status.utcOffsetMinutes))",
            "therapy          \(status.therapyState.name)",
            "reservoir        \(milliliters(status.reservoirMicroliters)) of \(milliliters(status.reservoirCapacityMicroliters))",
            "dose rate        \(milligrams(status.currentDoseRateMicrogramsPerDay))/day (\(milliliters(status.currentFlowMicrolitersPerDay))/day)",
            "delivered        \(milligrams(status.totalDeliveredMicrograms)), \(milliliters(status.totalDeliveredMicroliters)) in all",
            "program          \(status.activeProgramId == 0 ? "none" : "\(status.activeProgramId) (checksum \(String(format: "%08x", status.activeProgramChecksum)))")",
            "battery          \(status.batteryPercent) %, \(status.batteryState.name), \(status.batteryDaysToEndOfService) days to end of service",
        ]
        if status.bolusActive != 0 {
            let kind = BolusKind(rawValue: status.bolusActive)?.name ?? "\(status.bolusActive)"
            lines.append("bolus            \(kind), \(milliliters(status.bolusRemainingMicroliters)) to go")
        }
        let patient: String = switch status.patientBolusAvailableInSeconds {
        case 0: "available now"
        case .max: "not available"
        case let seconds: "available in \(seconds / 60) min \(seconds % 60) s"
        }
        lines.append("patient bolus    \(patient) (\(status.patientBolusesInLast24h) in the last 24 h)")
        let alarms = Self.alarms(condition: status.alarmConditionMask, unacknowledged: status.alarmUnacknowledgedMask)
        lines.append("alarms           \(alarms.isEmpty ? "none" : alarms.joined(separator: "; "))")
        lines.append("events           up to #\(status.lastEventSequence)")
        return lines.joined(separator: "\n")
    }

    static func event(_ event: Event) -> String {
        var detail: String
        switch event.kind {
        case .alarmRaised, .alarmCleared, .alarmAcknowledged:
            detail = AlarmCode(rawValue: event.code)?.name ?? "alarm \(event.code)"
        case .bolusStarted, .bolusCompleted, .bolusInterrupted:
            let kind = BolusKind(rawValue: event.code)?.name ?? "\(event.code)"
            detail = "\(kind) \(milligrams(event.value1)), \(milliliters(event.value2))"
        case .patientBolusRefused:
            detail = (PatientBolusOutcome(rawValue: event.code)?.name ?? "\(event.code)") + ", \(event.value1) in 24 h"
        case .programActivated:
            detail = "program \(event.value1) (checksum \(String(format: "%08x", event.value2)))"
        case .refilled:
            detail = "aspirated \(milliliters(event.value1)), now \(milliliters(event.value2))" + (event.code == 1 ? ", DISCREPANCY" : "")
        default:
            detail = ""
        }
        let request = event.requestId == 0 ? "" : " [request \(event.requestId)]"
        return "#\(event.sequence)  \(time(event.timeMs))  \(event.kind.name)  \(detail)\(request)"
    }
    static func date(_ ms: UInt64?) -> String {
        ms.map { time($0) } ?? "more than a year away"
    }

    static func finding(_ finding: Finding) -> String {
        var line = "  \(finding.severity.rawValue.uppercased())  \(finding.rule): \(finding.message)"
        if let value = finding.value, let limit = finding.limit { line += " (\(value), limit \(limit))" }
        return line
    }

    /// A program review: doses by weekday, the change, the projections, the findings, the verdict.
    static func programReport(_ report: ProgramReport) -> String {
        let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        var lines = [
            "program          \(report.programId), \(report.drug.name) \(report.concentrationMicrogramsPerMilliliter) µg/mL",
            "daily dose       " + zip(weekdays, report.dailyDoseMicrogramsByWeekday).map { "\($0) \(milligrams($1))" }.joined(separator: ", "),
            "largest          \(milligrams(report.dailyDoseMicrograms))/day, \(milligrams(report.dailyDoseWithPatientBolusesMicrograms))/day with every patient bolus",
        ]
        let change: String =
            switch (report.activeDailyDoseMicrograms, report.changePercent) {
            case (let active?, let percent?): "\(percent >= 0 ? "+" : "")\(percent) % against the active \(milligrams(active))/day"
            case (let active?, nil): "not comparable with the active \(milligrams(active))/day (other drug or concentration)"
            case (nil, _): "no active program"
            }
        lines.append("change           \(change)")
        lines.append("reservoir low    \(date(report.projectedLowReservoirAtMs))")
        lines.append("reservoir empty  \(date(report.projectedEmptyAtMs))")
        if let rule = report.pumpRule { lines.append("pump rule        the pump would refuse it (rule \(rule))") }
        lines.append(report.findings.isEmpty ? "findings         none" : "findings")
        lines += report.findings.map(finding)
        lines.append("verdict          \(report.verdict)" + (report.override.map { " (override: \($0.reason))" } ?? ""))
        return lines.joined(separator: "\n")
    }

    static func refill(_ result: RefillResult) -> String {
        var lines = [
            "expected left:   \(milliliters(result.pump.expectedMicroliters))",
            "aspirated:       \(milliliters(result.pump.aspiratedMicroliters))",
        ]
        if result.report.discrepancy || result.pump.discrepancy != 0 {
            lines.append("WARNING: the aspirated volume differs from the expected one beyond the allowed gap")
        }
        lines.append("reservoir now:   \(milliliters(result.pump.reservoirMicroliters)) of \(milliliters(result.report.capacityMicroliters))")
        lines.append("reservoir low:   \(date(result.report.projectedLowReservoirAtMs))")
        lines.append("reservoir empty: \(date(result.report.projectedEmptyAtMs))")
        lines += result.report.findings.map(finding)
        return lines.joined(separator: "\n")
    }
}
