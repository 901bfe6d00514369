import PumpEmulator
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// What the pump's request record tells about a request whose answer was lost (SPEC §7.4).
@Suite("Resolving uncertain requests")
struct ResolutionTests {
    /// No keepalive Pings: each takes a request id, and a starved test could see one's id
    /// where it reads the id of the request it just made.
    static let noPings: SessionConfiguration = {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .seconds(3600)
        return configuration
    }()

    /// A refusal is remembered like any answer; resolving it must not read as "executed".
    @Test func aRefusedRequestResolvesAsRefused() async throws {
        let rig = MemoryRig.make(configuration: Self.noPings)
        try await rig.session.connect()
        _ = try await rig.session.suspend()
        // Suspending a suspended pump is not refused (it logs nothing); resuming twice is.
        _ = try await rig.session.resume()
        await #expect(throws: SessionError.self) { try await rig.session.resume() }
        let refusedID = await rig.session.upcomingRequestID - 1
        let resolution = try await rig.session.resolve(requestID: refusedID)
        guard case .refused(let answer) = resolution else {
            Issue.record("resolved as \(resolution), not refused")
            await rig.stop()
            return
        }
        #expect(answer.code == .therapyNotSuspended)
        await rig.stop()
    }

    /// Ids the host used but the pump never received (a host killed after choosing them) lie
    /// below the pump's last executed id; its record still covers them, so they were never run.
    @Test func anIdTheRecordCoversButDoesNotHoldWasNeverReceived() async throws {
        let rig = MemoryRig.make(configuration: Self.noPings)
        try await rig.session.connect()
        _ = try await rig.session.suspend()
        let skipped = await rig.session.upcomingRequestID
        await rig.stop()

        // The next session starts five ids further on, as one would after a lost request.
        let (hostEnd, pumpEnd) = MemoryPipe.makePair()
        let serving = Task { await rig.pump.serve(pumpEnd) }
        let session = PumpSession(link: hostEnd, key: rig.key, firstRequestID: skipped + 5)
        try await session.connect()
        _ = try await session.resume()
        let resolution = try await session.resolve(requestID: skipped + 2)
        #expect(resolution == .notExecuted)
        // Above the last executed id: plainly never received.
        #expect(try await session.resolve(requestID: skipped + 1_000) == .notExecuted)
        await session.close()
        await serving.value
    }
}
