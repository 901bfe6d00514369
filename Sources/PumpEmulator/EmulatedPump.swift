import Foundation
import Logging
import PumpCapture
import PumpModel
import PumpProtocol
import SerialTransport

/// A software pump serving one link at a time: decodes what arrives, answers through its
/// `PumpEndpoint`, streams telemetry, injects link faults, paces output like a UART, and keeps
/// its state in a file so that a restarted emulator is the same pump.
public actor EmulatedPump<Device: PumpDevice & Codable> {
    /// What a state file holds: everything that survives a restart (not the session).
    public struct SavedState: Codable, Sendable {
        public var device: Device
        public var record: RequestRecord
        public var staging: ProgramStaging?
        public var clockMs: UInt64
    }

    public private(set) var endpoint: PumpEndpoint<Device>
    public let clock: VirtualClock
    private var faults: LinkFaultInjector
    /// Faults injected by the injectors that `setFaults` replaced.
    private var earlierFaultCounts = LinkFaultInjector.Counts()
    /// The pump's own side of the link faults, when recorded (`recordPumpSide`).
    private var pumpSide: PumpSideRecorder?
    private let stateFile: URL?
    /// Output pacing: seconds per byte is 10 / baudRate (8N1: start, 8 data, stop bits).
    private let baudRate: Int?
    private var lineFreeAt = ContinuousClock.now
    private let logger: Logger
    private var servingLink: (any ByteLink)?

    public init(
        endpoint: PumpEndpoint<Device>,
        clock: VirtualClock,
        faults: LinkFaultSettings = .none,
        stateFile: URL? = nil,
        baudRate: Int? = nil,
        logger: Logger = Logger(label: "pumplink.emulator")
    ) {
        self.endpoint = endpoint
        self.clock = clock
        self.faults = LinkFaultInjector(faults)
        self.stateFile = stateFile
        self.baudRate = baudRate
        self.logger = logger
    }

    /// Reads a state file written by `save()`; nil if there is none. A file that cannot be read,
    /// is not a saved state, or holds a value the pump could never have reached (a clock after
    /// 9999, an event log with gaps, a staged slot of the wrong size, ...) is refused with
    /// `StateFileError`, never half-loaded: the pump is not started on it, and the file is left
    /// as it is for the operator to inspect.
    public static func loadState(from url: URL) throws(StateFileError) -> SavedState? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadable(path: url.path, reason: "\(error)")
        }
        let state: SavedState
        do {
            state = try JSONDecoder().decode(SavedState.self, from: data)
        } catch let error as DecodingError {
            throw .invalid(path: url.path, reason: StateFileError.describe(error))
        } catch {
            throw .invalid(path: url.path, reason: "\(error)")
        }
        guard state.clockMs <= PumpCalendar.latestTimeMs else {
            throw .invalid(path: url.path, reason: "clockMs: \(state.clockMs) is after 9999-12-31")
        }
        return state
    }

    /// Faults injected since the pump started, under every setting it has had.
    public var faultCounts: LinkFaultInjector.Counts { earlierFaultCounts + faults.counts }

    /// Changes the link faults while running; the generator restarts from the new seed.
    public func setFaults(_ settings: LinkFaultSettings) {
        earlierFaultCounts = earlierFaultCounts + faults.counts
        faults = LinkFaultInjector(settings)
        logger.info("link faults set", metadata: ["faults": "\(settings)"])
    }

    /// Writes the state file atomically: the new state goes to FILE.tmp, which is then renamed
    /// over FILE, so a crash leaves the old or the new file, never half. A FILE.tmp left by a
    /// crash is overwritten by the next save (temporary files of other names would pile up).
    public func save() throws {
        guard let stateFile else { return }
        let state = SavedState(device: endpoint.device, record: endpoint.record, staging: endpoint.staging, clockMs: clock.nowMs())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let temporary = stateFile.appendingPathExtension("tmp")
        try encoder.encode(state).write(to: temporary)
        guard rename(temporary.path, stateFile.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: stateFile.path, NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
        }
    }

    /// Records the pump's own side of the link faults on `interface` of `sink` from now on: each
    /// frame the pump writes before the faults damage it (outbound), and each candidate it
    /// receives after the faults have damaged it (inbound). A capture of the line itself shows
    /// the other two views, so the four together tell what the faults did. Nil stops recording.
    public func recordPumpSide(to sink: (any CaptureSink)?, interface: CaptureInterfaceID) {
        pumpSide = sink.map { PumpSideRecorder(sink: $0, interface: interface) }
    }

    public func status() -> Status {
        endpoint.currentStatus(nowMs: clock.nowMs())
    }

    /// Sealed frames dropped because they did not open: forged, replayed, other keys (SPEC §8.4).
    public var framesNotOpened: Int { endpoint.framesNotOpened }

    /// Runs the device model with exclusive access, e.g. to inject a fault into the pump.
    public func withDevice<T: Sendable>(_ body: (inout Device, UInt64) -> T) -> T {
        body(&endpoint.device, clock.nowMs())
    }

    /// Serves `link` until it closes, vanishes, or `hangUp()` is called.
    public func serve(_ link: any ByteLink) async {
        servingLink = link
        endpoint.endSession()
        pumpSide?.newLink()
        let telemetry = Task { [weak self] in await self?.streamTelemetry(on: link) }
        defer {
            telemetry.cancel()
            servingLink = nil
        }
        var decoder = FrameDecoder()
        do {
            for try await chunk in link.incoming {
                let received = faults.incoming(chunk)
                pumpSide?.record(received, direction: .inbound)
                var frames: [Frame] = []
                decoder.decode(received) { event in
                    if case .frame(let frame) = event { frames.append(frame) }
                }
                for frame in frames {
                    let changing = frame.messageType?.requiresAuthentication ?? false
                    let answer = endpoint.handle(frame, nowMs: clock.nowMs())
                    if changing {
                        do { try save() } catch { logger.error("state file not written: \(error)") }
                    }
                    await transmit(answer, on: link)
                }
            }
        } catch {
            logger.info("link ended", metadata: ["reason": "\(error)"])
        }
        endpoint.endSession()
    }

    /// Drops the current link, as a pulled cable would.
    public func hangUp() {
        servingLink?.close()
    }

    private func streamTelemetry(on link: any ByteLink) async {
        while !Task.isCancelled {
            let interval = endpoint.telemetryIntervalMs
            try? await Task.sleep(for: .milliseconds(interval == 0 ? 100 : Int(interval)))
            guard endpoint.telemetryIntervalMs != 0, !Task.isCancelled else { continue }
            await transmit(endpoint.telemetryFrame(nowMs: clock.nowMs()), on: link)
        }
    }

    private func transmit(_ frame: [UInt8], on link: any ByteLink) async {
        guard !frame.isEmpty else { return }
        pumpSide?.record(frame, direction: .outbound)
        let bytes = faults.outgoing(frame)
        guard !bytes.isEmpty else { return }
        if faults.settings.delayMilliseconds > 0 {
            try? await Task.sleep(for: .milliseconds(faults.settings.delayMilliseconds))
        }
        guard let baudRate, baudRate > 0 else {
            await send(bytes, on: link)
            return
        }
        // The line is busy until the previous bytes are out; these then take n * 10 bits. The
        // whole frame's time is booked at once (a frame sent meanwhile goes after it), and it
        // goes out in slices of about 10 ms of line time, each when a UART would have shifted
        // it out: on a slow line a frame arrives bit by bit, not all at its end.
        let nanosecondsPerByte = Int64(10 * 1_000_000_000 / baudRate)
        let start = max(ContinuousClock.now, lineFreeAt)
        lineFreeAt = start + .nanoseconds(Int64(bytes.count) * nanosecondsPerByte)
        let slice = max(16, baudRate / 1_000)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + slice, bytes.count)
            try? await Task.sleep(until: start + .nanoseconds(Int64(end) * nanosecondsPerByte), clock: .continuous)
            await send(Array(bytes[offset..<end]), on: link)
            offset = end
        }
    }

    private func send(_ bytes: [UInt8], on link: any ByteLink) async {
        do {
            try await link.send(bytes)
        } catch {
            logger.debug("send failed", metadata: ["reason": "\(error)"])
        }
    }
}

