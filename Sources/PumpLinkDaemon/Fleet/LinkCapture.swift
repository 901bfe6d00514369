import Foundation
import PumpCapture
import SerialTransport
import Synchronization

/// One pump's link capture: every candidate in and out of its port, to pcapng files in the
/// capture directory (SPEC §15), started and stopped at run time without reconnecting.
final class LinkCapture: Sendable {
    let pumpID: String
    let port: String
    let settings: DaemonConfiguration.CaptureSettings
    /// What every connection's link records through.
    let tap = CaptureTap()
    private let writer = Mutex<CaptureWriter?>(nil)

    init(pumpID: String, port: String, settings: DaemonConfiguration.CaptureSettings) {
        self.pumpID = pumpID
        self.port = port
        self.settings = settings
    }

    /// `link`, recorded while the capture is on.
    func wrap(_ link: any ByteLink) -> any ByteLink {
        CapturingLink(wrapping: link, tap: tap)
    }

    /// Starts a new capture file (`<pump>-<UTC time>.pcapng`); a running capture goes on.
    func start() throws(DaemonError) -> CaptureStatus {
        let started: Result<Void, DaemonError> = writer.withLock { writer in
            guard writer == nil else { return .success(()) }
            let stamp = Self.stamp.string(from: Date())
            let path = URL(fileURLWithPath: settings.directory).appendingPathComponent("\(pumpID)-\(stamp).pcapng").path
            do {
                try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
                let new = try CaptureWriter(
                    path: path,
                    options: .init(maxFileBytes: settings.maxFileBytes, maxFiles: settings.maxFiles, userApplication: "pumplinkd"))
                try tap.start(recordingTo: new, interface: .init(name: port, description: "pump \(pumpID)"))
                writer = new
                return .success(())
            } catch {
                return .failure(DaemonError(.internalError, "cannot capture to \(path): \(error)"))
            }
        }
        try started.get()
        return status()
    }

    /// Stops recording and closes the file; nothing happens when no capture runs.
    func stop() -> CaptureStatus {
        let stopped: CaptureWriter? = writer.withLock { writer in
            defer { writer = nil }
            return writer
        }
        tap.stop()
        stopped?.close()
        return Self.status(of: stopped, recording: false)
    }

    func status() -> CaptureStatus {
        Self.status(of: writer.withLock { $0 }, recording: tap.isRecording)
    }

    private static func status(of writer: CaptureWriter?, recording: Bool) -> CaptureStatus {
        guard let writer else { return CaptureStatus(recording: false) }
        let statistics = writer.statistics
        return CaptureStatus(
            recording: recording,
            files: statistics.files,
            packets: statistics.packetsWritten,
            bytes: statistics.bytesWritten,
            droppedPackets: statistics.packetsDropped,
            failure: statistics.failure.map { "\($0)" })
    }

    private static let stamp: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return formatter
    }()
}
