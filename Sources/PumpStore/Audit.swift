import GRDB

extension PumpStore {
    /// Records that `actor` is about to send a changing command: a "pending" row written before
    /// the command goes out, so a crash between sending and recording still leaves a trace.
    /// Returns the intent's id, to link its outcome.
    public func recordIntent(
        actor: String, role: String, pumpID: String, action: String, parameters: String,
        requestID: UInt32?, timeMs: UInt64
    ) throws(StoreError) -> Int64 {
        try write { db in
            try Self.append(
                db, timeMs: timeMs, actor: actor, role: role, pumpID: pumpID, action: action,
                parameters: parameters, outcome: .pending, detail: "", requestID: requestID, intentID: nil)
        }
    }

    /// Appends how an intent ended. The row repeats the intent's actor, pump, action and
    /// parameters (and its request id when `requestID` is nil) so it reads on its own.
    /// Returns the new row's id.
    @discardableResult
    public func recordOutcome(
        intentID: Int64, outcome: AuditOutcome, detail: String, requestID: UInt32? = nil, timeMs: UInt64
    ) throws(StoreError) -> Int64 {
        guard outcome != .pending else { throw .invalidOutcome(outcome.rawValue) }
        return try write { db in
            try Self.appendOutcome(db, intentID: intentID, outcome: outcome, detail: detail, requestID: requestID, timeMs: timeMs)
        }
    }

    /// Appends a complete row for a request that was never sent, e.g. refused by the safety
    /// rules or the actor's role. Returns its id.
    @discardableResult
    public func record(
        actor: String, role: String, pumpID: String, action: String, parameters: String,
        outcome: AuditOutcome, detail: String, timeMs: UInt64
    ) throws(StoreError) -> Int64 {
        try write { db in
            try Self.append(
                db, timeMs: timeMs, actor: actor, role: role, pumpID: pumpID, action: action,
                parameters: parameters, outcome: outcome, detail: detail, requestID: nil, intentID: nil)
        }
    }

    /// The newest `limit` rows of the audit log, of one pump or all, newest first.
    public func audit(pumpID: String? = nil, limit: Int) throws(StoreError) -> [AuditEntry] {
        let rows = try read { db in
            if let pumpID {
                try Row.fetchAll(
                    db, sql: "SELECT * FROM audit WHERE pumpID = ? ORDER BY id DESC LIMIT ?",
                    arguments: [pumpID, max(0, limit)])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)])
            }
        }
        return try rows.map { row throws(StoreError) in try Self.entry(row) }
    }

    /// An intent and its outcomes, oldest first.
    public func auditTrail(intentID: Int64) throws(StoreError) -> [AuditEntry] {
        let rows = try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit WHERE id = ?1 OR intentID = ?1 ORDER BY id", arguments: [intentID])
        }
        guard let first = rows.first, first["id"] == intentID, first["intentID"] as Int64? == nil else {
            throw .unknownIntent(intentID)
        }
        return try rows.map { row throws(StoreError) in try Self.entry(row) }
    }

    /// Intents with no outcome yet, oldest first. After a restart these are commands that may
    /// have been sent before the daemon stopped: their outcome is unknown.
    public func intentsWithoutOutcome(pumpID: String? = nil) throws(StoreError) -> [AuditEntry] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM audit i
                    WHERE i.outcome = 'pending' AND i.intentID IS NULL AND (?1 IS NULL OR i.pumpID = ?1)
                      AND NOT EXISTS (SELECT 1 FROM audit o WHERE o.intentID = i.id)
                    ORDER BY i.id
                    """,
                arguments: [pumpID])
        }
        return try rows.map { row throws(StoreError) in try Self.entry(row) }
    }

    static func appendOutcome(
        _ db: Database, intentID: Int64, outcome: AuditOutcome, detail: String, requestID: UInt32?, timeMs: UInt64
    ) throws -> Int64 {
        guard
            let intent = try Row.fetchOne(
                db, sql: "SELECT * FROM audit WHERE id = ? AND intentID IS NULL AND outcome = 'pending'",
                arguments: [intentID])
        else { throw StoreError.unknownIntent(intentID) }
        let entry = try entry(intent)
        return try append(
            db, timeMs: timeMs, actor: entry.actor, role: entry.role, pumpID: entry.pumpID, action: entry.action,
            parameters: entry.parameters, outcome: outcome, detail: detail, requestID: requestID ?? entry.requestID,
            intentID: intentID)
    }

    private static func append(
        _ db: Database, timeMs: UInt64, actor: String, role: String, pumpID: String, action: String,
        parameters: String, outcome: AuditOutcome, detail: String, requestID: UInt32?, intentID: Int64?
    ) throws -> Int64 {
        // The row's id is chosen here, in the writing transaction, because its hash covers it.
        let (id, previous) = try AuditChain.next(db)
        let values = AuditRowValues(
            id: id, timeMs: timeMs.stored, actor: actor, role: role, pumpID: pumpID, action: action,
            parameters: parameters, outcome: outcome.rawValue, detail: detail, requestID: requestID.map(Int64.init),
            intentID: intentID)
        let hash = AuditChain.hex(AuditChain.hash(values, previous: previous))
        try db.execute(
            sql: """
                INSERT INTO audit (id, timeMs, actor, role, pumpID, action, parameters, outcome, detail, requestID, intentID, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, timeMs.stored, actor, role, pumpID, action, parameters, outcome.rawValue, detail, requestID, intentID, hash,
            ])
        return id
    }

    private static func entry(_ row: Row) throws(StoreError) -> AuditEntry {
        AuditEntry(
            id: try row.integer("id", in: "audit"),
            timeMs: try row.unsigned64("timeMs", in: "audit"),
            actor: try row.text("actor", in: "audit"),
            role: try row.text("role", in: "audit"),
            pumpID: try row.text("pumpID", in: "audit"),
            action: try row.text("action", in: "audit"),
            parameters: try row.text("parameters", in: "audit"),
            outcome: try row.text("outcome", in: "audit"),
            detail: try row.text("detail", in: "audit"),
            requestID: try row.optionalExact("requestID", in: "audit"),
            intentID: try row.optionalExact("intentID", in: "audit"))
    }
}

