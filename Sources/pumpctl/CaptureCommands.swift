import ArgumentParser
import Foundation
import PumpCapture
import PumpProtocol
import PumpSession
import SerialTransport

/// `pumpctl capture`: link captures (SPEC §15): decode a file, replay one, or start and stop
/// pumplinkd's capture of a pump.
struct CaptureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Decodes and replays link captures; starts and stops pumplinkd's capture of a pump.",
        subcommands: [Decode.self, Replay.self, Start.self, Stop.self, Show.self]
    )

    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prints every frame of a pcapng capture, decoded field by field.")

        @Argument(help: "The capture file (pcapng).")
        var file: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Option(help: "The pump's pairing key file: opens the sealed payloads of a version 2 link (SPEC §15).")
        var keyFile: String?

        func run() async throws {
            let capture = try readCapture(file)
            var decoded = capture.decoded()
            if let keyFile { decoded = decoded.opened(with: try readKey(keyFile)) }
            emit(json ? decoded.json() + "\n" : decoded.text())
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sends a capture's requests again to a pump and compares its answers with the recorded ones.",
            discussion: """
                The host side of the capture (every request but Hello, in order) goes to the pump \
                on --port in a new session; each answer is compared field by field with the one \
                the capture recorded. Fields that differ from one run to the next (times, request \
                ids, nonces) are ignored; --ignore adds more. Exit code 0 when every answer matches, \
                1 otherwise. To replay a capture's pump side instead, run `pump-emulator --replay`.
                """
        )

        @Argument(help: "The capture file (pcapng).")
        var file: String

        @Option(help: "The pump's serial port.")
        var port: String

        @Option(help: "File with the pump's pairing key (64 hex digits).")
        var keyFile: String

        @Option(help: "The recorded pump's pairing key file, to open a version 2 capture (default: --key-file).")
        var captureKeyFile: String?

        @Option(help: "Field names to ignore too, comma-separated.")
        var ignore: String = ""

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            let recorded = try readCapture(file).decoded().opened(with: try readKey(captureKeyFile ?? keyFile))
            let exchanges = ReplayScript(recorded).exchanges
            guard !exchanges.isEmpty else { throw failure("the capture holds no request to replay") }
            let ignored = ReplayScript.ignoredByDefault.union(ignore.split(separator: ",").map { $0.lowercased() })
            var results: [ReplayResult] = []
            try await withSession(opening: { try await openSession(port: port, keyFile: keyFile) }) { session in
                for exchange in exchanges {
                    let answer: ReplayScript.Answer
                    do {
                        answer = .message(try await session.send(exchange.request.payload))
                    } catch let error as SessionError {
                        guard case .refused(let code, let detail, _) = error else { throw error }
                        answer = .refused(code: code.name, detail: detail)
                    }
                    let differences = exchange.recorded.map { ReplayScript.differences($0, answer, ignoring: ignored) }
                    results.append(ReplayResult(
                        packet: exchange.packetNumber, request: type(of: exchange.request.payload).messageType.name,
                        recorded: exchange.recorded != nil, differences: differences ?? []))
                }
            }
            let differing = results.filter { !$0.differences.isEmpty }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                emit(String(decoding: try encoder.encode(results), as: UTF8.self) + "\n")
            } else {
                for result in results {
                    let verdict = !result.recorded ? "no recorded answer" : result.differences.isEmpty ? "same" : "DIFFERS: " + result.differences.joined(separator: "; ")
                    emit("#\(result.packet) \(result.request): \(verdict)\n")
                }
                emit("\(results.count) requests replayed, \(results.count - differing.count) answered as recorded, \(differing.count) differently\n")
            }
            if !differing.isEmpty { throw ExitCode(1) }
        }

        struct ReplayResult: Encodable {
            var packet: Int
            var request: String
            var recorded: Bool
            var differences: [String]
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Starts pumplinkd's capture of the pump's link (--pump).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let remote = try connection.requireRemote()
            try await withDaemon(remote) { pump in
                let status: DaemonCaptureStatus = try await pump.post("/capture/start")
                if !pump.json { print(status.text) }
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stops pumplinkd's capture of the pump's link (--pump).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let remote = try connection.requireRemote()
            try await withDaemon(remote) { pump in
                let status: DaemonCaptureStatus = try await pump.post("/capture/stop")
                if !pump.json { print(status.text) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Shows pumplinkd's capture of the pump's link (--pump).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let remote = try connection.requireRemote()
            try await withDaemon(remote) { pump in
                let status: DaemonCaptureStatus = try await pump.get("/capture")
                if !pump.json { print(status.text) }
            }
        }
    }
}

/// `pumpctl tap`: a passive tap between two other parties.
struct Tap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Relays bytes between two ports unchanged and records both directions to a capture.",
        discussion: """
            Put it between a programmer and a pump (two USB adapters, or the ends of two socat \
            pairs): what arrives on one port is sent on the other as it came, and each candidate \
            is recorded once, as received on its port (interface 'side A' or 'side B'). Stops on \
            Ctrl-C or when either side goes away.
            """
    )

    @Argument(help: "Side A's port.")
    var portA: String

    @Argument(help: "Side B's port.")
    var portB: String

    @Option(help: "The capture file (pcapng); replaced if it exists.")
    var capture: String

    @Option(help: "Start a new numbered file when one reaches this many bytes.")
    var captureMaxBytes: Int?

    func run() async throws {
        let writer: CaptureWriter
        let a: SerialPort
        let b: SerialPort
        do {
            writer = try CaptureWriter(
                path: capture, options: .init(maxFileBytes: captureMaxBytes, replaceExisting: true, userApplication: "pumpctl tap"))
            a = try SerialPort.open(path: portA)
            b = try SerialPort.open(path: portB)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        defer { writer.close() }
        // Each side records what it receives; sends go to the raw port, so nothing is recorded twice.
        let recordedA = CapturingLink(wrapping: a, tap: CaptureTap())
        let recordedB = CapturingLink(wrapping: b, tap: CaptureTap())
        try recordedA.tap.start(recordingTo: writer, interface: .init(name: portA, description: "side A"))
        try recordedB.tap.start(recordingTo: writer, interface: .init(name: portB, description: "side B"))
        printError("tap: \(portA) (side A) <-> \(portB) (side B), recording to \(capture)")
        let reason = await withTaskGroup(of: String.self) { group in
            group.addTask { await Self.relay(recordedA, to: b, name: "side A") }
            group.addTask { await Self.relay(recordedB, to: a, name: "side B") }
            group.addTask {
                await waitForInterrupt()
                return "interrupted"
            }
            let first = await group.next() ?? ""
            group.cancelAll()
            a.close()
            b.close()
            return first
        }
        let statistics = writer.statistics
        printError("tap stopped (\(reason)): \(statistics.packetsWritten) candidates recorded")
    }

    /// Copies everything `source` receives to `destination` until either side ends.
    private static func relay(_ source: CapturingLink, to destination: SerialPort, name: String) async -> String {
        do {
            for try await chunk in source.incoming {
                try await destination.send(chunk)
            }
            return "\(name) closed"
        } catch {
            return "\(name): \(error)"
        }
    }
}

