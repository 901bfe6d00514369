import Logging
import PumpProtocol
import SerialTransport
import Synchronization

/// Keeps one pump connected for as long as it runs: opens the port, opens a session,
/// streams telemetry, follows the event log from a cursor without gaps, notices a silent or
/// vanished link within seconds, and reconnects with backoff when the port returns.
///
/// Consumers subscribe to `states()`, `telemetry()` and `events()`; the streams outlive
/// reconnections. Commands go through `session()` while the link is up.
public actor PumpConnection {
    public enum State: Sendable, Hashable {
        case connecting
        case up(PumpIdentity)
        /// The session is open, but no proven status has come for `staleAfterIntervals`
        /// telemetry intervals: status is being read with GetStatus (SPEC §5.10).
        case degraded(PumpIdentity, String)
        case down(String)
    }

    public struct Options: Sendable {
        public var session = SessionConfiguration()
        /// Milliseconds between streamed Status frames.
        public var telemetryIntervalMs: UInt32 = 1000
        /// Status is stale after this many intervals without one: the link is then degraded.
        public var staleAfterIntervals = 3
        /// First and longest wait between reconnection attempts.
        public var initialBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(2)
        /// Given to every session (see `PumpSession.BeforeSendingChange`).
        public var beforeSendingChange: PumpSession.BeforeSendingChange?
        /// Checked after each handshake: a reason to refuse the pump that answered (e.g. another
        /// serial number than the one registered), or nil to go on. A refused pump's link is
        /// reported down with the reason and nothing is read from it.
        public var refuseIdentity: (@Sendable (PumpIdentity) -> String?)?
        /// The lowest request id the next session may use, e.g. above every id a previous run
        /// recorded as sent: ids of changing requests must never be used twice, and a request
        /// lost to a crash left no trace in the pump's count. Sessions of this connection
        /// start above the ids of the ones before in any case.
        public var firstRequestID: (@Sendable () -> UInt32)?

        public init() {}
    }

    public let path: String
    private let key: PairingKey
    private let options: Options
    private let open: @Sendable (String) throws -> any ByteLink
    private let logger: Logger

    public private(set) var state: State = .connecting
    /// The sequence number of the last event delivered to `events()` consumers.
    public private(set) var eventCursor: UInt32
    /// Events the pump dropped from its log before they could be read (its log wrapped).
    public private(set) var lostEvents = 0
    private var current: PumpSession?
    /// Where the next session's request ids start: past every id an earlier session used, so
    /// that no id (not even a Hello's, whose late answer may still be on the line) is reused.
    private var nextRequestID: UInt32 = 1
    private var stateSubscribers: [Int: AsyncStream<State>.Continuation] = [:]
    private var statusSubscribers: [Int: AsyncStream<Status>.Continuation] = [:]
    private var eventSubscribers: [Int: AsyncStream<Event>.Continuation] = [:]
    private var serial = 0
    private var syncing = false
    /// When the last proven status arrived, streamed or read, and the last streamed one.
    private var lastStatusAt = ContinuousClock.now
    private var lastStreamedAt = ContinuousClock.now
    private var syncAgain = false

    /// - Parameters:
    ///   - eventCursor: the last event already seen (persisted by the caller), 0 for none.
    ///   - open: opens the port; `SerialPort.open` by default.
    public init(
        path: String,
        key: PairingKey,
        options: Options = Options(),
        eventCursor: UInt32 = 0,
        logger: Logger = Logger(label: "pumplink.connection"),
        open: @escaping @Sendable (String) throws -> any ByteLink = { try SerialPort.open(path: $0) }
    ) {
        self.path = path
        self.key = key
        self.options = options
        self.eventCursor = eventCursor
        self.logger = logger
        self.open = open
    }

    // MARK: Subscriptions

    public func states() -> AsyncStream<State> {
        let (stream, continuation) = AsyncStream.makeStream(of: State.self, bufferingPolicy: .bufferingNewest(8))
        continuation.yield(state)
        stateSubscribers[nextSerial()] = continuation
        return stream
    }

    /// Status from every session, newest first when a consumer lags.
    public func telemetry() -> AsyncStream<Status> {
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(16))
        statusSubscribers[nextSerial()] = continuation
        return stream
    }

    /// Every event after the cursor, once each, in order, across reconnections.
    public func events() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        eventSubscribers[nextSerial()] = continuation
        return stream
    }

    private func nextSerial() -> Int {
        serial += 1
        return serial
    }

    /// The session, if the link is up.
    public func session() throws(SessionError) -> PumpSession {
        guard let current else { throw .notConnected }
        switch state {
        case .up, .degraded: return current
        case .connecting, .down: throw .notConnected
        }
    }

    // MARK: Running

    /// Connects and reconnects until the task is cancelled.
    public func run() async {
        var backoff = options.initialBackoff
        while !Task.isCancelled {
            set(.connecting)
            if let session = await connectOnce() {
                backoff = options.initialBackoff
                await follow(session)
                if Task.isCancelled { break }
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, options.maximumBackoff)
        }
        await current?.close()
        current = nil
        set(.down("stopped"))
        for continuation in stateSubscribers.values { continuation.finish() }
        for continuation in statusSubscribers.values { continuation.finish() }
        for continuation in eventSubscribers.values { continuation.finish() }
    }

    private func connectOnce() async -> PumpSession? {
        let link: any ByteLink
        do {
            link = try open(path)
        } catch {
            set(.down("cannot open \(path): \(error)"))
            return nil
        }
        let session = PumpSession(
            link: link, key: key, configuration: options.session,
            firstRequestID: max(nextRequestID, options.firstRequestID?() ?? 1), logger: logger,
            beforeSendingChange: options.beforeSendingChange)
        do {
            let identity = try await session.connect()
            if let reason = options.refuseIdentity?(identity) {
                await session.close()
                await passRequestIDs(of: session)
                set(.down(reason))
                return nil
            }
            current = session
            let updates = await session.telemetry()
            if await session.isSealed {
                try await session.setTelemetry(intervalMs: options.telemetryIntervalMs)
            }
            set(.up(identity))
            lastStatusAt = .now
            lastStreamedAt = .now
            Task { await self.relay(updates) }
            if options.telemetryIntervalMs > 0 {
                let streamed = await session.isSealed
                Task { await self.superviseStatus(session, identity: identity, streamed: streamed) }
            }
            await syncEvents()
            return session
        } catch {
            await session.close()
            await passRequestIDs(of: session)
            current = nil
            set(.down("no session: \(error)"))
            return nil
        }
    }

    /// Waits until the session's link goes down (or the task is cancelled).
    private func follow(_ session: PumpSession) async {
        let reason = await withTaskCancellationHandler {
            await session.waitUntilDown()
        } onCancel: {
            Task { await session.close() }
        }
        await passRequestIDs(of: session)
        current = nil
        set(.down(reason))
    }

    /// The next session starts past every request id `session` used.
    private func passRequestIDs(of session: PumpSession) async {
        nextRequestID = max(nextRequestID, await session.upcomingRequestID)
    }

    private func relay(_ updates: AsyncStream<Status>) async {
        for await status in updates {
            lastStreamedAt = .now
            await deliver(status)
        }
    }

    /// Status has an age (SPEC §5.10). A sealed link streams it; when nothing has streamed for
    /// `staleAfterIntervals` intervals the link is degraded and status is read with GetStatus
    /// at the interval until the stream resumes. Version 1's stream is not authenticated, so a
    /// version 1 link is read so at every interval, and degraded when those reads fail as long.
    private func superviseStatus(_ session: PumpSession, identity: PumpIdentity, streamed: Bool) async {
        let interval = Duration.milliseconds(Int(options.telemetryIntervalMs))
        let staleAfter = interval * options.staleAfterIntervals
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard await session.isUp, current === session else { return }
            if streamed, ContinuousClock.now - lastStreamedAt < staleAfter {
                if case .degraded = state { set(.up(identity)) }
                continue
            }
            if let status = try? await session.status() { await deliver(status) }
            guard current === session else { return }
            let silence = ContinuousClock.now - (streamed ? lastStreamedAt : lastStatusAt)
            if silence >= staleAfter {
                let what = streamed ? "no status streamed" : "no status read"
                set(.degraded(identity, "\(what) for \(silence.components.seconds) s"))
            } else if case .degraded = state {
                set(.up(identity))
            }
        }
    }

    private func deliver(_ status: Status) async {
        lastStatusAt = .now
        for continuation in statusSubscribers.values { continuation.yield(status) }
        if status.lastEventSequence > eventCursor { await syncEvents() }
    }

    /// Reads events after the cursor and hands them on; one reader at a time.
    public func syncEvents() async {
        guard !syncing else {
            syncAgain = true
            return
        }
        syncing = true
        defer { syncing = false }
        repeat {
            syncAgain = false
            guard let session = current else { return }
            do {
                let (oldest, events) = try await session.readEvents(from: eventCursor &+ 1)
                if oldest > eventCursor &+ 1 {
                    lostEvents += Int(oldest - (eventCursor &+ 1))
                    logger.error("events lost: the pump's log no longer holds them", metadata: [
                        "events.from": "\(eventCursor &+ 1)", "events.to": "\(oldest - 1)",
                    ])
                }
                for event in events where event.sequence > eventCursor {
                    eventCursor = event.sequence
                    for continuation in eventSubscribers.values { continuation.yield(event) }
                }
                // A read takes at most `PumpSession.eventsPerRead`; a full one may have more behind it.
                if events.count >= PumpSession.eventsPerRead { syncAgain = true }
            } catch {
                logger.warning("event sync failed: \(error)")
                return
            }
        } while syncAgain
    }

    private func set(_ new: State) {
        guard new != state else { return }
        state = new
        switch new {
        case .up(let identity): logger.info("link up", metadata: ["device.serial": "\(identity.serialNumber)"])
        case .degraded(_, let reason): logger.warning("link degraded", metadata: ["reason": "\(reason)"])
        case .down(let reason): logger.warning("link down", metadata: ["reason": "\(reason)"])
        case .connecting: break
        }
        for continuation in stateSubscribers.values { continuation.yield(new) }
    }
}
