import Foundation
import Logging
import PumpAPIRequests
import PumpProtocol
import PumpSafety
import PumpSession
import PumpStore
import SerialTransport

/// One configured pump in the daemon: its connection, what is known of it, its copy of the
/// event log in the store, and the commands on it with their safety checks and audit records.
actor ManagedPump {
    let id: String
    let port: String
    private let connection: PumpConnection
    private let store: PumpStore
    private let library: DrugLibrary
    private let metrics: PumpMetrics
    private let publish: @Sendable (PumpUpdate) -> Void
    private let logger: Logger
    let capture: LinkCapture

    private(set) var link: LinkState = .connecting
    private(set) var identity: PumpIdentity?
    private(set) var status: Status?
    private(set) var activeProgram: Program?
    private var lastCounters = PumpSession.Counters()
    /// The pump's status says its program changed (or a new session began) and the program
    /// has not been read since: `activeProgram` may be the one before.
    private var programIsStale = true
    private var lastProgramRead = ContinuousClock.now
    /// Uncertain requests are being resolved; whether any may be left (so that a status
    /// update does not ask the store); when resolution was last tried.
    private var resolving = false
    private var mayHaveUncertain = true
    private var lastResolution = ContinuousClock.now
    private static let resolutionRetryInterval: Duration = .seconds(3)

    init(
        entry: DaemonConfiguration.PumpEntry,
        key: PairingKey,
        store: PumpStore,
        library: DrugLibrary,
        metrics: PumpMetrics,
        telemetryIntervalMs: UInt32,
        capture: DaemonConfiguration.CaptureSettings,
        logger: Logger,
        publish: @escaping @Sendable (PumpUpdate) -> Void
    ) throws {
        id = entry.id
        port = entry.port
        self.store = store
        self.library = library
        self.metrics = metrics
        self.publish = publish
        var pumpLogger = logger
        pumpLogger[metadataKey: "pump"] = "\(entry.id)"
        self.logger = pumpLogger
        let linkCapture = LinkCapture(pumpID: entry.id, port: entry.port, settings: capture)
        self.capture = linkCapture
        if capture.alwaysOn { _ = try linkCapture.start() }
        try store.registerPump(id: entry.id, port: entry.port)
        try Self.settleInterruptedIntents(pumpID: entry.id, store: store, logger: pumpLogger)
        var options = PumpConnection.Options()
        options.telemetryIntervalMs = telemetryIntervalMs
        options.session.bitsPerSecond = entry.baud
        options.session.protocolVersions = entry.minimumProtocolVersion...ProtocolDefinitions.version
        options.beforeSendingChange = { [store, id = entry.id] requestID, type in
            // Only commands have an intent; the connection's own housekeeping is not audited.
            guard let intent = ManagedPump.sendingFor else { return }
            try store.recordSent(intentID: intent, pumpID: id, requestID: requestID, messageType: type.name, timeMs: Self.nowMs())
        }
        options.firstRequestID = { [store, id = entry.id] in
            // Above every id an earlier run sent: one killed before the pump received its last
            // request must not give that id to another command.
            ((try? store.highestSentRequestID(pumpID: id)) ?? nil).map { $0 &+ 1 } ?? 1
        }
        options.refuseIdentity = { [store, id = entry.id, port = entry.port] identity in
            guard let registered = (try? store.pump(id: id))?.serialNumber, registered != identity.serialNumber else { return nil }
            return "pump \(id) is serial \(registered), but serial \(identity.serialNumber) answered on \(port): "
                + "a replaced pump needs its own id in the configuration (its log is not merged into another pump's)"
        }
        connection = PumpConnection(
            path: entry.port,
            key: key,
            options: options,
            eventCursor: try store.contiguousEventSequence(pumpID: entry.id) ?? 0,
            logger: pumpLogger,
            open: { [usb = entry.usb, line = LineSettings(baudRate: entry.baud)] path in
                // A USB adapter is looked up again at each connection: it may come back re-plugged.
                linkCapture.wrap(try SerialPort.open(path: try usb?.port(among: SerialPorts.list()) ?? path, settings: line))
            }
        )
    }

    /// The audit intent a changing request is sent for, while a command runs.
    @TaskLocal static var sendingFor: Int64?

    /// Gives every intent a previous run left without an outcome (the daemon stopped while a
    /// command was under way) the outcome its sent requests allow: nothing sent → failed;
    /// stopped during a program upload → failed, nothing activated; otherwise uncertain, to be
    /// resolved from the pump's record when the link is up (SPEC §7.6).
    static func settleInterruptedIntents(pumpID: String, store: PumpStore, logger: Logger) throws {
        let staging: Set<String> = [MessageType.programStageBegin.name, MessageType.programStageData.name, MessageType.programVerify.name]
        for intent in try store.intentsWithoutOutcome(pumpID: pumpID) {
            let now = nowMs()
            guard let last = try store.sentRequests(intentID: intent.id).last else {
                try store.recordOutcome(intentID: intent.id, outcome: .failed, detail: "the daemon stopped before sending it", timeMs: now)
                continue
            }
            if staging.contains(last.messageType) {
                try store.recordOutcome(
                    intentID: intent.id, outcome: .failed,
                    detail: "the daemon stopped during the upload (\(last.messageType) request \(last.requestID)); nothing was activated",
                    requestID: last.requestID, timeMs: now)
            } else {
                try store.markUncertain(
                    pumpID: pumpID, requestID: last.requestID, action: intent.action, intentID: intent.id,
                    detail: "the daemon stopped after sending \(last.messageType) request \(last.requestID)", timeMs: now)
                logger.warning("a command interrupted by a stop is uncertain until the pump's record resolves it", metadata: [
                    "request.id": "\(last.requestID)", "action": "\(intent.action)",
                ])
            }
        }
    }

    // MARK: Following the pump

    /// Runs the connection and keeps the state, the store and the live clients up to date.
    func run() async {
        let states = await connection.states()
        let telemetry = await connection.telemetry()
        let events = await connection.events()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.connection.run() }
            group.addTask { for await state in states { await self.linkChanged(state) } }
            group.addTask { for await status in telemetry { await self.received(status) } }
            group.addTask { for await event in events { await self.received(event) } }
        }
    }

    private func linkChanged(_ state: PumpConnection.State) async {
        switch state {
        case .connecting:
            link = .connecting
        case .up(let identity):
            let recovered = link.isDegraded
            link = .up
            self.identity = identity
            metrics.linkUp.set(Int64(1))
            metrics.linkDegraded.set(Int64(0))
            if !recovered {
                try? store.updateIdentity(id: id, serialNumber: identity.serialNumber, model: identity.model)
                await caughtUp()
            }
        case .degraded(_, let reason):
            link = .degraded(reason: reason)
            metrics.linkDegraded.set(Int64(1))
        case .down(let reason):
            link = .down(reason: reason)
            metrics.linkUp.set(Int64(0))
            metrics.linkDegraded.set(Int64(0))
        }
        publish(.link(pumpID: id, state: link))
    }

    /// After each (re)connection: the program the pump runs, then the outcome of every request
    /// left uncertain (SPEC §7.6, §7.8).
    private func caughtUp() async {
        guard let session = try? await connection.session() else { return }
        programIsStale = true
        if let program = try? await session.activeProgram() {
            activeProgram = program
            programIsStale = false
        }
        if let status = try? await session.status() { self.status = status }
        await resolveUncertain(session)
    }

    /// Asks the pump about every request left uncertain, and records what it did. Runs after
    /// each connection and again, while any is left, with the status updates (at most every
    /// few seconds): on a noisy link one attempt may not get through.
    private func resolveUncertain(_ session: PumpSession) async {
        guard !resolving else { return }
        resolving = true
        lastResolution = .now
        defer { resolving = false }
        for uncertain in (try? store.unresolved(pumpID: id)) ?? [] {
            do {
                let executed: Bool
                switch try await session.resolve(requestID: uncertain.requestID) {
                case .executed: executed = true
                case .refused: executed = false
                case .notExecuted:
                    // The pump's log, copied here as it was read, must agree: an event caused
                    // by the request proves it ran, whatever else was said (SPEC §7.6).
                    guard try !store.hasEvent(pumpID: id, requestID: uncertain.requestID) else {
                        throw SessionError.inconsistentData(
                            "request \(uncertain.requestID) is said not to have run, but its events are in the pump's log")
                    }
                    executed = false
                case .unknown:
                    // Evicted from the pump's record: its log tells (events carry request ids).
                    if try store.hasEvent(pumpID: id, requestID: uncertain.requestID) {
                        executed = true
                    } else {
                        executed = try await session.eventLogHolds(requestID: uncertain.requestID)
                    }
                }
                try store.resolve(pumpID: id, requestID: uncertain.requestID, executed: executed, timeMs: Self.nowMs())
                logger.notice("uncertain request resolved", metadata: [
                    "request.id": "\(uncertain.requestID)", "executed": "\(executed)",
                ])
            } catch {
                logger.warning("uncertain request not resolved yet: \(error)")
            }
        }
        mayHaveUncertain = (try? store.unresolved(pumpID: id).isEmpty) != true
    }

    private func received(_ status: Status) async {
        let previous = self.status
        self.status = status
        metrics.reservoirMicroliters.set(Int64(status.reservoirMicroliters))
        metrics.unacknowledgedAlarms.set(Int64(status.alarmUnacknowledgedMask.nonzeroBitCount))
        if let session = try? await connection.session() {
            let counters = await session.counters
            metrics.framesSent.increment(by: Int64(max(0, counters.framesSent - lastCounters.framesSent)))
            metrics.framesReceived.increment(by: Int64(max(0, counters.framesReceived - lastCounters.framesReceived)))
            metrics.checkFailures.increment(by: Int64(max(0, counters.checkFailures - lastCounters.checkFailures)))
            metrics.retransmissions.increment(by: Int64(max(0, counters.retransmissions - lastCounters.retransmissions)))
            metrics.authenticationFailures.increment(by: Int64(max(0, counters.authenticationFailures - lastCounters.authenticationFailures)))
            // A new session starts its counters at zero.
            lastCounters = counters
            let changed = previous?.activeProgramChecksum != status.activeProgramChecksum
                || previous?.activeProgramId != status.activeProgramId
            if changed { programIsStale = true }
            // Read at once on a change; after a failed read, again at most every few seconds
            // (a bulk read behind every 10 Hz status would hold the updates up on a noisy line).
            if programIsStale, changed || ContinuousClock.now - lastProgramRead > Self.resolutionRetryInterval {
                lastProgramRead = .now
                if let program = try? await session.activeProgram() {
                    // Until it is read, `currentProgram()` reads it on demand rather than serve the old one.
                    activeProgram = program
                    programIsStale = false
                }
            }
            if mayHaveUncertain, ContinuousClock.now - lastResolution > Self.resolutionRetryInterval {
                await resolveUncertain(session)
            }
        }
        publish(.status(pumpID: id, status: status))
    }

    private func received(_ event: Event) {
        do {
            _ = try store.insertEvents(pumpID: id, [event])
        } catch {
            logger.error("event not stored: \(error)")
        }
        publish(.event(pumpID: id, event: event))
    }

    // MARK: Reading

    func summary() -> PumpSummary {
        PumpSummary(
            id: id,
            port: port,
            link: link,
            serialNumber: identity?.serialNumber,
            model: identity?.model,
            status: status,
            uncertainRequests: ((try? store.unresolved(pumpID: id)) ?? []).map(\.requestID),
            protocolVersion: identity?.protocolVersion
        )
    }

    func detail() -> PumpDetail {
        PumpDetail(
            summary: summary(),
            firmwareVersion: identity?.firmwareVersion,
            reservoirCapacityMicroliters: identity?.reservoirCapacityMicroliters,
            activeProgram: activeProgram,
            lastStoredEventSequence: ((try? store.contiguousEventSequence(pumpID: id)) ?? nil) ?? 0
        )
    }

    func storedEvents(from sequence: UInt32, limit: Int) throws(DaemonError) -> [Event] {
        do {
            return try store.events(pumpID: id, from: sequence, limit: limit)
        } catch {
            throw DaemonError(.internalError, "reading stored events: \(error)")
        }
    }

    /// The program the pump runs: the one last read, unless the pump's status has said since
    /// that it changed; then it is read now (a link error if it cannot be), never the old one.
    func currentProgram() async throws(DaemonError) -> Program? {
        guard programIsStale else { return activeProgram }
        let session = try await currentSession()
        let program = try await sessionCall { try await session.activeProgram() }
        activeProgram = program
        programIsStale = false
        return program
    }

    // MARK: Commands

    func review(_ program: Program, override: Override?) async throws(DaemonError) -> ProgramReport {
        let session = try await currentSession()
        let status = try await sessionCall { try await session.status() }
        let active = try await sessionCall { try await session.activeProgram() }
        return ProgramReview.review(program: program, active: active, status: status, library: library, override: override)
    }

    func push(_ program: Program, override: Override?, by actor: Actor) async throws(DaemonError) -> PushResult {
        let report = try await review(program, override: override)
        let parameters = PushParameters(program: program, override: override, verdict: report.verdict)
        switch report.verdict {
        case .accepted, .acceptedWithOverride:
            break
        case .rejected, .overrideRequired:
            let intent = try audit(actor, "program.push", parameters)
            let findings = report.findings.filter { $0.severity != .notice }.map(\.rule).joined(separator: ", ")
            try record(intent, outcome: .refused, detail: "\(report.verdict.rawValue): \(findings)")
            throw DaemonError(
                report.verdict == .rejected ? .limitExceeded : .overrideRequired,
                report.verdict == .rejected
                    ? "the program breaks a hard limit: \(findings)"
                    : "the program exceeds a soft limit (\(findings)): give an override with a reason",
                details: ["findings": findings]
            )
        }
        let activated = try await command("program.push", parameters, by: actor) { session in
            try await session.pushProgram(program)
        }
        activeProgram = program
        // The pump confirmed the activation: a status that cannot be read now does not undo that.
        var status: Status?
        if let session = try? await connection.session() { status = try? await session.status() }
        if let status { self.status = status }
        return PushResult(report: report, activated: activated, status: status)
    }

    func refill(aspiratedMicroliters: UInt32, newVolumeMicroliters: UInt32, by actor: Actor) async throws(DaemonError) -> RefillResult {
        let session = try await currentSession()
        let status = try await sessionCall { try await session.status() }
        let report = RefillReview.review(
            aspiratedMicroliters: aspiratedMicroliters,
            newVolumeMicroliters: newVolumeMicroliters,
            status: status,
            activeProgram: activeProgram
        )
        let parameters = ["aspiratedMicroliters": aspiratedMicroliters, "newVolumeMicroliters": newVolumeMicroliters]
        if report.verdict == .rejected {
            let intent = try audit(actor, "refill", parameters)
            let findings = report.findings.filter { $0.severity == .hard }.map(\.message).joined(separator: "; ")
            try record(intent, outcome: .refused, detail: findings)
            throw DaemonError(.limitExceeded, findings, details: ["capacityMicroliters": "\(report.capacityMicroliters)"])
        }
        let response = try await command("refill", parameters, by: actor) { session in
            try await session.refill(aspiratedMicroliters: aspiratedMicroliters, newVolumeMicroliters: newVolumeMicroliters)
        }
        return RefillResult(report: report, pump: response)
    }

    /// Reviewed against the drug library before it is sent (`ClinicianBolusReview`): the pump's
    /// clock, program and event log are read now, so that the daily total counts every bolus the
    /// pump has logged, including those not stored yet.
    func clinicianBolus(
        _ request: ClinicianBolusRequest, override: Override?, catheterVolumeMicroliters: UInt32?, by actor: Actor
    ) async throws(DaemonError) -> ClinicianBolusResponse {
        do {
            try request.validate()
        } catch {
            throw DaemonError(.badRequest, "invalid bolus: \(error)")
        }
        var parameters = ClinicianBolusParameters(
            kind: request.kind.name, doseMicrograms: request.doseMicrograms, volumeMicroliters: request.volumeMicroliters,
            durationMinutes: request.durationMinutes, catheterVolumeMicroliters: catheterVolumeMicroliters, override: override)
        try refuseIfUncertain(actor, "bolus.clinician", parameters)
        let session = try await currentSession()
        let status = try await sessionCall { try await session.status() }
        let program = try await sessionCall { try await session.activeProgram() }
        let events = try await eventsOfLastDay(session, status: status)
        let report = ClinicianBolusReview.review(
            request, catheterVolumeMicroliters: catheterVolumeMicroliters, program: program, events: events,
            nowMs: status.pumpTimeMs, library: library, override: override)
        parameters.verdict = report.verdict.rawValue
        parameters.dailyTotalMicrograms = report.dailyTotalMicrograms
        switch report.verdict {
        case .accepted, .acceptedWithOverride:
            break
        case .rejected, .overrideRequired:
            let blocking = report.findings.filter { $0.severity == (report.verdict == .rejected ? .hard : .soft) }
            let rules = blocking.map(\.rule).joined(separator: ", ")
            let messages = blocking.map(\.message).joined(separator: " ")
            try refuse(
                actor, "bolus.clinician", parameters,
                DaemonError(
                    report.verdict == .rejected ? .limitExceeded : .overrideRequired,
                    report.verdict == .rejected
                        ? "the bolus breaks a hard limit (\(rules)): \(messages)"
                        : "the bolus exceeds a soft limit (\(rules)): \(messages) Give an override with a reason.",
                    details: ["findings": rules]))
        }
        return try await command("bolus.clinician", parameters, by: actor) { session in
            try await session.clinicianBolus(request)
        }
    }

    /// The pump's events of the 24 h before its clock in `status`: the stored ones, and any the
    /// store has not caught up with read from the pump.
    private func eventsOfLastDay(_ session: PumpSession, status: Status) async throws(DaemonError) -> [Event] {
        let dayMs: UInt64 = 86_400_000
        let cutoff = status.pumpTimeMs > dayMs ? status.pumpTimeMs - dayMs : 0
        var events: [Event] = []
        let stored: UInt32
        do {
            stored = try store.contiguousEventSequence(pumpID: id) ?? 0
            // Backwards a page at a time until a page holds an event before the cutoff (times grow
            // with the sequence unless the pump's clock was set back).
            var end = stored
            while end >= 1 {
                let start = end > 999 ? end - 999 : 1
                let page = try store.events(pumpID: id, from: start, limit: Int(end - start + 1))
                events.insert(contentsOf: page, at: 0)
                if start == 1 || page.contains(where: { $0.timeMs < cutoff }) { break }
                end = start - 1
            }
        } catch {
            throw DaemonError(.internalError, "reading stored events: \(error)")
        }
        if status.lastEventSequence > stored {
            let (_, missing) = try await sessionCall { try await session.readEvents(from: stored + 1) }
            events += missing.filter { $0.sequence > stored }
        }
        return events
    }

    func patientBolus(by actor: Actor) async throws(DaemonError) -> PatientBolusResponse {
        // The daemon checks lockout and daily maximum too; the pump enforces them (SPEC §9.7).
        // On the pump's clock and log read now (not the last streamed status and the stored
        // events), so that a bolus just given is always seen and the refusal is always this one.
        try refuseIfUncertain(actor, "bolus.patient", [String: String]())
        let session = try await currentSession()
        let status = try await sessionCall { try await session.status() }
        if let program = try await currentProgram() {
            let recent = try await eventsOfLastDay(session, status: status)
            if let finding = PatientBolusCheck.check(program: program, events: recent, nowMs: status.pumpTimeMs) {
                try refuse(actor, "bolus.patient", [String: String](),
                           DaemonError(.limitExceeded, finding.message, details: ["rule": finding.rule]))
            }
        }
        return try await command("bolus.patient", [String: String](), by: actor) { session in
            let response = try await session.patientBolus()
            // The pump's own refusal takes the daemon's shape: 409, never a 200 that gave nothing.
            if let refusal = Self.refusal(response) { throw refusal }
            return response
        }
    }

    /// The error a patient bolus the pump answered but did not start is reported as: the
    /// daemon's `limitExceeded` with the same rule for lockout, daily maximum and not enabled;
    /// `refusedByPump` with the pump's outcome for the others. Nil when it started.
    static func refusal(_ response: PatientBolusResponse) -> PumpDeclined? {
        let rule: SafetyRule
        switch response.outcome {
        case .started: return nil
        case .refusedLockout: rule = .patientBolusLockout
        case .refusedDailyMaximum: rule = .patientBolusDailyMaximum
        case .refusedNotEnabled: rule = .patientBolusNotEnabled
        case .refusedTherapyNotRunning, .refusedBolusInProgress:
            return PumpDeclined(
                error: DaemonError(.refusedByPump, "the pump refused the patient bolus: \(response.outcome.name)",
                                   details: ["code": response.outcome.name]))
        }
        let message = "the pump refused the patient bolus: \(response.outcome.name) (\(response.bolusesInLast24h) in the last 24 h, next allowed in \(response.nextAllowedInSeconds) s)"
        return PumpDeclined(error: DaemonError(.limitExceeded, message, details: ["rule": rule.rawValue]))
    }

    func suspend(by actor: Actor) async throws(DaemonError) -> SuspendResponse {
        try await command("suspend", [String: String](), by: actor, blockedByUncertainty: false) { session in
            try await session.suspend()
        }
    }

    func resume(by actor: Actor) async throws(DaemonError) -> ResumeResponse {
        try await command("resume", [String: String](), by: actor) { session in
            try await session.resume()
        }
    }

    func acknowledgeAlarms(mask: UInt32, by actor: Actor) async throws(DaemonError) -> AcknowledgeAlarmsResponse {
        try await command("alarms.acknowledge", ["mask": mask], by: actor) { session in
            try await session.acknowledgeAlarms(mask)
        }
    }

    /// The clock drives the schedule (SPEC §5.6, §9.2): a time far from the host's clock needs
    /// an override with a reason; the refusal is audited like a program's.
    func setClock(
        timeMs: UInt64, utcOffsetMinutes: Int16, override: Override?, maxDistanceSeconds: UInt64, by actor: Actor
    ) async throws(DaemonError) -> SetClockResponse {
        guard (-900...900).contains(utcOffsetMinutes) else {
            throw DaemonError(.badRequest, "utcOffsetMinutes must be -900...900")
        }
        // Whoever calls: no pump is sent a time it cannot hold, override or not.
        guard SetClockBody.timeMsRange.contains(timeMs) else {
            throw DaemonError(
                .badRequest, "timeMs must be in \(SetClockBody.timeMsRange.lowerBound)...\(SetClockBody.timeMsRange.upperBound)",
                details: ["field": "timeMs", "value": "\(timeMs)"])
        }
        let hostMs = Self.nowMs()
        let distanceMs = timeMs > hostMs ? timeMs - hostMs : hostMs - timeMs
        let parameters = ClockParameters(timeMs: "\(timeMs)", utcOffsetMinutes: "\(utcOffsetMinutes)", hostTimeMs: "\(hostMs)", override: override)
        if distanceMs / 1000 > maxDistanceSeconds, override == nil {
            let intent = try audit(actor, "clock.set", parameters)
            let message =
                "the time is \(distanceMs / 1000) s from the host's clock, more than the \(maxDistanceSeconds) s allowed: give an override with a reason"
            try record(intent, outcome: .refused, detail: message)
            throw DaemonError(
                .overrideRequired, message,
                details: ["distanceSeconds": "\(distanceMs / 1000)", "maxDistanceSeconds": "\(maxDistanceSeconds)"])
        }
        return try await command("clock.set", parameters, by: actor) { session in
            try await session.setClock(timeMs: timeMs, utcOffsetMinutes: utcOffsetMinutes)
        }
    }

    /// A changing command: blocked while an earlier one is uncertain (suspend excepted), the
    /// intent recorded before sending, the outcome recorded after, every SessionError mapped
    /// to what the API says (SPEC §7.6).
    private func command<Response: Sendable>(
        _ action: String,
        _ parameters: some Encodable,
        by actor: Actor,
        blockedByUncertainty: Bool = true,
        _ body: (PumpSession) async throws -> Response
    ) async throws(DaemonError) -> Response {
        if blockedByUncertainty { try refuseIfUncertain(actor, action, parameters) }
        let session = try await currentSession()
        let intent = try audit(actor, action, parameters)
        do {
            let response = try await Self.$sendingFor.withValue(intent) { try await body(session) }
            try record(intent, outcome: .done, detail: "")
            // What clients read next shows the change, not the last streamed status.
            if let fresh = try? await session.status() { await received(fresh) }
            return response
        } catch {
            if let declined = error as? PumpDeclined {
                try record(intent, outcome: .rejected, detail: Self.auditDetail(declined.error))
                throw declined.error
            }
            guard let error = error as? SessionError else {
                try record(intent, outcome: .failed, detail: "\(error)")
                throw DaemonError(.internalError, "\(error)")
            }
            switch error {
            case .uncertain(let requestID, let type):
                do {
                    try store.markUncertain(pumpID: id, requestID: requestID, action: action, intentID: intent,
                                            detail: "\(type.name) request \(requestID) sent, no answer", timeMs: Self.nowMs())
                    mayHaveUncertain = true
                } catch {
                    logger.critical("an uncertain request could not be recorded: \(error)")
                }
                // Resolve it in a new session, so that no delayed copy can still run (SPEC §7.6).
                await session.close()
                throw DaemonError(.uncertain, "\(action): sent, but the pump's answer was lost; it is being resolved from the pump's record",
                                  details: ["requestID": "\(requestID)"])
            case .refused(let code, let detail, _):
                try record(intent, outcome: .rejected, detail: "\(code.name) (detail \(detail))")
                throw DaemonError(.refusedByPump, "the pump refused it: \(code.name)", details: ["code": code.name, "detail": "\(detail)"])
            case .pushFailed(let why):
                try record(intent, outcome: .failed, detail: why)
                throw DaemonError(.refusedByPump, why)
            case .notSent(_, let why):
                try record(intent, outcome: .failed, detail: "not sent: \(why)")
                throw DaemonError(.internalError, "not sent, because it could not be recorded first: \(why)")
            case .notConnected:
                try record(intent, outcome: .failed, detail: "link down before sending")
                throw DaemonError(.linkDown, "the link to pump \(id) is down")
            default:
                try record(intent, outcome: .failed, detail: "\(error)")
                throw DaemonError(.linkDown, "\(error)")
            }
        }
    }

    private func currentSession() async throws(DaemonError) -> PumpSession {
        do {
            return try await connection.session()
        } catch {
            throw DaemonError(.linkDown, "the link to pump \(id) is down")
        }
    }

    private func sessionCall<T>(_ body: () async throws -> T) async throws(DaemonError) -> T {
        do {
            return try await body()
        } catch {
            switch error as? SessionError {
            case .refused(let code, let detail, _):
                throw DaemonError(.refusedByPump, "the pump refused it: \(code.name)", details: ["code": code.name, "detail": "\(detail)"])
            default:
                throw DaemonError(.linkDown, "\(error)")
            }
        }
    }

    /// Refused while an earlier changing request's outcome is unknown (SPEC §7.6); audited.
    private func refuseIfUncertain(_ actor: Actor, _ action: String, _ parameters: some Encodable) throws(DaemonError) {
        let pending = ((try? store.unresolved(pumpID: id)) ?? []).map(\.requestID)
        guard !pending.isEmpty else { return }
        try refuse(actor, action, parameters, DaemonError(
            .blockedByUncertainty,
            "the outcome of request \(pending.map(String.init).joined(separator: ", ")) is not known yet; only suspend is allowed until the pump's record resolves it",
            details: ["requests": pending.map(String.init).joined(separator: ",")]))
    }

    /// Records a refusal by the daemon (nothing was sent) as one complete audit row, then throws `error`.
    private func refuse(_ actor: Actor, _ action: String, _ parameters: some Encodable, _ error: DaemonError) throws(DaemonError) -> Never {
        do {
            try store.record(actor: actor.name, role: actor.role.rawValue, pumpID: id, action: action,
                             parameters: Self.encodeParameters(parameters), outcome: .refused,
                             detail: Self.auditDetail(error), timeMs: Self.nowMs())
        } catch {
            throw DaemonError(.internalError, "the audit log cannot be written: \(error)")
        }
        throw error
    }

    /// A refusal as the audit log records it: its code, message and details (sorted), so the
    /// row names the rule or the pump's code the client was given.
    static func auditDetail(_ error: DaemonError) -> String {
        let details = error.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(error.code.rawValue): \(error.message)" + (details.isEmpty ? "" : " (\(details))")
    }

    private static func encodeParameters(_ parameters: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(parameters)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private func audit(_ actor: Actor, _ action: String, _ parameters: some Encodable) throws(DaemonError) -> Int64 {
        let text = Self.encodeParameters(parameters)
        do {
            return try store.recordIntent(actor: actor.name, role: actor.role.rawValue, pumpID: id, action: action, parameters: text, requestID: nil, timeMs: Self.nowMs())
        } catch {
            throw DaemonError(.internalError, "the audit log cannot be written, so nothing is sent: \(error)")
        }
    }

    private func record(_ intent: Int64, outcome: AuditOutcome, detail: String, requestID: UInt32? = nil) throws(DaemonError) {
        do {
            _ = try store.recordOutcome(intentID: intent, outcome: outcome, detail: detail, requestID: requestID, timeMs: Self.nowMs())
        } catch {
            throw DaemonError(.internalError, "the audit log cannot be written: \(error)")
        }
    }

    static func nowMs() -> UInt64 {
        UInt64(Date().timeIntervalSince1970 * 1000)
    }
}

/// A patient bolus the pump answered without starting it: recorded as rejected, reported as `error`.
struct PumpDeclined: Error {
    var error: DaemonError
}

/// What the audit log records of a clinician bolus: the request, what it was checked with, the verdict.
private struct ClinicianBolusParameters: Encodable {
    var kind: String
    var doseMicrograms: UInt32
    var volumeMicroliters: UInt32
    var durationMinutes: UInt16
    var catheterVolumeMicroliters: UInt32?
    var override: Override?
    var verdict: String?
    var dailyTotalMicrograms: UInt64?
}

private struct ClockParameters: Encodable {
    var timeMs: String
    var utcOffsetMinutes: String
    var hostTimeMs: String
    var override: Override?
}

private struct PushParameters: Encodable {
    var program: Program
    var override: Override?
    var verdict: Verdict
}
