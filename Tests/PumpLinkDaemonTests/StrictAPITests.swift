import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PumpLinkDaemon
import PumpProtocol
import PumpSafety
import Testing

/// The real daemon against the real emulator, as a careless or hostile client would use it:
/// a body the document does not allow changes nothing on the pump, a method a path does not
/// take answers 405, and a pump clock is only set near the host's clock unless overridden.
@Suite("pumplinkd strict API", .serialized)
struct StrictAPITests {
    static let clinician = "clinician-secret-0001"

    static func post(_ client: some TestClientProtocol, _ uri: String, raw body: String) async throws -> (status: Int, body: Any?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[.authorization] = "Bearer \(clinician)"
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            let data = Data(buffer: response.body)
            return (Int(response.status.code), data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
        }
    }

    static func details(_ body: Any?) -> [String: String] {
        ((body as? [String: Any])?["error"] as? [String: Any])?["details"] as? [String: String] ?? [:]
    }

    static func auditRows(_ client: some TestClientProtocol) async throws -> [[String: Any]] {
        let audit = try await DaemonTests.request(client, .get, "/v1/audit?pump=bed-1&limit=100", token: clinician)
        return try #require(audit.body as? [[String: Any]])
    }

    @Test func bodiesTheDocumentDoesNotAllowChangeNothingOnThePump() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await DaemonTests.Daemon(rig)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            #expect(await rig.pump.status().therapyState == .running)
            // An unknown field given as null: the suspend used to run.
            let suspend = try await Self.post(client, "/v1/pumps/bed-1/suspend", raw: #"{"foo": null}"#)
            #expect(suspend.status == 400)
            #expect(Self.details(suspend.body) == ["fields": "foo"])
            #expect(await rig.pump.status().therapyState == .running)

            // A key given twice: the first one (priming) used to win.
            let bolus = try await Self.post(
                client, "/v1/pumps/bed-1/bolus/clinician",
                raw: #"{"kind": "priming", "kind": "single", "doseMicrograms": 0, "volumeMicroliters": 200, "durationMinutes": 10}"#)
            #expect(bolus.status == 400)
            #expect(Self.details(bolus.body) == ["field": "kind"])
            #expect(await rig.pump.status().bolusActive == 0)

            // Nothing refused here reached the pump or the audit log as a command.
            let actions = try await Self.auditRows(client).compactMap { $0["action"] as? String }
            #expect(!actions.contains("suspend") && !actions.contains("bolus.clinician"), "\(actions)")

            // The same commands, as the document writes them, work.
            #expect(try await Self.post(client, "/v1/pumps/bed-1/suspend", raw: "{}").status == 200)
            #expect(await rig.pump.status().therapyState == .suspended)
        }
        await daemon.stop()
    }

