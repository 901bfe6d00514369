import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PumpEmulator
import PumpLinkDaemon
import PumpProtocol
import PumpSafety
import PumpStore
import Testing

/// The real daemon against the real emulator: clinician boluses under the drug library, every
/// refusal in the audit log with one shape per outcome, and the audit chain's head in the health check.
@Suite("pumplinkd bolus limits and audit", .serialized)
struct BolusLimitAndAuditTests {
    static let clinician = "clinician-secret-0001"
    static let patient = "patient-secret-00001"

    /// A fleet on `configuration`, running, its pump up (awaited from the fleet's updates).
    struct Daemon {
        let fleet: PumpFleet
        let running: Task<Void, Never>

        init(_ configuration: DaemonConfiguration) async throws {
            fleet = try PumpFleet(configuration: configuration, logger: Logger(label: "test"))
            let updates = await fleet.updates()
            let fleet = self.fleet
            running = Task { await fleet.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            var up = false
            // Status updates come every 100 ms: the deadline is checked between them.
            for await update in updates {
                switch update {
                case .link(_, let state): up = state == .up
                case .status: if up { return }
                case .event: break
                }
                if ContinuousClock.now > deadline { break }
            }
            Issue.record("the pump did not come up")
        }

        func stop() async {
            running.cancel()
            await running.value
        }
    }

    static func post(_ client: some TestClientProtocol, _ path: String, token: String = clinician, _ json: [String: Any] = [:]) async throws
        -> (status: Int, body: [String: Any])
    {
        let response = try await DaemonTests.request(client, .post, "/v1/pumps/bed-1" + path, token: token, json: json)
        return (response.status, response.body as? [String: Any] ?? [:])
    }

    static func error(_ body: [String: Any]) -> (code: String?, message: String, details: [String: String]) {
        let error = body["error"] as? [String: Any]
        return (error?["code"] as? String, error?["message"] as? String ?? "", error?["details"] as? [String: String] ?? [:])
    }

    static func audit(_ fleet: PumpFleet) async throws -> [AuditRecord] {
        try await fleet.audit(pump: "bed-1", limit: 1000)
    }

