import ArgumentParser
import Foundation
import PumpProtocol
import PumpSafety

/// One pump of pumplinkd, reached through its HTTP API (`--pump`).
struct RemotePump: Sendable {
    let client: DaemonClient
    let id: String
    /// With `--json` the daemon's response is printed as it comes.
    let json: Bool

    private var path: String { "v1/pumps/\(id)" }

    /// GET /v1/pumps/{id}`suffix`; the body is echoed with --json unless `echo` is false.
    func get<T: Decodable>(_ suffix: String = "", query: [URLQueryItem] = [], echo: Bool = true, as _: T.Type = T.self) async throws -> T {
        try decode(try await client.send("GET", path + suffix, query: query, body: nil), echo: echo)
    }

    /// POST /v1/pumps/{id}`suffix` with a JSON body; the response is echoed with --json unless `echo` is false.
    func post<T: Decodable>(_ suffix: String, _ body: some Encodable, echo: Bool = true, as _: T.Type = T.self) async throws -> T {
        try decode(try await client.send("POST", path + suffix, body: try JSONEncoder().encode(body)), echo: echo)
    }

    /// POST with an empty JSON object: the actions that take no parameters.
    func post<T: Decodable>(_ suffix: String, echo: Bool = true, as type: T.Type = T.self) async throws -> T {
        try await post(suffix, [String: String](), echo: echo, as: type)
    }

    /// The pump's status as the daemon last read it.
    func status(echo: Bool = true) async throws -> (DaemonPumpDetail, Status) {
        let detail: DaemonPumpDetail = try await get(echo: echo)
        guard let status = detail.summary.status else {
            throw CommandFailure("pump \(id) has no status yet (link \(detail.summary.link.state)\(detail.summary.link.reason.map { ": \($0)" } ?? ""))")
        }
        return (detail, status)
    }

    private func decode<T: Decodable>(_ data: Data, echo: Bool) throws -> T {
        if json && echo { print(String(decoding: data, as: UTF8.self)) }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw CommandFailure("pumplinkd's response could not be read: \(error)")
        }
    }
}

/// Runs `body` against the pump of pumplinkd and turns daemon errors into one line and an
/// exit code: 2 for a malformed request, 3 if the outcome is uncertain, 1 otherwise.
func withDaemon<T>(_ pump: RemotePump, _ body: (RemotePump) async throws -> T) async throws -> T {
    do {
        return try await body(pump)
    } catch let failure as DaemonClient.Failure {
        printError("error: \(failure)")
        if failure.code == "uncertain" {
            printError("The outcome is unknown: check `pumpctl status` and `pumpctl events` for the pump before retrying.")
            throw ExitCode(3)
        }
        throw ExitCode(failure.code == "badRequest" ? 2 : 1)
    } catch let failure as CommandFailure {
        printError("error: \(failure)")
        throw ExitCode(failure.exitCode)
    }
}

/// A refusal decided from a response (not an HTTP error), reported like a daemon error.
func refuse(_ code: String, _ message: String) -> DaemonClient.Failure {
    DaemonClient.Failure(status: 409, code: code, message: message)
}

// The daemon's safety reports are PumpSafety's own types.

extension ProgramReport {
    /// Whether a push of it would go ahead.
    var accepted: Bool { verdict == .accepted || verdict == .acceptedWithOverride }
}

struct PushResult: Decodable {
    var report: ProgramReport
    var activated: ProgramActivateResponse
    /// Absent when the daemon could not read the status right after the confirmed activation.
    var status: Status?
}

struct RefillResult: Decodable {
    var report: RefillReport
    var pump: RefillResponse
}

/// The body of program review and push.
struct ProgramBody: Encodable {
    var program: PumpProtocol.Program
    var override: Override?
}
