import PumpProtocol
import Testing
@testable import PumpStore

@Suite("Events")
struct EventTests {
    @Test func insertingIsIdempotentAndCountsOnlyNewEvents() throws {
        let store = try storeWithPump()
        #expect(try store.insertEvents(pumpID: "p1", events(1...5)) == 5)
        #expect(try store.insertEvents(pumpID: "p1", events(1...5)) == 0)
        #expect(try store.insertEvents(pumpID: "p1", events(4...8)) == 3)
        #expect(try store.insertEvents(pumpID: "p1", []) == 0)
        #expect(try store.eventCount(pumpID: "p1") == 8)
        #expect(try store.events(pumpID: "p1", limit: 100) == events(1...8))
    }

    @Test func aReplayedEventDoesNotOverwriteTheStoredOne() throws {
        let store = try storeWithPump()
        try store.insertEvents(pumpID: "p1", [event(1, kind: .suspended)])
        #expect(try store.insertEvents(pumpID: "p1", [event(1, kind: .resumed)]) == 0)
        #expect(try store.events(pumpID: "p1", limit: 1).first?.kind == .suspended)
    }

    @Test func eventsAreReadInSequenceOrderFromAStartWithALimit() throws {
        let store = try storeWithPump()
        try store.insertEvents(pumpID: "p1", events([9, 3, 7, 1, 5]))
        #expect(try store.events(pumpID: "p1", from: 4, limit: 10).map(\.sequence) == [5, 7, 9])
        #expect(try store.events(pumpID: "p1", from: 0, limit: 2).map(\.sequence) == [1, 3])
        #expect(try store.events(pumpID: "p1", from: 10, limit: 10).isEmpty)
        #expect(try store.events(pumpID: "p1", limit: -1).isEmpty)
    }

    @Test func everyFieldRoundTrips() throws {
        let store = try storeWithPump()
        let stored = Event(
            sequence: 42, timeMs: 1_712_345_678_901, kind: .refilled, code: 1, requestId: 77,
            value1: 20_000, value2: 18_500)
        try store.insertEvents(pumpID: "p1", [stored])
        #expect(try store.events(pumpID: "p1", limit: 1) == [stored])
    }

    @Test func pumpsHaveSeparateLogs() throws {
        let store = try storeWithPump("a")
        try store.registerPump(id: "b", port: "/dev/ttyUSB1")
        #expect(try store.insertEvents(pumpID: "a", events(1...3)) == 3)
        #expect(try store.insertEvents(pumpID: "b", events(1...2)) == 2)
        #expect(try store.eventCount(pumpID: "a") == 3)
        #expect(try store.eventCount(pumpID: "b") == 2)
        #expect(try store.lastEventSequence(pumpID: "b") == 2)
        #expect(try store.eventCount(pumpID: "nobody") == 0)
    }

    @Test func insertingForAnUnregisteredPumpFails() throws {
        let store = try storeWithPump()
        #expect(throws: StoreError.unknownPump("ghost")) { try store.insertEvents(pumpID: "ghost", events(1...2)) }
        #expect(try store.eventCount(pumpID: "ghost") == 0)
    }

    @Test func contiguousSequenceStopsAtTheFirstGap() throws {
        let store = try storeWithPump()
        #expect(try store.contiguousEventSequence(pumpID: "p1") == nil)
        #expect(try store.lastEventSequence(pumpID: "p1") == nil)
        #expect(try store.gaps(pumpID: "p1").isEmpty)

        try store.insertEvents(pumpID: "p1", events([5, 6, 7, 9, 10, 14]))
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 7)
        #expect(try store.lastEventSequence(pumpID: "p1") == 14)
        #expect(try store.gaps(pumpID: "p1") == [8...8, 11...13])

        try store.insertEvents(pumpID: "p1", [event(8)])
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 10)
        #expect(try store.gaps(pumpID: "p1") == [11...13])

        try store.insertEvents(pumpID: "p1", events(11...13))
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 14)
        #expect(try store.gaps(pumpID: "p1").isEmpty)
    }

    @Test func aSingleEventIsItsOwnContiguousEnd() throws {
        let store = try storeWithPump()
        try store.insertEvents(pumpID: "p1", [event(0)])
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 0)
    }

    @Test func unsignedExtremesSurvive() throws {
        let store = try storeWithPump()
        let extremes = [
            Event(sequence: UInt32.max - 1, timeMs: 1 << 63, kind: .clockSet, code: 255, requestId: UInt32.max, value1: UInt32.max, value2: 1 << 31),
            Event(sequence: UInt32.max, timeMs: UInt64.max, kind: .pumpStarted, code: 0, requestId: 1 << 31, value1: 0, value2: UInt32.max),
            Event(sequence: 0, timeMs: 0, kind: .alarmRaised, code: 0, requestId: 0, value1: 0, value2: 0),
        ]
        #expect(try store.insertEvents(pumpID: "p1", extremes) == 3)
        #expect(try store.insertEvents(pumpID: "p1", extremes) == 0)
        #expect(try store.events(pumpID: "p1", limit: 10) == [extremes[2], extremes[0], extremes[1]])
        #expect(try store.events(pumpID: "p1", from: UInt32.max, limit: 10) == [extremes[1]])
        #expect(try store.lastEventSequence(pumpID: "p1") == UInt32.max)
        #expect(try store.contiguousEventSequence(pumpID: "p1") == 0)
        #expect(try store.gaps(pumpID: "p1") == [1...(UInt32.max - 2)])
    }
}
