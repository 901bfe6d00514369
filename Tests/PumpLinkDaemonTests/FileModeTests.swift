import Foundation
import Testing

/// The real `pumplinkd` and `pump-emulator` executables and the files they keep: the daemon
/// creates its data under umask 077 and refuses to start on a data folder or key file others
/// may read (naming the path, its mode and the chmod that fixes it) or on a missing key; the
/// emulator creates a missing key 0600 and never replaces one it cannot read.
@Suite("private files", .serialized)
struct FileModeTests {
    /// Where SwiftPM put the executables: beside the test bundle.
    static let products: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("pumplinkd").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug").standardized
    }()

    struct Run: Sendable {
        var status: Int32?
        var output: String
    }

    /// Runs `program` until it exits or its output contains `until`; then kills it. `status` is
    /// nil when it was still running. Waits off the concurrency pool. SIGKILL, not SIGTERM: a
    /// pump-emulator that has just announced its pump may not yet handle SIGTERM (it ignores
    /// it until its handler is in place), and these tests need no graceful stop.
    static func run(_ program: String, _ arguments: [String], in directory: URL, until marker: String? = nil) async throws -> Run {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try runBlocking(program, arguments, in: directory, until: marker) })
            }
        }
    }

    private static func runBlocking(_ program: String, _ arguments: [String], in directory: URL, until marker: String?) throws -> Run {
        let process = Process()
        process.executableURL = products.appendingPathComponent(program)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var output = ""
        // Reads until the program closes its output (it exited) or says `marker`; a program
        // that neither exits nor says it is stopped by the watchdog, so a test cannot hang.
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output += String(decoding: chunk, as: UTF8.self)
            if let marker, output.contains(marker) { break }
        }
        watchdog.cancel()
        let exited = !process.isRunning || marker == nil || !output.contains(marker!)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return Run(status: exited ? process.terminationStatus : nil, output: output)
    }

    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    /// A scratch folder with a configuration of one pump whose key is `key` (written with
    /// `keyMode`, or not at all when nil) on a port nobody serves, captured from the start into
    /// `captures`; the API on a free port.
    static func scratch(keyMode: Int?, dataMode: Int? = nil) throws -> (directory: URL, config: URL, key: String, data: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-modes-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = directory.appendingPathComponent("bed-1.key").path
        if let keyMode {
            try Data((String(repeating: "ab", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: key))
            try FileManager.default.setAttributes([.posixPermissions: keyMode], ofItemAtPath: key)
        }
        let data = directory.appendingPathComponent("data").path
        if let dataMode {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: dataMode], ofItemAtPath: data)
        }
        let config: [String: Any] = [
            "pumps": [["id": "bed-1", "port": directory.appendingPathComponent("no-pump").path, "keyFile": key]],
            "dataDirectory": data,
            "capture": ["directory": "captures", "alwaysOn": true],
            "api": [
                "host": "127.0.0.1", "port": try PumpctlPort.free(),
                "tokens": [["token": "clinician-secret-0001", "name": "dr-lee", "role": "clinician"]],
            ],
        ]
        let file = directory.appendingPathComponent("pumplinkd.json")
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        return (directory, file, key, data)
    }

    @Test func theDaemonCreatesItsDataForItsUserAlone() async throws {
        let (directory, config, _, data) = try Self.scratch(keyMode: 0o600)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await Self.run("pumplinkd", ["--config", config.path], in: directory, until: "Server started")
        #expect(run.status == nil, "pumplinkd did not start: \(run.output)")
        #expect(try Self.mode(data) == 0o700)
        // Capturing from the start: its folder and file too.
        let captures = directory.appendingPathComponent("captures").path
        #expect(try Self.mode(captures) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: captures)
        #expect(files.count == 1 && files[0].hasSuffix(".pcapng"), "\(files)")
        for file in files {
            #expect(try Self.mode(URL(fileURLWithPath: captures).appendingPathComponent(file).path) == 0o600, "\(file)")
        }
        for name in ["pumplink.sqlite", "pumplink.sqlite-wal", "pumplink.sqlite-shm"] {
            let path = URL(fileURLWithPath: data).appendingPathComponent(name).path
            if name == "pumplink.sqlite" || FileManager.default.fileExists(atPath: path) {
                #expect(try Self.mode(path) == 0o600, "\(name)")
            }
        }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660])
    func aKeyFileOthersMayReadIsRefused(mode: Int) async throws {
        let (directory, config, key, _) = try Self.scratch(keyMode: mode)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await Self.run("pumplinkd", ["--config", config.path], in: directory, until: "Server started")
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("key file \(key) has mode 0\(String(mode, radix: 8))"), "\(run.output)")
        #expect(run.output.contains("chmod 600 \(key)"), "\(run.output)")
    }

    @Test func aDataFolderOthersMayReadIsRefused() async throws {
        let (directory, config, _, data) = try Self.scratch(keyMode: 0o600, dataMode: 0o755)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await Self.run("pumplinkd", ["--config", config.path], in: directory, until: "Server started")
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("data folder \(data) has mode 0755"), "\(run.output)")
        #expect(run.output.contains("chmod 700 \(data)"), "\(run.output)")
    }

    @Test func aMissingKeyIsAnErrorAndNotCreated() async throws {
        let (directory, config, key, _) = try Self.scratch(keyMode: nil)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await Self.run("pumplinkd", ["--config", config.path], in: directory, until: "Server started")
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("key file \(key) does not exist"), "\(run.output)")
        #expect(!FileManager.default.fileExists(atPath: key))
    }

    @Test func theEmulatorCreatesAMissingKey0600AndNeverReplacesOneItCannotRead() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-modes-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = directory.appendingPathComponent("keys")
        let link = directory.appendingPathComponent("pump0").path
        let first = try await Self.run("pump-emulator", ["--link", link, "--key-dir", keys.path], in: directory, until: "PLE-0001 on")
        #expect(first.status == nil, "\(first.output)")
        let key = keys.appendingPathComponent("PLE-0001.key").path
        #expect(try Self.mode(key) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: keys.path) == ["PLE-0001.key"])

        // A key that is there but cannot be read (here: a folder in its place) is an error.
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.createDirectory(atPath: key, withIntermediateDirectories: false)
        let second = try await Self.run("pump-emulator", ["--link", link, "--key-dir", keys.path], in: directory, until: "PLE-0001 on")
        #expect(second.status != nil && second.status != 0, "\(second.output)")
        #expect(second.output.contains("\(key): the pairing key cannot be read"), "\(second.output)")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: key, isDirectory: &isDirectory) && isDirectory.boolValue)
    }
}

/// A TCP port nobody listens on now: the kernel's pick for a socket bound to port 0.
enum PumpctlPort {
    static func free() throws -> Int {
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
}
