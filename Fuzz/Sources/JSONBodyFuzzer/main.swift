// Fuzz target: the JSON forms of the values the API takes in request bodies.
//
// Input: byte 0 chooses the type (Program, ClinicianBolusRequest, SetClockRequest,
// RefillRequest, AcknowledgeAlarmsRequest, Override); the rest is JSON text. This covers the
// Codable conformances that the API's strict body decoding (`APIJSON.decodeStrict`, fuzzed
// with the request body types by `api-bodies`) relies on. A body that decodes must:
// - come back unchanged through JSON as the API writes it (sorted keys, no escaped slashes);
// - if `validate()` accepts it (what the daemon checks before sending), encode for the wire
//   and decode from it to the same value: validation and the wire decoder agree on ranges;
// - for a program, have a SPEC §9.5 verdict (`problem(...)`) that never traps and that is
//   rule 1 (malformed) exactly when validation fails.

import Foundation
import FuzzSupport
import PumpModel
import PumpProtocol
import PumpSafety

runFuzzer { input in
    guard let selector = input.first else { return }
    let json = Data(input.dropFirst())
    switch selector % 6 {
    case 0: JSONBodyProperties.checkWireValue(Program.self, json)
    case 1: JSONBodyProperties.checkWireValue(ClinicianBolusRequest.self, json)
    case 2: JSONBodyProperties.checkWireValue(SetClockRequest.self, json)
    case 3: JSONBodyProperties.checkWireValue(RefillRequest.self, json)
    case 4: JSONBodyProperties.checkWireValue(AcknowledgeAlarmsRequest.self, json)
    default: JSONBodyProperties.checkOverride(json)
    }
}

enum JSONBodyProperties {
    static func checkWireValue<T: WireCodable & Codable>(_ type: T.Type, _ json: Data) {
        guard let value = try? JSONDecoder().decode(T.self, from: json) else { return }
        roundTrip(value, json: json)
        var valid = true
        do {
            try value.validate()
        } catch {
            valid = false
        }
        if let program = value as? Program {
            let problem = program.problem(reservoirCapacityMicroliters: 20_000)
            require((problem == .malformed) == !valid, "program \(program): problem \(String(describing: problem)), validation \(valid ? "passes" : "fails")")
        }
        guard valid else { return }
        do {
            let wire = try value.encoded()
            let again = try T(payload: wire)
            require(again == value, "\(value) from JSON \(text(json)) comes back from the wire as \(again)")
        } catch {
            violated("\(value) from JSON \(text(json)) validates but does not go through the wire: \(error)")
        }
    }

    static func checkOverride(_ json: Data) {
        guard let value = try? JSONDecoder().decode(Override.self, from: json) else { return }
        roundTrip(value, json: json)
        _ = value.hasReason
    }

    /// As `JSONEncoding.encode` in the daemon writes it.
    static func roundTrip<T: Codable & Hashable>(_ value: T, json: Data) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let written: Data
        do {
            written = try encoder.encode(value)
        } catch {
            violated("\(value) from JSON \(text(json)) does not encode: \(error)")
        }
        do {
            let again = try JSONDecoder().decode(T.self, from: written)
            require(again == value, "\(value) from JSON \(text(json)) is written as \(text(written)) and read back as \(again)")
        } catch {
            violated("\(value) from JSON \(text(json)) is written as \(text(written)), which does not decode: \(error)")
        }
    }

    static func text(_ json: Data) -> String {
        String(decoding: json, as: UTF8.self).debugDescription
    }
}
