import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PumpProtocol

/// Options for talking to pumps through pumplinkd instead of a port.
struct DaemonOptions: ParsableArguments {
    @Option(help: "pumplinkd's address (default: $PUMPLINK_DAEMON or http://127.0.0.1:8750).")
    var daemon: String = ProcessInfo.processInfo.environment["PUMPLINK_DAEMON"] ?? "http://127.0.0.1:8750"

    @Option(help: "API token (default: $PUMPLINK_TOKEN).")
    var token: String = ProcessInfo.processInfo.environment["PUMPLINK_TOKEN"] ?? ""

    @Flag(help: "Print JSON instead of text.")
    var json = false

    var client: DaemonClient {
        get throws {
            guard let url = URL(string: daemon) else { throw ValidationError("--daemon: not a URL: \(daemon)") }
            guard !token.isEmpty else { throw ValidationError("give a token with --token or PUMPLINK_TOKEN") }
            return DaemonClient(base: url, token: token)
        }
    }
}

/// A small JSON client of pumplinkd's HTTP API.
struct DaemonClient: Sendable {
    let base: URL
    let token: String

    /// An error response of the daemon: `{"error": {"code", "message"}}`.
    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var code: String
        var message: String
        var description: String { "\(code): \(message)" }
    }

    func get<T: Decodable>(_ path: String, query: [URLQueryItem] = [], as _: T.Type = T.self) async throws -> T {
        try JSONDecoder().decode(T.self, from: try await send("GET", path, query: query, body: nil))
    }

    func post<T: Decodable>(_ path: String, body: some Encodable, as _: T.Type = T.self) async throws -> T {
        try JSONDecoder().decode(T.self, from: try await send("POST", path, body: try JSONEncoder().encode(body)))
    }

    /// The response body of a successful request, as it came; an error response throws `Failure`.
    func send(_ method: String, _ path: String, query: [URLQueryItem] = [], body: Data?) async throws -> Data {
        guard var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false) else {
            throw CommandFailure("not a URL: \(base)")
        }
        if !query.isEmpty { components.queryItems = query }
        guard let url = components.url else { throw CommandFailure("not a URL: \(components)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = body
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CommandFailure("cannot reach pumplinkd at \(base): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: data)
            throw Failure(status: status, code: envelope?.error.code ?? "http\(status)",
                          message: envelope?.error.message ?? String(decoding: data, as: UTF8.self))
        }
        return data
    }

    private struct ErrorEnvelope: Decodable {
        struct Body: Decodable {
            var code: String
            var message: String
        }
        var error: Body
    }
}

/// The parts of the daemon's pump summary that pumpctl shows.
struct DaemonPump: Decodable {
    struct Link: Decodable {
        var state: String
        var reason: String?
    }
    var id: String
    var port: String
    var link: Link
    var serialNumber: String?
    var model: String?
    var status: Status?
    var uncertainRequests: [UInt32]
    var protocolVersion: UInt8?
    var sealed: Bool?

    /// "protocol 2, sealed" or "protocol 1, in clear"; empty before the pump was reached.
    var protocolText: String {
        guard let protocolVersion else { return "" }
        return ", protocol \(protocolVersion), " + (sealed == true ? "sealed" : "in clear")
    }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lists the pumps pumplinkd serves, with their link state.")
    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        if daemon.json {
            try printJSON(try await daemon.client.get("v1/pumps", as: [JSONValue].self))
            return
        }
        let pumps: [DaemonPump] = try await daemon.client.get("v1/pumps")
        for pump in pumps {
            let link = pump.link.state + (pump.link.reason.map { " (\($0))" } ?? "") + pump.protocolText
            let reservoir = pump.status.map { Format.milliliters($0.reservoirMicroliters) } ?? "-"
            print("\(pump.id)  \(pump.serialNumber ?? "?")  \(pump.port)  link \(link)  reservoir \(reservoir)")
        }
    }
}

struct DaemonWatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch-daemon",
        abstract: "Shows the live status of a pump served by pumplinkd (Ctrl-C to stop)."
    )
    @OptionGroup var daemon: DaemonOptions

    @Option(help: "The pump's id in pumplinkd's configuration.")
    var pump: String

    @Option(help: "Milliseconds between refreshes.")
    var intervalMs: Int = 1000

    func run() async throws {
        let remote = RemotePump(client: try daemon.client, id: pump, json: false)
        try await watchDaemon(remote, label: daemon.daemon, intervalMs: intervalMs)
    }
}

/// Redraws a pump's status from pumplinkd every `intervalMs` until interrupted, like watch(1).
func watchDaemon(_ pump: RemotePump, label: String, intervalMs: Int) async throws -> Never {
    while true {
        do {
            let summary = try await pump.get(echo: false, as: DaemonPumpDetail.self).summary
            if pump.json {
                if let status = summary.status {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    emit(String(decoding: try encoder.encode(status), as: UTF8.self) + "\n")
                }
            } else {
                var screen = "\u{1B}[H\u{1B}[2J"
                screen += "pumplinkd \(label): pump \(summary.id), serial \(summary.serialNumber ?? "?"), link \(summary.link.state)"
                screen += summary.link.reason.map { " (\($0))" } ?? ""
                screen += summary.protocolText
                screen += "\n\n"
                if let status = summary.status { screen += Format.status(status) + "\n" }
                if !summary.uncertainRequests.isEmpty {
                    screen += "UNCERTAIN requests \(summary.uncertainRequests): doses blocked until resolved\n"
                }
                emit(screen)
            }
        } catch {
            if pump.json { throw error }
            emit("\u{1B}[H\u{1B}[2Jpumplinkd \(label): \(error)\n")
        }
        try await Task.sleep(for: .milliseconds(intervalMs))
    }
}

/// The daemon's `PumpDetail` (GET /v1/pumps/{id}).
struct DaemonPumpDetail: Decodable {
    var summary: DaemonPump
    var firmwareVersion: String?
    var reservoirCapacityMicroliters: UInt32?
    var activeProgram: PumpProtocol.Program?
    var lastStoredEventSequence: UInt32
}

/// Any JSON, passed through.
enum JSONValue: Codable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