    @Test func aMethodAPathDoesNotTakeIs405WithAllow() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await DaemonTests.Daemon(rig)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            let cases: [(HTTPRequest.Method, String, String?)] = [
                (.delete, "/v1/pumps/bed-1", "GET"),
                (.post, "/v1/pumps", "GET"),
                (.get, "/v1/pumps/bed-1/suspend", "POST"),
                (.put, "/v1/pumps/bed-1/program", "GET, POST"),
                (.head, "/v1/health", "GET"),
                (.patch, "/v1/pumps/no-such-pump/clock", "POST"),
                (.get, "/v1/nothing-here", nil),
                (.get, "/v1/pumps/bed-1/suspend/more", nil),
            ]
            for (method, path, allow) in cases {
                let (status, allowed, code) = try await client.execute(
                    uri: path, method: method, headers: [.authorization: "Bearer \(Self.clinician)"]
                ) { response in
                    let code = method == .head ? nil : DaemonTests.errorCode(try? JSONSerialization.jsonObject(with: Data(buffer: response.body)))
                    return (response.status.code, response.headers[.allow], code)
                }
                #expect(status == (allow == nil ? 404 : 405), "\(method) \(path)")
                #expect(allowed == allow, "\(method) \(path)")
                if method != .head { #expect(code == "badRequest", "\(method) \(path)") }
            }
            // Nothing was done by any of them.
            #expect(await rig.pump.status().therapyState == .running)
        }
        await daemon.stop()
    }

    @Test func aClockFarFromTheHostsNeedsAnOverrideAndIsBoundedWhateverTheOverride() async throws {
        let rig = try await DaemonTests.Rig()
        defer { Task { await rig.stop() } }
        let daemon = try await DaemonTests.Daemon(rig)
        let app = buildAPI(service: daemon.fleet, configuration: rig.configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            let hostMs = UInt64(Date().timeIntervalSince1970 * 1000)
            let before = await rig.pump.status().pumpTimeMs
            // 0, year 9999 and 2^64 - 1 (which made the pump trap): refused, override or not.
            for timeMs in [UInt64(0), 253_402_300_799_000, UInt64.max] {
                let refused = try await Self.post(
                    client, "/v1/pumps/bed-1/clock",
                    raw: #"{"timeMs": \#(timeMs), "utcOffsetMinutes": 0, "override": {"reason": "test"}}"#)
                #expect(refused.status == 400, "\(timeMs)")
                #expect(Self.details(refused.body)["field"] == "timeMs", "\(timeMs)")
            }
            // Two days ahead: needs an override; refused and audited without one.
            let farMs = hostMs + 2 * 86_400_000
            let refused = try await Self.post(client, "/v1/pumps/bed-1/clock", raw: #"{"timeMs": \#(farMs), "utcOffsetMinutes": 0}"#)
            #expect(refused.status == 409)
            #expect(DaemonTests.errorCode(refused.body) == "overrideRequired")
            #expect(Self.details(refused.body)["maxDistanceSeconds"] == "86400")
            let after = await rig.pump.status().pumpTimeMs
            #expect(after >= before && after < before + 3_600_000, "the pump's clock moved: \(before) -> \(after)")
            #expect(try await Self.auditRows(client).contains {
                $0["action"] as? String == "clock.set" && $0["outcome"] as? String == "refused"
            })

            // With a reason it is set, and the reason is in the audit log.
            let set = try await Self.post(
                client, "/v1/pumps/bed-1/clock",
                raw: #"{"timeMs": \#(farMs), "utcOffsetMinutes": 60, "override": {"reason": "pump clock checked against the ward clock"}}"#)
            #expect(set.status == 200)
            #expect(await rig.pump.status().pumpTimeMs >= farMs)
            let rows = try await Self.auditRows(client)
            #expect(rows.contains {
                $0["action"] as? String == "clock.set" && $0["outcome"] as? String == "done"
                    && ($0["parameters"] as? String)?.contains("pump clock checked against the ward clock") == true
            })

            // Near the host's clock no override is needed.
            let near = try await Self.post(client, "/v1/pumps/bed-1/clock", raw: #"{"timeMs": \#(hostMs + 60_000), "utcOffsetMinutes": 0}"#)
            #expect(near.status == 200)
            let now = await rig.pump.status().pumpTimeMs
            #expect(now >= hostMs + 60_000 && now < farMs)
        }
        await daemon.stop()
    }

    /// `maxClockDistanceSeconds` from the configuration file is the distance the daemon allows:
    /// checked before anything is sent, so a pump whose link is down shows it (409 beyond the
    /// distance; within it, the command goes on to find the link down).
    @Test func theConfiguredClockDistanceIsTheOneApplied() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplinkd-clock-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data((String(repeating: "cd", count: 32) + "\n").utf8).write(to: directory.appendingPathComponent("bed-1.key"))
        let file = directory.appendingPathComponent("pumplinkd.json")
        try Data(#"""
            {"pumps": [{"id": "bed-1", "port": "no-pump-here", "keyFile": "bed-1.key"}], "dataDirectory": "data",
             "maxClockDistanceSeconds": 60, "api": \#(DaemonTests.tokens)}
            """#.utf8).write(to: file)
        let configuration = try DaemonConfiguration.load(from: file.path)
        #expect(configuration.maxClockDistanceSeconds == 60)
        let fleet = try PumpFleet(configuration: configuration, logger: Logger(label: "test"))
        let app = buildAPI(service: fleet, configuration: configuration.api, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            let hostMs = UInt64(Date().timeIntervalSince1970 * 1000)
            let far = try await Self.post(client, "/v1/pumps/bed-1/clock", raw: #"{"timeMs": \#(hostMs + 120_000), "utcOffsetMinutes": 0}"#)
            #expect(far.status == 409)
            #expect(Self.details(far.body)["maxDistanceSeconds"] == "60")
            let near = try await Self.post(client, "/v1/pumps/bed-1/clock", raw: #"{"timeMs": \#(hostMs + 20_000), "utcOffsetMinutes": 0}"#)
            #expect(near.status == 503, "\(near)")
            #expect(DaemonTests.errorCode(near.body) == "linkDown")
        }
        // Past the HTTP layer too, no time a pump cannot hold is sent, override or not.
        let refusal = await #expect(throws: DaemonError.self) {
            try await fleet.setClock(
                "bed-1", timeMs: UInt64.max, utcOffsetMinutes: 0, override: Override(reason: "test"),
                by: Actor(name: "test", role: .clinician))
        }
        // badRequest, not linkDown: refused before the link is even asked for.
        #expect(refusal?.code == .badRequest)
        #expect(refusal?.details["field"] == "timeMs")
    }
}
