import Foundation
import Hummingbird
import Logging
import PumpAPIRequests
import PumpProtocol

/// The daemon's HTTP API on `service` (README, protocol/openapi.json), ready to run as a `Service` (the executable
/// puts it in its `ServiceGroup`) or to test with `app.test(.router)`.
public func buildAPI(service: some PumpService, configuration: APIConfiguration, logger: Logger) -> some ApplicationProtocol {
    let address: BindAddress =
        if let path = configuration.unixSocket {
            .unixDomainSocket(path: path)
        } else {
            .hostname(configuration.host, port: configuration.port)
        }
    return Application(
        router: buildRouter(service: service, configuration: configuration, logger: logger),
        configuration: ApplicationConfiguration(address: address, serverName: "pumplinkd"),
        logger: logger)
}

/// The router of `buildAPI`, one route per `APIEndpoint`.
public func buildRouter(service: some PumpService, configuration: APIConfiguration, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: ErrorEnvelopeMiddleware(encoder: JSONEncoding()))
    let handlers = APIHandlers(service: service, configuration: configuration, logger: logger)
    for endpoint in APIEndpoint.allCases {
        router.on(RouterPath(endpoint.path), method: endpoint.method) { request, context in
            try await handlers.respond(endpoint, request, context)
        }
    }
    return router
}

/// Checks, decodes, calls the service, encodes. A request that fails a check (token, role,
/// query, body) is refused before the service is called.
struct APIHandlers<Service: PumpService>: Sendable {
    let service: Service
    let configuration: APIConfiguration
    let authenticator: TokenAuthenticator
    let logger: Logger
    /// Every `/v1/stream` client of this router.
    let streams = StreamHub()
    private let json = JSONEncoding()

    static var eventsLimitDefault: Int { 100 }
    static var eventsLimitMaximum: Int { 1000 }
    static var auditLimitDefault: Int { 100 }
    static var auditLimitMaximum: Int { 1000 }

    init(service: Service, configuration: APIConfiguration, logger: Logger) {
        self.service = service
        self.configuration = configuration
        self.authenticator = TokenAuthenticator(configuration.tokens)
        self.logger = logger
    }

