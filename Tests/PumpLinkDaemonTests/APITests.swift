import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PumpLinkDaemon
import PumpProtocol
import PumpSafety
import Testing

/// Tokens and the app every API test uses.
enum APITestSupport {
    static let observerToken = "observer-token-0123456789"
    static let patientToken = "patient-token-0123456789"
    static let clinicianToken = "clinician-token-0123456789"

    static func configuration(maxRequestBodyBytes: Int = 64 * 1024, streamBufferSize: Int = 256) -> APIConfiguration {
        APIConfiguration(
            tokens: [
                TokenGrant(token: observerToken, name: "monitor", role: .observer),
                TokenGrant(token: patientToken, name: "patient-app", role: .patient),
                TokenGrant(token: clinicianToken, name: "dr-lee", role: .clinician),
            ],
            maxRequestBodyBytes: maxRequestBodyBytes, streamBufferSize: streamBufferSize)
    }

    static func app(_ service: FakePumpService, configuration: APIConfiguration = configuration()) -> some ApplicationProtocol {
        buildAPI(service: service, configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func headers(_ token: String?) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return headers
    }

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static let programJSON = """
        {"programId": 3, "drug": "morphine", "concentrationMicrogramsPerMilliliter": 25000,
         "lowReservoirThresholdMicroliters": 2000,
         "steps": [{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}],
         "periodicBoluses": [],
         "patientBolus": {"doseMicrograms": 50, "durationMinutes": 10, "lockoutMinutes": 60, "maxPerDay": 4}}
        """

    static func errorBody(_ response: TestResponse) throws -> (code: String, message: String, details: [String: String]) {
        struct Envelope: Decodable {
            struct Body: Decodable {
                var code: String
                var message: String
                var details: [String: String]
            }
            var error: Body
        }
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(response.body.readableBytesView))
        return (envelope.error.code, envelope.error.message, envelope.error.details)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(response.body.readableBytesView))
    }
}

/// A request the tests send, with what the fake should record for it.
struct RouteCase: Sendable, CustomTestStringConvertible {
    var endpoint: APIEndpoint
    var uri: String
    var body: String?
    /// The start of the call the fake records.
    var call: String

    var testDescription: String { "\(endpoint.method) \(uri)" }

