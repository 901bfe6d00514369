import ArgumentParser
import Foundation
import PumpProtocol
import PumpSafety
import PumpSession
import SerialTransport

struct Ports: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lists serial ports, with USB details.")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let ports = try SerialPorts.list()
        if json {
            try printJSON(ports.map { ["path": $0.path, "description": $0.description] })
            return
        }
        if ports.isEmpty { print("no serial ports found") }
        for port in ports {
            var line = port.path
            if let vendor = port.usbVendorID, let product = port.usbProductID {
                line += String(format: "  usb %04x:%04x", vendor, product)
            }
            line += "  \(port.description)"
            print(line)
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Shows the pump's identity and status.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let (detail, status) = try await pump.status()
                if pump.json { return }
                let summary = detail.summary
                print("pump             \(summary.model ?? "?"), serial \(summary.serialNumber ?? "?"), firmware \(detail.firmwareVersion ?? "?")")
                print("link             \(summary.link.state)\(summary.link.reason.map { " (\($0))" } ?? "") via pumplinkd, pump \(summary.id)")
                print(Format.status(status))
                if !summary.uncertainRequests.isEmpty {
                    print("UNCERTAIN        requests \(summary.uncertainRequests): doses blocked until resolved")
                }
            }
        }
        try await withSession(connection) { session in
            let status = try await session.status()
            let identity = await session.identity
            if connection.json {
                try printJSON(status)
                return
            }
            if let identity {
                print("pump             \(identity.model), serial \(identity.serialNumber), firmware \(identity.firmwareVersion)")
            }
            print(Format.status(status))
        }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Shows live status as the pump streams it (Ctrl-C to stop).")
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Milliseconds between status frames.")
    var intervalMs: UInt32 = 1000

    func run() async throws {
        if let remote = connection.remote {
            try await withDaemon(remote) { pump -> Void in
                try await watchDaemon(pump, label: remote.client.base.absoluteString, intervalMs: Int(intervalMs))
            }
            return
        }
        try await withSession(connection) { session in
            let identity = await session.identity
            let updates = await session.telemetry()
            try await session.setTelemetry(intervalMs: intervalMs)
            for await status in updates {
                if connection.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    emit(String(decoding: try encoder.encode(status), as: UTF8.self) + "\n")
                } else {
                    // Clear the screen and redraw, like watch(1).
                    var screen = "\u{1B}[H\u{1B}[2J"
                    if let identity {
                        screen += "\(identity.model), serial \(identity.serialNumber) on \(connection.port ?? "?")\n\n"
                    }
                    emit(screen + Format.status(status) + "\n")
                }
            }
            throw CommandFailure("the link to the pump went down")
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reads the pump's event log.")
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "First sequence number to read.")
    var from: UInt32 = 1

    func run() async throws {
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let page = 1000
                var events: [Event] = []
                var next = from
                while true {
                    let batch: [Event] = try await pump.get(
                        "/events", query: [URLQueryItem(name: "from", value: "\(next)"), URLQueryItem(name: "limit", value: "\(page)")],
                        echo: false)
                    events += batch
                    guard batch.count == page, let last = batch.last, last.sequence < .max else { break }
                    next = last.sequence + 1
                }
                if pump.json {
                    try printJSON(events)
                } else {
                    for event in events { print(Format.event(event)) }
                }
            }
        }
        try await withSession(connection) { session in
            let quiet = connection.json
            let (_, events) = try await session.readEvents(from: from) { received, total in
                if !quiet && total > 200 {
                    FileHandle.standardError.write(Data("\rreading events: \(received)/\(total)".utf8))
                }
            }
            if !quiet { FileHandle.standardError.write(Data("\r".utf8)) }
            if connection.json {
                try printJSON(events)
            } else {
                for event in events { print(Format.event(event)) }
            }
        }
    }
}

