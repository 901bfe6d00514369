/// What went wrong in the daemon's database, with the offending value.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The database file could not be opened or created (missing directory, no permission,
    /// not a database, ...). `reason` is SQLite's explanation.
    case cannotOpen(path: String, reason: String)
    /// The schema could not be brought up to date.
    case migrationFailed(reason: String)
    /// No pump of that id was registered.
    case unknownPump(String)
    /// No intent row with that id in the audit log.
    case unknownIntent(Int64)
    /// The intent already has its outcome: nothing more can be sent for it.
    case intentConcluded(Int64)
    /// An outcome was given an outcome that only intents may have ("pending").
    case invalidOutcome(String)
    /// No uncertain request with that id is recorded for the pump.
    case unknownUncertainRequest(pumpID: String, requestID: UInt32)
    /// The uncertain request was already resolved.
    case alreadyResolved(pumpID: String, requestID: UInt32)
    /// A stored row does not hold what this version writes (e.g. an unknown event kind).
    case corruptRow(table: String, reason: String)
    /// Any other SQLite failure (disk full, I/O error, a write refused by the schema).
    case database(reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open the database at \(path): \(reason)"
        case .migrationFailed(let reason):
            "cannot bring the database schema up to date: \(reason)"
        case .unknownPump(let id):
            "no pump \"\(id)\" is registered in the database"
        case .unknownIntent(let id):
            "no intent #\(id) in the audit log"
        case .intentConcluded(let id):
            "intent #\(id) already has its outcome"
        case .invalidOutcome(let outcome):
            "\"\(outcome)\" is not an outcome (only an intent is pending)"
        case .unknownUncertainRequest(let pumpID, let requestID):
            "no uncertain request \(requestID) is recorded for pump \"\(pumpID)\""
        case .alreadyResolved(let pumpID, let requestID):
            "request \(requestID) of pump \"\(pumpID)\" was already resolved"
        case .corruptRow(let table, let reason):
            "unexpected row in \(table): \(reason)"
        case .database(let reason):
            "database error: \(reason)"
        }
    }
}
