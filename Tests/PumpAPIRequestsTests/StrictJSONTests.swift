import Foundation
import PumpAPIRequests
import PumpProtocol
import PumpSafety
import Testing

/// What `APIJSON.decodeStrict` refuses beyond unknown fields: a key given twice (Foundation
/// keeps the first and says nothing, most readers keep the last) and `null` anywhere, known
/// field or not.
struct StrictJSONTests {
    func refusal<T: Codable>(_ type: T.Type, _ text: String) -> RequestError? {
        do {
            _ = try APIJSON.decodeStrict(T.self, from: Data(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    static let bolus = #""doseMicrograms": 0, "volumeMicroliters": 500, "durationMinutes": 10"#

    @Test(arguments: [
        // The attack: one reader sees a priming bolus, another a single one.
        (#"{"kind": "priming", "kind": "single", \#(bolus)}"#, "kind"),
        (#"{"kind": "priming", \#(bolus), "durationMinutes": 10}"#, "durationMinutes"),
        // The same key text, spelt with an escape.
        (#"{"kind": "priming", "\u006bind": "single", \#(bolus)}"#, "kind"),
        (#"{"kind": "priming", "k\u0069nd": "priming", \#(bolus)}"#, "kind"),
    ])
    func aKeyGivenTwiceIsRefused(body: String, field: String) throws {
        let error = try #require(refusal(ClinicianBolusRequest.self, body))
        #expect(error.code == .badRequest)
        #expect(error.message == "field \(field) is given twice")
        #expect(error.details == ["field": field])
    }

    @Test func aKeyGivenTwiceIsFoundAtAnyDepth() throws {
        let program = RequestBodyTests.programJSON.replacingOccurrences(
            of: #""startMinute": 0,"#, with: #""startMinute": 0, "startMinute": 600,"#)
        let error = try #require(refusal(ProgramBody.self, #"{"program": \#(program)}"#))
        #expect(error.details == ["field": "program.steps[0].startMinute"])
        let override = try #require(
            refusal(ProgramBody.self, #"{"program": \#(RequestBodyTests.programJSON), "override": {"reason": "a", "reason": "b"}}"#))
        #expect(error.code == .badRequest)
        #expect(override.details == ["field": "override.reason"])
    }

    @Test func keysAreComparedAsTheirTextNotAsEquivalentStrings() throws {
        // é precomposed and e + combining acute are different keys to JSON (no normalization):
        // both unknown here, and named as such, not as one key given twice.
        let error = try #require(refusal(EmptyBody.self, #"{"\u00e9": 1, "e\u0301": 2}"#))
        #expect(!error.message.contains("given twice"), "\(error.message)")
        // Keys that only look alike in different objects are not duplicates.
        #expect(refusal(AcknowledgeAlarmsBody.self, #"{"alarms": ["motorStall"]}"#) == nil)
        let steps = #"[{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}, {"dayMask": 127, "startMinute": 600, "doseRateMicrogramsPerDay": 2000}]"#
        let program = RequestBodyTests.programJSON.replacingOccurrences(
            of: #"[{"dayMask": 127, "startMinute": 0, "doseRateMicrogramsPerDay": 1000}]"#, with: steps)
        #expect(refusal(ProgramBody.self, #"{"program": \#(program)}"#) == nil)
    }

    @Test(arguments: [
        // The attack: an unknown field given as null was dropped and the command ran.
        (#"{"foo": null}"#, "foo"),
        (#"{"a": null, "b": null}"#, "a,b"),
    ])
    func aNullFieldIsRefusedInAnEmptyBody(body: String, fields: String) throws {
        let error = try #require(refusal(EmptyBody.self, body))
        #expect(error.code == .badRequest)
        #expect(error.details == ["fields": fields])
        #expect(error.message.hasPrefix("null is not a value of any field"))
    }

    @Test func nullIsRefusedAtAnyDepthKnownFieldOrNot() throws {
        let program = RequestBodyTests.programJSON
        #expect(refusal(ProgramBody.self, #"{"program": \#(program), "override": null}"#)?.details == ["fields": "override"])
        let nested = program.replacingOccurrences(of: #""maxPerDay": 4}"#, with: #""maxPerDay": 4, "note": null}"#)
        #expect(refusal(ProgramBody.self, #"{"program": \#(nested)}"#)?.details == ["fields": "program.patientBolus.note"])
        #expect(refusal(AcknowledgeAlarmsBody.self, #"{"alarms": ["motorStall", null]}"#)?.details == ["fields": "alarms[1]"])
        #expect(refusal(AcknowledgeAlarmsBody.self, #"{"alarms": null, "mask": 2}"#)?.details == ["fields": "alarms"])
    }

    @Test func aBodyNotInUTF8IsRefused() throws {
        // Foundation reads UTF-16 too; the API takes UTF-8 only.
        var utf16 = Data([0xFF, 0xFE])
        utf16.append(contentsOf: Array("{}".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        if (try? JSONSerialization.jsonObject(with: utf16)) != nil {
            var message: String?
            do {
                _ = try APIJSON.decodeStrict(EmptyBody.self, from: utf16)
            } catch {
                message = error.message
            }
            #expect(message == "the body is not JSON in UTF-8")
        }
        // A UTF-8 byte order mark, which Foundation skips, is no reason to refuse.
        #expect((try? APIJSON.decodeStrict(EmptyBody.self, from: Data([0xEF, 0xBB, 0xBF]) + Data("{}".utf8))) != nil)
    }

    @Test func aValidBodyIsStillAccepted() throws {
        let body = try APIJSON.decodeStrict(
            ClinicianBolusRequest.self, from: Data(#"{"kind": "priming", "doseMicrograms": 0, "volumeMicroliters": 500, "durationMinutes": 10}"#.utf8))
        #expect(body.kind == .priming)
        #expect(body.volumeMicroliters == 500)
    }

    /// Random nested bodies, each key written in a random spelling (raw, \\uXXXX with surrogate
    /// pairs, short escapes): refused as "given twice" exactly when some object holds two keys
    /// with the same text; the path named is that object's.
    @Test(arguments: 0..<8)
    func aKeyGivenTwiceIsFoundWhateverItsSpelling(seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        for _ in 0..<250 {
            var writer = RandomBody(random: random)
            let text = writer.object(depth: 0, path: "")
            random = writer.random
            var message: String?
            var details: [String: String] = [:]
            do {
                _ = try APIJSON.decodeStrict(EmptyBody.self, from: Data(text.utf8))
            } catch {
                message = error.message
                details = error.details
            }
            if let duplicate = writer.firstDuplicate {
                #expect(message == "field \(duplicate) is given twice", "\(text)")
                #expect(details == ["field": duplicate], "\(text)")
            } else {
                #expect(!(message ?? "").contains("given twice"), "\(text): \(message ?? "accepted")")
            }
        }
    }
}

/// A small deterministic generator (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Writes a random JSON object with keys from a small set (so that some repeat), each written
/// in a random spelling; remembers the first object, in text order of its repeated key, that
/// holds a key twice.
struct RandomBody {
    var random: SplitMix
    var firstDuplicate: String?
    /// "\u{e9}" and "e\u{301}" are different keys to JSON, though equal as Swift strings.
    static let keys = ["a", "b", "\u{e9}", "e\u{301}", "\"q\"", "\\", "\u{1F600}", "tab\t"]

    mutating func object(depth: Int, path: String) -> String {
        var seen: Set<[UInt32]> = []
        var members: [String] = []
        for _ in 0..<random.below(4) {
            let key = Self.keys[random.below(Self.keys.count)]
            if !seen.insert(key.unicodeScalars.map(\.value)).inserted, firstDuplicate == nil {
                firstDuplicate = path.isEmpty ? key : "\(path).\(key)"
            }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            members.append(spell(key) + ": " + value(depth: depth + 1, path: childPath))
        }
        return "{" + members.joined(separator: ", ") + "}"
    }

    mutating func value(depth: Int, path: String) -> String {
        switch depth > 3 ? 0 : random.below(4) {
        case 0: return String(random.below(1000))
        case 1: return spell(Self.keys[random.below(Self.keys.count)])
        case 2: return object(depth: depth, path: path)
        default:
            var elements: [String] = []
            for index in 0..<random.below(3) { elements.append(value(depth: depth + 1, path: "\(path)[\(index)]")) }
            return "[" + elements.joined(separator: ",") + "]"
        }
    }

    /// The string as JSON text, each scalar raw or escaped at random.
    mutating func spell(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            let mustEscape = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
            switch mustEscape ? 1 + random.below(2) : random.below(3) {
            case 0: out.unicodeScalars.append(scalar)
            case 1 where scalar == "\"": out += "\\\""
            case 1 where scalar == "\\": out += "\\\\"
            case 1 where scalar == "\t": out += "\\t"
            default:
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
        }
        return out + "\""
    }
}