struct ProgramCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "program",
        abstract: "Shows or replaces the active program.",
        subcommands: [Show.self, Validate.self, Push.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prints the active program as JSON.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            if let remote = connection.remote {
                return try await withDaemon(remote) { pump in
                    let program: PumpProtocol.Program? = try await pump.get("/program", echo: false)
                    guard let program else {
                        print(pump.json ? "null" : "no active program")
                        return
                    }
                    try printJSON(program)
                }
            }
            try await withSession(connection) { session in
                guard let program = try await session.activeProgram() else {
                    print(connection.json ? "null" : "no active program")
                    return
                }
                try printJSON(program)
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reviews a program against the drug library without sending it (through pumplinkd: --pump).",
            discussion: "Exit code 0 if a push would be accepted, 1 if it would be refused."
        )
        @OptionGroup var connection: ConnectionOptions

        @Argument(help: "A program as JSON (the form `pumpctl program show` prints).")
        var file: String

        @Option(help: "Why a soft limit is accepted (recorded in the audit log).")
        var overrideReason: String?

        func run() async throws {
            let program = try readProgram(file)
            guard let remote = connection.remote else {
                printError("error: a review needs pumplinkd's drug library: give --pump")
                throw ExitCode(2)
            }
            try await withDaemon(remote) { pump in
                let report = try await review(program, overrideReason: overrideReason, on: pump)
                if !report.accepted { throw refuse(report.verdict.rawValue, "the program would not be pushed") }
            }
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Uploads, verifies and activates a program from a JSON file.",
            discussion: "The old program keeps running unless the new one is uploaded, verified, read back and activated."
        )
        @OptionGroup var connection: ConnectionOptions

        @Argument(help: "A program as JSON (the form `pumpctl program show` prints).")
        var file: String

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        @Option(help: "Why a soft limit is accepted (through pumplinkd; recorded in the audit log).")
        var overrideReason: String?

        func run() async throws {
            let program = try readProgram(file)
            if let remote = connection.remote {
                return try await withDaemon(remote) { pump in
                    let report = try await review(program, overrideReason: overrideReason, on: pump, echo: false)
                    guard report.accepted else { throw refuse(report.verdict.rawValue, "not pushed; nothing changed") }
                    if !yes {
                        guard confirm() else { throw CommandFailure("not pushed; nothing changed") }
                    }
                    let body = ProgramBody(program: program, override: overrideReason.map(Override.init))
                    let result: PushResult = try await pump.post("/program", body)
                    if pump.json { return }
                    print("active now:      program \(result.activated.programId), checksum \(String(format: "%08x", result.activated.checksum)) (pump reports \(result.status.map { "\($0.activeProgramId)" } ?? "nothing yet: its status could not be read"))")
                }
            }
            try await withSession(connection) { session in
                let current = try await session.activeProgram()
                print("active program:  \(current.map { "\($0.programId), \($0.drug.name) \($0.concentrationMicrogramsPerMilliliter) µg/mL" } ?? "none")")
                print("new program:     \(program.programId), \(program.drug.name) \(program.concentrationMicrogramsPerMilliliter) µg/mL, \(program.steps.count) steps")
                if !yes {
                    guard confirm() else {
                        print("not pushed; nothing changed")
                        throw ExitCode(1)
                    }
                }
                let activated = try await session.pushProgram(program)
                let status = try await session.status()
                print("active now:      program \(activated.programId), checksum \(String(format: "%08x", activated.checksum)) (pump reports \(status.activeProgramId))")
            }
        }
    }
}

struct Refill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Records a refill: volume aspirated and new reservoir volume.")
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Volume drawn out of the reservoir, µL.")
    var aspiratedMicroliters: UInt32

    @Option(help: "Reservoir volume after filling, µL.")
    var newVolumeMicroliters: UInt32

    func run() async throws {
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let body = ["aspiratedMicroliters": aspiratedMicroliters, "newVolumeMicroliters": newVolumeMicroliters]
                let result: RefillResult = try await pump.post("/refill", body)
                if !pump.json { print(Format.refill(result)) }
            }
        }
        try await withSession(connection) { session in
            let response = try await session.refill(aspiratedMicroliters: aspiratedMicroliters, newVolumeMicroliters: newVolumeMicroliters)
            if connection.json { return try printJSON(response) }
            print("expected left:   \(Format.milliliters(response.expectedMicroliters))")
            print("aspirated:       \(Format.milliliters(response.aspiratedMicroliters))")
            if response.discrepancy != 0 { print("WARNING: the aspirated volume differs from the expected one beyond the allowed gap") }
            print("reservoir now:   \(Format.milliliters(response.reservoirMicroliters))")
        }
    }
}

