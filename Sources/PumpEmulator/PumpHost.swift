import Foundation
import Logging
import PumpCapture
import PumpModel
import PumpProtocol
import SerialTransport

/// Puts one `EmulatedPump` on a pseudo-terminal it creates (or on an existing port), and can
/// hang the line up and bring it back as a new terminal behind the same symlink, the way a
/// pulled and replugged cable looks to the daemon.
public actor PumpHost<Device: PumpDevice & Codable> {
    public let index: Int
    public let serial: String
    public let pump: EmulatedPump<Device>
    public let linkPath: String?
    public let portPath: String?
    public private(set) var terminalPath: String?
    private var terminal: PseudoTerminal?
    private var port: SerialPort?
    private var serving: Task<Void, Never>?
    private var stopped = false
    private var hangingUp = false
    private let announce: @Sendable (String) -> Void
    private let capture: CaptureWriter?
    private let capturePumpSide: Bool

    /// - Parameters:
    ///   - capture: records every candidate in and out of the pump's line (SPEC §15), on an
    ///     interface named after the terminal, described `host`.
    ///   - capturePumpSide: also records, on a second interface of the same name described
    ///     `pump before link faults`, the frames the pump wrote before its link faults damaged
    ///     them and the candidates it received after they did (`EmulatedPump.recordPumpSide`).
    public init(
        index: Int,
        serial: String,
        pump: EmulatedPump<Device>,
        linkPath: String?,
        portPath: String?,
        capture: CaptureWriter? = nil,
        capturePumpSide: Bool = false,
        announce: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
    ) {
        self.index = index
        self.serial = serial
        self.pump = pump
        self.linkPath = linkPath
        self.portPath = portPath
        self.announce = announce
        self.capture = capture
        self.capturePumpSide = capturePumpSide
    }

    /// The interface description of the pump's own side of the link faults in a capture.
    public static var pumpSideDescription: String { "pump before link faults" }

    /// Opens the terminal or port and starts serving it.
    public func start() async throws {
        let port: SerialPort
        if let portPath {
            port = try SerialPort.open(path: portPath)
            terminalPath = portPath
        } else {
            let terminal = try PseudoTerminal.open()
            if let linkPath { try terminal.link(at: linkPath) }
            port = try SerialPort.controller(of: terminal)
            self.terminal = terminal
            terminalPath = terminal.subordinatePath
        }
        self.port = port
        announce("pump \(index): \(serial) on \(terminalPath ?? "?")" + (linkPath.map { " (link \($0))" } ?? ""))
        let pump = self.pump
        var link: any ByteLink = port
        if let capture {
            let tap = CaptureTap()
            do {
                try tap.start(recordingTo: capture, interface: .init(name: terminalPath ?? "?", description: "host"))
            } catch {
                announce("pump \(index): not captured: \(error)")
            }
            link = CapturingLink(wrapping: port, tap: tap)
            if capturePumpSide {
                do {
                    let interface = try capture.addInterface(name: terminalPath ?? "?", description: Self.pumpSideDescription)
                    await pump.recordPumpSide(to: capture, interface: interface)
                } catch {
                    announce("pump \(index): its side of the link faults not captured: \(error)")
                }
            }
        }
        serving = Task { [link] in await pump.serve(link) }
    }

    /// Hangs up: the client sees the port vanish; after `downFor` a new terminal appears
    /// behind the same link (on a fixed port, the port is reopened).
    public func hangUp(downFor: Duration) async {
        // One at a time: a second hang-up while the line is down would open two terminals.
        guard !hangingUp else { return }
        hangingUp = true
        defer { hangingUp = false }
        announce("pump \(index): hang-up for \(downFor)")
        await pump.hangUp()
        port?.close()
        await serving?.value
        if let terminal, let linkPath { terminal.removeLink(at: linkPath) }
        terminal = nil
        port = nil
        try? await Task.sleep(for: downFor)
        guard !stopped else { return }
        do {
            try await start()
        } catch {
            announce("pump \(index): could not come back: \(error)")
        }
    }

    /// Saves the state, closes the line, and says which link faults were injected, if any.
    public func stop() async {
        stopped = true
        try? await pump.save()
        let faults = await pump.faultCounts
        if faults != LinkFaultInjector.Counts() {
            announce("pump \(index): link faults injected: \(faults)")
        }
        port?.close()
        await serving?.value
        if let terminal, let linkPath { terminal.removeLink(at: linkPath) }
    }
}

