import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

@Suite("Session over a lossy link")
struct ReliabilityTests {
    private var fastRetries: SessionConfiguration {
        var configuration = SessionConfiguration()
        configuration.responseTimeout = .milliseconds(60)
        configuration.attempts = 8
        configuration.keepaliveInterval = .seconds(5)
        configuration.linkTimeout = .seconds(30)
        return configuration
    }

    /// Changing commands through 1 % byte loss and bit errors both ways: every command the
    /// session reports done ran exactly once, every uncertain one is resolved from the pump's
    /// record, and the pump's log holds each request at most once.
    @Test func noDoubleExecutionUnderLoss() async throws {
        let faults = try LinkFaultSettings(parsing: "seed=11,drop=0.01,ber=0.0005,dup=0.05,garbage=0.05")
        let rig = MemoryRig.make(faults: faults, configuration: fastRetries)
        defer { Task { await rig.stop() } }
        var connected = false
        for _ in 0..<20 where !connected {
            connected = (try? await rig.session.connect()) != nil
        }
        try #require(connected)
        var reported = 0
        var uncertain: [UInt32] = []
        for index in 0..<60 {
            do {
                // A suspend of a suspended pump succeeds and logs nothing (event sequence 0).
                let sequence = index % 2 == 0
                    ? try await rig.session.suspend().eventSequence : try await rig.session.resume().eventSequence
                if sequence != 0 { reported += 1 }
            } catch {
                switch error {
                case .uncertain(let id, _):
                    uncertain.append(id)
                case .refused(.therapyNotRunning, _, _), .refused(.therapyNotSuspended, _, _):
                    // The previous command was uncertain and did not run, so the state is not
                    // what this one expects. A refusal changes nothing.
                    break
                default:
                    throw error
                }
            }
        }
        var resolvedExecuted = 0
        for id in uncertain {
            var resolution: PumpSession.Resolution?
            for _ in 0..<10 where resolution == nil { resolution = try? await rig.session.resolve(requestID: id) }
            switch try #require(resolution) {
            case .executed(.suspendResponse(let response)) where response.eventSequence != 0: resolvedExecuted += 1
            case .executed(.resumeResponse(let response)) where response.eventSequence != 0: resolvedExecuted += 1
            default: break
            }
        }
        let events = await rig.pumpEvents().filter { $0.kind == .suspended || $0.kind == .resumed }
        let ids = events.map(\.requestId)
        #expect(Set(ids).count == ids.count, "a request ran twice")
        #expect(events.count == reported + resolvedExecuted)
        let counts = await rig.pump.faultCounts
        #expect(counts.bytesDropped > 0)
        #expect(await rig.session.counters.retransmissions > 0)
    }

    @Test func aSilentPumpIsReportedDownWithinSeconds() async throws {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .milliseconds(300)
        configuration.linkTimeout = .seconds(1)
        let rig = MemoryRig.make(configuration: configuration)
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        await rig.pump.setFaults(try LinkFaultSettings(parsing: "silent"))
        let start = ContinuousClock.now
        while await rig.session.isUp, ContinuousClock.now - start < .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = ContinuousClock.now - start
        #expect(!(await rig.session.isUp))
        #expect(elapsed < .seconds(2))
        await #expect(throws: SessionError.notConnected) { try await rig.session.status() }
    }

    @Test func aHungUpLinkEndsTheSession() async throws {
        let rig = MemoryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        await rig.pump.hangUp()
        let start = ContinuousClock.now
        while await rig.session.isUp, ContinuousClock.now - start < .seconds(2) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!(await rig.session.isUp))
    }
}
