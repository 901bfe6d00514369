import Foundation
import GRDB
import PumpProtocol
import Testing
@testable import PumpStore

@Suite("Database")
struct StoreTests {
    @Test func pumpsAreRegisteredAndIdentified() throws {
        let store = try PumpStore.inMemory()
        try store.registerPump(id: "b", port: "/dev/ttyUSB1")
        try store.registerPump(id: "a", port: "/dev/ttyUSB0")
        try store.updateIdentity(id: "a", serialNumber: "SN-1", model: "IT-200")
        // Registering again moves the port and keeps the identity.
        try store.registerPump(id: "a", port: "/dev/ttyACM0")
        #expect(try store.pumps() == [
            StoredPump(id: "a", port: "/dev/ttyACM0", serialNumber: "SN-1", model: "IT-200"),
            StoredPump(id: "b", port: "/dev/ttyUSB1", serialNumber: nil, model: nil),
        ])
        #expect(try store.pump(id: "b")?.port == "/dev/ttyUSB1")
        #expect(try store.pump(id: "c") == nil)
        #expect(throws: StoreError.unknownPump("c")) { try store.updateIdentity(id: "c", serialNumber: "x", model: "y") }
    }

    @Test func aFreshFileIsMigratedInWALMode() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("fresh.sqlite")
        let store = try PumpStore(path: path)
        #expect(store.path == path)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try store.appliedMigrations() == [
            "v1: pumps, events, audit, uncertain requests", "v2: changing requests sent for an intent",
            "v3: the audit log as a hash chain",
        ])
        let journalMode = try store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journalMode == "wal")
        let tables = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb_%' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        }
        #expect(tables == ["audit", "event", "pump", "sent", "uncertain"])
        try store.close()
        // Opening it again applies nothing new.
        #expect(try PumpStore(path: path).appliedMigrations().count == 3)
    }

    @Test func everythingSurvivesClosingAndReopening() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("pumplink.sqlite")
        let intent: Int64
        do {
            let store = try PumpStore(path: path)
            try store.registerPump(id: "p1", port: "/dev/ttyUSB0")
            try store.updateIdentity(id: "p1", serialNumber: "SN-9", model: "IT-200")
            try store.insertEvents(pumpID: "p1", events([1, 2, 3, 5]) + [event(6, timeMs: UInt64.max)])
            intent = try store.recordIntent(
                actor: "dr", role: "clinician", pumpID: "p1", action: "bolus.clinician", parameters: "{}",
                requestID: 40, timeMs: 10)
            try store.markUncertain(pumpID: "p1", requestID: 40, action: "bolus.clinician", intentID: intent, timeMs: 20)
            try store.close()
        }
        let store = try PumpStore(path: path)
        #expect(try store.pumps() == [StoredPump(id: "p1", port: "/dev/ttyUSB0", serialNumber: "SN-9", model: "IT-200")])
        #expect(try store.events(pumpID: "p1", limit: 10) == events([1, 2, 3, 5]) + [event(6, timeMs: UInt64.max)])
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 3)
        #expect(try store.auditTrail(intentID: intent).map(\.outcome) == ["pending", "uncertain"])
        // The restarted daemon still sees the uncertain request, and resolves it.
        #expect(try store.unresolved(pumpID: "p1").map(\.requestID) == [40])
        try store.resolve(pumpID: "p1", requestID: 40, executed: true, timeMs: 30)
        #expect(try store.unresolved().isEmpty)
        // New rows continue after the old ones.
        let next = try store.recordIntent(actor: "dr", role: "clinician", pumpID: "p1", action: "resume", parameters: "{}", requestID: 41, timeMs: 40)
        #expect(next > intent)
    }

    @Test func concurrentWritersLoseNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let store = try PumpStore(path: directory.path("concurrent.sqlite"))
        try store.registerPump(id: "p1", port: "/dev/ttyUSB0")
        let writers = 8
        // Writer w inserts 0..<200 shifted by 25·w in batches of 10: heavy overlap between writers.
        let (newCounts, intentIDs) = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var inserted = 0
                    var intents: [Int64] = []
                    for batch in stride(from: 0, to: 200, by: 10) {
                        let start = UInt32(writer * 25 + batch)
                        inserted += try store.insertEvents(pumpID: "p1", events(start..<start + 10))
                        intents.append(try store.recordIntent(
                            actor: "w\(writer)", role: "clinician", pumpID: "p1", action: "suspend",
                            parameters: "{}", requestID: start, timeMs: UInt64(batch)))
                        _ = try store.events(pumpID: "p1", from: start, limit: 5)
                    }
                    return (inserted, intents)
                }
            }
            var counts: [Int] = []
            var ids: [Int64] = []
            for try await (count, intents) in group {
                counts.append(count)
                ids += intents
            }
            return (counts, ids)
        }
        let distinct = (writers - 1) * 25 + 200
        #expect(newCounts.reduce(0, +) == distinct)
        #expect(try store.eventCount(pumpID: "p1") == distinct)
        #expect(try store.contiguousEventSequence(pumpID: "p1") == UInt32(distinct - 1))
        #expect(Set(intentIDs).count == writers * 20)
        #expect(try store.audit(limit: 1000).count == writers * 20)
    }

    @Test func anUnwritablePathFailsClearly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        // A regular file where a directory should be: fails even for root.
        let notADirectory = directory.path("plain-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: notADirectory))
        let path = notADirectory + "/pumplink.sqlite"
        do {
            _ = try PumpStore(path: path)
            Issue.record("opening \(path) should fail")
        } catch {
            guard case .cannotOpen(let failedPath, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(failedPath == path)
            #expect(!reason.isEmpty)
            #expect(error.description.hasPrefix("cannot open the database at \(path): "))
        }
    }

    @Test func aFileThatIsNotADatabaseFailsClearly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("garbage.sqlite")
        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try PumpStore(path: path)
        } throws: { error in
            guard case .cannotOpen(let failedPath, _)? = error as? StoreError else { return false }
            return failedPath == path
        }
    }

    @Test func aClosedStoreRefusesWork() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let store = try PumpStore(path: directory.path("closed.sqlite"))
        try store.close()
        #expect(throws: StoreError.self) { try store.pumps() }
    }
}
