import Foundation
import PumpCapture
import PumpEmulator
import Testing

private func findTool(_ name: String) -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

private let tsharkPath = findTool("tshark")
private let socatPath = findTool("socat")

/// Captures as people take and use them: the emulator's and pumpctl's `--capture`, `pumpctl
/// capture decode` and `replay`, `pump-emulator --replay`, `pumpctl tap`, a capture cut short by
/// kill -9, and the Wireshark dissector over what the programs wrote.
@Suite("captures: decode, replay, tap", .serialized)
struct CaptureCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/captures").standardized
    static let dissector = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../tools/wireshark/pumplink.lua").standardized

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-capture-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `program` until it exits, off the concurrency pool.
    static func runTool(_ program: String, _ arguments: [String]) async throws -> ExecutableTests.Output {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: program)
                    process.arguments = arguments
                    let out = Pipe()
                    let err = Pipe()
                    process.standardOutput = out
                    process.standardError = err
                    try process.run()
                    let stdout = out.fileHandleForReading.readDataToEndOfFile()
                    let stderr = err.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    continuation.resume(returning: .init(
                        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                        stderr: String(decoding: stderr, as: UTF8.self)))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Ends a child that may have SIGTERM blocked (inherited from the test runner), and reaps it.
    static func kill9(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    @Test func aRecordedSessionReplaysIntoANewPumpAndADifferenceIsCaught() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        let fixture = Self.fixtures.appendingPathComponent("pumpctl-commands.pcapng").path
        // The new pump's clock starts when the recorded one did: the program's rate, and what
        // follows from it, depends on the time of day.
        let recordedStart = try #require(try RecordedPump(capture: Capture(contentsOfFile: fixture).decoded()).statuses.first?.value.pumpTimeMs)
        let startTime = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(recordedStart / 1000)))
        let (emulator, announced) = try await ExecutableTests.startEmulator(
            in: directory, arguments: ["--link", link, "--state-dir", "", "--start-time", startTime])
        defer { ExecutableTests.stop(emulator) }
        try #require(announced.contains("PLE-0001"))
        let replay = ["capture", "replay", fixture, "--port", link, "--key-file", "pumplink-keys/PLE-0001.key"]

        // A new pump answers every recorded request as the recorded pump did.
        let first = try await ExecutableTests.run("pumpctl", replay, in: directory)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("10 requests replayed, 10 answered as recorded, 0 differently"), "\(first.stdout)")
        #expect(first.stdout.contains("PatientBolus: same"))

        // The same pump again is no longer a new pump: the replay says where it differs.
        let second = try await ExecutableTests.run("pumpctl", replay + ["--json"], in: directory)
        #expect(second.status == 1)
        let results = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [[String: Any]])
        #expect(results.count == 10)
        let bolus = try #require(results.first { $0["request"] as? String == "PatientBolus" })
        #expect((bolus["differences"] as? [String])?.contains { $0.hasPrefix("outcome: refused") } == true, "\(bolus)")
    }

    @Test func aRecordedPumpAnswersAsItDidAndObeysNothing() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("replay0").path
        let fixture = Self.fixtures.appendingPathComponent("pumplinkd-follows-a-pump.pcapng").path
        let recorded = try Capture(contentsOfFile: fixture).decoded()
        let (emulator, announced) = try await ExecutableTests.startEmulator(in: directory, arguments: ["--link", link, "--replay", fixture])
        defer { ExecutableTests.stop(emulator) }
        try #require(announced.contains("PLE-0001"), "\(announced)")
        let connection = ["--port", link, "--key-file", "pumplink-keys/PLE-0001.key"]

        let status = try await ExecutableTests.run("pumpctl", ["status"] + connection, in: directory)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("serial PLE-0001"))
        // Every event the daemon read in the recording, and nothing else. The recorded pump's log
        // grows as the replay's clock passes the moments of the recording, so the bolus appears
        // once the replay is as far as the recording was when it was given.
        var recordedEvents: Set<Int> = []
        for record in recorded.records {
            if case .frame(let frame) = record.outcome, case .success(.readEventsResponse(let response)) = frame.message {
                recordedEvents.formUnion(response.events.map { Int($0.sequence) })
            }
        }
        #expect(!recordedEvents.isEmpty)
        var replayed: [[String: Any]] = []
        var output = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !replayed.contains(where: { $0["kind"] as? String == "bolusStarted" }), ContinuousClock.now < deadline {
            let events = try await ExecutableTests.run("pumpctl", ["events", "--from", "1", "--json"] + connection, in: directory)
            #expect(events.status == 0, "\(events.stderr)")
            output = events.stdout
            replayed = try #require(try JSONSerialization.jsonObject(with: Data(events.stdout.utf8)) as? [[String: Any]])
            #expect(Set(replayed.compactMap { $0["sequence"] as? Int }).isSubset(of: recordedEvents))
            if !replayed.contains(where: { $0["kind"] as? String == "bolusStarted" }) { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(replayed.contains { $0["kind"] as? String == "bolusStarted" }, "\(output)")

        let suspend = try await ExecutableTests.run("pumpctl", ["suspend"] + connection, in: directory)
        #expect(suspend.status == 1)
        #expect(suspend.stderr.contains("invalidArgument"), "\(suspend.stderr)")
    }

    @Test func aCaptureCutShortByKill9StillDecodes() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        let emulatorCapture = directory.appendingPathComponent("emulator.pcapng").path
        let (emulator, _) = try await ExecutableTests.startEmulator(
            in: directory, arguments: ["--link", link, "--state-dir", "", "--capture", emulatorCapture])
        defer { ExecutableTests.stop(emulator) }

        // pumpctl watches (20 status frames a second), recording its side too; the emulator dies mid-stream.
        let pumpctlCapture = directory.appendingPathComponent("pumpctl.pcapng").path
        let watch = Process()
        watch.executableURL = ExecutableTests.products.appendingPathComponent("pumpctl")
        watch.arguments = ["watch", "--interval-ms", "50", "--json", "--capture", pumpctlCapture, "--port", link, "--key-file", "pumplink-keys/PLE-0001.key"]
        watch.currentDirectoryURL = directory
        watch.standardOutput = FileHandle.nullDevice
        watch.standardError = FileHandle.nullDevice
        try watch.run()
        defer { Self.kill9(watch) }
        try await Task.sleep(for: .milliseconds(1500))
        kill(emulator.processIdentifier, SIGKILL)
        emulator.waitUntilExit()
        try await Task.sleep(for: .milliseconds(300))

        for file in [emulatorCapture, pumpctlCapture] {
            let decode = try await ExecutableTests.run("pumpctl", ["capture", "decode", file, "--json"], in: directory)
            #expect(decode.status == 0, "\(decode.stderr)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(decode.stdout.utf8)) as? [String: Any])
            let records = try #require(document["records"] as? [[String: Any]])
            #expect(records.count > 20, "\(file): \(records.count) records")
            let text = try await ExecutableTests.run("pumpctl", ["capture", "decode", file], in: directory)
            #expect(text.stdout.contains("Hello request") && text.stdout.contains("GetStatus response"))
            #expect(!text.stdout.contains("discarded"))
        }
        let capture = try Capture(contentsOfFile: emulatorCapture)
        #expect(capture.interfaces.first?.description == "host")
        #expect(Set(capture.packets.map(\.direction)) == [.inbound, .outbound])
        let garbage = try await ExecutableTests.run("pumpctl", ["capture", "decode", link], in: directory)
        #expect(garbage.status == 1)
    }

    @Test(.enabled(if: tsharkPath != nil, "tshark is not installed (apt-get install tshark)"))
    func wiresharkDecodesEveryFrameTheProgramsWrote() async throws {
        let tshark = try #require(tsharkPath)
        for name in ["pumpctl-commands.pcapng", "pumplinkd-follows-a-pump.pcapng"] {
            let file = Self.fixtures.appendingPathComponent(name).path
            let packets = try Capture(contentsOfFile: file).packets.count
            let good = try await Self.runTool(
                tshark, ["-r", file, "-X", "lua_script:\(Self.dissector.path)", "-Y", "pumplink.crc.status == 1 && pumplink.type", "-T", "fields", "-e", "frame.number"])
            #expect(good.status == 0, "\(good.stderr)")
            #expect(good.stdout.split(separator: "\n").count == packets, "\(name): \(good.stdout)")
            let bad = try await Self.runTool(
                tshark, ["-r", file, "-X", "lua_script:\(Self.dissector.path)", "-Y", "_ws.malformed || _ws.expert.severity >= warning", "-T", "fields", "-e", "frame.number"])
            #expect(bad.stdout.isEmpty, "\(name): \(bad.stdout)")
        }
    }

    @Test(.enabled(if: socatPath != nil, "socat is not installed (apt-get install socat)"))
    func theTapRelaysBothWaysAndRecordsEachSideOnce() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let pumpLink = directory.appendingPathComponent("pump0").path
        let (emulator, _) = try await ExecutableTests.startEmulator(in: directory, arguments: ["--link", pumpLink, "--state-dir", ""])
        defer { ExecutableTests.stop(emulator) }
        let host = directory.appendingPathComponent("host").path
        let tapEnd = directory.appendingPathComponent("tap").path
        let socat = Process()
        socat.executableURL = URL(fileURLWithPath: try #require(socatPath))
        socat.arguments = ["pty,raw,echo=0,link=\(host)", "pty,raw,echo=0,link=\(tapEnd)"]
        try socat.run()
        // The test runner blocks SIGTERM and children inherit the mask: end socat with SIGKILL.
        defer { Self.kill9(socat) }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: tapEnd) { try await Task.sleep(for: .milliseconds(50)) }

        let file = directory.appendingPathComponent("tap.pcapng").path
        let tap = Process()
        tap.executableURL = ExecutableTests.products.appendingPathComponent("pumpctl")
        tap.arguments = ["tap", pumpLink, tapEnd, "--capture", file]
        tap.standardError = FileHandle.nullDevice
        try tap.run()
        defer { ExecutableTests.stop(tap) }
        try await Task.sleep(for: .milliseconds(500))

        // pumpctl on the far side of the tap talks to the pump as if directly.
        let status = try await ExecutableTests.run(
            "pumpctl", ["status", "--port", host, "--key-file", "pumplink-keys/PLE-0001.key"], in: directory)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("serial PLE-0001"))
        kill(tap.processIdentifier, SIGINT)
        tap.waitUntilExit()
        #expect(tap.terminationStatus == 0)

        let capture = try Capture(contentsOfFile: file)
        #expect(capture.interfaces.map(\.description) == ["side A", "side B"])
        let decoded = capture.decoded()
        var requests = 0
        var responses = 0
        for record in decoded.records {
            guard case .frame(let frame) = record.outcome else {
                Issue.record("not a frame: \(record.outcome)")
                continue
            }
            // Requests arrive on side B (the host's), responses on side A (the pump's), once each.
            #expect(record.direction == .inbound)
            #expect(record.interfaceDescription == (frame.header.isResponse ? "side A" : "side B"))
            if frame.header.isResponse { responses += 1 } else { requests += 1 }
        }
        #expect(requests == 2 && responses == 2, "\(decoded.text())")
    }
}