/// Waits for SIGINT or SIGTERM.
func waitForInterrupt() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = InterruptOnce(continuation)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
            source.setEventHandler { once.resume() }
            source.resume()
            InterruptOnce.sources.append(source)
        }
    }
}

private final class InterruptOnce: @unchecked Sendable {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func resume() {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume()
    }
}

/// pumplinkd's `CaptureStatus`.
struct DaemonCaptureStatus: Codable {
    var recording: Bool
    var files: [String]
    var packets: Int
    var bytes: Int
    var droppedPackets: Int
    var failure: String?

    var text: String {
        var lines = [
            "capture          \(recording ? "recording" : "stopped")",
            "packets          \(packets) (\(bytes) bytes written)",
        ]
        if !files.isEmpty { lines.append("files            " + files.joined(separator: "\n                 ")) }
        if droppedPackets > 0 { lines.append("dropped          \(droppedPackets) packets") }
        if let failure { lines.append("failure          \(failure)") }
        return lines.joined(separator: "\n")
    }
}

/// A capture file, or a clear error and exit code 1.
func readCapture(_ path: String) throws -> Capture {
    do {
        return try Capture(contentsOfFile: path)
    } catch {
        printError("error: \(path): \(error)")
        throw ExitCode(1)
    }
}

private func failure(_ message: String) -> ExitCode {
    printError("error: \(message)")
    return ExitCode(1)
}