struct Bolus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Gives a bolus.", subcommands: [Clinician.self, Patient.self])

    struct Clinician: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A clinician bolus: single or bridge by dose, priming by volume.")
        @OptionGroup var connection: ConnectionOptions

        @Option(help: "single, bridge or priming.")
        var kind = "single"

        @Option(help: "Dose, µg (single and bridge).")
        var doseMicrograms: UInt32 = 0

        @Option(help: "Volume, µL (priming).")
        var volumeMicroliters: UInt32 = 0

        @Option(help: "Duration, minutes.")
        var durationMinutes: UInt16 = 1

        @Option(help: "Why a soft limit of the drug library is accepted (through pumplinkd; recorded in the audit log).")
        var overrideReason: String?

        @Option(help: "The catheter's volume, µL: a priming bolus may not be larger (through pumplinkd).")
        var catheterVolumeMicroliters: UInt32?

        /// The daemon's body: the request, the override and the catheter volume.
        struct Body: Encodable {
            var kind: BolusKind
            var doseMicrograms: UInt32
            var volumeMicroliters: UInt32
            var durationMinutes: UInt16
            var override: Override?
            var catheterVolumeMicroliters: UInt32?
        }

        func validate() throws {
            if connection.remote == nil, overrideReason != nil || catheterVolumeMicroliters != nil {
                throw ValidationError("--override-reason and --catheter-volume-microliters are checked by pumplinkd: use --pump")
            }
            guard let kind = BolusKind(name: kind), [.single, .bridge, .priming].contains(kind) else {
                throw ValidationError("--kind must be single, bridge or priming")
            }
            if kind == .priming && (volumeMicroliters == 0 || doseMicrograms != 0) {
                throw ValidationError("a priming bolus takes --volume-microliters only")
            }
            if kind != .priming && (doseMicrograms == 0 || volumeMicroliters != 0) {
                throw ValidationError("a \(kind.name) bolus takes --dose-micrograms only")
            }
        }

        func run() async throws {
            let request = ClinicianBolusRequest(
                kind: BolusKind(name: kind) ?? .single,
                doseMicrograms: doseMicrograms,
                volumeMicroliters: volumeMicroliters,
                durationMinutes: durationMinutes
            )
            if let remote = connection.remote {
                return try await withDaemon(remote) { pump in
                    let body = Body(
                        kind: request.kind, doseMicrograms: request.doseMicrograms, volumeMicroliters: request.volumeMicroliters,
                        durationMinutes: request.durationMinutes, override: overrideReason.map(Override.init),
                        catheterVolumeMicroliters: catheterVolumeMicroliters)
                    let response: ClinicianBolusResponse = try await pump.post("/bolus/clinician", body)
                    if !pump.json { print(Self.describe(response)) }
                }
            }
            try await withSession(connection) { session in
                let response = try await session.clinicianBolus(request)
                if connection.json { return try printJSON(response) }
                print(Self.describe(response))
            }
        }

        static func describe(_ response: ClinicianBolusResponse) -> String {
            "bolus started: \(response.kind.name), \(Format.milligrams(response.doseMicrograms)), \(Format.milliliters(response.volumeMicroliters)), ends \(Format.time(response.endsAtMs))"
        }
    }

    struct Patient: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A patient-activated bolus, within the program's lockout and daily maximum.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            if let remote = connection.remote {
                return try await withDaemon(remote) { pump in
                    try Self.report(try await pump.post("/bolus/patient"), json: pump.json)
                }
            }
            try await withSession(connection) { session in
                let response = try await session.patientBolus()
                if connection.json { try printJSON(response) }
                try Self.report(response, json: connection.json)
            }
        }

        static func report(_ response: PatientBolusResponse, json: Bool) throws {
            if !json {
                print("\(response.outcome.name): \(Format.milligrams(response.doseMicrograms)), \(response.bolusesInLast24h) in the last 24 h")
            }
            if response.outcome != .started { throw ExitCode(1) }
        }
    }
}

struct Suspend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Suspends all delivery.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let response: SuspendResponse = try await pump.post("/suspend")
                if !pump.json { print("therapy \(response.therapyState.name)") }
            }
        }
        try await withSession(connection) { session in
            let response = try await session.suspend()
            if connection.json { return try printJSON(response) }
            print("therapy \(response.therapyState.name)")
        }
    }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resumes delivery after a suspend.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let response: ResumeResponse = try await pump.post("/resume")
                if !pump.json { print("therapy \(response.therapyState.name)") }
            }
        }
        try await withSession(connection) { session in
            let response = try await session.resume()
            if connection.json { return try printJSON(response) }
            print("therapy \(response.therapyState.name)")
        }
    }
}

