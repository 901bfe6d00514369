import Testing
@testable import PumpStore

@Suite("Uncertain requests")
struct UncertainTests {
    @Test func anUncertainRequestIsBlockingUntilResolved() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(
            actor: "dr", role: "clinician", pumpID: "p1", action: "bolus.clinician", parameters: "{}",
            requestID: 21, timeMs: 100)
        try store.markUncertain(pumpID: "p1", requestID: 21, action: "bolus.clinician", intentID: intent, timeMs: 200)

        #expect(try store.unresolved(pumpID: "p1") == [UncertainRequest(
            pumpID: "p1", requestID: 21, action: "bolus.clinician", intentID: intent, markedAtMs: 200,
            resolvedAtMs: nil, executed: nil)])
        #expect(try store.auditTrail(intentID: intent).map(\.outcome) == ["pending", "uncertain"])
        #expect(try store.intentsWithoutOutcome().isEmpty)

        let resolved = try store.resolve(pumpID: "p1", requestID: 21, executed: true, detail: "event 57", timeMs: 300)
        #expect(resolved.isResolved && resolved.executed == true && resolved.resolvedAtMs == 300)
        #expect(try store.unresolved(pumpID: "p1").isEmpty)
        let trail = try store.auditTrail(intentID: intent)
        #expect(trail.map(\.outcome) == ["pending", "uncertain", "resolved-executed"])
        #expect(trail.last?.detail == "event 57")
        #expect(trail.last?.requestID == 21)
        #expect(trail.last?.intentID == intent)

        #expect(throws: StoreError.alreadyResolved(pumpID: "p1", requestID: 21)) {
            try store.resolve(pumpID: "p1", requestID: 21, executed: false, timeMs: 400)
        }
        #expect(try store.auditTrail(intentID: intent).count == 3)
    }

    @Test func notExecutedIsRecordedAsSuch() throws {
        let store = try storeWithPump()
        let intent = try store.recordIntent(actor: "p", role: "patient", pumpID: "p1", action: "bolus.patient", parameters: "{}", requestID: 5, timeMs: 1)
        try store.markUncertain(pumpID: "p1", requestID: 5, action: "bolus.patient", intentID: intent, timeMs: 2)
        try store.resolve(pumpID: "p1", requestID: 5, executed: false, timeMs: 3)
        #expect(try store.auditTrail(intentID: intent).last?.outcome == "resolved-not-executed")
    }

    @Test func withoutAnIntentNothingIsAudited() throws {
        let store = try storeWithPump()
        try store.markUncertain(pumpID: "p1", requestID: 8, action: "suspend", intentID: nil, timeMs: 1)
        try store.markUncertain(pumpID: "p1", requestID: 9, action: "resume", intentID: nil, timeMs: 2)
        #expect(try store.unresolved().map(\.requestID) == [8, 9])
        let resolved = try store.resolve(pumpID: "p1", requestID: 8, executed: false, timeMs: 3)
        #expect(resolved.executed == false)
        #expect(try store.unresolved().map(\.requestID) == [9])
        #expect(try store.audit(limit: 10).isEmpty)
    }

    @Test func unresolvedFiltersByPump() throws {
        let store = try storeWithPump("a")
        try store.registerPump(id: "b", port: "/dev/ttyUSB1")
        try store.markUncertain(pumpID: "b", requestID: 1, action: "suspend", intentID: nil, timeMs: 1)
        try store.markUncertain(pumpID: "a", requestID: 4, action: "suspend", intentID: nil, timeMs: 1)
        #expect(try store.unresolved(pumpID: "a").map(\.requestID) == [4])
        #expect(try store.unresolved().map(\.pumpID) == ["a", "b"])
    }

    @Test func errorsNameTheRequest() throws {
        let store = try storeWithPump()
        #expect(throws: StoreError.unknownUncertainRequest(pumpID: "p1", requestID: 3)) {
            try store.resolve(pumpID: "p1", requestID: 3, executed: true, timeMs: 1)
        }
        #expect(throws: StoreError.unknownPump("ghost")) {
            try store.markUncertain(pumpID: "ghost", requestID: 3, action: "suspend", intentID: nil, timeMs: 1)
        }
        #expect(throws: StoreError.unknownIntent(77)) {
            try store.markUncertain(pumpID: "p1", requestID: 3, action: "suspend", intentID: 77, timeMs: 1)
        }
        // A failed mark leaves nothing behind.
        #expect(try store.unresolved().isEmpty)
        #expect(StoreError.unknownUncertainRequest(pumpID: "p1", requestID: 3).description
            == "no uncertain request 3 is recorded for pump \"p1\"")
    }
}
