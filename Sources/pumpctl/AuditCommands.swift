import ArgumentParser
import Foundation
import PumpStore

/// `pumpctl audit`: the daemon's audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Checks the daemon's audit log.",
        subcommands: [Verify.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Checks the audit log's hash chain and names the first row that breaks it.",
            discussion: """
                Reads the daemon's database file read-only (it may be a copy, or in use by a running \
                pumplinkd) and recomputes every row's hash from the first (docs/RELIABILITY.md, "The \
                audit chain"). A log cut short is still a valid chain: give a head recorded earlier \
                (--head ROWS:HASH, as GET /v1/health gives it) or --daemon to read the running one's, \
                and that row must still carry that hash. Exit codes: 0 intact, 1 broken or unreadable, \
                2 usage.
                """
        )

        @Option(help: "The daemon's database: pumplink.sqlite in its data directory.")
        var database: String

        @Option(help: "A head recorded earlier, ROWS:HASH (GET /v1/health's audit.rows and audit.headHash).")
        var head: String?

        @Option(help: "A running pumplinkd whose current head (GET /v1/health) the file must hold.")
        var daemon: String?

        @Flag(help: "Print the result as JSON.")
        var json = false

        func validate() throws {
            guard FileManager.default.fileExists(atPath: database) else {
                throw ValidationError("no file at \(database)")
            }
            if head != nil, daemon != nil { throw ValidationError("give --head or --daemon, not both") }
            if let head, Self.parse(head) == nil { throw ValidationError("--head: not ROWS:HASH (64 hex digits): \(head)") }
            if let daemon, URL(string: daemon)?.scheme == nil { throw ValidationError("--daemon: not a URL: \(daemon)") }
        }

        static func parse(_ text: String) -> AuditChainHead? {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let rows = Int64(parts[0]), rows >= 0, parts[1].count == 64,
                  parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
            return AuditChainHead(rows: rows, headHash: String(parts[1]))
        }

        /// The head the running daemon reports.
        static func daemonHead(_ daemon: String) async throws -> AuditChainHead {
            struct Health: Decodable {
                struct Audit: Decodable { var rows: Int64; var headHash: String }
                var audit: Audit
            }
            guard let base = URL(string: daemon) else { throw ValidationError("--daemon: not a URL: \(daemon)") }
            // The health check needs no token.
            let health: Health = try await DaemonClient(base: base, token: "").get("/v1/health")
            return AuditChainHead(rows: health.audit.rows, headHash: health.audit.headHash)
        }

        func run() async throws {
            var recorded = head.flatMap(Self.parse)
            if let daemon { recorded = try await Self.daemonHead(daemon) }
            let result: AuditChainVerification
            do {
                result = try PumpStore.verifyAuditChain(databaseAt: database, recorded: recorded)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
            switch result {
            case .intact(let head):
                if json {
                    print(#"{"intact":true,"rows":\#(head.rows),"headHash":"\#(head.headHash)"}"#)
                } else {
                    print("audit chain intact: \(head.rows) rows, head \(head.headHash)")
                }
            case .broken(let rowID, let reason):
                if json {
                    let row = rowID.map(String.init) ?? "null"
                    let escaped = reason.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    print(#"{"intact":false,"firstBrokenRow":\#(row),"reason":"\#(escaped)"}"#)
                } else {
                    FileHandle.standardError.write(Data("audit chain broken\(rowID.map { " at row \($0)" } ?? ""): \(reason)\n".utf8))
                }
                throw ExitCode(1)
            }
        }
    }
}
