import GRDB
import PumpProtocol

/// The daemon's database: the pumps it knows, each pump's copy of its event log, the
/// append-only audit log and the requests whose outcome is uncertain. SQLite through GRDB; a
/// file in WAL mode (readers never wait for the writer) or, for tests, memory.
///
/// All methods are synchronous, short and safe to call from any task or thread: GRDB
/// serialises the writes and runs each method in one transaction.
///
/// Unsigned 64-bit values (times) are stored by bit pattern in SQLite's signed 64-bit
/// integers, so every value survives; they are never compared in SQL. Unsigned 32-bit values
/// (sequences, request ids) fit as they are and keep their order.
public final class PumpStore: Sendable {
    /// The database file, nil for an in-memory store.
    public let path: String?
    let writer: any DatabaseWriter

    /// Opens the database file at `path`, creating it if needed, and brings its schema up to date.
    public convenience init(path: String) throws(StoreError) {
        let pool: DatabasePool
        do {
            // A pool runs in WAL mode.
            pool = try DatabasePool(path: path, configuration: Self.configuration())
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error))
        }
        try self.init(writer: pool, path: path)
    }

    /// A fresh, empty database in memory, gone when the store is released.
    public static func inMemory() throws(StoreError) -> PumpStore {
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(configuration: configuration())
        } catch {
            throw .cannotOpen(path: ":memory:", reason: reason(error))
        }
        return try PumpStore(writer: queue, path: nil)
    }

    private init(writer: any DatabaseWriter, path: String?) throws(StoreError) {
        self.writer = writer
        self.path = path
        do {
            try Self.migrator.migrate(writer)
        } catch {
            // A file that is not a database is only found out on the first real read.
            if let error = error as? DatabaseError, error.resultCode == .SQLITE_NOTADB {
                throw .cannotOpen(path: path ?? ":memory:", reason: Self.reason(error))
            }
            throw .migrationFailed(reason: Self.reason(error))
        }
    }

    /// Closes the database. Later calls fail; releasing the store closes it too.
    public func close() throws(StoreError) {
        do {
            try writer.close()
        } catch {
            throw .database(reason: Self.reason(error))
        }
    }

    /// The schema migrations applied to the database, oldest first.
    public func appliedMigrations() throws(StoreError) -> [String] {
        try read { db in try Self.migrator.appliedMigrations(db) }
    }

    private static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        // Another process (a backup, sqlite3) may hold the lock for a moment.
        configuration.busyMode = .timeout(5)
        configuration.label = "PumpStore"
        return configuration
    }

    // MARK: Running statements

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.write(body)
        } catch {
            throw Self.storeError(error)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw Self.storeError(error)
        }
    }

    private static func storeError(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        return .database(reason: reason(error))
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            let message = error.message ?? "\(error.resultCode)"
            return "\(message) (SQLite code \(error.extendedResultCode.rawValue))"
        }
        return "\(error)"
    }
}

// MARK: Stored integers

extension UInt64 {
    /// The SQLite integer holding this value: the same bits, read as signed.
    var stored: Int64 { Int64(bitPattern: self) }
}

extension Row {
    /// The non-null integer in `column`, or a `corruptRow` error.
    func integer(_ column: String, in table: String) throws(StoreError) -> Int64 {
        guard let value = self[column] as Int64? else {
            throw .corruptRow(table: table, reason: "\(column) is not an integer")
        }
        return value
    }

    /// An unsigned 64-bit value stored by bit pattern.
    func unsigned64(_ column: String, in table: String) throws(StoreError) -> UInt64 {
        UInt64(bitPattern: try integer(column, in: table))
    }

    func optionalUnsigned64(_ column: String, in table: String) throws(StoreError) -> UInt64? {
        if try isNull(column, in: table) { return nil }
        return try unsigned64(column, in: table)
    }

    /// An integer that must fit `T` exactly.
    func exact<T: FixedWidthInteger>(_ column: String, in table: String, as: T.Type = T.self) throws(StoreError) -> T {
        let value = try integer(column, in: table)
        guard let exact = T(exactly: value) else {
            throw .corruptRow(table: table, reason: "\(column) = \(value) is out of range for \(T.self)")
        }
        return exact
    }

    func optionalExact<T: FixedWidthInteger>(_ column: String, in table: String, as: T.Type = T.self) throws(StoreError) -> T? {
        if try isNull(column, in: table) { return nil }
        return try exact(column, in: table, as: T.self)
    }

    func text(_ column: String, in table: String) throws(StoreError) -> String {
        guard let value = self[column] as String? else {
            throw .corruptRow(table: table, reason: "\(column) is not text")
        }
        return value
    }

    private func isNull(_ column: String, in table: String) throws(StoreError) -> Bool {
        guard hasColumn(column) else { throw .corruptRow(table: table, reason: "no column \(column)") }
        return (self[column] as DatabaseValue).isNull
    }
}