    func respond(_ endpoint: APIEndpoint, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let actor: Actor
        switch endpoint.access {
        case .open: actor = Actor(name: "anonymous", role: .observer)
        case .role(let role): actor = try authenticator.authorize(request, required: role)
        }
        let query = try queryParameters(request, allowed: endpoint.queryParameters)
        switch endpoint {
        case .health:
            return try json.response(HealthBody(status: "ok", audit: try await service.auditHead()))
        case .metrics:
            let text = await service.metricsText()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        case .listPumps:
            return try json.response(await service.pumps())
        case .getPump:
            return try json.response(try await service.pump(pumpID(context)))
        case .listEvents:
            let from = try integer(query["from"], name: "from", in: UInt32(0)...UInt32.max) ?? 0
            let limit =
                try integer(query["limit"], name: "limit", in: 1...Self.eventsLimitMaximum) ?? Self.eventsLimitDefault
            return try json.response(try await service.events(pumpID(context), from: from, limit: limit))
        case .getProgram:
            // JSON null when no program is active.
            return try json.response(try await service.activeProgram(pumpID(context)))
        case .reviewProgram:
            let id = try pumpID(context)
            let body = try checked(try await decode(ProgramBody.self, request).validated)
            return try json.response(try await service.review(id, program: body.program, override: body.override))
        case .pushProgram:
            let id = try pumpID(context)
            let body = try checked(try await decode(ProgramBody.self, request).validated)
            log(endpoint, actor, id)
            return try json.response(
                try await service.push(id, program: body.program, override: body.override, by: actor))
        case .refill:
            let id = try pumpID(context)
            let body = try await decode(RefillBody.self, request)
            log(endpoint, actor, id)
            return try json.response(
                try await service.refill(
                    id, aspiratedMicroliters: body.aspiratedMicroliters, newVolumeMicroliters: body.newVolumeMicroliters,
                    by: actor))
        case .clinicianBolus:
            let id = try pumpID(context)
            let body = try checked(try await decode(ClinicianBolusBody.self, request).validated)
            log(endpoint, actor, id)
            return try json.response(
                try await service.clinicianBolus(
                    id, body.request, override: body.override, catheterVolumeMicroliters: body.catheterVolumeMicroliters,
                    by: actor))
        case .patientBolus:
            let id = try pumpID(context)
            _ = try await decode(EmptyBody.self, request)
            log(endpoint, actor, id)
            return try json.response(try await service.patientBolus(id, by: actor))
        case .suspend:
            let id = try pumpID(context)
            _ = try await decode(EmptyBody.self, request)
            log(endpoint, actor, id)
            return try json.response(try await service.suspend(id, by: actor))
        case .resume:
            let id = try pumpID(context)
            _ = try await decode(EmptyBody.self, request)
            log(endpoint, actor, id)
            return try json.response(try await service.resume(id, by: actor))
        case .acknowledgeAlarms:
            let id = try pumpID(context)
            let mask = try checked(try await decode(AcknowledgeAlarmsBody.self, request).alarmMask)
            log(endpoint, actor, id)
            return try json.response(try await service.acknowledgeAlarms(id, mask: mask, by: actor))
        case .setClock:
            let id = try pumpID(context)
            let body = try checked(try await decode(SetClockBody.self, request).validated)
            log(endpoint, actor, id)
            return try json.response(
                try await service.setClock(
                    id, timeMs: body.timeMs, utcOffsetMinutes: body.utcOffsetMinutes, override: body.override, by: actor))
        case .audit:
            let limit =
                try integer(query["limit"], name: "limit", in: 1...Self.auditLimitMaximum) ?? Self.auditLimitDefault
            return try json.response(try await service.audit(pump: query["pump"], limit: limit))
        case .getCapture:
            return try json.response(try await service.captureStatus(pumpID(context)))
        case .startCapture:
            let id = try pumpID(context)
            _ = try await decode(EmptyBody.self, request)
            log(endpoint, actor, id)
            return try json.response(try await service.startCapture(id, by: actor))
        case .stopCapture:
            let id = try pumpID(context)
            _ = try await decode(EmptyBody.self, request)
            log(endpoint, actor, id)
            return try json.response(try await service.stopCapture(id, by: actor))
        case .stream:
            let pumpID = query["pump"]
            if let pumpID, !(await service.pumps().contains { $0.id == pumpID }) {
                throw DaemonError(.unknownPump, "no pump \(pumpID)", details: ["pump": pumpID])
            }
            // Subscribed before the response starts: the client sees every update after the
            // first bytes of the body.
            await streams.start(service)
            let subscription = streams.subscribe(pumpID: pumpID, bufferSize: max(1, configuration.streamBufferSize))
            return EventStream(subscription: subscription, heartbeatInterval: .seconds(15)).response
        }
    }

    private func log(_ endpoint: APIEndpoint, _ actor: Actor, _ pumpID: String) {
        logger.info(
            "API request",
            metadata: [
                "api.endpoint": "\(endpoint.rawValue)", "api.actor": "\(actor.name)", "api.role": "\(actor.role.rawValue)",
                "pump.id": "\(pumpID)",
            ])
    }

    private func pumpID(_ context: BasicRequestContext) throws(APIError) -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw .badRequest("the pump id is missing") }
        return id
    }

    private func queryParameters(_ request: Request, allowed: Set<String>) throws(APIError) -> [String: String] {
        let pairs = request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
        return try checked { () throws(RequestError) in try QueryParameters.parse(pairs, allowed: allowed) }
    }

    private func integer<T: FixedWidthInteger>(_ text: String?, name: String, in range: ClosedRange<T>) throws(APIError) -> T? {
        try checked { () throws(RequestError) in try QueryParameters.integer(text, name: name, in: range) }
    }

    /// A check of PumpAPIRequests, its refusal as the API's error.
    private func checked<T>(_ check: () throws(RequestError) -> T) throws(APIError) -> T {
        do {
            return try check()
        } catch {
            throw APIError(error)
        }
    }

    /// The body, at most `maxRequestBodyBytes`, decoded strictly. An empty body is `{}`.
    private func decode<T: Codable>(_ type: T.Type, _ request: Request) async throws -> T {
        let limit = configuration.maxRequestBodyBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw APIError.bodyTooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: limit)
        }
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
        return try json.decodeStrict(T.self, from: data)
    }
}
