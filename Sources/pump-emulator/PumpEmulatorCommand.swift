import ArgumentParser
import Foundation
import PumpCapture
import PumpEmulator
import PumpModel
import PumpProtocol
import SerialTransport

#if canImport(Glibc)
import Glibc
#endif

/// `pump-emulator`: software pumps on pseudo-terminals (or on existing ports).
@main
struct PumpEmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pump-emulator",
        abstract: "Runs emulated implanted drug pumps that speak the PumpLink protocol.",
        discussion: """
            Each pump gets its own pseudo-terminal, printed on start; connect pumplinkd or pumpctl \
            to that path (or to the --link symlink). State (reservoir, program, battery, event log, \
            request record) is kept in --state-dir, so a restarted emulator is the same pump. \
            The pairing key of each pump is read from --key-dir/SERIAL.key, or created there.
            """
    )

    @Option(help: "How many pumps to run, each on its own terminal.")
    var count = 1

    @Option(help: "A stable symlink to the terminal; with --count > 1 the pump's index is appended.")
    var link: String?

    @Option(help: "Serve an existing port (one end of a socat pair, a USB adapter) instead of a new terminal.")
    var port: String?

    @Option(help: "Folder of pairing keys, one SERIAL.key (64 hex digits) per pump; missing keys are created.")
    var keyDir = "pumplink-keys"

    @Option(help: "Folder of state files; empty for no persistence.")
    var stateDir = "pumplink-state"

    @Option(help: "Serial number prefix; the pump's index is appended.")
    var serialPrefix = "PLE-"

    @Option(help: "Pump time passes this many times faster than real time (3600: an hour per second).")
    var timeScale: UInt64 = 1

    @Option(help: "A new pump's clock starts at this UTC time (ISO 8601, e.g. 2026-11-25T11:39:00Z), not now; a pump restored from its state keeps its own clock.")
    var startTime: String?

    @Option(help: "Reservoir capacity in microliters (20000 or 40000).")
    var capacityMicroliters: UInt32 = 20_000

    @Option(help: "Volume in the reservoir of a new pump, in microliters (default: full).")
    var initialVolumeMicroliters: UInt32?

    @Flag(help: "Start new pumps with no active program (default: a continuous morphine program).")
    var noProgram = false

    @Option(help: "Pace output like a UART at this many bits per second (8N1); 0 for no pacing.")
    var baud = 0

    @Option(help: "Link faults, e.g. 'seed=7,ber=1e-3,drop=1e-4,dup=0.01,garbage=0.01,delay=10'.")
    var faults = ""

    @Option(help: """
        A control file, read whenever it changes: lines appended are applied once (a rewritten \
        file, whole). Lines: 'faults SPEC' ('faults none' for a clean link), 'hangup MS', \
        'inject motorStall|programChecksumError', 'clear motorStall|programChecksumError'; \
        prefix 'pump N ' to address one pump.
        """)
    var control: String?

    @Option(help: "Record every frame in and out of each pump to this pcapng file (one interface per pump).")
    var capture: String?

    @Option(help: "With --capture: start a new numbered file when one reaches this many bytes.")
    var captureMaxBytes: Int?

    @Flag(help: """
        With --capture: also record each pump's own side of its link faults, on a second interface \
        (same name, description 'pump before link faults'): the frames the pump wrote before the \
        faults damaged them (outbound) and the candidates it received after they did (inbound). \
        The 'host' interface holds the line itself: what the host wrote (inbound) and the damaged \
        frames it got (outbound).
        """)
    var captureBeforeFaults = false

    @Option(help: """
        Answer as the pump recorded in this capture did (its identity, statuses, event log and \
        active program, over time), refusing every changing command: a field capture replayed \
        to pumplinkd or pumpctl.
        """)
    var replay: String?

    @Option(help: "With --replay: the recorded pump's pairing key file, to open a version 2 capture's sealed payloads.")
    var replayKeyFile: String?

    @Option(name: .customLong("protocol"), help: """
        The protocol versions the pumps speak: 2 (every frame after Hello sealed; the default), \
        1 (a version 1 pump: commands tagged, everything in clear), or 1-2 (both, for version 1 \
        hosts; anyone on the line can then read the pump in clear). SPEC §5.2, §8.
        """)
    var protocolVersions = "2"

    /// `--protocol` as a range; nil if it is not 1, 2 or 1-2.
    var versions: ClosedRange<UInt8>? {
        switch protocolVersions {
        case "1": 1...1
        case "2": 2...2
        case "1-2": 1...2
        default: nil
        }
    }

    func validate() throws {
        guard versions != nil else { throw ValidationError("--protocol must be 1, 2 or 1-2, not \(protocolVersions)") }
        guard replay == nil || count == 1 else { throw ValidationError("--replay serves one pump: use --count 1") }
        guard replayKeyFile == nil || replay != nil else { throw ValidationError("--replay-key-file needs --replay") }
        guard count >= 1, count <= 256 else { throw ValidationError("--count must be 1...256") }
        guard port == nil || count == 1 else { throw ValidationError("--port serves one pump: use --count 1") }
        // Hello carries the serial number in at most 32 bytes (SPEC §6.3); the index adds 4 digits.
        guard serialPrefix.utf8.count <= 28 else { throw ValidationError("--serial-prefix: at most 28 bytes (a serial number is at most 32)") }
        guard [20_000, 40_000].contains(capacityMicroliters) else {
            throw ValidationError("--capacity-microliters must be 20000 or 40000")
        }
        if let initialVolumeMicroliters, initialVolumeMicroliters > capacityMicroliters {
            throw ValidationError("--initial-volume-microliters is above the capacity")
        }
        guard !captureBeforeFaults || capture != nil else { throw ValidationError("--capture-before-faults needs --capture") }
        guard timeScale >= 1, timeScale <= 1_000_000 else { throw ValidationError("--time-scale must be 1...1000000") }
        if let startTime, Self.milliseconds(iso8601: startTime) == nil {
            throw ValidationError("--start-time: not an ISO 8601 UTC time such as 2026-11-25T11:39:00Z: \(startTime)")
        }
        do {
            _ = try LinkFaultSettings(parsing: faults)
        } catch {
            throw ValidationError("--faults: \(error)")
        }
    }

    func run() async throws {
        let termination = TerminationSignal()
        let faultSettings = try LinkFaultSettings(parsing: faults)
        try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
        if !stateDir.isEmpty {
            try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        }
        let writer = try capture.map { path in
            try CaptureWriter(
                path: path,
                options: .init(maxFileBytes: captureMaxBytes, replaceExisting: true, userApplication: "pump-emulator"))
        }
        defer { writer?.close() }
        if let replay {
            var recorded = try Capture(contentsOfFile: replay).decoded()
            if let replayKeyFile {
                recorded = recorded.opened(with: try PairingKey(hex: String(contentsOfFile: replayKeyFile, encoding: .utf8)))
            }
            let device = try RecordedPump(capture: recorded)
            let serial = device.identity.serialNumber
            let startMs = VirtualClock.wallClockMs()
            let pump = EmulatedPump(
                endpoint: PumpEndpoint(device: device, key: try loadOrCreateKey(serial: serial), protocolVersions: versions ?? 2...2),
                clock: VirtualClock(startMs: startMs), faults: faultSettings, baudRate: baud)
            let host = PumpHost(
                index: 0, serial: serial, pump: pump, linkPath: link, portPath: port, capture: writer,
                capturePumpSide: captureBeforeFaults)
            try await host.start()
            await termination.wait()
            await host.stop()
            return
        }
        var hosts: [PumpHost<ModelPump>] = []
        for index in 0..<count {
            let serial = "\(serialPrefix)\(String(format: "%04d", index + 1))"
            let key = try loadOrCreateKey(serial: serial)
            let stateFile = stateDir.isEmpty ? nil : URL(fileURLWithPath: stateDir).appendingPathComponent("\(serial).json")
            let pump = try await makePump(serial: serial, key: key, stateFile: stateFile, faults: faultSettings)
            let linkPath = link.map { count == 1 ? $0 : "\($0)\(index)" }
            hosts.append(PumpHost(
                index: index, serial: serial, pump: pump, linkPath: linkPath, portPath: port, capture: writer,
                capturePumpSide: captureBeforeFaults))
        }
        for host in hosts {
            try await host.start()
        }
        if let control {
            Task { await ControlFile(path: control, hosts: hosts).watch() }
        }
        await termination.wait()
        for host in hosts {
            await host.stop()
        }
    }

    /// Milliseconds since 1970 UTC of an ISO 8601 time, with or without fractional seconds.
    static func milliseconds(iso8601 text: String) -> UInt64? {
        let formatter = ISO8601DateFormatter()
        var date = formatter.date(from: text)
        if date == nil {
            formatter.formatOptions.insert(.withFractionalSeconds)
            date = formatter.date(from: text)
        }
        guard let date, date.timeIntervalSince1970 >= 0 else { return nil }
        return UInt64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// The pump's key from `--key-dir`, or a new one written there if none is: created 0600
    /// under a temporary name (O_CREAT|O_EXCL) and renamed into place, so that no reader ever
    /// sees a partial key or one open to others. A key that is there but cannot be read is an
    /// error, never replaced.
    private func loadOrCreateKey(serial: String) throws -> PairingKey {
        let path = URL(fileURLWithPath: keyDir).appendingPathComponent("\(serial).key").path
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ValidationError("\(path): the pairing key cannot be read (\(error.localizedDescription))")
            }
            do {
                return try PairingKey(hex: text)
            } catch {
                throw ValidationError("\(path): not a pairing key (\(error))")
            }
        }
        let key = PairingKey.generate()
        let temporary = "\(path).\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ValidationError("\(temporary): cannot create the pairing key: \(String(cString: strerror(errno)))")
        }
        let bytes = Array((key.hexadecimal + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ValidationError("\(path): cannot write the pairing key: \(reason)")
        }
        return key
    }

    private func makePump(serial: String, key: PairingKey, stateFile: URL?, faults: LinkFaultSettings) async throws -> EmulatedPump<ModelPump> {
        // A state file that is corrupt or holds impossible values stops the emulator with an
        // error naming the file and the value (StateFileError); the file is not replaced.
        if let stateFile, let saved = try EmulatedPump<ModelPump>.loadState(from: stateFile) {
            let clock = VirtualClock(startMs: saved.clockMs, timeScale: timeScale)
            var device = saved.device
            device.restart(nowMs: saved.clockMs)  // SPEC §10.1: pumpStarted on every start
            let endpoint = PumpEndpoint(
                device: device, key: key, record: saved.record, staging: saved.staging, protocolVersions: versions ?? 2...2)
            let pump = EmulatedPump(endpoint: endpoint, clock: clock, faults: faults, stateFile: stateFile, baudRate: baud)
            try? await pump.save()
            return pump
        }
        let startMs = startTime.flatMap(Self.milliseconds(iso8601:)) ?? VirtualClock.wallClockMs()
        var configuration = PumpConfiguration()
        configuration.serialNumber = serial
        configuration.model = "PumpLink Emulated Pump"
        configuration.reservoirCapacityMicroliters = capacityMicroliters
        configuration.initialReservoirMicroliters = initialVolumeMicroliters ?? capacityMicroliters
        configuration.initialProgram = noProgram ? nil : ModelPump.defaultProgram
        let device = ModelPump(Pump(configuration: configuration, nowMs: startMs))
        let clock = VirtualClock(startMs: startMs, timeScale: timeScale)
        let pump = EmulatedPump(
            endpoint: PumpEndpoint(device: device, key: key, protocolVersions: versions ?? 2...2), clock: clock, faults: faults,
            stateFile: stateFile, baudRate: baud)
        try? await pump.save()
        return pump
    }
}

