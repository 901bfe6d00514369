import Foundation
import GRDB
import PumpProtocol
import Testing
@testable import PumpStore

/// The audit log as a hash chain: every row hashed with the one before, existing rows chained by
/// the migration, and any edit of the file found and named by the check.
@Suite("Audit chain")
struct AuditChainTests {
    /// Three audited commands in a database file: six rows.
    static func fileWithRows(_ directory: TemporaryDirectory) throws -> String {
        let path = directory.path("audit.sqlite")
        let store = try PumpStore(path: path)
        try store.registerPump(id: "p1", port: "/dev/ttyUSB0")
        for (index, action) in ["suspend", "resume", "bolus.clinician"].enumerated() {
            let intent = try store.recordIntent(
                actor: "dr-lee", role: "clinician", pumpID: "p1", action: action, parameters: #"{"n":\#(index)}"#,
                requestID: nil, timeMs: 1_700_000_000_000 + UInt64(index))
            try store.recordOutcome(intentID: intent, outcome: .done, detail: "", requestID: UInt32(10 + index), timeMs: 1_700_000_000_500)
        }
        try store.close()
        return path
    }

    /// Runs SQL on the file as someone with write access to it would, triggers dropped first.
    static func tamper(_ path: String, _ sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            try db.execute(sql: sql)
        }
        try queue.close()
    }

    @Test func everyRowIsChainedToTheOneBefore() throws {
        let store = try storeWithPump()
        guard case .intact(let empty) = try store.verifyAuditChain() else { Issue.record("an empty log is intact"); return }
        #expect(empty == AuditChainHead(rows: 0, headHash: String(repeating: "0", count: 64)))
        let intent = try store.recordIntent(actor: "a", role: "clinician", pumpID: "p1", action: "suspend", parameters: "{}", requestID: nil, timeMs: 5)
        try store.recordOutcome(intentID: intent, outcome: .refused, detail: "x", timeMs: 6)
        let head = try store.auditChainHead()
        #expect(head.rows == 2)
        #expect(try store.verifyAuditChain() == .intact(head))
        // Row 2's hash is SHA-256 of row 1's hash and row 2's canonical bytes.
        let rows = try store.read { db in try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id") }
        let first = try #require(AuditRowValues(rows[0]))
        let second = try #require(AuditRowValues(rows[1]))
        let firstHash = AuditChain.hash(first, previous: AuditChain.genesis)
        #expect(rows[0]["hash"] as String? == AuditChain.hex(firstHash))
        #expect(head.headHash == AuditChain.hex(AuditChain.hash(second, previous: firstHash)))
    }

    /// The canonical bytes and hash of a fixed row, as docs/RELIABILITY.md defines them (the
    /// figures were computed independently, with Python's hashlib).
    @Test func canonicalBytesAreAsDocumented() {
        let row = AuditRowValues(
            id: 1, timeMs: 1_700_000_000_000, actor: "dr-lee", role: "clinician", pumpID: "bed-1", action: "suspend",
            parameters: "{}", outcome: "pending", detail: "", requestID: nil, intentID: nil)
        let bytes = AuditChain.canonicalBytes(row)
        #expect(Array(bytes.prefix(9)) == [1, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(Array(bytes.suffix(2)) == [0, 0])
        #expect(AuditChain.hex(AuditChain.hash(row, previous: AuditChain.genesis)) == Self.documentedHash)
    }

    static let documentedHash = "5b7a1eb4589f6b3cf108c929ee018067354be1aff9018e9ea6d384ddcbdbf402"

    @Test func theMigrationChainsRowsWrittenBeforeIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("old.sqlite")
        // A database as the previous version left it: schema v2, rows without hashes.
        do {
            let queue = try DatabaseQueue(path: path)
            try PumpStore.migrator.migrate(queue, upTo: "v2: changing requests sent for an intent")
            try queue.write { db in
                try db.execute(sql: "INSERT INTO pump (id, port) VALUES ('p1', '/dev/ttyUSB0')")
                for index in 1...3 {
                    try db.execute(
                        sql: "INSERT INTO audit (timeMs, actor, role, pumpID, action, parameters, outcome, detail) VALUES (?, 'a', 'clinician', 'p1', 'suspend', '{}', 'refused', 'old')",
                        arguments: [index])
                }
            }
            try queue.close()
        }
        let store = try PumpStore(path: path)
        #expect(try store.appliedMigrations().last == "v3: the audit log as a hash chain")
        #expect(try store.auditChainHead().rows == 3)
        guard case .intact = try store.verifyAuditChain() else { Issue.record("the migrated rows are chained"); return }
        // New rows continue the chain; the log is still append-only.
        try store.record(actor: "a", role: "clinician", pumpID: "p1", action: "resume", parameters: "{}", outcome: .refused, detail: "new", timeMs: 9)
        guard case .intact(let head) = try store.verifyAuditChain() else { Issue.record("the chain continues"); return }
        #expect(head.rows == 4)
        #expect(throws: StoreError.self) { try store.write { db in try db.execute(sql: "UPDATE audit SET detail = 'x' WHERE id = 1") } }
        // A row without its hash cannot be written.
        #expect(throws: StoreError.self) {
            try store.write { db in
                try db.execute(sql: "INSERT INTO audit (timeMs, actor, role, pumpID, action, parameters, outcome, detail) VALUES (1, 'a', 'r', 'p1', 'x', '{}', 'done', '')")
            }
        }
    }

    @Test(arguments: [
        // An edited detail: the row itself no longer matches.
        ("UPDATE audit SET detail = 'nothing happened' WHERE id = 4", Int64(4)),
        // Another actor on an outcome row.
        ("UPDATE audit SET actor = 'someone' WHERE id = 2", Int64(2)),
        // A removed row: the one after it names the gap.
        ("DELETE FROM audit WHERE id = 4", Int64(5)),
        // A changed outcome on the last row.
        ("UPDATE audit SET outcome = 'refused' WHERE id = 6", Int64(6)),
    ])
    func anEditedFileIsFoundAndTheFirstBrokenRowNamed(sql: String, firstBroken: Int64) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try Self.fileWithRows(directory)
        guard case .intact(let before) = try PumpStore.verifyAuditChain(databaseAt: path) else {
            Issue.record("the untouched file is intact"); return
        }
        #expect(before.rows == 6)
        try Self.tamper(path, sql)
        guard case .broken(let rowID, let reason) = try PumpStore.verifyAuditChain(databaseAt: path) else {
            Issue.record("the edit is found"); return
        }
        #expect(rowID == firstBroken, "\(reason)")
    }

    @Test func aRecomputedHashBreaksTheRowAfterIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try Self.fileWithRows(directory)
        // Row 2 rewritten with a hash that matches its new content: row 3 still names the old one.
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update")
            try db.execute(sql: "UPDATE audit SET detail = 'forged' WHERE id = 2")
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE id <= 2 ORDER BY id")
            let first = AuditChain.bytes(hex: rows[0]["hash"] as String? ?? "") ?? []
            let forged = AuditChain.hash(try #require(AuditRowValues(rows[1])), previous: first)
            try db.execute(sql: "UPDATE audit SET hash = ? WHERE id = 2", arguments: [AuditChain.hex(forged)])
        }
        try queue.close()
        guard case .broken(let rowID, _) = try PumpStore.verifyAuditChain(databaseAt: path) else {
            Issue.record("the forgery is found"); return
        }
        #expect(rowID == 3)
    }

    /// Rows cut off the end, or the whole chain rebuilt around an edit, leave a valid chain: a
    /// head recorded before (from the health check) shows both.
    @Test func aRecordedHeadShowsATruncatedOrRebuiltLog() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try Self.fileWithRows(directory)
        guard case .intact(let recorded) = try PumpStore.verifyAuditChain(databaseAt: path) else {
            Issue.record("the untouched file is intact"); return
        }
        // Later rows do not matter: the recorded row still has its hash.
        let shorter = AuditChainHead(rows: 4, headHash: try Self.hash(ofRow: 4, in: path))
        guard case .intact = try PumpStore.verifyAuditChain(databaseAt: path, recorded: shorter) else {
            Issue.record("a head from before later rows holds"); return
        }

        let truncated = directory.path("truncated.sqlite")
        try FileManager.default.copyItem(atPath: path, toPath: truncated)
        try Self.tamper(truncated, "DELETE FROM audit WHERE id >= 5")
        guard case .intact(let cut) = try PumpStore.verifyAuditChain(databaseAt: truncated) else {
            Issue.record("a truncated chain is still a chain"); return
        }
        #expect(cut.rows == 4)
        guard case .broken(let rowID, _) = try PumpStore.verifyAuditChain(databaseAt: truncated, recorded: recorded) else {
            Issue.record("the recorded head shows the truncation"); return
        }
        #expect(rowID == 5)

        // Row 2 edited and every hash from it recomputed.
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update")
            try db.execute(sql: "UPDATE audit SET detail = 'forged' WHERE id = 2")
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id")
            var previous = AuditChain.genesis
            for row in rows {
                let hash = AuditChain.hash(try #require(AuditRowValues(row)), previous: previous)
                try db.execute(sql: "UPDATE audit SET hash = ? WHERE id = ?", arguments: [AuditChain.hex(hash), row["id"] as Int64?])
                previous = hash
            }
        }
        try queue.close()
        guard case .intact = try PumpStore.verifyAuditChain(databaseAt: path) else { Issue.record("a rebuilt chain is a chain"); return }
        guard case .broken(let rebuiltAt, _) = try PumpStore.verifyAuditChain(databaseAt: path, recorded: recorded) else {
            Issue.record("the recorded head shows the rebuilt log"); return
        }
        #expect(rebuiltAt == 6)
        let cli = try Self.pumpctl(["audit", "verify", "--database", path, "--head", "\(recorded.rows):\(recorded.headHash)"])
        #expect(cli.status == 1)
        #expect(cli.stderr.contains("audit chain broken at row 6"), "\(cli.stderr)")
    }

    static func hash(ofRow id: Int64, in path: String) throws -> String {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchOne(db, sql: "SELECT hash FROM audit WHERE id = ?", arguments: [id]) } ?? ""
    }

    /// `pumpctl audit verify --database`: 0 and the head for an intact file, 1 and the row for an edited one.
    @Test func pumpctlVerifyNamesTheFirstBrokenRow() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try Self.fileWithRows(directory)
        let intact = try Self.pumpctl(["audit", "verify", "--database", path])
        #expect(intact.status == 0, "\(intact.stderr)")
        #expect(intact.stdout.contains("audit chain intact: 6 rows"), "\(intact.stdout)")
        try Self.tamper(path, "UPDATE audit SET parameters = '{\"n\":9}' WHERE id = 5")
        let broken = try Self.pumpctl(["audit", "verify", "--database", path])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("audit chain broken at row 5"), "\(broken.stderr)")
        let missing = try Self.pumpctl(["audit", "verify", "--database", directory.path("none.sqlite")])
        #expect(missing.status == 2)
        #expect(try Self.pumpctl(["audit", "verify", "--database", path, "--head", "6:abc"]).status == 2)
    }

    static func pumpctl(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("pumpctl").path) {
            directory.deleteLastPathComponent()
        }
        let process = Process()
        process.executableURL = directory.appendingPathComponent("pumpctl")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }
}
