import Foundation
import Logging
import PumpLinkDaemon
import PumpProtocol
import Testing

/// pumplinkd serves version 1 and version 2 pumps, says which link is which, and holds a pump
/// configured for version 2 to it (SPEC §5.2, §8).
@Suite("pumplinkd: protocol versions", .timeLimit(.minutes(1)))
struct ProtocolVersionTests {
    @Test("a pump of either version is served, and the API says which", arguments: [
        (1, false), (2, true),
    ] as [(UInt8, Bool)])
    func eitherVersionIsServed(version: UInt8, sealed: Bool) async throws {
        let rig = try await DaemonTests.Rig(protocolVersions: version...version)
        defer { Task { await rig.stop() } }
        let daemon = try await DaemonTests.Daemon(rig)
        defer { Task { await daemon.stop() } }
        let summary = try #require(await daemon.fleet.pumps().first)
        #expect(summary.link == .up)
        #expect(summary.protocolVersion == version)
        #expect(summary.sealed == sealed)
        // Status reaches the daemon either way: streamed and sealed, or read with tagged
        // GetStatus; a bolus shows in the next statuses.
        let updates = await daemon.fleet.updates()
        let bolus = try await daemon.fleet.patientBolus("bed-1", by: .init(name: "patient-7", role: .patient))
        #expect(bolus.outcome == .started)
        var statuses = 0
        for await update in updates {
            guard case .status(_, let status) = update else { continue }
            statuses += 1
            if status.lastEventSequence >= bolus.eventSequence { break }
        }
        #expect(statuses >= 1)
        #expect(await daemon.fleet.pumps().first.map { $0.status?.lastEventSequence ?? 0 >= bolus.eventSequence } == true)
    }

    @Test func aPumpHeldToVersionTwoIsNotServedInClear() async throws {
        let rig = try await DaemonTests.Rig(protocolVersions: 1...1)
        defer { Task { await rig.stop() } }
        var configuration = rig.configuration
        configuration.pumps[0].minimumProtocolVersion = 2
        let fleet = try PumpFleet(configuration: configuration, logger: Logger(label: "test"))
        let running = Task { await fleet.run() }
        defer {
            running.cancel()
            Task { await running.value }
        }
        let updates = await fleet.updates()
        var reason: String?
        for await update in updates {
            if case .link(_, .down(let why)) = update, why.contains("version") {
                reason = why
                break
            }
        }
        #expect(reason?.contains("no protocol version in common") == true)
        #expect(await fleet.pumps().first?.status == nil)
    }
}
