import Foundation
import Logging
import Prometheus
import PumpProtocol
import PumpSafety
import PumpSession
import PumpStore
import Synchronization

/// The daemon's pumps (one daemon, many pumps), as the `PumpService` the API serves.
public final class PumpFleet: PumpService {
    private let pumpsByID: [String: ManagedPump]
    private let order: [String]
    private let store: PumpStore
    private let registry: PrometheusCollectorRegistry
    private let hub = UpdateHub()
    private let logger: Logger
    /// How far from the host's clock a pump's clock may be set without an override.
    private let maxClockDistanceSeconds: UInt64

    /// Opens the store, reads the keys and the drug library; throws a clear error on any
    /// missing or malformed file before anything connects.
    public init(configuration: DaemonConfiguration, logger: Logger) throws(DaemonError) {
        self.logger = logger
        maxClockDistanceSeconds = configuration.maxClockDistanceSeconds ?? DaemonConfiguration.defaultMaxClockDistanceSeconds
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            store = try PumpStore(path: URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("pumplink.sqlite").path)
        } catch {
            throw DaemonError(.internalError, "cannot open the database in \(configuration.dataDirectory): \(error)")
        }
        let library: DrugLibrary
        if let path = configuration.drugLibrary {
            do {
                library = try DrugLibrary.load(from: URL(fileURLWithPath: path))
            } catch {
                throw DaemonError(.badRequest, "drug library \(path): \(error)")
            }
        } else {
            library = .standard
        }
        registry = PrometheusCollectorRegistry()
        var pumps: [String: ManagedPump] = [:]
        let hub = self.hub
        let publish: @Sendable (PumpUpdate) -> Void = { hub.publish($0) }
        for entry in configuration.pumps {
            let key: PairingKey
            do {
                key = try PairingKey(hex: try String(contentsOfFile: entry.keyFile, encoding: .utf8))
            } catch {
                throw DaemonError(.badRequest, "pump \(entry.id): cannot read its pairing key from \(entry.keyFile): \(error)")
            }
            do {
                pumps[entry.id] = try ManagedPump(
                    entry: entry,
                    key: key,
                    store: store,
                    library: library,
                    metrics: PumpMetrics(registry: registry, pumpID: entry.id),
                    telemetryIntervalMs: configuration.telemetryIntervalMs ?? 1000,
                    capture: configuration.captureSettings,
                    logger: logger,
                    publish: publish
                )
            } catch {
                throw DaemonError(.internalError, "pump \(entry.id): \(error)")
            }
        }
        pumpsByID = pumps
        order = configuration.pumps.map(\.id)
    }

    /// Connects every pump and keeps them connected until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for pump in pumpsByID.values {
                group.addTask { await pump.run() }
            }
        }
        for pump in pumpsByID.values { _ = pump.capture.stop() }
        hub.finish()
    }

    private func pump(named id: String) throws(DaemonError) -> ManagedPump {
        guard let pump = pumpsByID[id] else { throw DaemonError(.unknownPump, "no pump '\(id)'") }
        return pump
    }

    // MARK: PumpService

    public func pumps() async -> [PumpSummary] {
        var summaries: [PumpSummary] = []
        for id in order {
            if let pump = pumpsByID[id] { summaries.append(await pump.summary()) }
        }
        return summaries
    }

    public func pump(_ id: String) async throws(DaemonError) -> PumpDetail {
        await (try pump(named: id)).detail()
    }

    public func events(_ id: String, from sequence: UInt32, limit: Int) async throws(DaemonError) -> [Event] {
        try await (try pump(named: id)).storedEvents(from: sequence, limit: min(max(limit, 1), 10_000))
    }

    public func activeProgram(_ id: String) async throws(DaemonError) -> Program? {
        try await (try pump(named: id)).currentProgram()
    }

    public func review(_ id: String, program: Program, override: Override?) async throws(DaemonError) -> ProgramReport {
        try await (try pump(named: id)).review(program, override: override)
    }

    public func push(_ id: String, program: Program, override: Override?, by actor: Actor) async throws(DaemonError) -> PushResult {
        try await (try pump(named: id)).push(program, override: override, by: actor)
    }

    public func refill(_ id: String, aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32, by actor: Actor) async throws(DaemonError) -> RefillResult {
        try await (try pump(named: id)).refill(aspiratedMicroliters: aspiratedMicroliters, newVolumeMicroliters: newVolumeMicroliters, by: actor)
    }

    public func clinicianBolus(
        _ id: String, _ request: ClinicianBolusRequest, override: Override?, catheterVolumeMicroliters: UInt32?, by actor: Actor
    ) async throws(DaemonError) -> ClinicianBolusResponse {
        try await (try pump(named: id)).clinicianBolus(
            request, override: override, catheterVolumeMicroliters: catheterVolumeMicroliters, by: actor)
    }

    public func patientBolus(_ id: String, by actor: Actor) async throws(DaemonError) -> PatientBolusResponse {
        try await (try pump(named: id)).patientBolus(by: actor)
    }

    public func captureStatus(_ id: String) async throws(DaemonError) -> CaptureStatus {
        try pump(named: id).capture.status()
    }

    public func startCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus {
        let status = try pump(named: id).capture.start()
        logger.notice("capture started", metadata: ["pump": "\(id)", "actor": "\(actor.name)", "file": "\(status.files.last ?? "")"])
        return status
    }

    public func stopCapture(_ id: String, by actor: Actor) async throws(DaemonError) -> CaptureStatus {
        let status = try pump(named: id).capture.stop()
        logger.notice("capture stopped", metadata: ["pump": "\(id)", "actor": "\(actor.name)", "packets": "\(status.packets)"])
        return status
    }

    public func suspend(_ id: String, by actor: Actor) async throws(DaemonError) -> SuspendResponse {
        try await (try pump(named: id)).suspend(by: actor)
    }

    public func resume(_ id: String, by actor: Actor) async throws(DaemonError) -> ResumeResponse {
        try await (try pump(named: id)).resume(by: actor)
    }

    public func acknowledgeAlarms(_ id: String, mask: UInt32, by actor: Actor) async throws(DaemonError) -> AcknowledgeAlarmsResponse {
        try await (try pump(named: id)).acknowledgeAlarms(mask: mask, by: actor)
    }

    public func setClock(_ id: String, timeMs: UInt64, utcOffsetMinutes: Int16, override: Override?, by actor: Actor) async throws(DaemonError) -> SetClockResponse {
        try await (try pump(named: id)).setClock(
            timeMs: timeMs, utcOffsetMinutes: utcOffsetMinutes, override: override, maxDistanceSeconds: maxClockDistanceSeconds, by: actor)
    }

    public func audit(pump id: String?, limit: Int) async throws(DaemonError) -> [AuditRecord] {
        if let id { _ = try pump(named: id) }
        do {
            return try store.audit(pumpID: id, limit: min(max(limit, 1), 10_000)).map { entry in
                AuditRecord(
                    id: entry.id, timeMs: entry.timeMs, actor: entry.actor, role: entry.role, pumpID: entry.pumpID,
                    action: entry.action, parameters: entry.parameters, outcome: entry.outcome, detail: entry.detail,
                    requestID: entry.requestID, intentID: entry.intentID
                )
            }
        } catch {
            throw DaemonError(.internalError, "reading the audit log: \(error)")
        }
    }

    public func auditHead() async throws(DaemonError) -> AuditHead {
        do {
            let head = try store.auditChainHead()
            return AuditHead(rows: head.rows, headHash: head.headHash)
        } catch {
            throw DaemonError(.internalError, "reading the audit log: \(error)")
        }
    }

    public func updates() async -> AsyncStream<PumpUpdate> {
        hub.subscribe()
    }

    public func metricsText() async -> String {
        registry.emitToString()
    }
}

/// Fans updates out to API clients; each has its own bounded buffer, so a slow one loses old
/// updates instead of slowing the links.
final class UpdateHub: Sendable {
    private let subscribers = Mutex<(next: Int, continuations: [Int: AsyncStream<PumpUpdate>.Continuation])>((0, [:]))

    func publish(_ update: PumpUpdate) {
        subscribers.withLock { state in
            for continuation in state.continuations.values { continuation.yield(update) }
        }
    }

    func subscribe() -> AsyncStream<PumpUpdate> {
        let (stream, continuation) = AsyncStream.makeStream(of: PumpUpdate.self, bufferingPolicy: .bufferingNewest(4096))
        let id = subscribers.withLock { state in
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { state in _ = state.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func finish() {
        let continuations = subscribers.withLock { state in
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