struct Alarms: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Shows alarms, or acknowledges them with --ack.")
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Alarm names to acknowledge, comma-separated, or 'all'.")
    var ack: String?

    func run() async throws {
        var mask: UInt32 = 0
        var names: [String] = []
        if let ack {
            for name in ack.split(separator: ",").map(String.init) {
                if name == "all" {
                    mask = .max
                } else if let code = AlarmCode(name: name) {
                    mask |= 1 << UInt32(code.rawValue)
                    names.append(code.name)
                } else {
                    printError("error: unknown alarm '\(name)'")
                    throw ExitCode(2)
                }
            }
        }
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let condition: UInt32
                let unacknowledged: UInt32
                if mask == .max {
                    let definedBits = AlarmCode.allCases.reduce(UInt32(0)) { $0 | (1 << UInt32($1.rawValue)) }
                    let response: AcknowledgeAlarmsResponse = try await pump.post("/alarms/acknowledge", ["mask": definedBits])
                    (condition, unacknowledged) = (response.alarmConditionMask, response.alarmUnacknowledgedMask)
                } else if mask != 0 {
                    let response: AcknowledgeAlarmsResponse = try await pump.post("/alarms/acknowledge", ["alarms": names])
                    (condition, unacknowledged) = (response.alarmConditionMask, response.alarmUnacknowledgedMask)
                } else {
                    let (_, status) = try await pump.status()
                    (condition, unacknowledged) = (status.alarmConditionMask, status.alarmUnacknowledgedMask)
                }
                if !pump.json { Self.show(condition: condition, unacknowledged: unacknowledged) }
            }
        }
        try await withSession(connection) { session in
            var condition: UInt32
            var unacknowledged: UInt32
            if mask != 0 {
                let response = try await session.acknowledgeAlarms(mask)
                (condition, unacknowledged) = (response.alarmConditionMask, response.alarmUnacknowledgedMask)
            } else {
                let status = try await session.status()
                (condition, unacknowledged) = (status.alarmConditionMask, status.alarmUnacknowledgedMask)
            }
            Self.show(condition: condition, unacknowledged: unacknowledged)
        }
    }

    static func show(condition: UInt32, unacknowledged: UInt32) {
        let alarms = Format.alarms(condition: condition, unacknowledged: unacknowledged)
        print(alarms.isEmpty ? "no alarms" : alarms.joined(separator: "\n"))
    }
}

struct Clock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sets the pump's clock to this computer's time.")
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Local time offset from UTC in minutes (default: this computer's).")
    var utcOffsetMinutes: Int16 = Int16(TimeZone.current.secondsFromGMT() / 60)

    func run() async throws {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        if let remote = connection.remote {
            return try await withDaemon(remote) { pump in
                let request = SetClockRequest(timeMs: now, utcOffsetMinutes: utcOffsetMinutes)
                let response: SetClockResponse = try await pump.post("/clock", request)
                if !pump.json { print(Self.describe(response)) }
            }
        }
        try await withSession(connection) { session in
            let response = try await session.setClock(timeMs: now, utcOffsetMinutes: utcOffsetMinutes)
            if connection.json { return try printJSON(response) }
            print(Self.describe(response))
        }
    }

    static func describe(_ response: SetClockResponse) -> String {
        "clock was \(Format.time(response.previousTimeMs)), now \(Format.time(response.timeMs, offsetMinutes: response.utcOffsetMinutes))"
    }
}

/// Reads and checks a program file; a bad one is a usage error (exit 2).
func readProgram(_ file: String) throws -> PumpProtocol.Program {
    do {
        let program = try JSONDecoder().decode(PumpProtocol.Program.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        try program.validate()
        return program
    } catch {
        printError("error: \(file) is not a valid program: \(error)")
        throw ExitCode(2)
    }
}

/// Asks on the terminal; true only for "yes".
func confirm() -> Bool {
    print("Push it? Type 'yes': ", terminator: "")
    return readLine() == "yes"
}

/// Shows pumplinkd's review of a program (or, with --json, its JSON).
func review(_ program: PumpProtocol.Program, overrideReason: String?, on pump: RemotePump, echo: Bool = true) async throws -> ProgramReport {
    let body = ProgramBody(program: program, override: overrideReason.map(Override.init))
    let report: ProgramReport = try await pump.post("/program/review", body, echo: echo)
    if !pump.json { print(Format.programReport(report)) }
    return report
}
