import GRDB
import Testing
@testable import PumpStore

@Suite("Audit log")
struct AuditTests {
    @Test func intentsAndOutcomesAreLinkedAndListedNewestFirst() throws {
        let store = try storeWithPump()
        let push = try store.recordIntent(
            actor: "dr.who", role: "clinician", pumpID: "p1", action: "program.push",
            parameters: #"{"id":7}"#, requestID: 10, timeMs: 1000)
        let bolus = try store.recordIntent(
            actor: "pat", role: "patient", pumpID: "p1", action: "bolus.patient",
            parameters: "{}", requestID: 11, timeMs: 2000)
        let outcome = try store.recordOutcome(intentID: push, outcome: .done, detail: "activated", timeMs: 3000)
        #expect(push < bolus && bolus < outcome)

        let log = try store.audit(limit: 10)
        #expect(log.map(\.id) == [outcome, bolus, push])
        #expect(log[2] == AuditEntry(
            id: push, timeMs: 1000, actor: "dr.who", role: "clinician", pumpID: "p1", action: "program.push",
            parameters: #"{"id":7}"#, outcome: "pending", detail: "", requestID: 10, intentID: nil))
        // The outcome row reads on its own: it repeats the intent's who and what.
        #expect(log[0] == AuditEntry(
            id: outcome, timeMs: 3000, actor: "dr.who", role: "clinician", pumpID: "p1", action: "program.push",
            parameters: #"{"id":7}"#, outcome: "done", detail: "activated", requestID: 10, intentID: push))

        #expect(try store.auditTrail(intentID: push).map(\.outcome) == ["pending", "done"])
        #expect(try store.auditTrail(intentID: bolus).map(\.outcome) == ["pending"])
        #expect(try store.intentsWithoutOutcome().map(\.id) == [bolus])
        #expect(try store.audit(limit: 1).map(\.id) == [outcome])
    }

    @Test func theLogFiltersByPump() throws {
        let store = try storeWithPump("a")
        let a = try store.recordIntent(actor: "x", role: "clinician", pumpID: "a", action: "suspend", parameters: "{}", requestID: 1, timeMs: 1)
        let b = try store.recordIntent(actor: "x", role: "clinician", pumpID: "b", action: "resume", parameters: "{}", requestID: 1, timeMs: 2)
        #expect(try store.audit(pumpID: "a", limit: 10).map(\.id) == [a])
        #expect(try store.audit(pumpID: "b", limit: 10).map(\.id) == [b])
        #expect(try store.audit(pumpID: "c", limit: 10).isEmpty)
        #expect(try store.intentsWithoutOutcome(pumpID: "b").map(\.id) == [b])
    }

    @Test func aRefusalIsOneCompleteRow() throws {
        let store = try storeWithPump()
        let id = try store.record(
            actor: "pat", role: "patient", pumpID: "p1", action: "program.push", parameters: "{}",
            outcome: .refused, detail: "forbidden for role patient", timeMs: 5)
        let entry = try #require(try store.audit(limit: 1).first)
        #expect(entry.id == id && entry.outcome == "refused" && entry.intentID == nil && entry.requestID == nil)
        #expect(try store.intentsWithoutOutcome().isEmpty)
    }

    @Test func outcomesNeedAnIntent() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(actor: "x", role: "clinician", pumpID: "p1", action: "suspend", parameters: "{}", requestID: 3, timeMs: 1)
        let outcome = try store.recordOutcome(intentID: intent, outcome: .rejected, detail: "busy", timeMs: 2)
        #expect(throws: StoreError.unknownIntent(999)) { try store.recordOutcome(intentID: 999, outcome: .done, detail: "", timeMs: 3) }
        #expect(throws: StoreError.unknownIntent(outcome)) { try store.recordOutcome(intentID: outcome, outcome: .done, detail: "", timeMs: 3) }
        #expect(throws: StoreError.invalidOutcome("pending")) { try store.recordOutcome(intentID: intent, outcome: .pending, detail: "", timeMs: 3) }
        #expect(throws: StoreError.unknownIntent(outcome)) { try store.auditTrail(intentID: outcome) }
        #expect(throws: StoreError.unknownIntent(999)) { try store.auditTrail(intentID: 999) }
        #expect(try store.audit(limit: 10).count == 2)
    }

