import GRDB

extension PumpStore {
    /// Registers a pump, or updates its port if it is already known (its identity and history stay).
    public func registerPump(id: String, port: String) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "INSERT INTO pump (id, port) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET port = excluded.port",
                arguments: [id, port])
        }
    }

    /// Records the identity the pump reported (Hello / device info).
    public func updateIdentity(id: String, serialNumber: String, model: String) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "UPDATE pump SET serialNumber = ?, model = ? WHERE id = ?",
                arguments: [serialNumber, model, id])
            guard db.changesCount == 1 else { throw StoreError.unknownPump(id) }
        }
    }

    /// Every registered pump, by id.
    public func pumps() throws(StoreError) -> [StoredPump] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT * FROM pump ORDER BY id") }
        return try rows.map { row throws(StoreError) in try Self.pump(row) }
    }

    /// The pump registered under `id`, if any.
    public func pump(id: String) throws(StoreError) -> StoredPump? {
        let row = try read { db in try Row.fetchOne(db, sql: "SELECT * FROM pump WHERE id = ?", arguments: [id]) }
        return try row.map { row throws(StoreError) in try Self.pump(row) }
    }

    private static func pump(_ row: Row) throws(StoreError) -> StoredPump {
        StoredPump(
            id: try row.text("id", in: "pump"),
            port: try row.text("port", in: "pump"),
            serialNumber: row["serialNumber"],
            model: row["model"])
    }

    static func requirePump(_ id: String, in db: Database) throws {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM pump WHERE id = ?", arguments: [id]) != nil else {
            throw StoreError.unknownPump(id)
        }
    }
}
