import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PumpEmulator
import PumpLinkDaemon
import PumpModel
import PumpProtocol
import SerialTransport
import Testing

/// The real daemon (fleet, store, safety rules, HTTP API) against the real emulator over a
/// pseudo-terminal, as a clinician's app would use it.
@Suite("pumplinkd end to end", .serialized)
struct DaemonTests {
    static let tokens = #"""
        {"tokens": [
            {"token": "clinician-secret-0001", "name": "dr-lee", "role": "clinician"},
            {"token": "patient-secret-00001", "name": "patient-7", "role": "patient"},
            {"token": "observer-secret-0001", "name": "ward-screen", "role": "observer"}
        ]}
        """#

    final class Rig: Sendable {
        let directory: URL
        let host: PumpHost<ModelPump>
        let pump: EmulatedPump<ModelPump>
        let key: PairingKey
        let configuration: DaemonConfiguration

        /// - Parameter protocolVersions: the versions the emulated pump speaks.
        init(protocolVersions: ClosedRange<UInt8> = 2...2) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplinkd-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            key = PairingKey.generate()
            let keyFile = directory.appendingPathComponent("bed-1.key")
            try Data((key.hexadecimal + "\n").utf8).write(to: keyFile)
            var pumpConfiguration = PumpConfiguration()
            pumpConfiguration.serialNumber = "DAEMON-1"
            pumpConfiguration.initialProgram = ModelPump.defaultProgram
            let startMs = VirtualClock.wallClockMs()
            pump = EmulatedPump(
                endpoint: PumpEndpoint(
                    device: ModelPump(Pump(configuration: pumpConfiguration, nowMs: startMs)), key: key,
                    protocolVersions: protocolVersions),
                clock: VirtualClock(startMs: startMs)
            )
            let link = directory.appendingPathComponent("pump0").path
            host = PumpHost(index: 0, serial: "DAEMON-1", pump: pump, linkPath: link, portPath: nil, announce: { _ in })
            try await host.start()
            configuration = DaemonConfiguration(
                pumps: [.init(id: "bed-1", port: link, keyFile: keyFile.path)],
                dataDirectory: directory.appendingPathComponent("data").path,
                telemetryIntervalMs: 100,
                api: try JSONDecoder().decode(APIConfiguration.self, from: Data(DaemonTests.tokens.utf8))
            )
        }

        func stop() async {
            await host.stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// A running fleet, its API, and a way to stop it.
    struct Daemon {
        let fleet: PumpFleet
        let running: Task<Void, Never>

        /// Starts the daemon and waits until its pump is up, unless `waitUntilUp` is false.
        init(_ rig: Rig, waitUntilUp: Bool = true) async throws {
            fleet = try PumpFleet(configuration: rig.configuration, logger: Logger(label: "test"))
            let fleet = self.fleet
            running = Task { await fleet.run() }
            guard waitUntilUp else { return }
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let summary = await fleet.pumps().first
                if summary?.link == .up, summary?.status != nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        func stop() async {
            running.cancel()
            await running.value
        }
    }

    static func request(
        _ client: some TestClientProtocol,
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String?,
        json: Any? = nil
    ) async throws -> (status: Int, body: Any?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let body = try json.map { ByteBuffer(data: try JSONSerialization.data(withJSONObject: $0)) }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            let data = Data(buffer: response.body)
            return (Int(response.status.code), data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
        }
    }

    static func programJSON(id: UInt32, rateMicrogramsPerDay: UInt32, concentration: UInt32 = 10_000) throws -> Any {
        var program = ModelPump.defaultProgram
        program.programId = id
        program.concentrationMicrogramsPerMilliliter = concentration
        program.steps = [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: rateMicrogramsPerDay)]
        return try JSONSerialization.jsonObject(with: JSONEncoder().encode(program))
    }

    static func errorCode(_ body: Any?) -> String? {
        ((body as? [String: Any])?["error"] as? [String: Any])?["code"] as? String
    }

    @Test func clinicianWorkflowWithSafetyRulesAndAudit() async throws {
        let rig = try await Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await Daemon(rig)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            // Everyone with a token sees the pump; nobody without one.
            let pumps = try await Self.request(client, .get, "/v1/pumps", token: "observer-secret-0001")
            #expect(pumps.status == 200)
            let first = (pumps.body as? [[String: Any]])?.first
            #expect(first?["serialNumber"] as? String == "DAEMON-1")
            #expect((first?["link"] as? [String: Any])?["state"] as? String == "up")
            #expect(try await Self.request(client, .get, "/v1/pumps", token: nil).status == 401)
            #expect(try await Self.request(client, .get, "/v1/pumps", token: "wrong").status == 401)

            // A tenfold-plus jump over the hard maximum: refused, the pump keeps its program.
            let overdose = try await Self.request(client, .post, "/v1/pumps/bed-1/program", token: "clinician-secret-0001",
                                                  json: ["program": try Self.programJSON(id: 9, rateMicrogramsPerDay: 30_000)])
            #expect(overdose.status == 409)
            #expect(Self.errorCode(overdose.body) == "limitExceeded")
            #expect(await rig.pump.status().activeProgramId == 1)

            // Over the soft maximum: refused without an override, accepted and audited with one.
            let soft = try Self.programJSON(id: 10, rateMicrogramsPerDay: 16_000)
            let withoutReason = try await Self.request(client, .post, "/v1/pumps/bed-1/program", token: "clinician-secret-0001",
                                                       json: ["program": soft])
            #expect(withoutReason.status == 409)
            #expect(Self.errorCode(withoutReason.body) == "overrideRequired")
            #expect(await rig.pump.status().activeProgramId == 1)
            let review = try await Self.request(client, .post, "/v1/pumps/bed-1/program/review", token: "clinician-secret-0001",
                                                json: ["program": soft])
            #expect(review.status == 200)
            #expect((review.body as? [String: Any])?["dailyDoseMicrograms"] as? Int == 16_000)
            let pushed = try await Self.request(client, .post, "/v1/pumps/bed-1/program", token: "clinician-secret-0001",
                                                json: ["program": soft, "override": ["reason": "tolerance, agreed with the pain team"]])
            #expect(pushed.status == 200)
            #expect(await rig.pump.status().activeProgramId == 10)

            // Roles: a patient may ask for a bolus but not program; an observer may do neither.
            let patientPush = try await Self.request(client, .post, "/v1/pumps/bed-1/program", token: "patient-secret-00001",
                                                     json: ["program": try Self.programJSON(id: 11, rateMicrogramsPerDay: 3000)])
            #expect(patientPush.status == 403)
            #expect(try await Self.request(client, .post, "/v1/pumps/bed-1/suspend", token: "observer-secret-0001").status == 403)
            let bolus = try await Self.request(client, .post, "/v1/pumps/bed-1/bolus/patient", token: "patient-secret-00001")
            #expect(bolus.status == 200)
            #expect((bolus.body as? [String: Any])?["outcome"] as? String == "started")

            // An impossible refill volume is refused before it reaches the pump.
            let before = await rig.pump.status().reservoirMicroliters
            let refill = try await Self.request(client, .post, "/v1/pumps/bed-1/refill", token: "clinician-secret-0001",
                                                json: ["aspiratedMicroliters": 1000, "newVolumeMicroliters": 40_000])
            #expect(refill.status == 409)
            #expect(await rig.pump.status().reservoirMicroliters >= before - 1)

            // Every write is in the audit log: who, what, how it ended.
            let audit = try await Self.request(client, .get, "/v1/audit?pump=bed-1&limit=100", token: "clinician-secret-0001")
            let rows = try #require(audit.body as? [[String: Any]])
            #expect(rows.contains { ($0["outcome"] as? String) == "refused" && ($0["action"] as? String) == "program.push" })
            #expect(rows.contains {
                ($0["outcome"] as? String) == "done" && ($0["action"] as? String) == "program.push"
                    && ($0["actor"] as? String) == "dr-lee"
            })
            #expect(rows.contains { ($0["parameters"] as? String)?.contains("tolerance, agreed with the pain team") == true })
            #expect(rows.contains { ($0["action"] as? String) == "bolus.patient" && ($0["actor"] as? String) == "patient-7" })
            #expect(try await Self.request(client, .get, "/v1/audit", token: "observer-secret-0001").status == 403)

            let metrics = try await client.execute(
                uri: "/metrics", method: .get, headers: [.authorization: "Bearer observer-secret-0001"]
            ) { String(buffer: $0.body) }
            #expect(metrics.contains(#"pumplink_link_up{pump="bed-1"} 1"#))
            #expect(metrics.contains("pumplink_frames_received_total"))
        }
        await daemon.stop()
    }

    @Test func linkLossReconnectAndRestartKeepHistory() async throws {
        let rig = try await Rig()
        defer { Task { await rig.stop() } }
        var daemon = try await Daemon(rig)
        let bolus = try await daemon.fleet.patientBolus("bed-1", by: .init(name: "patient-7", role: .patient))
        #expect(bolus.outcome == .started)

        // The cable is pulled for a second: down, then up again, and the log caught up.
        let hangUp = Task { await rig.host.hangUp(downFor: .seconds(1)) }
        var sawDown = false
        let deadline = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < deadline {
            let link = await daemon.fleet.pumps().first?.link
            if case .down = link { sawDown = true }
            if sawDown, link == .up { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await hangUp.value
        #expect(sawDown)
        #expect(await daemon.fleet.pumps().first?.link == .up)
        let last = await rig.pump.status().lastEventSequence
        var stored: [Event] = []
        for _ in 0..<100 {
            stored = try await daemon.fleet.events("bed-1", from: 1, limit: 1000)
            if stored.last?.sequence == last { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stored.map(\.sequence) == Array(1...last))
        let auditBefore = try await daemon.fleet.audit(pump: "bed-1", limit: 100)
        #expect(!auditBefore.isEmpty)

        // The daemon restarts: history and audit are still there, and sync resumes.
        await daemon.stop()
        daemon = try await Daemon(rig)
        #expect(try await daemon.fleet.events("bed-1", from: 1, limit: 1000).map(\.sequence) == Array(1...last))
        #expect(try await daemon.fleet.audit(pump: "bed-1", limit: 100) == auditBefore)
        await daemon.stop()
    }
}
