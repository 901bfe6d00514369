import Foundation
import Logging
import PumpLinkDaemon
import PumpProtocol
import PumpSession
import PumpStore
import SerialTransport
import Testing

/// What the daemon makes, on start, of a previous run that stopped in the middle of a command,
/// and of a different pump answering under a registered pump's id.
@Suite("pumplinkd after an interruption", .serialized)
struct InterruptionTests {
    static let patient = "patient-7"

    /// The state a daemon killed mid-command leaves: intents without outcomes, some with the
    /// changing requests recorded as sent. The restarted daemon settles each truthfully.
    @Test func interruptedCommandsAreSettledFromThePumpsRecord() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }

        // A patient bolus the pump really executed, sent by a run that died before recording it.
        let linkPath = try #require(await rig.host.linkPath)
        let link = try SerialPort.open(path: linkPath)
        // Patient on a loaded machine: this bolus must be executed, not left uncertain.
        var configuration = SessionConfiguration()
        configuration.responseTimeout = .seconds(2)
        // No keepalive Pings: one between reading the id and sending the bolus would take it.
        configuration.keepaliveInterval = .seconds(3600)
        let session = PumpSession(link: link, key: rig.key, configuration: configuration)
        try await session.connect()
        let executedID = await session.upcomingRequestID
        #expect(try await session.patientBolus().outcome == .started)
        await session.close()

        try FileManager.default.createDirectory(atPath: rig.configuration.dataDirectory, withIntermediateDirectories: true)
        let storePath = URL(fileURLWithPath: rig.configuration.dataDirectory).appendingPathComponent("pumplink.sqlite").path
        var intents: [String: Int64] = [:]
        do {
            let store = try PumpStore(path: storePath)
            try store.registerPump(id: "bed-1", port: rig.configuration.pumps[0].port)
            func intent(_ name: String, _ action: String) throws {
                intents[name] = try store.recordIntent(
                    actor: Self.patient, role: "patient", pumpID: "bed-1", action: action, parameters: "{}",
                    requestID: nil, timeMs: 1)
            }
            // Stopped before anything was sent.
            try intent("unsent", "bolus.clinician")
            // Stopped during a program upload: nothing can have been activated.
            try intent("staging", "program.push")
            try store.recordSent(intentID: intents["staging"]!, pumpID: "bed-1", requestID: executedID + 500, messageType: "ProgramStageBegin", timeMs: 2)
            // Recorded as sent, never reached the pump (its id is above anything it executed).
            try intent("lost", "bolus.patient")
            try store.recordSent(intentID: intents["lost"]!, pumpID: "bed-1", requestID: executedID + 1000, messageType: "PatientBolus", timeMs: 3)
            // Sent and executed.
            try intent("executed", "bolus.patient")
            try store.recordSent(intentID: intents["executed"]!, pumpID: "bed-1", requestID: executedID, messageType: "PatientBolus", timeMs: 4)
        }

        let daemon = try await DaemonTests.Daemon(rig)
        defer { Task { await daemon.stop() } }
        // Both uncertain requests are resolved once the link is up.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, await daemon.fleet.pumps().first?.uncertainRequests.isEmpty != true {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await daemon.fleet.pumps().first?.uncertainRequests == [])

        let audit = try await daemon.fleet.audit(pump: "bed-1", limit: 100)
        func outcomes(_ name: String) -> [String] {
            audit.filter { $0.intentID == intents[name] }.reversed().map(\.outcome)
        }
        #expect(outcomes("unsent") == ["failed"])
        #expect(outcomes("staging") == ["failed"])
        #expect(outcomes("lost") == ["uncertain", "resolved-not-executed"])
        #expect(outcomes("executed") == ["uncertain", "resolved-executed"])
        #expect(audit.first { $0.intentID == intents["staging"] }?.detail.contains("nothing was activated") == true)
        // Resolved: changing commands other than suspend are allowed again.
        _ = try await daemon.fleet.acknowledgeAlarms("bed-1", mask: 0, by: .init(name: "dr-lee", role: .clinician))
        await daemon.stop()

        // The pump never saw the lost bolus's id, so its count stayed below it; still no later
        // command may take that id (or any id the killed run sent).
        let store = try PumpStore(path: storePath)
        let acknowledged = try #require(
            try await daemon.fleet.audit(pump: "bed-1", limit: 100).first { $0.action == "alarms.acknowledge" && $0.outcome == "done" })
        let sent = try store.sentRequests(intentID: try #require(acknowledged.intentID))
        #expect(sent.count == 1)
        #expect(sent.allSatisfy { $0.requestID > executedID + 1000 }, "\(sent.map(\.requestID)) reuses an id of the killed run")
    }

    /// A changing request is recorded, with its id, before it is sent; when it cannot be
    /// recorded it is not sent at all.
    @Test func changingRequestsAreRecordedBeforeTheyAreSent() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await DaemonTests.Daemon(rig)
        defer { Task { await daemon.stop() } }
        let clinician = PumpLinkDaemon.Actor(name: "dr-lee", role: .clinician)
        _ = try await daemon.fleet.acknowledgeAlarms("bed-1", mask: 0, by: clinician)
        let audit = try await daemon.fleet.audit(pump: "bed-1", limit: 10)
        let done = try #require(audit.first { $0.action == "alarms.acknowledge" && $0.outcome == "done" })
        await daemon.stop()

        let store = try PumpStore(path: URL(fileURLWithPath: rig.configuration.dataDirectory).appendingPathComponent("pumplink.sqlite").path)
        let sent = try store.sentRequests(intentID: try #require(done.intentID))
        #expect(sent.map(\.messageType) == ["AcknowledgeAlarms"])
        #expect(sent.first?.requestID ?? 0 > 0)
    }

    /// A pump with another serial number on a registered pump's port is refused: its log is
    /// not merged into the registered pump's history.
    @Test func aReplacedPumpIsNotMergedIntoTheOldOnesLog() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        try FileManager.default.createDirectory(atPath: rig.configuration.dataDirectory, withIntermediateDirectories: true)
        let storePath = URL(fileURLWithPath: rig.configuration.dataDirectory).appendingPathComponent("pumplink.sqlite").path
        do {
            let store = try PumpStore(path: storePath)
            try store.registerPump(id: "bed-1", port: rig.configuration.pumps[0].port)
            try store.updateIdentity(id: "bed-1", serialNumber: "EARLIER-7", model: "PL-20")
        }
        let daemon = try await DaemonTests.Daemon(rig, waitUntilUp: false)
        defer { Task { await daemon.stop() } }
        var reason = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if case .down(let why) = await daemon.fleet.pumps().first?.link, why.contains("replaced pump") {
                reason = why
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(reason.contains("EARLIER-7") && reason.contains("DAEMON-1"))
        // Give it time to do anything wrong, then look.
        try await Task.sleep(for: .milliseconds(500))
        #expect(await daemon.fleet.pumps().first?.link != .up)
        #expect(try await daemon.fleet.events("bed-1", from: 1, limit: 100).isEmpty)
        await daemon.stop()
        #expect(try PumpStore(path: storePath).pump(id: "bed-1")?.serialNumber == "EARLIER-7")
    }
}