/// A changing request sent on behalf of an intent.
public struct SentRequest: Sendable, Hashable {
    public var intentID: Int64
    public var pumpID: String
    public var requestID: UInt32
    /// The message type's name, e.g. "ProgramActivate".
    public var messageType: String
    public var timeMs: UInt64

    public init(intentID: Int64, pumpID: String, requestID: UInt32, messageType: String, timeMs: UInt64) {
        self.intentID = intentID
        self.pumpID = pumpID
        self.requestID = requestID
        self.messageType = messageType
        self.timeMs = timeMs
    }
}

extension PumpStore {
    /// Records, before it goes out, that a changing request is sent for an intent (which must
    /// still be without an outcome). Written synchronously: when this returns, a crash can no longer hide the send.
    public func recordSent(
        intentID: Int64, pumpID: String, requestID: UInt32, messageType: String, timeMs: UInt64
    ) throws(StoreError) {
        try write { db in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM audit WHERE id = ? AND intentID IS NULL AND outcome = 'pending' AND pumpID = ?",
                    arguments: [intentID, pumpID]) != nil
            else { throw StoreError.unknownIntent(intentID) }
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM audit WHERE intentID = ?", arguments: [intentID]) == nil else {
                throw StoreError.intentConcluded(intentID)
            }
            try db.execute(
                sql: "INSERT INTO sent (intentID, pumpID, requestID, messageType, timeMs) VALUES (?, ?, ?, ?, ?)",
                arguments: [intentID, pumpID, requestID, messageType, timeMs.stored])
        }
    }

    /// The highest request id ever recorded as sent to the pump (or left uncertain), or nil.
    /// A new session must start above it: a request sent just before a crash may never have
    /// reached the pump, which then has not counted its id as used.
    public func highestSentRequestID(pumpID: String) throws(StoreError) -> UInt32? {
        let highest = try read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(requestID) FROM (
                        SELECT requestID FROM sent WHERE pumpID = ?1
                        UNION ALL SELECT requestID FROM uncertain WHERE pumpID = ?1)
                    """,
                arguments: [pumpID])
        }
        return highest.map { UInt32(clamping: $0) }
    }

    /// The changing requests sent for an intent, in the order they were sent.
    public func sentRequests(intentID: Int64) throws(StoreError) -> [SentRequest] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sent WHERE intentID = ? ORDER BY rowid", arguments: [intentID])
        }
        return try rows.map { row throws(StoreError) in
            SentRequest(
                intentID: try row.integer("intentID", in: "sent"),
                pumpID: try row.text("pumpID", in: "sent"),
                requestID: try row.exact("requestID", in: "sent"),
                messageType: try row.text("messageType", in: "sent"),
                timeMs: try row.unsigned64("timeMs", in: "sent"))
        }
    }
}
