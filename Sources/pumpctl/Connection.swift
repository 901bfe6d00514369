import ArgumentParser
import Foundation
import PumpCapture
import PumpProtocol
import PumpSession
import SerialTransport

/// Options every command that talks to a pump takes: the pump's port and key, or its id in
/// pumplinkd (with the daemon's address and an API token).
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The pump's serial port: a device, a pseudo-terminal or a symlink to one.")
    var port: String?

    @Option(help: "File with the pump's pairing key (64 hex digits).")
    var keyFile: String?

    @Option(help: "The pump's id in pumplinkd: go through the daemon instead of a port.")
    var pump: String?

    @Option(help: "pumplinkd's address, with --pump (default: $PUMPLINK_DAEMON or http://127.0.0.1:8750).")
    var daemon: String = ProcessInfo.processInfo.environment["PUMPLINK_DAEMON"] ?? "http://127.0.0.1:8750"

    @Option(help: "API token, with --pump (default: $PUMPLINK_TOKEN).")
    var token: String = ProcessInfo.processInfo.environment["PUMPLINK_TOKEN"] ?? ""

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "With --port: record every frame in and out to this pcapng file (replaced if it exists).")
    var capture: String?

    @Option(help: "With --port: the line's bit rate (8N1); waits for answers allow for its line time.")
    var baud = 115_200

    /// Exactly one way to the pump: a port with its key file, or a pump of pumplinkd.
    func validate() throws {
        switch (port != nil || keyFile != nil, pump != nil) {
        case (true, true):
            throw ValidationError("give either --port and --key-file (direct) or --pump (through pumplinkd), not both")
        case (false, false):
            throw ValidationError("give either --port and --key-file (direct) or --pump (through pumplinkd)")
        case (true, false):
            guard port != nil, keyFile != nil else { throw ValidationError("--port and --key-file go together") }
            guard baud > 0 else { throw ValidationError("--baud: a bit rate above 0, e.g. 9600 or 115200") }
        case (false, true):
            guard capture == nil else { throw ValidationError("--capture records a direct link (--port); pumplinkd captures its own (pumpctl capture start)") }
            guard URL(string: daemon)?.scheme != nil else { throw ValidationError("--daemon: not a URL: \(daemon)") }
            guard !token.isEmpty else { throw ValidationError("--pump needs an API token: give --token or set PUMPLINK_TOKEN") }
        }
    }

    /// The pump through pumplinkd, or nil if the options name a port.
    var remote: RemotePump? {
        guard let pump, let base = URL(string: daemon) else { return nil }
        return RemotePump(client: DaemonClient(base: base, token: token), id: pump, json: json)
    }

    /// The pump through pumplinkd, for the commands that only the daemon offers.
    func requireRemote() throws -> RemotePump {
        guard let remote else {
            printError("error: this command goes through pumplinkd: give --pump (with --daemon and --token)")
            throw ExitCode(2)
        }
        return remote
    }

    func connect() async throws -> PumpSession {
        guard let port, let keyFile else { throw CommandFailure("give --port and --key-file", exitCode: 2) }
        return try await openSession(port: port, keyFile: keyFile, baud: baud, capture: capture)
    }
}

/// The pairing key in `keyFile` (64 hex digits), or a failure that names the file.
func readKey(_ keyFile: String) throws -> PairingKey {
    do {
        return try PairingKey(hex: try String(contentsOfFile: keyFile, encoding: .utf8))
    } catch {
        throw CommandFailure("cannot read the pairing key from \(keyFile): \(error)")
    }
}

/// A session with the pump on `port` at `baud` bit/s, its link recorded to `capture` if given.
func openSession(port: String, keyFile: String, baud: Int = 115_200, capture: String? = nil) async throws -> PumpSession {
    let key = try readKey(keyFile)
    var link: any ByteLink
    do {
        link = try SerialPort.open(path: port, settings: LineSettings(baudRate: baud))
    } catch {
        throw CommandFailure("cannot open \(port): \(error)")
    }
    if let capture {
        do {
            let writer = try CaptureWriter(path: capture, options: .init(replaceExisting: true, userApplication: "pumpctl"))
            let tap = CaptureTap()
            try tap.start(recordingTo: writer, interface: .init(name: port, description: "pump"))
            link = CapturingLink(wrapping: link, tap: tap)
        } catch {
            link.close()
            throw CommandFailure("cannot capture to \(capture): \(error)")
        }
    }
    var configuration = SessionConfiguration()
    configuration.bitsPerSecond = baud
    let session = PumpSession(link: link, key: key, configuration: configuration)
    do {
        try await session.connect(hostTimeMs: UInt64(Date().timeIntervalSince1970 * 1000))
    } catch {
        await session.close()
        throw CommandFailure("no session with the pump on \(port): \(error)")
    }
    return session
}

/// A failure the user is told about in one line, with exit code 1 (3 if uncertain).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32 = 1

    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}

/// Runs `body` with a session and turns errors into clear messages and exit codes.
func withSession<T>(_ options: ConnectionOptions, _ body: (PumpSession) async throws -> T) async throws -> T {
    try await withSession(opening: { try await options.connect() }, body)
}

/// Runs `body` with the session `open` makes, errors handled as above.
func withSession<T>(opening open: () async throws -> PumpSession, _ body: (PumpSession) async throws -> T) async throws -> T {
    let session: PumpSession
    do {
        session = try await open()
    } catch let failure as CommandFailure {
        printError("error: \(failure)")
        throw ExitCode(failure.exitCode)
    }
    defer { Task { await session.close() } }
    do {
        return try await body(session)
    } catch let error as SessionError {
        if case .uncertain = error {
            printError("UNCERTAIN: \(error). Do not repeat it: read the pump's status and events first.")
            throw ExitCode(3)
        }
        printError("error: \(error)")
        throw ExitCode(1)
    } catch let failure as CommandFailure {
        printError("error: \(failure)")
        throw ExitCode(failure.exitCode)
    }
}

/// Writes to standard output at once (no stdio buffering: a live view must show now).
func emit(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints a value as JSON (sorted keys) on standard output.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
