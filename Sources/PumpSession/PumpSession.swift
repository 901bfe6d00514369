import Logging
import PumpProtocol
import SerialTransport

/// Timing and window settings of a session (SPEC §5, §7).
public struct SessionConfiguration: Sendable, Hashable {
    /// The fixed part of the wait for a response before retransmitting. The whole wait adds the
    /// line time of what must cross the line first (`responseDeadline`, SPEC §7.2).
    public var responseTimeout: Duration = .milliseconds(500)
    /// The line's bit rate, at 10 bits a byte (8N1), for the line-time part of each wait; nil
    /// for a link that has none (memory): then the wait is `responseTimeout` alone.
    public var bitsPerSecond: Int? = 115_200
    /// Sends of one request in all (the first and the retransmissions).
    public var attempts = 4
    /// A Ping goes out when nothing has been received for this long.
    public var keepaliveInterval: Duration = .seconds(1)
    /// The link is declared down when nothing has been received for this long.
    public var linkTimeout: Duration = .seconds(3)
    /// Most requests in flight in a bulk transfer (also capped by the pump's window).
    public var window = 8
    /// The protocol versions offered in Hello (SPEC §5.2). Version 2 seals every frame; a
    /// pump known to speak it should be held to it (`2...2`), so that no one on the line can
    /// talk the link down to version 1.
    public var protocolVersions: ClosedRange<UInt8> = 1...2

    public init() {}

    /// How long a byte count takes on the line; zero without a bit rate.
    public func lineTime(bytes: Int) -> Duration {
        guard let bitsPerSecond, bitsPerSecond > 0 else { return .zero }
        return .microseconds(Int64(bytes) * 10 * 1_000_000 / Int64(bitsPerSecond))
    }

    /// SPEC §7.2: how long to wait for the answer to a request of `requestBytes` line bytes, sent
    /// behind `requestsAhead` outstanding requests of `bytesAhead` line bytes in all: the fixed
    /// part, then the line time of those requests and this one and of a largest answer
    /// (`answerBytes`) to each. Requests and answers cross in opposite directions, so this counts
    /// their time twice at worst; a deadline may be long, never too short.
    public func responseDeadline(requestBytes: Int, requestsAhead: Int, bytesAhead: Int, answerBytes: Int) -> Duration {
        responseTimeout + lineTime(bytes: requestBytes + bytesAhead + (requestsAhead + 1) * answerBytes)
    }
}

/// What the handshake learned about the pump.
public struct PumpIdentity: Sendable, Hashable {
    public var model: String
    public var serialNumber: String
    public var firmwareVersion: String
    public var protocolVersion: UInt8
    public var capabilities: UInt32
    public var reservoirCapacityMicroliters: UInt32
    public var maxPayloadBytes: Int
    public var receiveWindowFrames: Int
}

