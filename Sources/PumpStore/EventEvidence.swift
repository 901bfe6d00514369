import GRDB
import PumpProtocol

extension PumpStore {
    /// Whether the pump's stored event log holds an event caused by `requestID`: evidence,
    /// from the pump's own authenticated record, that the request ran (SPEC §7.6).
    public func hasEvent(pumpID: String, requestID: UInt32) throws(StoreError) -> Bool {
        guard requestID != 0 else { return false }
        return try read { db in
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM event WHERE pumpID = ? AND requestID = ?)",
                arguments: [pumpID, requestID]) ?? false
        }
    }
}
