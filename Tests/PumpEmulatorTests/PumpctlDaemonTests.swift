import Foundation
import Testing

/// `pumpctl --pump` through a real `pumplinkd` connected to a real `pump-emulator`.
@Suite("pumpctl through pumplinkd", .serialized)
struct PumpctlDaemonTests {
    static let clinicianToken = "clinician-token-0123456789"
    static let patientToken = "patient-token-0123456789"

    /// A TCP port nobody listens on now: the kernel's pick for a socket bound to port 0.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        try #require(bound == 0)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        try #require(named == 0)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func startDaemon(in directory: URL, config: URL) throws -> Process {
        let log = directory.appendingPathComponent("pumplinkd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = ExecutableTests.products.appendingPathComponent("pumplinkd")
        process.arguments = ["--config", config.path]
        process.currentDirectoryURL = directory
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    /// A program file: the active one with another id, a single basal step and no patient bolus.
    static func writeProgram(_ base: [String: Any], id: Int, microgramsPerDay: Int, to file: URL) throws {
        var program = base
        program["programId"] = id
        program["steps"] = [["dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": microgramsPerDay]]
        program["periodicBoluses"] = [[String: Any]]()
        program["patientBolus"] = ["doseMicrograms": 0, "durationMinutes": 0, "lockoutMinutes": 0, "maxPerDay": 0]
        try JSONSerialization.data(withJSONObject: program).write(to: file)
    }

    /// A running `pump-emulator` and `pumplinkd`, and `pumpctl` pointed at them.
    struct Rig {
        let directory: URL
        let link: String
        let base: String
        let clinician: [String]
        let patient: [String]

        func pumpctl(_ arguments: [String]) async throws -> ExecutableTests.Output {
            try await ExecutableTests.run("pumpctl", arguments, in: directory)
        }
    }

    /// Starts the emulator (with `emulatorArguments` added) and the daemon, waits until the
    /// daemon's link is up, runs `body`, and stops both.
    static func withRig(emulatorArguments: [String] = [], _ body: (Rig) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-ctl-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        let (emulator, announced) = try await ExecutableTests.startEmulator(
            in: directory, arguments: ["--link", link, "--time-scale", "60"] + emulatorArguments)
        defer { ExecutableTests.stop(emulator) }
        try #require(announced.contains("PLE-0001"))

        let port = try Self.freePort()
        let config: [String: Any] = [
            "pumps": [["id": "pump-1", "port": link, "keyFile": directory.appendingPathComponent("pumplink-keys/PLE-0001.key").path]],
            "dataDirectory": directory.appendingPathComponent("data").path,
            "telemetryIntervalMs": 500,
            "api": [
                "host": "127.0.0.1", "port": port,
                "tokens": [
                    ["token": Self.clinicianToken, "name": "clinician", "role": "clinician"],
                    ["token": Self.patientToken, "name": "patient", "role": "patient"],
                ],
            ],
        ]
        let configFile = directory.appendingPathComponent("pumplinkd.json")
        try JSONSerialization.data(withJSONObject: config).write(to: configFile)
        let daemon = try Self.startDaemon(in: directory, config: configFile)
        defer { ExecutableTests.stop(daemon) }

        let base = "http://127.0.0.1:\(port)"
        let rig = Rig(
            directory: directory, link: link, base: base,
            clinician: ["--pump", "pump-1", "--daemon", base, "--token", Self.clinicianToken],
            patient: ["--pump", "pump-1", "--daemon", base, "--token", Self.patientToken])

        // The daemon's link comes up (and its first status read) within seconds.
        var linked = false
        let deadline = Date().addingTimeInterval(30)
        while !linked, Date() < deadline {
            let devices = try await rig.pumpctl(["devices", "--daemon", base, "--token", Self.clinicianToken])
            linked = devices.status == 0 && devices.stdout.contains("link up") && !devices.stdout.contains("reservoir -")
            if !linked { try await Task.sleep(for: .milliseconds(200)) }
        }
        let log = { (try? String(contentsOf: directory.appendingPathComponent("pumplinkd.log"), encoding: .utf8)) ?? "" }
        try #require(linked, "pumplinkd did not bring the link up: \(log())")
        try await body(rig)
    }

    @Test func everyCommandWorksThroughTheDaemon() async throws {
        try await Self.withRig { rig in try await Self.programsBolusesAndLimits(rig) }
    }

    static func programsBolusesAndLimits(_ rig: Rig) async throws {
        let (link, clinician, patient) = (rig.link, rig.clinician, rig.patient)
        let directory = rig.directory
        let pumpctl = rig.pumpctl
        let usage = try await pumpctl(["status", "--pump", "pump-1", "--port", link, "--token", clinicianToken])
        #expect(usage.status == 2)
        #expect(usage.stderr.contains("not both"))

        let status = try await pumpctl(["status"] + clinician)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("serial PLE-0001"))
        #expect(status.stdout.contains("therapy          running"))

        let events = try await pumpctl(["events", "--from", "1"] + clinician)
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.hasPrefix("#1  "))

        let show = try await pumpctl(["program", "show"] + clinician)
        #expect(show.status == 0, "\(show.stderr)")
        let active = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect(active["programId"] as? Int == 1)
        #expect((active["drug"] as? String) == "morphine")

        // Patient: a bolus yes, a suspend no.
        let bolus = try await pumpctl(["bolus", "patient"] + patient)
        #expect(bolus.status == 0, "\(bolus.stderr)")
        #expect(bolus.stdout.contains("started"))
        let suspend = try await pumpctl(["suspend"] + patient)
        #expect(suspend.status == 1)
        #expect(suspend.stderr.contains("error: forbidden: "))

