import Foundation
import PumpAPIRequests
import PumpSafety
import Testing

/// The body of `POST /v1/pumps/{id}/clock`: a time no pump is ever set beyond, whatever the
/// override, and an override that needs a reason.
struct ClockBodyTests {
    @Test func aClockBodyWithAnOverrideIsRead() throws {
        let clock = try APIJSON.decodeStrict(
            SetClockBody.self, from: Data(#"{"timeMs": 1800000000000, "utcOffsetMinutes": 60, "override": {"reason": "clock battery replaced"}}"#.utf8))
        #expect(clock.override?.reason == "clock battery replaced")
        #expect(clock.request.timeMs == 1_800_000_000_000)
        #expect(clock.request.utcOffsetMinutes == 60)
    }

    @Test(arguments: [
        (UInt64(0), false), (946_684_799_999, false), (946_684_800_000, true), (1_800_000_000_000, true),
        (UInt64(UInt32.max) * 1000, true), (UInt64(UInt32.max) * 1000 + 1, false),
        // Year 9999 and 2^64 - 1 (the last one made the pump trap).
        (253_402_300_799_000, false), (UInt64.max, false),
    ])
    func aClockTimeIsBoundedWhateverTheOverride(timeMs: UInt64, accepted: Bool) throws {
        let body = SetClockBody(timeMs: timeMs, utcOffsetMinutes: 0, override: Override(reason: "set by hand"))
        do {
            _ = try body.validated()
            #expect(accepted, "\(timeMs) is accepted")
        } catch {
            #expect(!accepted, "\(timeMs) is refused: \(error)")
            #expect(error.details == ["field": "timeMs", "value": String(timeMs)])
        }
    }

    @Test func aClockOverrideNeedsAReason() throws {
        let body = SetClockBody(timeMs: 1_800_000_000_000, utcOffsetMinutes: 0, override: Override(reason: " "))
        #expect(throws: RequestError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])) {
            try body.validated()
        }
        #expect(throws: RequestError.self) {
            try SetClockBody(timeMs: 1_800_000_000_000, utcOffsetMinutes: 901).validated()
        }
    }
}
