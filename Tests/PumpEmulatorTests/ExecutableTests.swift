import Foundation
import Testing

/// The real programs, as a user runs them: `pump-emulator` in the background, `pumpctl` against it.
@Suite("pump-emulator and pumpctl processes", .serialized)
struct ExecutableTests {
    /// Where SwiftPM put the executables: beside the test bundle.
    static let products: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("pump-emulator").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug").standardized
    }()

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to its end. The waiting happens on a Dispatch thread, not on the
    /// concurrency pool, so tests running beside it keep their threads.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], in directory: URL, input: String? = nil) async throws -> Output {
        try await offPool { try runBlocking(program, arguments, in: directory, input: input) }
    }

    /// Runs blocking work on a Dispatch thread and waits for it without holding a pool thread.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func runBlocking(_ program: String, _ arguments: [String], in directory: URL, input: String?) throws -> Output {
        let process = Process()
        process.executableURL = products.appendingPathComponent(program)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe()
        let err = Pipe()
        let stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Starts the emulator and waits (off the pool) for its announcement line.
    static func startEmulator(in directory: URL, arguments: [String]) async throws -> (Process, String) {
        try await offPool { try startEmulatorBlocking(in: directory, arguments: arguments) }
    }

    private static func startEmulatorBlocking(in directory: URL, arguments: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = products.appendingPathComponent("pump-emulator")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var announced = ""
        let deadline = Date().addingTimeInterval(10)
        while !announced.contains("\n"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            announced += String(decoding: chunk, as: UTF8.self)
        }
        return (process, announced)
    }

    static func stop(_ process: Process) {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    @Test func aStartTimeThatIsNotISO8601IsRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-exe-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = try await Self.run("pump-emulator", ["--start-time", "yesterday"], in: directory)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--start-time: not an ISO 8601 UTC time"), "\(refused.stderr)")
    }

    @Test func emulatorAndPumpctlWorkTogether() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-exe-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("pump0").path
        let (emulator, announced) = try await Self.startEmulator(in: directory, arguments: ["--link", link, "--time-scale", "60"])
        defer { Self.stop(emulator) }
        #expect(announced.contains("PLE-0001 on /dev/pts/"))
        let connection = ["--port", link, "--key-file", "pumplink-keys/PLE-0001.key"]

        let status = try await Self.run("pumpctl", ["status"] + connection, in: directory)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("serial PLE-0001"))
        #expect(status.stdout.contains("therapy          running"))

        let json = try await Self.run("pumpctl", ["status", "--json"] + connection, in: directory)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(decoded?["activeProgramId"] as? Int == 1)
        #expect(decoded?["therapyState"] as? String == "running")

        let bolus = try await Self.run("pumpctl", ["bolus", "patient"] + connection, in: directory)
        #expect(bolus.status == 0)
        #expect(bolus.stdout.contains("started"))
        let refused = try await Self.run("pumpctl", ["bolus", "patient"] + connection, in: directory)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("refusedBolusInProgress"))  // the first one runs for 10 min

        // A program push, confirmed at the prompt; then shown back.
        let programFile = directory.appendingPathComponent("program.json")
        let show = try await Self.run("pumpctl", ["program", "show"] + connection, in: directory)
        var program = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        program["programId"] = 2
        try JSONSerialization.data(withJSONObject: program).write(to: programFile)
        let declined = try await Self.run("pumpctl", ["program", "push", programFile.path] + connection, in: directory, input: "no\n")
        #expect(declined.status == 1)
        let pushed = try await Self.run("pumpctl", ["program", "push", programFile.path] + connection, in: directory, input: "yes\n")
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(pushed.stdout.contains("active now:      program 2"))

        let overCapacity = try await Self.run("pumpctl", ["refill", "--aspirated-microliters", "1000", "--new-volume-microliters", "40000"] + connection, in: directory)
        #expect(overCapacity.status == 1)
        #expect(overCapacity.stderr.contains("volumeExceedsCapacity"))

        let events = try await Self.run("pumpctl", ["events"] + connection, in: directory)
        #expect(events.stdout.contains("programActivated  program 2"))
        #expect(events.stdout.contains("patientBolusRefused"))

        let wrongKey = directory.appendingPathComponent("wrong.key")
        try Data((String(repeating: "ab", count: 32) + "\n").utf8).write(to: wrongKey)
        let refusedKey = try await Self.run("pumpctl", ["status", "--port", link, "--key-file", wrongKey.path], in: directory)
        #expect(refusedKey.status == 1)
        #expect(refusedKey.stderr.contains("authentication"))
    }
}