/// Applies a control file's commands to the pumps whenever the file changes (`pump-emulator
/// --control`). Lines: `faults SPEC`, `hangup MS`, `inject FAULT`, `clear FAULT`, each
/// optionally prefixed by `pump N` to address one pump; `#` starts a comment. Lines appended to
/// the file are applied once, when they appear; a file rewritten (its earlier text no longer at
/// its start) is applied whole.
public struct ControlFile: Sendable {
    public let path: String
    public let hosts: [PumpHost<ModelPump>]

    public init(path: String, hosts: [PumpHost<ModelPump>]) {
        self.path = path
        self.hosts = hosts
    }

    public enum Command: Sendable, Hashable {
        case faults(LinkFaultSettings)
        case hangUp(milliseconds: Int)
        case inject(PumpFault)
        case clear(PumpFault)
    }

    public struct Line: Sendable, Hashable {
        public var pump: Int?
        public var command: Command
    }

    public static func parse(_ text: String) throws -> [Line] {
        var lines: [Line] = []
        for raw in text.split(separator: "\n") {
            var words = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .split(separator: " ").map(String.init)
            guard !words.isEmpty else { continue }
            var pump: Int?
            if words[0] == "pump" {
                guard words.count >= 3, let index = Int(words[1]) else { throw ControlError.badLine(String(raw)) }
                pump = index
                words.removeFirst(2)
            }
            let argument = words.dropFirst().joined(separator: " ")
            let command: Command
            switch words[0] {
            case "faults": command = .faults(try LinkFaultSettings(parsing: argument))
            case "hangup":
                guard let milliseconds = Int(argument), milliseconds >= 0 else { throw ControlError.badLine(String(raw)) }
                command = .hangUp(milliseconds: milliseconds)
            case "inject", "clear":
                guard let fault = PumpFault(rawValue: argument) else { throw ControlError.badLine(String(raw)) }
                command = words[0] == "inject" ? .inject(fault) : .clear(fault)
            default:
                throw ControlError.badLine(String(raw))
            }
            lines.append(Line(pump: pump, command: command))
        }
        return lines
    }

    public enum ControlError: Error, Hashable {
        case badLine(String)
    }

    /// Polls the file's modification time (4 times a second) and applies what is new in it.
    public func watch() async {
        var lastModified: Date?
        var applied = ""
        while !Task.isCancelled {
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
               let modified = attributes[.modificationDate] as? Date, modified != lastModified {
                lastModified = modified
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    await apply(Self.newText(text, after: applied))
                    applied = text
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// What of `text` is to be applied when `applied` was: what was appended, or all of it.
    public static func newText(_ text: String, after applied: String) -> String {
        text.hasPrefix(applied) ? String(text.dropFirst(applied.count)) : text
    }

    public func apply(_ text: String) async {
        let lines: [Line]
        do {
            lines = try Self.parse(text)
        } catch {
            print("control file \(path): \(error)")
            return
        }
        for line in lines {
            for host in hosts where line.pump == nil || line.pump == host.index {
                switch line.command {
                case .faults(let settings): await host.pump.setFaults(settings)
                case .hangUp(let milliseconds): Task { await host.hangUp(downFor: .milliseconds(milliseconds)) }
                case .inject(let fault): await host.pump.withDevice { device, now in device.inject(fault, nowMs: now) }
                case .clear(let fault): await host.pump.withDevice { device, now in device.clear(fault, nowMs: now) }
                }
            }
        }
    }
}
