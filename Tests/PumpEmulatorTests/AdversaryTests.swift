import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// Attacks from the line by someone without the key (SPEC §8.7), against the real session and
/// the emulated pump: each of them worked against the version 1 host, which acted on whatever
/// frame came with the right request id.
@Suite("An adversary on the line, without the key", .timeLimit(.minutes(1)))
struct AdversaryTests {
    /// No keepalive Pings: the tests read the next request id and must own it.
    static var quiet: SessionConfiguration {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .seconds(3600)
        configuration.linkTimeout = .seconds(3600)
        configuration.responseTimeout = .milliseconds(300)
        return configuration
    }

    static let bolus = ClinicianBolusRequest(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10)

    /// The double dose: the answer to an executed bolus is dropped, and the answer to the
    /// host's question "did it run?" is forged as "not remembered". The host must never take
    /// that for "not executed"; the pump's own, sealed answer says it ran.
    @Test("a forged query answer cannot make an executed bolus look not executed", arguments: [1, 2] as [UInt8])
    func aForgedQueryAnswerCannotMakeAnExecutedBolusLookNotExecuted(version: UInt8) async throws {
        let rig = AdversaryRig.make(pumpVersions: version...version, configuration: Self.quiet)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        let bolusID = await rig.session.upcomingRequestID
        rig.adversary.setRule { frame, line, direction in
            direction == .toHost && frame?.header.requestID == bolusID ? [] : [line]
        }
        await #expect(throws: SessionError.uncertain(requestID: bolusID, .clinicianBolus)) {
            _ = try await rig.session.clinicianBolus(Self.bolus)
        }
        // The pump delivered it once.
        #expect(await rig.pumpEvents().filter { $0.kind == .bolusStarted && $0.requestId == bolusID }.count == 1)