/// The host side of a capture, as requests to send again with the answers recorded for them.
struct ReplayScript {
    struct Exchange {
        var packetNumber: Int
        var request: Message
        var recorded: Answer?
    }

    enum Answer: Hashable {
        case message(Message)
        case refused(code: String, detail: UInt32)
    }

    /// Requests in capture order, Hello left out (the new session makes its own); a
    /// retransmission (same request id again in a session) is sent once.
    let exchanges: [Exchange]

    init(_ capture: DecodedCapture) {
        var exchanges: [Exchange] = []
        var byRequestID: [UInt32: Int] = [:]
        for record in capture.records {
            guard case .frame(let frame) = record.outcome, case .success(let message) = frame.message else { continue }
            let id = frame.header.requestID
            if !frame.header.isResponse {
                // Request ids belong to a session: a Hello starts afresh.
                if frame.header.messageType == MessageType.hello.rawValue {
                    byRequestID = [:]
                    continue
                }
                guard byRequestID[id] == nil else { continue }
                byRequestID[id] = exchanges.count
                exchanges.append(Exchange(packetNumber: record.packetNumber, request: message, recorded: nil))
            } else if id != 0, let index = byRequestID[id], exchanges[index].recorded == nil {
                if case .errorResponse(let error) = message {
                    exchanges[index].recorded = .refused(code: error.code.name, detail: error.detail)
                } else {
                    exchanges[index].recorded = .message(message)
                }
            }
        }
        self.exchanges = exchanges
    }

    /// Field names (lowercased) that differ between runs by nature, besides every time (names
    /// ending in TimeMs or AtMs): countdowns, request ids, nonces, event sequence numbers.
    static let ignoredByDefault: Set<String> = [
        "requestid", "lastexecutedrequestid", "pumpnonce", "eventsequence", "nextallowedinseconds",
        "patientbolusavailableinseconds",
    ]

    static func isIgnored(_ name: String, _ ignored: Set<String>) -> Bool {
        let name = name.lowercased()
        return ignored.contains(name) || name.hasSuffix("timems") || name.hasSuffix("atms")
    }

    /// Where `answer` differs from `recorded`, as readable paths.
    static func differences(_ recorded: Answer, _ answer: Answer, ignoring ignored: Set<String>) -> [String] {
        switch (recorded, answer) {
        case (.message(let old), .message(let new)):
            guard old.payload.wireValue != new.payload.wireValue || type(of: old.payload) != type(of: new.payload) else { return [] }
            guard type(of: old.payload) == type(of: new.payload) else {
                return ["answered \(type(of: new.payload).messageType.name) instead of \(type(of: old.payload).messageType.name)"]
            }
            var found: [String] = []
            compare(old.payload.wireValue, new.payload.wireValue, path: "", ignoring: ignored, into: &found)
            return found
        case (.refused(let oldCode, let oldDetail), .refused(let newCode, let newDetail)):
            if oldCode != newCode { return ["refused with \(newCode), recorded \(oldCode)"] }
            return oldDetail == newDetail ? [] : ["refusal detail \(newDetail), recorded \(oldDetail)"]
        case (.refused(let code, _), .message):
            return ["answered, recorded refused (\(code))"]
        case (.message, .refused(let code, _)):
            return ["refused (\(code)), recorded answered"]
        }
    }

    private static func compare(_ old: WireValue, _ new: WireValue, path: String, ignoring ignored: Set<String>, into found: inout [String]) {
        switch (old, new) {
        case (.record(let oldFields), .record(let newFields)) where oldFields.map(\.name) == newFields.map(\.name):
            for (oldField, newField) in zip(oldFields, newFields) where !isIgnored(oldField.name, ignored) {
                compare(oldField.value, newField.value, path: path.isEmpty ? oldField.name : "\(path).\(oldField.name)", ignoring: ignored, into: &found)
            }
        case (.list(let oldItems), .list(let newItems)) where oldItems.count == newItems.count:
            for (index, (oldItem, newItem)) in zip(oldItems, newItems).enumerated() {
                compare(oldItem, newItem, path: "\(path)[\(index)]", ignoring: ignored, into: &found)
            }
        default:
            if old != new { found.append("\(path): \(WireValueText.text(new)), recorded \(WireValueText.text(old))") }
        }
    }
}