/// The host side of one link to one pump, from Hello until the link goes down (SPEC §5, §7).
///
/// Matches responses to requests by id, retransmits with the same id after a timeout (the
/// pump's request record makes that safe), authenticates changing requests and checks the
/// pump's answers, pipelines bulk transfers, and says truthfully how each request ended. It
/// runs over any `ByteLink`, so tests drive it over memory and production over a port.
///
/// ```swift
/// let session = PumpSession(link: port, key: key)
/// let identity = try await session.connect()
/// let status = try await session.status()
/// ```
public actor PumpSession {
    public enum LinkState: Sendable, Hashable {
        case idle
        case up
        case down(String)
    }

    public struct Counters: Sendable, Hashable {
        public init() {}
        public var framesSent = 0
        public var framesReceived = 0
        public var retransmissions = 0
        public var checkFailures = 0
        public var discardedCandidates = 0
        /// Frames that did not authenticate or open: forged, replayed, altered, other keys.
        public var authenticationFailures = 0
    }

    public nonisolated let link: any ByteLink
    public let key: PairingKey
    public let configuration: SessionConfiguration
    private let logger: Logger
    private let beforeSendingChange: BeforeSendingChange?

    /// Called once for each changing request, with its id and type, before it is first sent; if
    /// it throws, the request is not sent (`SessionError.notSent`). The daemon records the id
    /// here, so a crash between sending and recording the outcome cannot hide the send.
    public typealias BeforeSendingChange = @Sendable (UInt32, MessageType) throws -> Void

    public private(set) var state: LinkState = .idle
    public private(set) var identity: PumpIdentity?
    public private(set) var hello: HelloResponse?
    public private(set) var counters = Counters()
    /// Messages the pump was built from other definitions of (SPEC §5.4): never sent, and
    /// their answers never accepted.
    public private(set) var incompatibleMessages: Set<MessageType> = []

    private var protection: Protection?
    private var encoder = FrameEncoder()
    private var nextRequestID: UInt32
    private var waiters: [UInt32: Waiter] = [:]
    /// Requests being exchanged (id → line bytes of the request), and responses that arrived
    /// while no one was waiting yet (a fast pump can answer before `send` returns).
    private var outstanding: [UInt32: Int] = [:]
    private var early: [UInt32: Frame] = [:]
    private var downWaiters: [CheckedContinuation<String, Never>] = []
    private var changingBusy = false
    private var changingQueue: [CheckedContinuation<Void, Never>] = []
    private var waiterSerial = 0
    private var telemetrySubscribers: [Int: AsyncStream<Status>.Continuation] = [:]
    private var subscriberSerial = 0
    private var lastReceived = ContinuousClock.now
    private var readerTask: Task<Void, Never>?
    /// Frames waiting to be written, in the order they were protected (see `transmit`).
    private var outbox: [(bytes: [UInt8], done: CheckedContinuation<Bool, Never>?)] = []
    private var draining = false
    private var keepaliveTask: Task<Void, Never>?

    /// How the session's frames are protected: version 1 tags, or the version 2 sealed channel.
    private enum Protection {
        case tagged(FrameAuthenticator)
        case sealed(SecureChannel)
    }

    /// Whether every frame of the session is sealed (protocol version 2).
    public var isSealed: Bool {
        if case .sealed = protection { return true }
        return false
    }

    private struct Waiter {
        var serial: Int
        var continuation: CheckedContinuation<Frame?, Never>
    }

    /// - Parameter firstRequestID: where request ids start; the handshake raises it above the
    ///   pump's last executed id.
    public init(
        link: any ByteLink,
        key: PairingKey,
        configuration: SessionConfiguration = SessionConfiguration(),
        firstRequestID: UInt32 = 1,
        logger: Logger = Logger(label: "pumplink.session"),
        beforeSendingChange: BeforeSendingChange? = nil
    ) {
        self.link = link
        self.key = key
        self.configuration = configuration
        self.nextRequestID = max(firstRequestID, 1)
        self.logger = logger
        self.beforeSendingChange = beforeSendingChange
    }

    // MARK: Handshake

    /// Opens the session: Hello, version, definitions and key checks, identity (SPEC §5).
    @discardableResult
    public func connect(hostTimeMs: UInt64 = 0) async throws(SessionError) -> PumpIdentity {
        startReader()
        var generator = SystemRandomNumberGenerator()
        let hostNonce = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let versions = configuration.protocolVersions
        let request = HelloRequest(
            protocolVersionMin: versions.lowerBound,
            protocolVersionMax: min(versions.upperBound, ProtocolDefinitions.version),
            capabilities: 0b111,
            definitionsHash: ProtocolDefinitions.hash,
            hostNonce: hostNonce,
            hostTimeMs: hostTimeMs
        )
        var writer = WireWriter()
        request.encode(into: &writer)
        let requestPayload = writer.bytes
        let key = self.key
        let frame = try await exchange(request, changing: false) { frame in
            // The answer is tagged for the version it chose: version 2 over the whole exchange,
            // version 1 under the new session's nonces (SPEC §8.2, §8.3).
            guard let payload = try? HelloResponse(payload: frame.payload) else { return true }
            guard frame.header.version == 1 else { return false }
            if payload.protocolVersion >= 2 {
                return FrameAuthenticator(key: key, helloRequestPayload: requestPayload).isAuthentic(frame)
            }
            return FrameAuthenticator(key: key, hostNonce: hostNonce, pumpNonce: payload.pumpNonce).isAuthentic(frame)
        }
        let response: HelloResponse = try decode(frame, as: HelloResponse.self)
        guard versions ~= response.protocolVersion, response.protocolVersion <= ProtocolDefinitions.version else {
            throw .unsupportedVersion(pumpChose: response.protocolVersion)
        }
        if response.protocolVersion >= 2, let tag = frame.tag {
            protection = .sealed(SecureChannel(
                key: key, helloRequestPayload: requestPayload, helloAnswerPacket: frame.packet,
                helloAnswerTag: tag, side: .host))
        } else {
            protection = .tagged(FrameAuthenticator(key: key, hostNonce: hostNonce, pumpNonce: response.pumpNonce))
        }
        nextRequestID = max(nextRequestID, response.lastExecutedRequestId &+ 1)
        if response.definitionsHash != ProtocolDefinitions.hash {
            // Built from other definitions: learn which messages differ, and use only the others.
            let differing: Set<MessageType>
            do {
                let answer = try decode(try await exchange(DefinitionsRequest(), changing: false), as: DefinitionsResponse.self)
                differing = MessageDefinitions.current.differing(from: answer.fingerprints)
            } catch {
                protection = nil
                throw .definitionsMismatch(pump: response.definitionsHash)
            }
            guard differing.isDisjoint(with: [.hello, .error, .definitions]) else {
                protection = nil
                throw .definitionsMismatch(pump: response.definitionsHash)
            }
            incompatibleMessages = differing
            logger.warning("the pump was built from other definitions of some messages; they are not used", metadata: [
                "messages": "\(differing.map(\.name).sorted().joined(separator: ", "))",
            ])
        }
        hello = response
        let identity = PumpIdentity(
            model: response.model,
            serialNumber: response.serialNumber,
            firmwareVersion: response.firmwareVersion,
            protocolVersion: response.protocolVersion,
            capabilities: response.capabilities,
            reservoirCapacityMicroliters: response.reservoirCapacityMicroliters,
            maxPayloadBytes: Int(response.maxPayloadBytes),
            receiveWindowFrames: Int(response.receiveWindowFrames)
        )
        self.identity = identity
        state = .up
        startKeepalive()
        logger.debug("session up", metadata: ["device.serial": "\(response.serialNumber)"])
        return identity
    }

    /// Ends the session and closes the link.
    public func close() {
        linkDown(Self.closedByHost)
    }

    private static let closedByHost = "closed by the host"

    // MARK: Requests

    /// Sends a request and returns the pump's response of the matching type.
    ///
    /// Requests that change the pump are authenticated; all are retransmitted with the same id
    /// until answered. A changing request left unanswered throws `.uncertain`, a read
    /// `.timedOut`, a refusal `.refused`.
    public func request<Request: MessagePayload, Response: MessagePayload>(
        _ request: Request,
        expecting _: Response.Type = Response.self
    ) async throws(SessionError) -> Response {
        guard state == .up else { throw .notConnected }
        guard !incompatibleMessages.contains(Request.messageType) else { throw .messageDefinitionDiffers(Request.messageType) }
        let changing = Request.messageType.requiresAuthentication
        if changing {
            // One changing request at a time (SPEC §7.3): a lost one can then never be made
            // stale by a later one without this session knowing.
            await acquireChangingTurn()
        }
        defer { if changing { releaseChangingTurn() } }
        let frame = try await exchange(request, changing: changing)
        return try decode(frame, as: Response.self)
    }

    /// Sends any request and returns the pump's response as a `Message`, under the same rules
    /// as `request(_:expecting:)`: for tools that replay recorded requests.
    public func send(_ request: some MessagePayload) async throws(SessionError) -> Message {
        guard state == .up else { throw .notConnected }
        let type = type(of: request).messageType
        guard !incompatibleMessages.contains(type) else { throw .messageDefinitionDiffers(type) }
        let changing = type.requiresAuthentication
        if changing { await acquireChangingTurn() }
        defer { if changing { releaseChangingTurn() } }
        let frame = try await exchange(request, changing: changing)
        do {
            return try frame.message()
        } catch .payload(let type, let error) {
            throw .malformedResponse(type, error)
        } catch {
            throw .unexpectedResponse(type, received: frame.header.messageType)
        }
    }

    private func acquireChangingTurn() async {
        guard changingBusy else {
            changingBusy = true
            return
        }
        await withCheckedContinuation { changingQueue.append($0) }
    }

    private func releaseChangingTurn() {
        if changingQueue.isEmpty {
            changingBusy = false
        } else {
            changingQueue.removeFirst().resume()
        }
    }

    /// The request id the next request will carry.
    public var upcomingRequestID: UInt32 { nextRequestID }

    /// Sends `request` until an answer to it arrives or the attempts run out. After Hello every
    /// request is protected (sealed in version 2, tagged in version 1) and `received` passes on
    /// only answers that proved themselves, so whatever this returns the pump has proven; during
    /// Hello, `accept` checks the answer.
    private func exchange<Request: MessagePayload>(
        _ request: Request,
        changing: Bool,
        accept: ((Frame) -> Bool)? = nil
    ) async throws(SessionError) -> Frame {
        let requestID = nextRequestID
        nextRequestID &+= 1
        if nextRequestID == 0 { nextRequestID = 1 }
        if Request.messageType != .hello && protection == nil { throw .notConnected }
        var bytes = try encodeRequest(request, requestID: requestID)
        if changing, let beforeSendingChange {
            do {
                try beforeSendingChange(requestID, Request.messageType)
            } catch {
                throw .notSent(Request.messageType, "\(error)")
            }
        }
        outstanding[requestID] = bytes.count
        defer {
            outstanding[requestID] = nil
            early[requestID] = nil
        }
        var sentOnce = false
        // Answers set aside: a late answer to another session's request under the same id
        // (still on the line after a restart) fails the check or has another type. Only when
        // nothing else came do they become the outcome.
        var failedCheck = false
        var otherType: UInt8?
        for attempt in 0..<configuration.attempts {
            if case .down = state { break }
            // A sealed retransmission is sealed again under a new counter (SPEC §8.4).
            if attempt > 0, isSealed { bytes = try encodeRequest(request, requestID: requestID) }
            guard await transmit(bytes) else { break }
            sentOnce = true
            counters.framesSent += 1
            if attempt > 0 { counters.retransmissions += 1 }
            // Every other outstanding request is ahead of this send: earlier ones, and for a
            // retransmission the later ones too.
            var requestsAhead = 0
            var bytesAhead = 0
            for (id, count) in outstanding where id != requestID {
                requestsAhead += 1
                bytesAhead += count
            }
            // One deadline per attempt: a frame that is not the answer never extends it.
            let deadline = ContinuousClock.now + configuration.responseDeadline(
                requestBytes: bytes.count, requestsAhead: requestsAhead, bytesAhead: bytesAhead,
                answerBytes: largestAnswerLineBytes)
            while let frame = await waitForResponse(requestID, until: deadline) {
                if let accept, !accept(frame) {
                    counters.authenticationFailures += 1
                    failedCheck = true
                    continue
                }
                if frame.header.messageType == MessageType.error.rawValue {
                    let error = try decode(frame, as: ErrorResponse.self)
                    // An Error names the request type it answers; one naming another type
                    // answers something else.
                    guard error.requestType == Request.messageType.rawValue else {
                        otherType = frame.header.messageType
                        continue
                    }
                    throw .refused(error.code, detail: error.detail, Request.messageType)
                }
                guard frame.header.messageType == Request.messageType.rawValue else {
                    otherType = frame.header.messageType
                    continue
                }
                return frame
            }
        }
        if changing && sentOnce { throw .uncertain(requestID: requestID, Request.messageType) }
        if failedCheck { throw .authenticationFailed }
        if let otherType { throw .unexpectedResponse(Request.messageType, received: otherType) }
        if case .down = state { throw .notConnected }
        throw .timedOut(Request.messageType)
    }

    /// The line form of a request under the session's protection (Hello in clear).
    private func encodeRequest<Request: MessagePayload>(_ request: Request, requestID: UInt32) throws(SessionError) -> [UInt8] {
        var bytes: [UInt8] = []
        do {
            switch protection {
            case .sealed(var channel) where Request.messageType != .hello:
                try encoder.encode(request, requestID: requestID, sealingWith: &channel, into: &bytes)
                protection = .sealed(channel)
            case .tagged(let authenticator) where Request.messageType != .hello:
                try encoder.encode(request, requestID: requestID, authenticator: authenticator, into: &bytes)
            default:
                try encoder.encode(request, requestID: requestID, into: &bytes)
            }
        } catch .outOfRange(field: "counter", _) {
            // 2^64 frames in one session: it must be renewed.
            linkDown("the session's frame counter is spent")
            throw .notConnected
        } catch {
            preconditionFailure("a request failed its own validation: \(error)")
        }
        return bytes
    }

    /// Writes `bytes` after every frame protected before it; false if the link failed. Sealed
    /// frames must reach the pump in the order of their counters (a lower counter after a
    /// higher one is refused as replayed, SPEC §8.4), and concurrent `link.send` calls from
    /// this actor may run in any order, so one drain writes them one at a time.
    private func transmit(_ bytes: [UInt8]) async -> Bool {
        await withCheckedContinuation { enqueue(bytes, done: $0) }
    }

    private func enqueue(_ bytes: [UInt8], done: CheckedContinuation<Bool, Never>?) {
        guard !isDown else {
            done?.resume(returning: false)
            return
        }
        outbox.append((bytes, done))
        guard !draining else { return }
        draining = true
        Task { await self.drain() }
    }

    private func drain() async {
        while !outbox.isEmpty {
            let (bytes, done) = outbox.removeFirst()
            do {
                try await link.send(bytes)
                done?.resume(returning: true)
            } catch {
                done?.resume(returning: false)
                linkDown("send failed: \(error)")
            }
        }
        draining = false
    }

    private var isDown: Bool {
        if case .down = state { return true }
        return false
    }

    private func decode<Response: MessagePayload>(_ frame: Frame, as _: Response.Type) throws(SessionError) -> Response {
        do {
            return try Response(payload: frame.payload)
        } catch {
            throw .malformedResponse(Response.messageType, error)
        }
    }

    /// The most line bytes one answer of this pump can take: its largest packet (the payload
    /// limit it stated at Hello, at most the protocol's), in COBS, with both delimiters.
    private var largestAnswerLineBytes: Int {
        let payload = min(identity?.maxPayloadBytes ?? FrameLayout.maxPayloadLength, FrameLayout.maxPayloadLength)
        let counter = isSealed ? FrameLayout.counterLength : 0
        let packet = FrameLayout.headerLength + min(payload + counter, FrameLayout.maxPayloadLength)
            + FrameLayout.tagLength + FrameLayout.checkLength
        return packet + packet / 254 + 1 + 2
    }

    /// The next response frame for `requestID`, or nil at `deadline` or when the link goes down.
    private func waitForResponse(_ requestID: UInt32, until deadline: ContinuousClock.Instant) async -> Frame? {
        if case .down = state { return nil }
        if let early = early.removeValue(forKey: requestID) { return early }
        guard deadline > .now else { return nil }
        waiterSerial += 1
        let serial = waiterSerial
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            await self?.expire(requestID, serial: serial)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            waiters[requestID] = Waiter(serial: serial, continuation: continuation)
        }
    }

    private func expire(_ requestID: UInt32, serial: Int) {
        guard let waiter = waiters[requestID], waiter.serial == serial else { return }
        waiters[requestID] = nil
        waiter.continuation.resume(returning: nil)
    }

    // MARK: Receiving

    private func startReader() {
        guard readerTask == nil else { return }
        let link = self.link
        readerTask = Task { [weak self] in
            var decoder = FrameDecoder()
            do {
                for try await chunk in link.incoming {
                    var frames: [Frame] = []
                    var discarded: [FrameError] = []
                    decoder.decode(chunk) { event in
                        switch event {
                        case .frame(let frame): frames.append(frame)
                        case .discarded(let error): discarded.append(error)
                        }
                    }
                    guard let self else { return }
                    await self.received(frames, discarded: discarded)
                }
                await self?.linkDown("link closed")
            } catch {
                await self?.linkDown("link lost: \(error)")
            }
        }
    }

    private func received(_ frames: [Frame], discarded: [FrameError]) {
        for error in discarded {
            counters.discardedCandidates += 1
            if case .checkFailed = error { counters.checkFailures += 1 }
        }
        for var frame in frames {
            guard frame.header.isResponse else { continue }
            // After Hello only what the pump proved counts, for answers and for the link's
            // liveness alike: a forged or replayed frame neither answers a request, nor
            // restarts a wait, nor keeps a dead link "up" (SPEC §8.4, §8.5).
            switch protection {
            case .sealed(var channel):
                do {
                    frame = try channel.open(frame)
                } catch {
                    counters.authenticationFailures += 1
                    continue
                }
                protection = .sealed(channel)
            case .tagged(let authenticator):
                // Version 1's unsolicited Status is untagged: it proves nothing, and is not
                // used (PumpConnection reads an authenticated GetStatus instead).
                guard frame.header.requestID != 0, authenticator.isAuthentic(frame) else {
                    counters.authenticationFailures += 1
                    continue
                }
            case nil:
                break  // Hello: its answer is checked by the exchange.
            }
            counters.framesReceived += 1
            lastReceived = .now
            if frame.header.requestID == 0 {
                if isSealed { unsolicited(frame) }
            } else if let waiter = waiters.removeValue(forKey: frame.header.requestID) {
                waiter.continuation.resume(returning: frame)
            } else if outstanding[frame.header.requestID] != nil {
                early[frame.header.requestID] = frame
            }
        }
    }

    private func unsolicited(_ frame: Frame) {
        guard frame.header.messageType == MessageType.getStatus.rawValue, !incompatibleMessages.contains(.getStatus),
              let response = try? GetStatusResponse(payload: frame.payload)
        else { return }
        for subscriber in telemetrySubscribers.values {
            subscriber.yield(response.status)
        }
    }

    /// Status frames the pump streams (after `setTelemetry`; sealed sessions only), for any
    /// number of consumers. A slow consumer loses old statuses, never stalls the link.
    public func telemetry() -> AsyncStream<Status> {
        subscriberSerial += 1
        let serial = subscriberSerial
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(16))
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(serial) }
        }
        if case .down = state {
            continuation.finish()
        } else {
            telemetrySubscribers[serial] = continuation
        }
        return stream
    }

    private func unsubscribe(_ serial: Int) {
        telemetrySubscribers[serial] = nil
    }

    // MARK: Link supervision

    private func startKeepalive() {
        keepaliveTask?.cancel()
        let interval = configuration.keepaliveInterval
        keepaliveTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, await self.keepaliveTick() else { return }
            }
        }
    }

    /// Pings an idle link and declares a silent one down. False once the link is down.
    private func keepaliveTick() -> Bool {
        guard state == .up else { return false }
        let silence = ContinuousClock.now - lastReceived
        // On a slow line one largest answer alone may take longer than the link timeout.
        if silence >= configuration.linkTimeout + configuration.lineTime(bytes: largestAnswerLineBytes) {
            linkDown("no frame from the pump for \(silence)")
            return false
        }
        if silence >= configuration.keepaliveInterval {
            // A Ping with its own id, protected like every request; its answer only
            // refreshes `lastReceived`.
            let requestID = nextRequestID
            nextRequestID &+= 1
            if nextRequestID == 0 { nextRequestID = 1 }
            if let bytes = try? encodeRequest(PingRequest(echo: UInt64(requestID)), requestID: requestID) {
                enqueue(bytes, done: nil)
            }
        }
        return true
    }

    private func linkDown(_ reason: String) {
        if case .down = state { return }
        if state == .up && reason != Self.closedByHost {
            logger.warning("link down", metadata: ["reason": "\(reason)"])
        }
        state = .down(reason)
        link.close()
        for (_, done) in outbox { done?.resume(returning: false) }
        outbox.removeAll()
        keepaliveTask?.cancel()
        for waiter in waiters.values { waiter.continuation.resume(returning: nil) }
        waiters.removeAll()
        for subscriber in telemetrySubscribers.values { subscriber.finish() }
        telemetrySubscribers.removeAll()
        for waiter in downWaiters { waiter.resume(returning: reason) }
        downWaiters.removeAll()
    }

    public var isUp: Bool { state == .up }

    /// Returns once the link is down, with the reason.
    public func waitUntilDown() async -> String {
        if case .down(let reason) = state { return reason }
        return await withCheckedContinuation { downWaiters.append($0) }
    }
}