        // Over morphine's hard maximum (20 mg/day): rejected, nothing sent.
        let hard = directory.appendingPathComponent("hard.json")
        try Self.writeProgram(active, id: 2, microgramsPerDay: 25_000, to: hard)
        let rejected = try await pumpctl(["program", "validate", hard.path] + clinician)
        #expect(rejected.status == 1)
        #expect(rejected.stdout.contains("verdict          rejected"), "\(rejected.stdout)")
        #expect(rejected.stdout.contains("HARD  dailyDose"), "\(rejected.stdout)")

        // Over the soft maximum (15 mg/day): refused without a reason, pushed with one.
        let soft = directory.appendingPathComponent("soft.json")
        try Self.writeProgram(active, id: 3, microgramsPerDay: 16_000, to: soft)
        let needsOverride = try await pumpctl(["program", "push", soft.path, "--yes"] + clinician)
        #expect(needsOverride.status == 1)
        #expect(needsOverride.stdout.contains("verdict          overrideRequired"), "\(needsOverride.stdout)")
        #expect(needsOverride.stderr.contains("error: overrideRequired: "))
        let pushed = try await pumpctl(["program", "push", soft.path, "--yes", "--override-reason", "titration agreed with the patient"] + clinician)
        #expect(pushed.status == 0, "\(pushed.stdout)\n\(pushed.stderr)")
        #expect(pushed.stdout.contains("verdict          acceptedWithOverride"))
        #expect(pushed.stdout.contains("active now:      program 3"))

        let overCapacity = try await pumpctl(["refill", "--aspirated-microliters", "1000", "--new-volume-microliters", "40000"] + clinician)
        #expect(overCapacity.status == 1)
        #expect(overCapacity.stderr.contains("error: limitExceeded: "), "\(overCapacity.stderr)")

        let json = try await pumpctl(["status", "--json"] + clinician)
        let detail = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let summary = detail?["summary"] as? [String: Any]
        #expect((summary?["status"] as? [String: Any])?["activeProgramId"] as? Int == 3)
    }

    @Test func therapyAlarmsClockAndWatchWorkThroughTheDaemon() async throws {
        let control = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-control-\(UUID())")
        try Data().write(to: control)
        defer { try? FileManager.default.removeItem(at: control) }
        try await Self.withRig(emulatorArguments: ["--control", control.path]) { rig in
            let clinician = rig.clinician

            let suspended = try await rig.pumpctl(["suspend"] + clinician)
            #expect(suspended.status == 0, "\(suspended.stderr)")
            let status = try await rig.pumpctl(["status"] + clinician)
            #expect(status.stdout.contains("therapy          suspended"), "\(status.stdout)")
            // Nothing to resume twice: the pump refuses, the exit code says so.
            let resumed = try await rig.pumpctl(["resume"] + clinician)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let again = try await rig.pumpctl(["resume"] + clinician)
            #expect(again.status == 1)
            #expect(again.stderr.contains("therapyNotSuspended"), "\(again.stderr)")
            #expect(try await rig.pumpctl(["status"] + clinician).stdout.contains("therapy          running"))

            let bolus = try await rig.pumpctl(["bolus", "clinician", "--dose-micrograms", "100"] + clinician)
            #expect(bolus.status == 0, "\(bolus.stderr)")
            #expect(bolus.stdout.contains("bolus started: single, 100 µg"), "\(bolus.stdout)")
            // A patient may not give a clinician bolus.
            let forbidden = try await rig.pumpctl(["bolus", "clinician", "--dose-micrograms", "100"] + rig.patient)
            #expect(forbidden.status == 1)
            #expect(forbidden.stderr.contains("error: forbidden: "))

            let clock = try await rig.pumpctl(["clock", "--utc-offset-minutes", "60"] + clinician)
            #expect(clock.status == 0, "\(clock.stderr)")

            // A motor stall raised in the pump shows as an unacknowledged alarm, then acknowledged.
            try Data("inject motorStall\n".utf8).write(to: control)
            var alarms = ExecutableTests.Output(status: -1, stdout: "", stderr: "")
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                alarms = try await rig.pumpctl(["alarms"] + clinician)
                if alarms.stdout.contains("motorStall") { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(alarms.status == 0)
            let before = alarms.stdout.split(separator: "\n").first { $0.contains("motorStall") }.map(String.init) ?? ""
            #expect(before.contains("active"), "\(alarms.stdout)")
            let acknowledged = try await rig.pumpctl(["alarms", "--ack", "motorStall"] + clinician)
            #expect(acknowledged.status == 0, "\(acknowledged.stderr)")
            let after = acknowledged.stdout.split(separator: "\n").first { $0.contains("motorStall") }.map(String.init) ?? ""
            #expect(after.contains("acknowledged"), "\(acknowledged.stdout)")
            let unknown = try await rig.pumpctl(["alarms", "--ack", "fire"] + clinician)
            #expect(unknown.status == 2)

            // The live view redraws from the daemon until stopped.
            let output = rig.directory.appendingPathComponent("watch.out")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let watch = Process()
            watch.executableURL = ExecutableTests.products.appendingPathComponent("pumpctl")
            watch.arguments = ["watch", "--interval-ms", "200"] + clinician
            watch.standardOutput = try FileHandle(forWritingTo: output)
            try watch.run()
            try await Task.sleep(for: .seconds(2))
            ExecutableTests.stop(watch)
            let screens = try String(contentsOf: output, encoding: .utf8).components(separatedBy: "\u{1B}[H\u{1B}[2J").filter { !$0.isEmpty }
            #expect(screens.count >= 3, "\(screens.count) screens")
            #expect(screens.last?.contains("pump pump-1, serial PLE-0001, link up") == true, "\(screens.last ?? "")")
            #expect(screens.last?.contains("motorStall") == true)
        }
    }
}