    /// One valid request for each endpoint but the stream (tested live, in APIStreamTests).
    static let all: [RouteCase] = [
        RouteCase(endpoint: .health, uri: "/v1/health", call: ""),
        RouteCase(endpoint: .metrics, uri: "/metrics", call: "metrics"),
        RouteCase(endpoint: .listPumps, uri: "/v1/pumps", call: "pumps"),
        RouteCase(endpoint: .getPump, uri: "/v1/pumps/pump-1", call: "pump pump-1"),
        RouteCase(endpoint: .listEvents, uri: "/v1/pumps/pump-1/events?from=5&limit=20", call: "events 5 20 pump-1"),
        RouteCase(endpoint: .getProgram, uri: "/v1/pumps/pump-1/program", call: "activeProgram pump-1"),
        RouteCase(
            endpoint: .reviewProgram, uri: "/v1/pumps/pump-1/program/review",
            body: #"{"program": \#(APITestSupport.programJSON)}"#, call: "review pump-1"),
        RouteCase(
            endpoint: .pushProgram, uri: "/v1/pumps/pump-1/program",
            body: #"{"program": \#(APITestSupport.programJSON), "override": {"reason": "titration agreed with the patient"}}"#,
            call: "push pump-1 dr-lee/clinician"),
        RouteCase(
            endpoint: .refill, uri: "/v1/pumps/pump-1/refill", body: #"{"aspiratedMicroliters": 1900, "newVolumeMicroliters": 20000}"#,
            call: "refill 1900 20000 pump-1 dr-lee/clinician"),
        RouteCase(
            endpoint: .clinicianBolus, uri: "/v1/pumps/pump-1/bolus/clinician",
            body: #"{"kind": "single", "doseMicrograms": 100, "volumeMicroliters": 0, "durationMinutes": 30}"#,
            call: "clinicianBolus single 100 pump-1 dr-lee/clinician"),
        RouteCase(endpoint: .patientBolus, uri: "/v1/pumps/pump-1/bolus/patient", call: "patientBolus pump-1 dr-lee/clinician"),
        RouteCase(endpoint: .suspend, uri: "/v1/pumps/pump-1/suspend", body: "{}", call: "suspend pump-1 dr-lee/clinician"),
        RouteCase(endpoint: .resume, uri: "/v1/pumps/pump-1/resume", call: "resume pump-1 dr-lee/clinician"),
        RouteCase(
            endpoint: .acknowledgeAlarms, uri: "/v1/pumps/pump-1/alarms/acknowledge",
            body: #"{"alarms": ["motorStall", "reservoirLow"]}"#, call: "acknowledgeAlarms 258 pump-1 dr-lee/clinician"),
        RouteCase(
            endpoint: .setClock, uri: "/v1/pumps/pump-1/clock", body: #"{"timeMs": 1700000000000, "utcOffsetMinutes": -300}"#,
            call: "setClock 1700000000000 -300 pump-1 dr-lee/clinician"),
        RouteCase(endpoint: .audit, uri: "/v1/audit?pump=pump-1&limit=5", call: "audit pump-1 5"),
        RouteCase(endpoint: .getCapture, uri: "/v1/pumps/pump-1/capture", call: "captureStatus pump-1"),
        RouteCase(endpoint: .startCapture, uri: "/v1/pumps/pump-1/capture/start", call: "startCapture pump-1 dr-lee/clinician"),
        RouteCase(endpoint: .stopCapture, uri: "/v1/pumps/pump-1/capture/stop", call: "stopCapture pump-1 dr-lee/clinician"),
    ]

    static func forEndpoint(_ endpoint: APIEndpoint) -> RouteCase? { all.first { $0.endpoint == endpoint } }
}

/// A request the API must refuse with 400, and words its message must contain.
struct BadInput: Sendable, CustomTestStringConvertible {
    var endpoint: APIEndpoint
    var input: String
    var mention: String

    init(_ endpoint: APIEndpoint, _ input: String, _ mention: String) {
        self.endpoint = endpoint
        self.input = input
        self.mention = mention
    }

    var testDescription: String { "\(endpoint.rawValue): \(mention)" }
}

@Suite("HTTP API")
struct APITests {
    typealias Support = APITestSupport

    @Test func routeCasesCoverEveryEndpointButTheStream() {
        let covered = Set(RouteCase.all.map(\.endpoint))
        #expect(covered == Set(APIEndpoint.allCases).subtracting([.stream]))
    }

    @Test(arguments: RouteCase.all)
    func everyRouteAnswersAClinician(_ route: RouteCase) async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let response = try await client.execute(
                uri: route.uri, method: route.endpoint.method, headers: Support.headers(Support.clinicianToken),
                body: route.body.map(Support.json))
            #expect(response.status == .ok, "\(String(buffer: response.body))")
        }
        let calls = await fake.calls
        if route.call.isEmpty {
            #expect(calls.isEmpty)
        } else {
            #expect(calls == [route.call])
        }
    }

    @Test func responsesCarryTheServiceValuesAsJSON() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let headers = Support.headers(Support.observerToken)
            let pumps = try await client.execute(uri: "/v1/pumps", method: .get, headers: headers)
            #expect(pumps.headers[.contentType] == "application/json; charset=utf-8")
            #expect(try Support.decode([PumpSummary].self, pumps) == [FakePumpService.summary])
            // Enums travel by name.
            #expect(String(buffer: pumps.body).contains(#""therapyState":"running""#))
            #expect(String(buffer: pumps.body).contains(#""link":{"state":"up"}"#))

            let detail = try await client.execute(uri: "/v1/pumps/pump-1", method: .get, headers: headers)
            #expect(try Support.decode(PumpDetail.self, detail).activeProgram == FakePumpService.program)

            let events = try await client.execute(uri: "/v1/pumps/pump-1/events", method: .get, headers: headers)
            #expect(try Support.decode([Event].self, events) == [FakePumpService.event(sequence: 1)])