        // Every answer to the query is replaced by forgeries: in clear, and "sealed" with junk.
        let queryID = await rig.session.upcomingRequestID
        let forged = QueryRequestResponse(
            requestId: bolusID, state: .notRemembered, lastExecutedRequestId: bolusID - 1,
            oldestRememberedRequestId: bolusID + 1, responseType: 0, responsePayload: [])
        let forgeries = [
            LineAdversary.clearFrame(forged, requestID: queryID),
            LineAdversary.fakeSealed(type: .queryRequest, requestID: queryID, response: true),
        ]
        #expect(forgeries.allSatisfy { !$0.isEmpty })
        rig.adversary.setRule { frame, line, direction in
            direction == .toHost && frame?.header.requestID == queryID ? forgeries : [line]
        }
        await #expect(throws: SessionError.timedOut(.queryRequest)) {
            _ = try await rig.session.resolve(requestID: bolusID)
        }
        #expect(await rig.session.counters.authenticationFailures >= 2)

        // With the line clear again the pump's own answer comes through: it ran.
        rig.adversary.setRule(LineAdversary.forwardAll)
        guard case .executed(.clinicianBolusResponse(let answer)) = try await rig.session.resolve(requestID: bolusID) else {
            Issue.record("the executed bolus was not resolved as executed")
            return
        }
        #expect(answer.doseMicrograms == 100)
    }

    /// Forged unsolicited Status (an alarm masked, an impossible reservoir) never reaches the
    /// host's telemetry; the pump's own sealed Status does.
    @Test func forgedStatusNeverReachesTheTelemetry() async throws {
        let rig = AdversaryRig.make(configuration: Self.quiet)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        var forgedStatus = await rig.pump.status()
        forgedStatus.reservoirMicroliters = 7
        forgedStatus.alarmConditionMask = 0
        let forged = GetStatusResponse(status: forgedStatus)
        // After every genuine Status, two forgeries: in clear, and under a fake seal.
        rig.adversary.setRule { frame, line, direction in
            guard direction == .toHost, frame?.header.requestID == 0 else { return [line] }
            return [line, LineAdversary.clearFrame(forged, requestID: 0),
                    LineAdversary.fakeSealed(type: .getStatus, requestID: 0, response: true)]
        }
        let telemetry = await rig.session.telemetry()
        try await rig.session.setTelemetry(intervalMs: 50)
        var received: [Status] = []
        for await status in telemetry {
            received.append(status)
            if received.count == 6 { break }
        }
        #expect(received.allSatisfy { $0.reservoirMicroliters != 7 })
        #expect(await rig.session.counters.authenticationFailures >= 10)
    }

    /// A sealed Suspend recorded on the line and sent again later is dropped by the pump: it
    /// does not open (its counter is spent), and nothing is executed.
    @Test func aReplayedSealedRequestIsNotExecuted() async throws {
        let rig = AdversaryRig.make(configuration: Self.quiet)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        _ = try await rig.session.suspend()
        _ = try await rig.session.resume()
        // Every sealed request that crossed the line: Suspend and Resume among them.
        let suspends = rig.adversary.frames.filter { $0.0 == .toPump && $0.1.header.isSealed }
        #expect(suspends.count >= 2)
        for (_, frame) in suspends {
            await rig.adversary.inject(LineAdversary.line(of: frame), .toPump)
        }
        let status = try await rig.session.status()
        #expect(status.therapyState == .running)
        #expect(await rig.pumpEvents().filter { $0.kind == .suspended }.count == 1)
        #expect(await rig.pump.framesNotOpened >= suspends.count)
    }

    /// Junk frames carrying the awaited request id, one every 50 ms, used to restart the wait for
    /// the answer each time, forever. A request's wait now ends on time.
    @Test("junk carrying the awaited id does not extend the wait", arguments: [1, 2] as [UInt8])
    func junkCarryingTheAwaitedIdDoesNotExtendTheWait(version: UInt8) async throws {
        var configuration = Self.quiet
        configuration.attempts = 2
        let rig = AdversaryRig.make(pumpVersions: version...version, configuration: configuration)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        try await rig.session.setTelemetry(intervalMs: 50)
        let readID = await rig.session.upcomingRequestID
        let junk = LineAdversary.clearFrame(
            ErrorResponse(requestType: MessageType.getStatus.rawValue, code: .busy, detail: 0), requestID: readID)
        // The genuine answers are dropped; each Status streamed (every 50 ms) brings junk along.
        rig.adversary.setRule { frame, line, direction in
            guard direction == .toHost, let frame else { return [line] }
            if frame.header.requestID == readID { return [] }
            return frame.header.requestID == 0 ? [line, junk, LineAdversary.fakeSealed(type: .getStatus, requestID: readID, response: true)] : [line]
        }
        let start = ContinuousClock.now
        await #expect(throws: SessionError.timedOut(.getStatus)) {
            _ = try await rig.session.status()
        }
        // Two attempts of 300 ms each, with room for a loaded machine; never minutes.
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    /// Forged answers to the keepalive Pings, while the pump is cut off, used to keep the link
    /// "up" for ever. Only proven frames count as signs of life.
    @Test("forged Ping answers do not keep a dead link up", arguments: [1, 2] as [UInt8])
    func forgedPingAnswersDoNotKeepADeadLinkUp(version: UInt8) async throws {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .milliseconds(100)
        configuration.linkTimeout = .milliseconds(500)
        let rig = AdversaryRig.make(pumpVersions: version...version, configuration: configuration)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        // The pump is cut off both ways; each Ping is answered by the adversary, in clear and
        // under a fake seal.
        rig.adversary.setRule { _, _, _ in [] }
        rig.adversary.setReply { frame, _, direction in
            guard direction == .toPump, let frame, frame.header.messageType == MessageType.ping.rawValue else { return [] }
            let id = frame.header.requestID
            return [
                LineAdversary.clearFrame(PingResponse(echo: UInt64(id)), requestID: id),
                LineAdversary.fakeSealed(type: .ping, requestID: id, response: true),
            ]
        }
        let reason = await rig.session.waitUntilDown()
        #expect(reason.contains("no frame from the pump"))
        #expect(await rig.session.counters.authenticationFailures >= 2)
    }

    /// Talking the link down to version 1 by rewriting the Hello request fails against a host
    /// that holds the pump to version 2; a stripped capability fails the answer's tag.
    @Test func aRewrittenHelloRequestIsRefused() async throws {
        var pinned = Self.quiet
        pinned.protocolVersions = 2...2
        let downgrade = AdversaryRig.make(pumpVersions: 1...2, configuration: pinned)
        defer { Task { await downgrade.stop() } }
        // Hello request payload: versionMin at 9, versionMax at 10 (after the 9-byte header).
        downgrade.adversary.setRule { frame, line, direction in
            guard direction == .toPump, frame?.header.messageType == MessageType.hello.rawValue else { return [line] }
            return [LineAdversary.rewritten(line) { $0[9] = 1; $0[10] = 1 }]
        }
        await #expect(throws: SessionError.unsupportedVersion(pumpChose: 1)) {
            try await downgrade.session.connect()
        }

        var configuration = Self.quiet
        configuration.attempts = 2
        let stripped = AdversaryRig.make(pumpVersions: 1...2, configuration: configuration)
        defer { Task { await stripped.stop() } }
        stripped.adversary.setRule { frame, line, direction in
            guard direction == .toPump, frame?.header.messageType == MessageType.hello.rawValue else { return [line] }
            return [LineAdversary.rewritten(line) { $0[11] &= ~0x04 }]  // capabilities: no QueryRequest
        }
        await #expect(throws: SessionError.authenticationFailed) {
            try await stripped.session.connect()
        }
    }

    /// A stream of status silenced on the line (the pump looks fine while an alarm goes unseen)
    /// makes the link degraded within a few intervals; status is then read with GetStatus, and
    /// the link is up again once the stream resumes.
    @Test func aSilencedStatusStreamDegradesTheLinkAndStatusIsReadInstead() async throws {
        let rig = AdversaryRig.make(configuration: Self.quiet)
        defer { Task { await rig.stop() } }
        var options = PumpConnection.Options()
        options.session = Self.quiet
        options.session.bitsPerSecond = nil
        options.telemetryIntervalMs = 50
        let hostEnd = rig.hostEnd
        let connection = PumpConnection(path: "adversary", key: rig.key, options: options, open: { _ in hostEnd })
        let states = await connection.states()
        let telemetry = await connection.telemetry()
        let running = Task { await connection.run() }
        defer { running.cancel() }
        var iterator = states.makeAsyncIterator()
        while let state = await iterator.next() {
            if case .up = state { break }
        }
        rig.adversary.setRule { frame, line, direction in
            direction == .toHost && frame?.header.requestID == 0 ? [] : [line]
        }
        var reason: String?
        while let state = await iterator.next() {
            if case .degraded(_, let why) = state {
                reason = why
                break
            }
        }
        #expect(reason?.contains("no status streamed") == true)
        // While degraded, status still comes: read with GetStatus.
        await rig.pump.withDevice { device, now in device.inject(.motorStall, nowMs: now) }
        for await status in telemetry where status.alarmConditionMask & (1 << UInt32(AlarmCode.motorStall.rawValue)) != 0 {
            break
        }
        rig.adversary.setRule(LineAdversary.forwardAll)
        var recovered = false
        while let state = await iterator.next() {
            if case .up = state {
                recovered = true
                break
            }
        }
        #expect(recovered)
    }
}