/// Cuts what the pump writes and receives, on its side of the fault injector, into candidates
/// for a capture interface.
private struct PumpSideRecorder {
    let sink: any CaptureSink
    let interface: CaptureInterfaceID
    private var outbound = CandidateSplitter()
    private var inbound = CandidateSplitter()

    init(sink: any CaptureSink, interface: CaptureInterfaceID) {
        self.sink = sink
        self.interface = interface
    }

    /// A new link starts: a candidate left unfinished by the old one is not recorded.
    mutating func newLink() {
        outbound.reset()
        inbound.reset()
    }

    mutating func record(_ bytes: [UInt8], direction: CaptureDirection) {
        let (sink, interface) = (sink, interface)
        bytes.withUnsafeBytes { raw in
            if direction == .outbound {
                outbound.split(raw) { sink.record($0, originalLength: $1, direction: direction, interface: interface) }
            } else {
                inbound.split(raw) { sink.record($0, originalLength: $1, direction: direction, interface: interface) }
            }
        }
    }
}

/// A state file the emulator will not start a pump on.
public enum StateFileError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// Not JSON of a saved state, or a value no pump could have reached.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "\(path): the pump's state file cannot be read: \(reason)"
        case .invalid(let path, let reason):
            "\(path): not a valid pump state (\(reason)); the pump is not started on it. Move the file away to start a new pump under this serial number."
        }
    }

    /// Where in the file and what, in one line.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "" : keys.joined(separator: ".") + ": "
        }
        switch error {
        case .dataCorrupted(let context): return path(context) + context.debugDescription
        case .keyNotFound(let key, let context): return path(context) + "\(key.stringValue) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return path(context) + context.debugDescription
        @unknown default: return "\(error)"
        }
    }
}
