import Foundation
import Testing

/// The emulator's state file across restarts, as a user runs it: `pump-emulator` stopped and
/// started again on the same --state-dir (SPEC §10.1), and started on a file that is corrupt
/// or holds values no pump reaches.
@Suite("pump-emulator state files", .serialized)
struct StateFileTests {
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-state-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs the emulator until it exits by itself; a watchdog stops it after 30 s (it then
    /// ran on the file instead of refusing it), so the test fails rather than hangs.
    static func runEmulatorToItsEnd(in directory: URL, arguments: [String]) async throws -> ExecutableTests.Output {
        try await ExecutableTests.offPool {
            let process = Process()
            process.executableURL = ExecutableTests.products.appendingPathComponent("pump-emulator")
            process.arguments = arguments
            process.currentDirectoryURL = directory
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            watchdog.cancel()
            return ExecutableTests.Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        }
    }

    /// Starts the emulator, then stops it (SIGTERM: it saves its state and exits).
    static func runOnce(in directory: URL, link: String) async throws {
        let (emulator, announced) = try await ExecutableTests.startEmulator(in: directory, arguments: ["--link", link])
        defer { ExecutableTests.stop(emulator) }
        try #require(announced.contains("PLE-0001 on /dev/pts/"), "\(announced)")
    }

    /// SPEC §10.1: a pump logs pumpStarted each time it starts, also from its saved state.
    @Test func aRestartFromTheStateFileLogsPumpStarted() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        try await Self.runOnce(in: directory, link: link)
        let (emulator, _) = try await ExecutableTests.startEmulator(in: directory, arguments: ["--link", link])
        defer { ExecutableTests.stop(emulator) }

        let connection = ["--port", link, "--key-file", "pumplink-keys/PLE-0001.key"]
        let output = try await ExecutableTests.run("pumpctl", ["events", "--from", "1", "--json"] + connection, in: directory)
        #expect(output.status == 0, "\(output.stderr)")
        let events = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        let started = events.filter { $0["kind"] as? String == "pumpStarted" }
        #expect(started.count == 2, "\(events)")
        #expect(started.first?["sequence"] as? Int == 1)
        #expect((started.last?["sequence"] as? Int ?? 0) > 1)
    }

    /// A saved state with one value replaced (a path of keys into its JSON).
    static func corrupt(_ file: URL, at path: [String], with json: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        func replace(_ dictionary: [String: Any], _ path: ArraySlice<String>) -> [String: Any] {
            var dictionary = dictionary
            guard let first = path.first else { return dictionary }
            if path.count == 1 {
                dictionary[first] = value
            } else if let inner = dictionary[first] as? [String: Any] {
                dictionary[first] = replace(inner, path.dropFirst())
            }
            return dictionary
        }
        try JSONSerialization.data(withJSONObject: replace(object, path[...])).write(to: file)
    }

    /// Each of these files made the old emulator trap, now or on the first request (the clock
    /// of issue 15's SetClock 2^64 − 1 among them), or run on an impossible pump. The emulator
    /// refuses to start, names the file and the value, and leaves the file as it was.
    @Test(arguments: [
        (["device", "clockOffsetMs"], "9223372036854775807", "clockOffsetMs"),
        (["clockMs"], "18446744073709551615", "clockMs"),
        (["device", "lastEventSequence"], "0", "lastEventSequence"),
        (["record", "capacity"], "-1", "capacity"),
        (["device", "reservoirMicroliters"], "18446744073709551615", "reservoirMicroliters"),
    ] as [([String], String, String)])
    func anImpossibleStateFileIsRefusedAtStart(path: [String], json: String, named: String) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        try await Self.runOnce(in: directory, link: link)
        let file = directory.appendingPathComponent("pumplink-state/PLE-0001.json")
        try Self.corrupt(file, at: path, with: json)
        let corrupted = try Data(contentsOf: file)

        let output = try await Self.runEmulatorToItsEnd(in: directory, arguments: ["--link", link])
        #expect(output.status != 0)
        #expect(output.stderr.contains("PLE-0001.json: not a valid pump state"), "\(output.stderr)")
        #expect(output.stderr.contains(named), "\(output.stderr)")
        #expect(try Data(contentsOf: file) == corrupted, "the refused file is left as it was")
    }

    /// Hello carries a serial number of at most 32 bytes (SPEC §6.3): a longer one would make
    /// every Hello answer undecodable, so the prefix is refused before any pump is made.
    @Test func aSerialPrefixTooLongForHelloIsRefused() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try await Self.runEmulatorToItsEnd(in: directory, arguments: ["--serial-prefix", String(repeating: "P", count: 29)])
        #expect(output.status != 0)
        #expect(output.stderr.contains("--serial-prefix: at most 28 bytes"), "\(output.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("pumplink-state").path))
    }

    @Test func aStateFileThatIsNotJSONIsRefusedAtStart() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        try await Self.runOnce(in: directory, link: link)
        let file = directory.appendingPathComponent("pumplink-state/PLE-0001.json")
        let cut = try Data(contentsOf: file).prefix(100)
        try cut.write(to: file)

        let output = try await Self.runEmulatorToItsEnd(in: directory, arguments: ["--link", link])
        #expect(output.status != 0)
        #expect(output.stderr.contains("PLE-0001.json: not a valid pump state"), "\(output.stderr)")
        #expect(try Data(contentsOf: file) == cut)
    }
}
