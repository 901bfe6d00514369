import GRDB

extension PumpStore {
    /// Records that a changing request was sent and not answered: its outcome is unknown until
    /// resolved from the pump's record, and the daemon blocks new doses on the pump until then.
    /// With an `intentID`, also appends the intent's "uncertain" outcome in the same transaction
    /// (so do not record that outcome separately). Marking an already recorded request again
    /// makes it unresolved again.
    public func markUncertain(
        pumpID: String, requestID: UInt32, action: String, intentID: Int64?,
        detail: String = "sent, no response", timeMs: UInt64
    ) throws(StoreError) {
        try write { db in
            try Self.requirePump(pumpID, in: db)
            if let intentID {
                _ = try Self.appendOutcome(
                    db, intentID: intentID, outcome: .uncertain, detail: detail, requestID: requestID, timeMs: timeMs)
            }
            try db.execute(
                sql: """
                    INSERT INTO uncertain (pumpID, requestID, action, intentID, markedAtMs)
                    VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(pumpID, requestID) DO UPDATE SET
                        action = excluded.action, intentID = excluded.intentID, markedAtMs = excluded.markedAtMs,
                        resolvedAtMs = NULL, executed = NULL
                    """,
                arguments: [pumpID, requestID, action, intentID, timeMs.stored])
        }
    }

    /// Unresolved uncertain requests of one pump or all, by pump and request id.
    public func unresolved(pumpID: String? = nil) throws(StoreError) -> [UncertainRequest] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM uncertain WHERE resolvedAtMs IS NULL AND (?1 IS NULL OR pumpID = ?1)
                    ORDER BY pumpID, requestID
                    """,
                arguments: [pumpID])
        }
        return try rows.map { row throws(StoreError) in try Self.uncertain(row) }
    }

    /// Records what the pump's record says about an uncertain request, and appends the linked
    /// intent's "resolved-executed" or "resolved-not-executed" outcome. Returns the resolved request.
    @discardableResult
    public func resolve(
        pumpID: String, requestID: UInt32, executed: Bool, detail: String = "", timeMs: UInt64
    ) throws(StoreError) -> UncertainRequest {
        try write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM uncertain WHERE pumpID = ? AND requestID = ?", arguments: [pumpID, requestID])
            else { throw StoreError.unknownUncertainRequest(pumpID: pumpID, requestID: requestID) }
            var request = try Self.uncertain(row)
            guard !request.isResolved else { throw StoreError.alreadyResolved(pumpID: pumpID, requestID: requestID) }
            try db.execute(
                sql: "UPDATE uncertain SET resolvedAtMs = ?, executed = ? WHERE pumpID = ? AND requestID = ?",
                arguments: [timeMs.stored, executed, pumpID, requestID])
            if let intentID = request.intentID {
                _ = try Self.appendOutcome(
                    db, intentID: intentID, outcome: executed ? .resolvedExecuted : .resolvedNotExecuted,
                    detail: detail, requestID: requestID, timeMs: timeMs)
            }
            request.resolvedAtMs = timeMs
            request.executed = executed
            return request
        }
    }

    private static func uncertain(_ row: Row) throws(StoreError) -> UncertainRequest {
        let executed: Int64? = try row.optionalExact("executed", in: "uncertain")
        return UncertainRequest(
            pumpID: try row.text("pumpID", in: "uncertain"),
            requestID: try row.exact("requestID", in: "uncertain"),
            action: try row.text("action", in: "uncertain"),
            intentID: try row.optionalExact("intentID", in: "uncertain"),
            markedAtMs: try row.unsigned64("markedAtMs", in: "uncertain"),
            resolvedAtMs: try row.optionalUnsigned64("resolvedAtMs", in: "uncertain"),
            executed: executed.map { $0 != 0 })
    }
}