            let program = try await client.execute(uri: "/v1/pumps/pump-1/program", method: .get, headers: headers)
            #expect(String(buffer: program.body) == "null")

            let health = try await client.execute(uri: "/v1/health", method: .get)
            #expect(String(buffer: health.body) == #"{"audit":{"headHash":"\#(String(repeating: "0", count: 64))","rows":0},"status":"ok"}"#)

            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: headers)
            #expect(metrics.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(String(buffer: metrics.body).contains("pumplink_frames_total 3"))
        }
        // Defaults of the queries.
        #expect(await fake.calls.contains("events 0 100 pump-1"))
    }

    @Test func programBodiesReachTheServiceIntact() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/pumps/pump-1/program/review", method: .post, headers: Support.headers(Support.clinicianToken),
                body: Support.json(#"{"program": \#(Support.programJSON), "override": {"reason": "agreed"}}"#))
            #expect(response.status == .ok)
            let report = try Support.decode(ProgramReport.self, response)
            #expect(report.verdict == .acceptedWithOverride)
            #expect(report.override == Override(reason: "agreed"))
        }
        #expect(await fake.lastProgram == FakePumpService.program)
        #expect(await fake.lastOverride == Override(reason: "agreed"))
    }

    @Test func alarmsByMaskReachTheService() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/pumps/pump-1/alarms/acknowledge", method: .post, headers: Support.headers(Support.clinicianToken),
                body: Support.json(#"{"mask": 3}"#))
            #expect(response.status == .ok)
        }
        #expect(await fake.lastMask == 3)
    }

    @Test func aPatientMayAskForAPatientBolusAndRead() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let bolus = try await client.execute(
                uri: "/v1/pumps/pump-1/bolus/patient", method: .post, headers: Support.headers(Support.patientToken))
            #expect(bolus.status == .ok)
            let response = try Support.decode(PatientBolusResponse.self, bolus)
            #expect(response.outcome == .started)
            let read = try await client.execute(uri: "/v1/pumps", method: .get, headers: Support.headers(Support.patientToken))
            #expect(read.status == .ok)
        }
        #expect(await fake.calls == ["patientBolus pump-1 patient-app/patient", "pumps"])
    }

    static let protectedRoutes = RouteCase.all.filter { $0.endpoint.requiredRole != nil }

    @Test(arguments: protectedRoutes, ["", "Bearer wrong-token-0123456789", "Basic \(APITestSupport.clinicianToken)", "Bearer "])
    func aMissingOrUnknownTokenIsUnauthorized(_ route: RouteCase, authorization: String) async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            var headers: HTTPFields = [.contentType: "application/json"]
            if !authorization.isEmpty { headers[.authorization] = authorization }
            let response = try await client.execute(
                uri: route.uri, method: route.endpoint.method, headers: headers, body: route.body.map(Support.json))
            #expect(response.status == .unauthorized)
            #expect(response.headers[.wwwAuthenticate] == "Bearer realm=\"pumplinkd\"")
            #expect(try Support.errorBody(response).code == "unauthorized")
        }
        #expect(await fake.calls.isEmpty)
    }

    static let forbiddenCases: [(RouteCase, String)] =
        RouteCase.all.filter { $0.endpoint.requiredRole == .clinician }.flatMap {
            [($0, APITestSupport.patientToken), ($0, APITestSupport.observerToken)]
        } + [(RouteCase.forEndpoint(.patientBolus)!, APITestSupport.observerToken)]

    @Test(arguments: forbiddenCases)
    func aRoleTooLowIsForbiddenAndNothingIsCalled(_ route: RouteCase, token: String) async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let response = try await client.execute(
                uri: route.uri, method: route.endpoint.method, headers: Support.headers(token), body: route.body.map(Support.json))
            #expect(response.status == .forbidden)
            let error = try Support.errorBody(response)
            #expect(error.code == "forbidden")
            #expect(error.details["required"] == route.endpoint.requiredRole?.rawValue)
        }
        #expect(await fake.calls.isEmpty)
    }

    static let statusByCode: [(DaemonError.Code, Int)] = [
        (.badRequest, 400), (.unauthorized, 401), (.forbidden, 403), (.unknownPump, 404), (.limitExceeded, 409),
        (.overrideRequired, 409), (.refusedByPump, 409), (.blockedByUncertainty, 409), (.uncertain, 502), (.linkDown, 503),
        (.internalError, 500),
    ]

    @Test func everyErrorCodeHasAStatus() {
        #expect(Set(Self.statusByCode.map(\.0)) == Set(DaemonError.Code.allCases))
    }

    @Test(arguments: statusByCode)
    func serviceErrorsBecomeTheirStatusAndTheEnvelope(_ code: DaemonError.Code, status: Int) async throws {
        let fake = FakePumpService()
        await fake.fail(with: DaemonError(code, "it went wrong", details: ["pumpError": "lockoutActive"]))
        try await Support.app(fake).test(.router) { client in
            let route = RouteCase.forEndpoint(.pushProgram)!
            let response = try await client.execute(
                uri: route.uri, method: .post, headers: Support.headers(Support.clinicianToken), body: route.body.map(Support.json))
            #expect(response.status.code == status)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            let error = try Support.errorBody(response)
            #expect(error.code == code.rawValue)
            #expect(error.message == "it went wrong")
            #expect(error.details == ["pumpError": "lockoutActive"])
        }
    }

    @Test func anUnknownPumpIsNotFound() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let response = try await client.execute(uri: "/v1/pumps/nope", method: .get, headers: Support.headers(Support.observerToken))
            #expect(response.status == .notFound)
            #expect(try Support.errorBody(response).code == "unknownPump")
            let stream = try await client.execute(uri: "/v1/stream?pump=nope", method: .get, headers: Support.headers(Support.observerToken))
            #expect(stream.status == .notFound)
            #expect(try Support.errorBody(stream).code == "unknownPump")
        }
    }

    @Test func anUnknownPathGetsTheEnvelope() async throws {
        try await Support.app(FakePumpService()).test(.router) { client in
            // A known path asked with a method it does not take: 405 (StrictAPITests).
            for (uri, method, status) in [
                ("/v1/nothing", HTTPRequest.Method.get, HTTPResponse.Status.notFound), ("/v1/pumps/pump-1/suspend", .get, .methodNotAllowed),
                ("/v1/pumps", .delete, .methodNotAllowed),
            ] {
                let response = try await client.execute(uri: uri, method: method, headers: Support.headers(Support.clinicianToken))
                #expect(response.status == status)
                #expect(try Support.errorBody(response).code == "badRequest")
            }
        }
    }

    /// Bad input: (endpoint, body or query, the field or words the message must name).
    static let badInputs: [BadInput] = [
        BadInput(.pushProgram, "{", "not valid JSON"),
        BadInput(.pushProgram, "[1, 2]", "must be a JSON object"),
        BadInput(.pushProgram, #"{"program": 5}"#, "program"),
        BadInput(.pushProgram, "{}", "missing field program"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON), "overide": {"reason": "typo"}}"#, "unknown field: overide"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON), "override": {"reason": "x", "by": "me"}}"#, "override.by"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON), "override": {"reason": "  "}}"#, "override.reason"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"dayMask\": 127", with: "\"dayMask\": 127, \"dayMsk\": 1"))}"#, "program.steps[0].dayMsk"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"dayMask\": 127", with: "\"dayMask\": 0"))}"#, "DoseStep.dayMask"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"maxPerDay\": 4", with: "\"maxPerDay\": 49"))}"#, "PatientBolusSettings.maxPerDay"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"programId\": 3", with: "\"programId\": 0"))}"#, "Program.programId"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"programId\": 3", with: "\"programId\": -3"))}"#, "program.programId"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"doseMicrograms\": 50", with: "\"doseMicrograms\": 50.5"))}"#, "program.patientBolus.doseMicrograms"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"programId\": 3", with: "\"programId\": 4294967296"))}"#, "program.programId"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"morphine\"", with: "\"heroin\""))}"#, "program.drug"),
        BadInput(.pushProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"steps\": [", with: "\"steps\": [" + String(repeating: #"{"dayMask": 1, "startMinute": 0, "doseRateMicrogramsPerDay": 1},"#, count: 91)))}"#, "Program.steps"),
        BadInput(.reviewProgram, #"{"program": \#(APITestSupport.programJSON.replacingOccurrences(of: "\"startMinute\": 0", with: "\"startMinute\": 1440"))}"#, "DoseStep.startMinute"),
        BadInput(.refill, #"{"aspiratedMicroliters": 1900}"#, "newVolumeMicroliters"),
        BadInput(.refill, #"{"aspiratedMicroliters": 1.5, "newVolumeMicroliters": 20000}"#, "aspiratedMicroliters"),
        BadInput(.refill, #"{"aspiratedMicroliters": "1900", "newVolumeMicroliters": 20000}"#, "aspiratedMicroliters"),
        BadInput(.clinicianBolus, #"{"kind": "single", "doseMicrograms": 100, "volumeMicroliters": 0, "durationMinutes": 0}"#, "ClinicianBolusRequest.durationMinutes"),
        BadInput(.clinicianBolus, #"{"kind": "patient", "doseMicrograms": 100, "volumeMicroliters": 0, "durationMinutes": 10}"#, "kind"),
        BadInput(.clinicianBolus, #"{"kind": "single", "doseMicrograms": 100, "volumeMicroliters": 0, "durationMinutes": 10, "rate": 5}"#, "rate"),
        BadInput(.setClock, #"{"timeMs": 1700000000000, "utcOffsetMinutes": 901}"#, "SetClockRequest.utcOffsetMinutes"),
        BadInput(.setClock, #"{"timeMs": 1700000000000, "utcOffsetMinutes": 40000}"#, "utcOffsetMinutes"),
        BadInput(.acknowledgeAlarms, #"{"alarms": ["motorStall"], "mask": 2}"#, "not both"),
        BadInput(.acknowledgeAlarms, "{}", "not both and not neither"),
        BadInput(.acknowledgeAlarms, #"{"mask": 0}"#, "no alarm"),
        BadInput(.acknowledgeAlarms, #"{"mask": 64}"#, "name no alarm"),
        BadInput(.acknowledgeAlarms, #"{"alarms": ["motorstall"]}"#, "alarms[0]"),
        BadInput(.acknowledgeAlarms, #"{"alarms": []}"#, "no alarm"),
        BadInput(.suspend, #"{"now": true}"#, "unknown field: now"),
        BadInput(.patientBolus, #"{"doseMicrograms": 500}"#, "unknown field: doseMicrograms"),
        BadInput(.resume, "null", "must be a JSON object"),
        BadInput(.listEvents, "?limit=0", "limit"),
        BadInput(.listEvents, "?limit=1001", "limit"),
        BadInput(.listEvents, "?from=-1", "from"),
        BadInput(.listEvents, "?from=abc", "from"),
        BadInput(.listEvents, "?form=3", "unknown query parameter form"),
        BadInput(.audit, "?pmp=pump-1", "unknown query parameter pmp"),
        BadInput(.audit, "?limit=5&limit=6", "twice"),
        BadInput(.listPumps, "?all=1", "unknown query parameter all"),
    ]

    @Test(arguments: badInputs)
    func badInputIsRefusedBeforeTheServiceIsCalled(_ bad: BadInput) async throws {
        let (endpoint, input, mention) = (bad.endpoint, bad.input, bad.mention)
        let fake = FakePumpService()
        let route = try #require(RouteCase.forEndpoint(endpoint))
        try await Support.app(fake).test(.router) { client in
            let isQuery = input.hasPrefix("?")
            let uri = isQuery ? route.uri.split(separator: "?")[0] + input : route.uri
            let response = try await client.execute(
                uri: uri, method: endpoint.method, headers: Support.headers(Support.clinicianToken),
                body: isQuery ? route.body.map(Support.json) : Support.json(input))
            #expect(response.status == .badRequest, "\(String(buffer: response.body))")
            let error = try Support.errorBody(response)
            #expect(error.code == "badRequest")
            #expect(error.message.contains(mention), "\(error.message)")
        }
        #expect(await fake.calls.isEmpty)
    }

    @Test func aBodyOverTheLimitIsRefusedWith413() async throws {
        let fake = FakePumpService()
        let configuration = Support.configuration(maxRequestBodyBytes: 4096)
        try await Support.app(fake, configuration: configuration).test(.router) { client in
            let padding = String(repeating: " ", count: 5000)
            let response = try await client.execute(
                uri: "/v1/pumps/pump-1/program", method: .post, headers: Support.headers(Support.clinicianToken),
                body: Support.json(#"{"program": \#(Support.programJSON)\#(padding)}"#))
            #expect(response.status == .contentTooLarge)
            let error = try Support.errorBody(response)
            #expect(error.code == "badRequest")
            #expect(error.details["limitBytes"] == "4096")

            // The same program within the limit passes.
            let small = try await client.execute(
                uri: "/v1/pumps/pump-1/program", method: .post, headers: Support.headers(Support.clinicianToken),
                body: Support.json(#"{"program": \#(Support.programJSON)}"#))
            #expect(small.status == .ok)
        }
        #expect(await fake.calls == ["push pump-1 dr-lee/clinician"])
    }

    @Test func aHugeBodyIsRefusedWithoutReadingIt() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.router) { client in
            let huge = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 * 1024 * 1024)
            let response = try await client.execute(
                uri: "/v1/pumps/pump-1/refill", method: .post, headers: Support.headers(Support.clinicianToken), body: huge)
            #expect(response.status == .contentTooLarge)
            #expect(try Support.errorBody(response).code == "badRequest")
        }
        #expect(await fake.calls.isEmpty)
    }
}

@Suite("API configuration and tokens")
struct APIConfigurationTests {
    @Test func configurationDecodesWithDefaults() throws {
        let json = #"{"tokens": [{"token": "0123456789abcdef", "name": "dr-lee", "role": "clinician"}]}"#
        let configuration = try JSONDecoder().decode(APIConfiguration.self, from: Data(json.utf8))
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8750)
        #expect(configuration.unixSocket == nil)
        #expect(configuration.maxRequestBodyBytes == 65536)
        #expect(configuration.tokens == [TokenGrant(token: "0123456789abcdef", name: "dr-lee", role: .clinician)])
        try configuration.validate()
    }

    @Test func configurationRefusesWeakOrRepeatedTokens() {
        let short = APIConfiguration(tokens: [TokenGrant(token: "abc", name: "x", role: .observer)])
        #expect(throws: APIConfigurationError.self) { try short.validate() }
        let grant = TokenGrant(token: "0123456789abcdef", name: "x", role: .observer)
        #expect(throws: APIConfigurationError.self) { try APIConfiguration(tokens: [grant, grant]).validate() }
        #expect(throws: APIConfigurationError.self) { try APIConfiguration(port: 70000).validate() }
        #expect(throws: Never.self) { try APIConfiguration(unixSocket: "/tmp/pumplinkd.sock", tokens: [grant]).validate() }
    }

    @Test func aGrantNeverPrintsItsToken() {
        let grant = TokenGrant(token: "secret-token-0123456789", name: "dr-lee", role: .clinician)
        #expect(!"\(grant)".contains("secret"))
        #expect(!"\(APIConfiguration(tokens: [grant]))".contains("secret"))
    }

    @Test func theAPIListensOnAUnixSocket() async throws {
        let path = "/tmp/pumplinkd-api-test-\(getpid()).sock"
        let configuration = APIConfiguration(unixSocket: path, tokens: [])
        let app = buildAPI(service: FakePumpService(), configuration: configuration, logger: Logger(label: "test"))
        #expect(app.configuration.address == .unixDomainSocket(path: path))
        let tcp = buildAPI(service: FakePumpService(), configuration: APIConfiguration(tokens: []), logger: Logger(label: "test"))
        #expect(tcp.configuration.address == .hostname("127.0.0.1", port: 8750))
    }
}
