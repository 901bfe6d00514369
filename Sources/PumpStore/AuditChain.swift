import Crypto
import GRDB

/// The audit log's hash chain (docs/RELIABILITY.md, "The audit chain"): row n's `hash` is
/// SHA-256 of row n−1's hash (32 zero bytes for the first row) followed by row n's canonical
/// bytes. An edited, inserted or removed row breaks every hash from it on; the head (row count
/// and last hash) published elsewhere shows rows cut off the end.
public enum AuditChain {
    /// What the first row is chained to.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// The canonical bytes of a row: its columns in the order id, timeMs, actor, role, pumpID,
    /// action, parameters, outcome, detail, requestID, intentID; an integer as 0x01 and its
    /// stored 64-bit value big-endian (two's complement), NULL as 0x00, text as its UTF-8
    /// length (4 bytes, big-endian) and its UTF-8 bytes.
    public static func canonicalBytes(_ row: AuditRowValues) -> [UInt8] {
        var bytes: [UInt8] = []
        func integer(_ value: Int64?) {
            guard let value else { bytes.append(0); return }
            bytes.append(1)
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        func text(_ value: String) {
            let utf8 = Array(value.utf8)
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        integer(row.id)
        integer(row.timeMs)
        for value in [row.actor, row.role, row.pumpID, row.action, row.parameters, row.outcome, row.detail] { text(value) }
        integer(row.requestID)
        integer(row.intentID)
        return bytes
    }

    /// The hash of `row` chained to `previous` (32 bytes).
    public static func hash(_ row: AuditRowValues, previous: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonicalBytes(row))
        return Array(hasher.finalize())
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var out: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Checks every row of the audit table in id order and, if `recorded` is given (a head read
    /// earlier, e.g. from the health check), that its row still has its hash: a chain is only
    /// ever extended, so the log up to that row is then as it was when the head was read.
    static func verify(_ db: Database, recorded: AuditChainHead? = nil) throws -> AuditChainVerification {
        guard try db.columns(in: "audit").contains(where: { $0.name == "hash" }) else {
            return .broken(rowID: nil, reason: "the audit table has no hash column: the database was never opened by a daemon that chains its audit log")
        }
        var previous = genesis
        var previousID: Int64 = 0
        var count: Int64 = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY id")
        while let row = try rows.next() {
            guard let values = AuditRowValues(row) else {
                return .broken(rowID: AuditRowValues.integer(row, "id") ?? nil, reason: "a column holds a value of the wrong type")
            }
            guard values.id == previousID + 1 else {
                return .broken(rowID: values.id, reason: "row \(values.id) follows row \(previousID): rows are missing")
            }
            guard let stored = AuditRowValues.text(row, "hash").flatMap(bytes(hex:)) else {
                return .broken(rowID: values.id, reason: "row \(values.id) has no valid hash")
            }
            guard stored == hash(values, previous: previous) else {
                return .broken(rowID: values.id, reason: "row \(values.id)'s hash does not match its content and the row before")
            }
            if let recorded, recorded.rows == values.id, recorded.headHash != hex(stored) {
                return .broken(rowID: values.id, reason: "row \(values.id)'s hash is not the recorded head \(recorded.headHash): the log was rewritten")
            }
            previous = stored
            previousID = values.id
            count += 1
        }
        if let recorded {
            if recorded.rows == 0, recorded.headHash != hex(genesis) {
                return .broken(rowID: nil, reason: "the recorded head of an empty log must be the genesis value")
            }
            if recorded.rows > count {
                return .broken(rowID: count + 1, reason: "the log has \(count) rows, the recorded head \(recorded.rows): rows were removed from the end")
            }
        }
        return .intact(AuditChainHead(rows: count, headHash: hex(previous)))
    }

    /// The row count and the last row's hash (the genesis value for an empty log).
    static func head(_ db: Database) throws -> AuditChainHead {
        let count = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM audit") ?? 0
        let last = try Row.fetchOne(db, sql: "SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
        return AuditChainHead(rows: count, headHash: last.flatMap { AuditRowValues.text($0, "hash") } ?? hex(genesis))
    }

    /// The id and hash the next row takes, inside the writing transaction.
    static func next(_ db: Database) throws -> (id: Int64, previous: [UInt8]) {
        guard let last = try Row.fetchOne(db, sql: "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1") else {
            return (1, genesis)
        }
        guard let id = AuditRowValues.integer(last, "id") ?? nil,
              let previous = AuditRowValues.text(last, "hash").flatMap(bytes(hex:))
        else {
            throw StoreError.corruptRow(table: "audit", reason: "the last row has no valid id or hash: the chain cannot be continued")
        }
        return (id + 1, previous)
    }

    /// Chains every existing row (the migration that adds the hash column).
    static func chainExistingRows(_ db: Database) throws {
        var previous = genesis
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id")
        for row in rows {
            guard let values = AuditRowValues(row) else {
                throw StoreError.corruptRow(table: "audit", reason: "a row holds a value of the wrong type and cannot be chained")
            }
            let hash = hash(values, previous: previous)
            try db.execute(sql: "UPDATE audit SET hash = ? WHERE id = ?", arguments: [hex(hash), values.id])
            previous = hash
        }
    }
}

/// An audit row's columns as stored (times by bit pattern), what the chain hashes.
public struct AuditRowValues: Sendable, Hashable {
    public var id: Int64
    public var timeMs: Int64
    public var actor: String
    public var role: String
    public var pumpID: String
    public var action: String
    public var parameters: String
    public var outcome: String
    public var detail: String
    public var requestID: Int64?
    public var intentID: Int64?

    public init(
        id: Int64, timeMs: Int64, actor: String, role: String, pumpID: String, action: String, parameters: String,
        outcome: String, detail: String, requestID: Int64?, intentID: Int64?
    ) {
        self.id = id
        self.timeMs = timeMs
        self.actor = actor
        self.role = role
        self.pumpID = pumpID
        self.action = action
        self.parameters = parameters
        self.outcome = outcome
        self.detail = detail
        self.requestID = requestID
        self.intentID = intentID
    }

    /// An integer column: .some(nil) for NULL, nil for a value of another type. Read through
    /// `DatabaseValue`, which never fails, so an edited file cannot stop the check.
    static func integer(_ row: Row, _ column: String) -> Int64?? {
        guard row.hasColumn(column) else { return nil }
        let value: DatabaseValue = row[column]
        if value.isNull { return .some(nil) }
        guard case .int64(let integer) = value.storage else { return nil }
        return .some(integer)
    }

    /// A text column, nil for NULL or a value of another type.
    static func text(_ row: Row, _ column: String) -> String? {
        guard row.hasColumn(column) else { return nil }
        let value: DatabaseValue = row[column]
        guard case .string(let text) = value.storage else { return nil }
        return text
    }

    /// Nil if a column holds a value of another type than the schema's (only an edited file).
    init?(_ row: Row) {
        func integer(_ column: String) -> Int64?? { Self.integer(row, column) }
        func text(_ column: String) -> String? { Self.text(row, column) }
        guard let id = integer("id") ?? nil, let timeMs = integer("timeMs") ?? nil,
              let actor = text("actor"), let role = text("role"), let pumpID = text("pumpID"), let action = text("action"),
              let parameters = text("parameters"), let outcome = text("outcome"), let detail = text("detail"),
              let requestID = integer("requestID"), let intentID = integer("intentID")
        else { return nil }
        self.init(id: id, timeMs: timeMs, actor: actor, role: role, pumpID: pumpID, action: action, parameters: parameters,
                  outcome: outcome, detail: detail, requestID: requestID, intentID: intentID)
    }
}

/// The chain's head: how many rows, and the last one's hash (hex).
public struct AuditChainHead: Sendable, Hashable, Codable {
    public var rows: Int64
    public var headHash: String

    public init(rows: Int64, headHash: String) {
        self.rows = rows
        self.headHash = headHash
    }
}

/// The result of checking the chain.
public enum AuditChainVerification: Sendable, Hashable {
    /// Every row matches; the head is the one computed.
    case intact(AuditChainHead)
    /// The first row that does not match (nil when the table cannot be chained at all), and why.
    case broken(rowID: Int64?, reason: String)
}

extension PumpStore {
    /// Checks the audit log's chain from its first row, and that it still holds `recorded`.
    public func verifyAuditChain(recorded: AuditChainHead? = nil) throws(StoreError) -> AuditChainVerification {
        try read { db in try AuditChain.verify(db, recorded: recorded) }
    }

    /// The chain's head now.
    public func auditChainHead() throws(StoreError) -> AuditChainHead {
        try read { db in try AuditChain.head(db) }
    }

    /// Checks the chain of the database file at `path`, opened read-only: nothing is migrated
    /// or written, so a file under investigation stays as it is. `recorded` as in `verifyAuditChain(recorded:)`.
    public static func verifyAuditChain(databaseAt path: String, recorded: AuditChainHead? = nil) throws(StoreError) -> AuditChainVerification {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
        do {
            return try queue.read { db in
                guard try db.tableExists("audit") else { throw StoreError.corruptRow(table: "audit", reason: "no audit table") }
                return try AuditChain.verify(db, recorded: recorded)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
    }
}