    /// The boluses of the report that started this work, and a soft limit, against the shipped library.
    @Test func clinicianBolusesAreHeldToTheDrugLibrary() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await Daemon(rig.configuration)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        let reservoir = await rig.pump.status().reservoirMicroliters
        try await app.test(.router) { client in
            // 19 000 µL of morphine in a minute: refused, the limits named; nothing reaches the pump.
            let priming = try await Self.post(client, "/bolus/clinician",
                                              ["kind": "priming", "doseMicrograms": 0, "volumeMicroliters": 19_000, "durationMinutes": 1])
            #expect(priming.status == 409)
            #expect(Self.error(priming.body).code == "limitExceeded")
            #expect(Self.error(priming.body).message.contains("clinicianBolus.volumeHardMaximum"))
            #expect(Self.error(priming.body).message.contains("500 µL"))
            let single = try await Self.post(client, "/bolus/clinician",
                                             ["kind": "single", "doseMicrograms": 190_000, "volumeMicroliters": 0, "durationMinutes": 60])
            #expect(single.status == 409)
            #expect(Self.error(single.body).details["findings"]?.contains("clinicianBolus.doseHardMaximum") == true)
            #expect(await rig.pump.status().bolusActive == 0)
            #expect(await rig.pump.status().reservoirMicroliters == reservoir)

            // More priming than the stated catheter holds: refused.
            let overCatheter = try await Self.post(client, "/bolus/clinician", [
                "kind": "priming", "doseMicrograms": 0, "volumeMicroliters": 200, "durationMinutes": 10,
                "catheterVolumeMicroliters": 150,
            ])
            #expect(overCatheter.status == 409)
            #expect(Self.error(overCatheter.body).details["findings"] == "clinicianBolus.aboveCatheterVolume")
            // No catheter volume stated: only the library's soft priming volume, override or not.
            let unknownCatheter = try await Self.post(client, "/bolus/clinician", [
                "kind": "priming", "doseMicrograms": 0, "volumeMicroliters": 400, "durationMinutes": 10,
                "override": ["reason": "new catheter"],
            ])
            #expect(unknownCatheter.status == 409)
            #expect(Self.error(unknownCatheter.body).details["findings"] == "clinicianBolus.primingWithoutCatheterVolume")

            // Above the soft dose: needs an override with a reason, then given and audited with it.
            let bolus: [String: Any] = ["kind": "single", "doseMicrograms": 1500, "volumeMicroliters": 0, "durationMinutes": 60]
            let withoutReason = try await Self.post(client, "/bolus/clinician", bolus)
            #expect(withoutReason.status == 409)
            #expect(Self.error(withoutReason.body).code == "overrideRequired")
            #expect(await rig.pump.status().bolusActive == 0)
            // A blank reason, or a misspelt field, is a bad request: nothing is checked or sent.
            var blank = bolus
            blank["override"] = ["reason": "  "]
            #expect(try await Self.post(client, "/bolus/clinician", blank).status == 400)
            var misspelt = bolus
            misspelt["catheterVolume"] = 150
            #expect(try await Self.post(client, "/bolus/clinician", misspelt).status == 400)
            var overridden = bolus
            overridden["override"] = ["reason": "incident pain, agreed with the pain team"]
            let given = try await Self.post(client, "/bolus/clinician", overridden)
            #expect(given.status == 200)
            #expect(given.body["doseMicrograms"] as? Int == 1500)
            #expect(await rig.pump.status().bolusActive != 0)
        }
        let audit = try await Self.audit(daemon.fleet)
        let refused = audit.filter { $0.action == "bolus.clinician" && $0.outcome == "refused" }
        #expect(refused.count == 5)
        #expect(refused.contains { $0.detail.contains("clinicianBolus.volumeHardMaximum") && $0.parameters.contains("19000") })
        #expect(audit.contains {
            $0.action == "bolus.clinician" && $0.outcome == "done" && $0.parameters.contains("incident pain, agreed with the pain team")
        })
        await daemon.stop()
    }

    /// The day's total counts the boluses the pump has given: the same clinician bolus needs an
    /// override before a patient bolus and is refused after it.
    @Test func theDailyLimitCountsTheBolusesGiven() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        // The emulator's program schedules about 2 625 µg/day of morphine.
        var library = DrugLibrary.standard
        library.drugs[.morphine]?.dailyDoseMicrograms = SoftHardLimit(soft: 2700, hard: 2900)
        let libraryFile = rig.directory.appendingPathComponent("library.json")
        try library.encoded().write(to: libraryFile)
        var configuration = rig.configuration
        configuration.drugLibrary = libraryFile.path
        let daemon = try await Daemon(configuration)
        let app = buildAPI(service: daemon.fleet, configuration: configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            let bolus: [String: Any] = ["kind": "single", "doseMicrograms": 150, "volumeMicroliters": 0, "durationMinutes": 30]
            let before = try await Self.post(client, "/bolus/clinician", bolus)
            #expect(before.status == 409)
            #expect(Self.error(before.body).code == "overrideRequired")
            #expect(Self.error(before.body).details["findings"] == "clinicianBolus.dailySoftMaximum")
            #expect(try await Self.post(client, "/bolus/patient", token: Self.patient).status == 200)
            let after = try await Self.post(client, "/bolus/clinician", bolus)
            #expect(after.status == 409)
            #expect(Self.error(after.body).code == "limitExceeded")
            #expect(Self.error(after.body).details["findings"] == "clinicianBolus.dailyHardMaximum")
            #expect(Self.error(after.body).message.contains("250 µg of boluses in the last 24 h"))
        }
        await daemon.stop()
    }

    /// Refusals by the pump, by the lockout and by uncertainty blocking: each audited, and a
    /// patient bolus the pump did not start is never a 200.
    @Test func everyRefusalIsAuditedInOneShape() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await Daemon(rig.configuration)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            // Therapy suspended: the daemon's checks pass, the pump refuses; 409, not 200.
            #expect(try await Self.post(client, "/suspend").status == 200)
            let suspended = try await Self.post(client, "/bolus/patient", token: Self.patient)
            #expect(suspended.status == 409)
            #expect(Self.error(suspended.body).code == "refusedByPump")
            #expect(Self.error(suspended.body).details["code"] == "refusedTherapyNotRunning")
            #expect(try await Self.post(client, "/resume").status == 200)

            // A second patient bolus inside the lockout: one shape whichever refuses it.
            #expect(try await Self.post(client, "/bolus/patient", token: Self.patient).status == 200)
            let locked = try await Self.post(client, "/bolus/patient", token: Self.patient)
            #expect(locked.status == 409)
            #expect(Self.error(locked.body).code == "limitExceeded")
            #expect(Self.error(locked.body).details == ["rule": "patientBolus.lockout"])

            // An uncertain request blocks doses; the refusal is audited too.
            let store = try PumpStore(path: rig.configuration.dataDirectory + "/pumplink.sqlite")
            try store.markUncertain(pumpID: "bed-1", requestID: 4_000_000_000, action: "bolus.clinician", intentID: nil, timeMs: 1)
            let blocked = try await Self.post(client, "/bolus/clinician",
                                              ["kind": "single", "doseMicrograms": 100, "volumeMicroliters": 0, "durationMinutes": 30])
            #expect(blocked.status == 409)
            #expect(Self.error(blocked.body).code == "blockedByUncertainty")
            try store.close()
        }
        let audit = try await Self.audit(daemon.fleet)
        #expect(audit.contains { $0.action == "bolus.patient" && $0.outcome == "rejected" && $0.detail.contains("refusedTherapyNotRunning") })
        #expect(audit.contains { $0.action == "bolus.patient" && ["refused", "rejected"].contains($0.outcome) && $0.detail.contains("patientBolus.lockout") })
        #expect(audit.contains { $0.action == "bolus.clinician" && $0.outcome == "refused" && $0.detail.hasPrefix("blockedByUncertainty") })
        await daemon.stop()
    }

    /// `GET /v1/health` carries the chain's head: the row count and the hash `pumpctl audit
    /// verify` computes from the file.
    @Test func healthCarriesTheAuditChainHead() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await Daemon(rig.configuration)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            #expect(try await Self.post(client, "/suspend").status == 200)
            #expect(try await Self.post(client, "/resume").status == 200)
            let health = try await DaemonTests.request(client, .get, "/v1/health", token: nil)
            #expect(health.status == 200)
            let body = try #require(health.body as? [String: Any])
            #expect(body["status"] as? String == "ok")
            let head = try #require(body["audit"] as? [String: Any])
            let rows = try await Self.audit(daemon.fleet).count
            #expect(head["rows"] as? Int == rows)
            #expect(rows == 4)
            let store = try PumpStore(path: rig.configuration.dataDirectory + "/pumplink.sqlite")
            #expect(try store.verifyAuditChain() == .intact(AuditChainHead(rows: Int64(rows), headHash: head["headHash"] as? String ?? "")))
            try store.close()
        }
        await daemon.stop()
    }
}