    @Test func rowsCannotBeChangedOrDeleted() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(actor: "x", role: "clinician", pumpID: "p1", action: "suspend", parameters: "{}", requestID: 3, timeMs: 1)
        #expect(throws: DatabaseError.self) {
            try store.writer.write { db in try db.execute(sql: "UPDATE audit SET outcome = 'done' WHERE id = ?", arguments: [intent]) }
        }
        #expect(throws: DatabaseError.self) {
            try store.writer.write { db in try db.execute(sql: "DELETE FROM audit") }
        }
        #expect(try store.audit(limit: 10).map(\.outcome) == ["pending"])
    }

    @Test func extremeTimesAndRequestIDsSurvive() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(
            actor: "x", role: "clinician", pumpID: "p1", action: "clock.set", parameters: "{}",
            requestID: UInt32.max, timeMs: UInt64.max)
        try store.recordOutcome(intentID: intent, outcome: .done, detail: "", timeMs: 1 << 63)
        let log = try store.audit(limit: 2)
        #expect(log.map(\.timeMs) == [1 << 63, UInt64.max])
        #expect(log.map(\.requestID) == [UInt32.max, UInt32.max])
    }

    @Test func sentRequestsAreRecordedForPendingIntentsOnly() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(actor: "x", role: "clinician", pumpID: "p1", action: "program.push", parameters: "{}", requestID: nil, timeMs: 1)
        try store.recordSent(intentID: intent, pumpID: "p1", requestID: 7, messageType: "ProgramStageBegin", timeMs: 2)
        try store.recordSent(intentID: intent, pumpID: "p1", requestID: 9, messageType: "ProgramActivate", timeMs: 3)
        #expect(try store.sentRequests(intentID: intent) == [
            SentRequest(intentID: intent, pumpID: "p1", requestID: 7, messageType: "ProgramStageBegin", timeMs: 2),
            SentRequest(intentID: intent, pumpID: "p1", requestID: 9, messageType: "ProgramActivate", timeMs: 3),
        ])
        // Sent rows do not conclude the intent.
        #expect(try store.intentsWithoutOutcome().map(\.id) == [intent])
        // Not for another pump's intent, an unknown one, or one that has its outcome already.
        #expect(throws: StoreError.unknownIntent(intent)) {
            try store.recordSent(intentID: intent, pumpID: "p2", requestID: 10, messageType: "Suspend", timeMs: 4)
        }
        #expect(throws: StoreError.unknownIntent(999)) {
            try store.recordSent(intentID: 999, pumpID: "p1", requestID: 10, messageType: "Suspend", timeMs: 4)
        }
        let outcome = try store.recordOutcome(intentID: intent, outcome: .done, detail: "", timeMs: 5)
        #expect(throws: StoreError.intentConcluded(intent)) {
            try store.recordSent(intentID: intent, pumpID: "p1", requestID: 11, messageType: "Suspend", timeMs: 6)
        }
        #expect(throws: StoreError.unknownIntent(outcome)) {
            try store.recordSent(intentID: outcome, pumpID: "p1", requestID: 11, messageType: "Suspend", timeMs: 6)
        }
        // Append-only, like the audit log.
        #expect(throws: DatabaseError.self) {
            try store.writer.write { db in try db.execute(sql: "DELETE FROM sent") }
        }
        #expect(throws: DatabaseError.self) {
            try store.writer.write { db in try db.execute(sql: "UPDATE sent SET requestID = 1") }
        }
        #expect(try store.sentRequests(intentID: intent).count == 2)
    }
}
