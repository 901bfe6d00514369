import GRDB
import PumpProtocol

extension PumpStore {
    /// Stores events read from the pump. An event whose sequence is already stored for the pump
    /// is ignored, so replaying a batch is harmless. Returns how many events were new.
    @discardableResult
    public func insertEvents(pumpID: String, _ events: [Event]) throws(StoreError) -> Int {
        try write { db in
            try Self.requirePump(pumpID, in: db)
            let statement = try db.makeStatement(sql: """
                INSERT INTO event (pumpID, sequence, timeMs, kind, code, requestID, value1, value2)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(pumpID, sequence) DO NOTHING
                """)
            var inserted = 0
            for event in events {
                try statement.execute(arguments: [
                    pumpID, event.sequence, event.timeMs.stored, event.kind.rawValue, event.code,
                    event.requestId, event.value1, event.value2,
                ])
                inserted += db.changesCount
            }
            return inserted
        }
    }

    /// Up to `limit` stored events of the pump with sequence ≥ `from`, in sequence order.
    public func events(pumpID: String, from sequence: UInt32 = 0, limit: Int) throws(StoreError) -> [Event] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE pumpID = ? AND sequence >= ? ORDER BY sequence LIMIT ?",
                arguments: [pumpID, sequence, max(0, limit)])
        }
        return try rows.map { row throws(StoreError) in try Self.event(row) }
    }

    /// The highest stored sequence of the pump, nil if none is stored.
    public func lastEventSequence(pumpID: String) throws(StoreError) -> UInt32? {
        try read { db in
            try UInt32.fetchOne(db, sql: "SELECT MAX(sequence) FROM event WHERE pumpID = ?", arguments: [pumpID])
        }
    }

    /// The largest n such that every sequence from the pump's first stored one to n is stored:
    /// event sync resumes after it. Nil if none is stored.
    public func contiguousEventSequence(pumpID: String) throws(StoreError) -> UInt32? {
        // The end of the first run is the smallest stored sequence whose successor is missing.
        try read { db in
            try UInt32.fetchOne(
                db,
                sql: """
                    SELECT MIN(e.sequence) FROM event e
                    WHERE e.pumpID = ?1
                      AND NOT EXISTS (SELECT 1 FROM event n WHERE n.pumpID = ?1 AND n.sequence = e.sequence + 1)
                    """,
                arguments: [pumpID])
        }
    }

    /// The sequences missing between the pump's first and last stored events, in order.
    public func gaps(pumpID: String) throws(StoreError) -> [ClosedRange<UInt32>] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT sequence, next FROM (
                        SELECT sequence, LEAD(sequence) OVER (ORDER BY sequence) AS next
                        FROM event WHERE pumpID = ?
                    ) WHERE next > sequence + 1 ORDER BY sequence
                    """,
                arguments: [pumpID])
        }
        return try rows.map { row throws(StoreError) in
            let before: UInt32 = try row.exact("sequence", in: "event")
            let after: UInt32 = try row.exact("next", in: "event")
            return (before + 1)...(after - 1)
        }
    }

    /// How many events of the pump are stored.
    public func eventCount(pumpID: String) throws(StoreError) -> Int {
        try read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE pumpID = ?", arguments: [pumpID]) ?? 0
        }
    }

    private static func event(_ row: Row) throws(StoreError) -> Event {
        let rawKind: UInt8 = try row.exact("kind", in: "event")
        guard let kind = EventKind(rawValue: rawKind) else {
            throw .corruptRow(table: "event", reason: "unknown event kind \(rawKind)")
        }
        return Event(
            sequence: try row.exact("sequence", in: "event"),
            timeMs: try row.unsigned64("timeMs", in: "event"),
            kind: kind,
            code: try row.exact("code", in: "event"),
            requestId: try row.exact("requestID", in: "event"),
            value1: try row.exact("value1", in: "event"),
            value2: try row.exact("value2", in: "event"))
    }
}
