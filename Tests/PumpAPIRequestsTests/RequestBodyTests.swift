import Foundation
import PumpAPIRequests
import PumpProtocol
import PumpSafety
import Testing

/// The API's request parsing without HTTP: what `APIJSON.decodeStrict`, the body checks and the
/// query parameters accept and how they refuse (the fuzz target `api-bodies` checks the same
/// properties on generated input; APITests checks the HTTP answers).
struct RequestBodyTests {
    static let programJSON = """
        {"programId": 3, "drug": "morphine", "concentrationMicrogramsPerMilliliter": 25000,
         "lowReservoirThresholdMicroliters": 2000,
         "steps": [{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}],
         "periodicBoluses": [],
         "patientBolus": {"doseMicrograms": 50, "durationMinutes": 10, "lockoutMinutes": 60, "maxPerDay": 4}}
        """

    func decode<T: Codable>(_ type: T.Type, _ text: String) throws(RequestError) -> T {
        try APIJSON.decodeStrict(T.self, from: Data(text.utf8))
    }

    func refusal<T: Codable>(_ type: T.Type, _ text: String) -> RequestError? {
        do {
            _ = try decode(T.self, text)
            return nil
        } catch {
            return error
        }
    }

    @Test func anAcceptedBodyComesBackThroughTheAPIsJSON() throws {
        let body = try decode(ProgramBody.self, #"{"program": \#(Self.programJSON), "override": {"reason": "agreed"}}"#)
        #expect(body.program.programId == 3)
        #expect(body.override?.reason == "agreed")
        #expect(try decode(ProgramBody.self, String(decoding: try APIJSON.encode(body), as: UTF8.self)) == body)
        #expect(try body.validated() == body)
    }

    @Test(arguments: [
        (#"{"aspiratedMicroliters": 1, "newVolumeMicroliters": 2, "extra": 3}"#, "extra"),
        (#"{"extra": true, "aspiratedMicroliters": 1, "newVolumeMicroliters": 2, "another": []}"#, "another,extra"),
        // Fuzz/Regressions/api-bodies/unknown-field-named-like-a-number-refusal: a name is a name.
        (#"{"aspiratedMicroliters": 1, "newVolumeMicroliters": 2, "x: not an integer in the range of the field": 67}"#,
         "x: not an integer in the range of the field"),
    ])
    func unknownFieldsAreNamed(body: String, fields: String) throws {
        let error = try #require(refusal(RefillBody.self, body))
        #expect(error.code == .badRequest)
        #expect(error.details == ["fields": fields])
        #expect(error.message == "unknown field\(fields.contains(",") ? "s" : ""): \(fields.replacingOccurrences(of: ",", with: ", "))")
    }

    /// Fuzz/Regressions/api-bodies/trailing-comma-taken: Foundation reads `{"alarms": [],}`
    /// (a trailing comma); an unknown field in such a body is still named.
    @Test func anUnknownFieldIsNamedInABodyWithATrailingComma() throws {
        let error = try #require(refusal(AcknowledgeAlarmsBody.self, #"{"unknownField":1,"alarms": [],}"#))
        #expect(error.details == ["fields": "unknownField"])
        #expect(error.message == "unknown field: unknownField")
    }

    @Test func unknownFieldsAreFoundAtDepth() throws {
        let nested = Self.programJSON.replacingOccurrences(of: #""maxPerDay": 4}"#, with: #""maxPerDay": 4, "maxPerWeek": 9}"#)
        let error = try #require(refusal(ProgramBody.self, #"{"program": \#(nested)}"#))
        #expect(error.details == ["fields": "program.patientBolus.maxPerWeek"])
    }

    @Test(arguments: [
        ("nope", "the body is not valid JSON"),
        ("[]", "the body must be a JSON object"),
        ("17", "the body must be a JSON object"),
        (#"{"aspiratedMicroliters": 1}"#, "missing field newVolumeMicroliters"),
        (#"{"aspiratedMicroliters": "1", "newVolumeMicroliters": 2}"#, "aspiratedMicroliters has the wrong type"),
        (#"{"aspiratedMicroliters": 4294967296, "newVolumeMicroliters": 2}"#, "aspiratedMicroliters: not an integer in the range of the field"),
        (#"{"aspiratedMicroliters": 1.5, "newVolumeMicroliters": -1}"#, "aspiratedMicroliters, newVolumeMicroliters: not an integer"),
    ])
    func malformedBodiesAreRefusedSayingWhy(body: String, start: String) throws {
        let error = try #require(refusal(RefillBody.self, body))
        #expect(error.code == .badRequest)
        #expect(error.message.hasPrefix(start), "\(error.message)")
    }

    /// Fuzz/Regressions/api-bodies/program-number-too-large-among-many: one number too large
    /// among many made the search for it decode the whole body once per number (seconds for a
    /// body of some hundred numbers under the sanitizer, quadratic in the body's size).
    @Test func oneBadNumberAmongThousandsIsFoundWithFewDecodings() throws {
        let step = #"{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}"#
        var steps = Array(repeating: step, count: 1000)
        steps[765] = #"{"dayMask": 300, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}"#
        let program = Self.programJSON.replacingOccurrences(
            of: #"[{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}]"#, with: "[\(steps.joined(separator: ","))]")
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(refusal(ProgramBody.self, #"{"program": \#(program)}"#))
        let elapsed = clock.now - start
        #expect(error.message == "program.steps[765].dayMask: not an integer in the range of the field")
        #expect(error.details == ["field": "program.steps[765].dayMask"])
        // About 40 decodings of a 70 KB body; one per number (3 000) took minutes.
        #expect(elapsed < .seconds(20), "\(elapsed)")
    }

    @Test func manyBadNumbersAreNamedUpToALimit() throws {
        let error = try #require(refusal(RefillBody.self, #"{"aspiratedMicroliters": -1, "newVolumeMicroliters": 1.5}"#))
        #expect(error.details == ["field": "aspiratedMicroliters,newVolumeMicroliters"])
        let steps = (0..<12).map { _ in #"{"dayMask": 256, "startMinute": 0, "doseRateMicrogramsPerDay": 1}"# }
        let program = Self.programJSON.replacingOccurrences(
            of: #"[{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}]"#, with: "[\(steps.joined(separator: ","))]")
        let many = try #require(refusal(ProgramBody.self, #"{"program": \#(program)}"#))
        let listed = (0..<APIJSON.unrepresentableNumbersListed).map { "program.steps[\($0)].dayMask" }
        #expect(many.details == ["field": listed.joined(separator: ",")])
        #expect(many.message == listed.joined(separator: ", ") + " and more: not an integer in the range of the field")
    }

    @Test func emptyBodyTakesAnEmptyObjectOnly() throws {
        #expect(refusal(EmptyBody.self, "{}") == nil)
        #expect(refusal(EmptyBody.self, #"{"a": null}"#)?.details == ["fields": "a"])
        #expect(refusal(EmptyBody.self, #"{"a": 0}"#)?.details == ["fields": "a"])
        #expect(refusal(EmptyBody.self, "null")?.message == "the body must be a JSON object")
    }

    @Test func programBodyValidationNamesTheFieldAndTheOverride() throws {
        let outOfRange = Self.programJSON.replacingOccurrences(of: #""programId": 3"#, with: #""programId": 0"#)
        let body = try decode(ProgramBody.self, #"{"program": \#(outOfRange)}"#)
        #expect(throws: RequestError.badRequest("Program.programId is out of range: 0", details: ["field": "Program.programId", "value": "0"])) {
            try body.validated()
        }
        let blank = try decode(ProgramBody.self, #"{"program": \#(Self.programJSON), "override": {"reason": " \u00a0\t"}}"#)
        #expect(throws: RequestError.badRequest("override.reason must not be empty", details: ["field": "override.reason"])) {
            try blank.validated()
        }
    }

    @Test(arguments: [
        (AcknowledgeAlarmsBody(alarms: [.reservoirLow, .motorStall]), UInt32(1 << 8 | 1 << 1)),
        (AcknowledgeAlarmsBody(mask: 1 << 8), UInt32(1 << 8)),
        (AcknowledgeAlarmsBody(alarms: []), nil),
        (AcknowledgeAlarmsBody(mask: 0), nil),
        (AcknowledgeAlarmsBody(mask: 1 << 31), nil),
        (AcknowledgeAlarmsBody(alarms: [.motorStall], mask: 2), nil),
        (AcknowledgeAlarmsBody(), nil),
    ])
    func alarmMaskNeedsExactlyOneFormAndADefinedAlarm(body: AcknowledgeAlarmsBody, mask: UInt32?) throws {
        if let mask {
            #expect(try body.alarmMask() == mask)
        } else {
            #expect(throws: RequestError.self) { try body.alarmMask() }
        }
    }

    @Test func clinicianBolusTakesAClinicianKindInRange() throws {
        let single = ClinicianBolusRequest(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10)
        #expect(try single.validated() == single)
        var patient = single
        patient.kind = .patient
        #expect(throws: RequestError.badRequest("kind must be single, bridge or priming", details: ["field": "kind", "value": "patient"])) {
            try patient.validated()
        }
        var tooLong = single
        tooLong.durationMinutes = 1441
        #expect(throws: RequestError.self) { try tooLong.validated() }
        #expect(throws: RequestError.self) { try SetClockRequest(timeMs: 0, utcOffsetMinutes: 901).validated() }
    }

    @Test(arguments: [
        ("5", Int?.some(5)), ("+5", 5), ("0005", 5), ("1000", 1000), ("1", 1),
        ("0", nil), ("1001", nil), ("-1", nil), ("", nil), (" 5", nil), ("5 ", nil), ("5.0", nil), ("0x10", nil),
        ("+", nil), ("-", nil), ("٥", nil), ("99999999999999999999999", nil),
    ])
    func queryIntegersAreDecimalAndInRange(text: String, expected: Int?) throws {
        do {
            let value = try QueryParameters.integer(text, name: "limit", in: 1...1000)
            #expect(value == expected)
        } catch {
            #expect(expected == nil)
            #expect(error == .badRequest("query parameter limit must be an integer in 1...1000", details: ["parameter": "limit", "value": text]))
        }
    }

    @Test func queryIntegerEdges() throws {
        #expect(try QueryParameters.integer(nil, name: "from", in: UInt32(0)...UInt32.max) == nil)
        #expect(try QueryParameters.integer("-0", name: "from", in: UInt32(0)...UInt32.max) == 0)
        #expect(try QueryParameters.integer("4294967295", name: "from", in: UInt32(0)...UInt32.max) == UInt32.max)
        #expect(throws: RequestError.self) { try QueryParameters.integer("4294967296", name: "from", in: UInt32(0)...UInt32.max) }
    }

    @Test func queryParametersMustBeKnownAndGivenOnce() throws {
        let allowed: Set<String> = ["from", "limit"]
        #expect(try QueryParameters.parse([(name: "from", value: "5"), (name: "limit", value: "")], allowed: allowed) == ["from": "5", "limit": ""])
        #expect(throws: RequestError.badRequest("unknown query parameter pump", details: ["parameter": "pump"])) {
            try QueryParameters.parse([(name: "pump", value: "x")], allowed: allowed)
        }
        #expect(throws: RequestError.badRequest("query parameter from is given twice", details: ["parameter": "from"])) {
            try QueryParameters.parse([(name: "from", value: "1"), (name: "from", value: "1")], allowed: allowed)
        }
    }
}
