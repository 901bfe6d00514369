// Fuzz target: the API's request parsing (PumpAPIRequests): `APIJSON.decodeStrict` with every
// request body type, the checks the daemon makes on a decoded body before calling the service,
// and the query parameters.
//
// Input: byte 0 chooses what to parse:
//   0 ProgramBody, 1 RefillBody, 2 AcknowledgeAlarmsBody, 3 EmptyBody,
//   4 ClinicianBolusRequest, 5 SetClockRequest: the rest is the request body;
//   6 a query integer: byte 1 picks the type and range (UInt32 0...max as `from`, Int 1...1000
//     as `limit`, Int8 or Int64 with bounds read from the next bytes), the rest is the text;
//   7 a query string: the rest is `name=value&...`, checked against {from, limit, pump}.
// Properties, for each body type:
// - decodeStrict refuses with a `badRequest` error and a non-empty message (the input is the
//   client's: never `internalError`), "not valid JSON" exactly when JSONSerialization cannot
//   read it, "must be a JSON object" exactly when it is not an object;
// - an accepted body, written as the API writes JSON, is accepted again as the same value;
// - an accepted body with an unknown field added at the top level is refused, naming exactly
//   that field;
// - ProgramBody.validated() accepts exactly a program that passes Program.validate() with no
//   blank override reason, and what it accepts goes through the wire codec unchanged;
//   ClinicianBolusRequest.validated() and SetClockRequest.validated() likewise (with a kind a
//   clinician gives); AcknowledgeAlarmsBody.alarmMask() returns the mask a second computation
//   here gives, or refuses when there is none; EmptyBody is accepted exactly for an empty
//   object.
// Query integers: accepted exactly for an optional sign and ASCII decimal digits whose value is
// in range, as that value; refused naming the parameter and the text. A query string is
// accepted exactly when every name is allowed and none repeats.

import Foundation
import FuzzSupport
import PumpAPIRequests
import PumpProtocol
import PumpSafety

runFuzzer { input in
    guard let selector = input.first else { return }
    let rest = Data(input.dropFirst())
    switch selector % 8 {
    case 0:
        BodyProperties.check(ProgramBody.self, rest) { body in
            BodyProperties.checkProgram(body, rest)
        }
    case 1: BodyProperties.check(RefillBody.self, rest) { _ in }
    case 2:
        BodyProperties.check(AcknowledgeAlarmsBody.self, rest) { body in
            BodyProperties.checkAlarmMask(body, rest)
        }
    case 3:
        BodyProperties.check(EmptyBody.self, rest) { _ in }
        BodyProperties.checkEmpty(rest)
    case 4:
        BodyProperties.check(ClinicianBolusRequest.self, rest) { body in
            BodyProperties.checkValidated(body, rest, extra: ClinicianBolusRequest.clinicianKinds.contains(body.kind)) {
                () throws(RequestError) in try body.validated()
            }
        }
    case 5:
        BodyProperties.check(SetClockRequest.self, rest) { body in
            BodyProperties.checkValidated(body, rest, extra: true) { () throws(RequestError) in try body.validated() }
        }
    case 6: QueryProperties.checkInteger(FuzzInput(UnsafeRawBufferPointer(rebasing: input.dropFirst())))
    default: QueryProperties.checkQuery(String(decoding: rest, as: UTF8.self))
    }
}

enum BodyProperties {
    static func check<T: Codable & Hashable>(_ type: T.Type, _ json: Data, accepted: (T) -> Void) {
        let parsed = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        let value: T
        do {
            value = try APIJSON.decodeStrict(T.self, from: json)
        } catch {
            checkRefusal(error, json)
            // Told from the input, not from the message: a field may be named like the refusal
            // (Regressions/api-bodies/unknown-field-named-like-a-number-refusal).
            // Keys given twice and nulls are refused before any number is looked at.
            if let parsed, parsed is [String: Any], !containsNull(parsed), (try? DuplicateKeys.first(in: json)) == .some(nil),
               plainDecoderFindsUnrepresentableNumber(T.self, json) {
                checkUnrepresentable(T.self, error, parsed, json)
            }
            if parsed == nil {
                require(error.message == "the body is not valid JSON", "\(text(json)) is not JSON but is refused with \(error)")
            } else if !(parsed is [String: Any]) {
                require(error.message == "the body must be a JSON object", "\(text(json)) is not an object but is refused with \(error)")
            }
            return
        }
        require(parsed is [String: Any], "\(text(json)) is not a JSON object but is accepted as \(value)")
        let written: Data
        do {
            written = try APIJSON.encode(value)
        } catch {
            violated("\(value) from \(text(json)) does not encode: \(error)")
        }
        do {
            let again = try APIJSON.decodeStrict(T.self, from: written)
            require(again == value, "\(value) from \(text(json)) is written as \(text(written)) and read back as \(again)")
        } catch {
            violated("\(value) from \(text(json)) is written as \(text(written)), which is refused: \(error)")
        }
        if let (extended, name) = withUnknownField(json) {
            do {
                let decoded = try APIJSON.decodeStrict(T.self, from: extended)
                violated("\(text(extended)), with the unknown field \(name), is accepted as \(decoded)")
            } catch {
                require(
                    error.code == .badRequest && error.message == "unknown field: \(name)" && error.details == ["fields": name],
                    "\(text(extended)), with the unknown field \(name), is refused with \(error)")
            }
        }
        accepted(value)
    }

    static func containsNull(_ value: Any) -> Bool {
        if value is NSNull { return true }
        if let object = value as? [String: Any] { return object.values.contains { containsNull($0) } }
        if let array = value as? [Any] { return array.contains { containsNull($0) } }
        return false
    }

    /// Foundation's decoder reports a number that does not fit its field as corrupt data at no
    /// path; on a body that is valid JSON, that is what it means.
    static func plainDecoderFindsUnrepresentableNumber<T: Decodable>(_ type: T.Type, _ json: Data) -> Bool {
        do {
            _ = try JSONDecoder().decode(T.self, from: json)
            return false
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            return true
        } catch {
            return false
        }
    }

    /// The numbers named as not fitting their fields are the first that fail alone, found here
    /// one number at a time (every other set to 0), as the daemon once did; when none fails
    /// alone (only a number JSON cannot write, such as 1e999, does not fit), none is named.
    static func checkUnrepresentable<T: Decodable>(_ type: T.Type, _ error: RequestError, _ parsed: Any, _ json: Data) {
        var leaves: [String] = []
        numberPaths(parsed, "", &leaves)
        guard leaves.count <= 40 else { return }  // n decodings: keep the run fast
        var culprits: [String] = []
        for leaf in leaves {
            let probe = zeroing(parsed, "", except: leaf)
            guard let data = try? JSONSerialization.data(withJSONObject: probe, options: [.fragmentsAllowed]) else { continue }
            do {
                _ = try JSONDecoder().decode(T.self, from: data)
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                culprits.append(leaf)
            } catch {}
        }
        guard !culprits.isEmpty else {
            require(error.code == .badRequest && error.message == "a number does not fit its field",
                    "\(text(json)) is refused with \(error); no number fails alone")
            return
        }
        let listed = Array(culprits.prefix(APIJSON.unrepresentableNumbersListed))
        let more = culprits.count > listed.count ? " and more" : ""
        require(
            !listed.isEmpty && error.details == ["field": listed.joined(separator: ",")]
                && error.message == listed.joined(separator: ", ") + more + ": not an integer in the range of the field",
            "\(text(json)) is refused with \(error); the numbers that do not fit alone: \(culprits)")
    }

    static func numberPaths(_ value: Any, _ path: String, _ paths: inout [String]) {
        if let object = value as? [String: Any] {
            for (key, element) in object.sorted(by: { $0.key < $1.key }) { numberPaths(element, path.isEmpty ? key : "\(path).\(key)", &paths) }
        } else if let array = value as? [Any] {
            for (index, element) in array.enumerated() { numberPaths(element, "\(path)[\(index)]", &paths) }
        } else if value is NSNumber {
            paths.append(path)
        }
    }

    static func zeroing(_ value: Any, _ path: String, except kept: String) -> Any {
        if let object = value as? [String: Any] {
            return object.reduce(into: [String: Any]()) { $0[$1.key] = zeroing($1.value, path.isEmpty ? $1.key : "\(path).\($1.key)", except: kept) }
        } else if let array = value as? [Any] {
            return array.enumerated().map { zeroing($0.element, "\(path)[\($0.offset)]", except: kept) }
        }
        return value is NSNumber && path != kept ? 0 : value
    }

    /// Every refusal of the client's input: 400 with something to say.
    static func checkRefusal(_ error: RequestError, _ json: Data) {
        require(error.code == .badRequest, "\(text(json)) is refused with \(error)")
        require(!error.message.isEmpty, "\(text(json)) is refused with an empty message: \(error)")
    }

    static func checkProgram(_ body: ProgramBody, _ json: Data) {
        var problem: RequestError?
        do {
            try body.program.validate()
            if let override = body.override, override.reason.allSatisfy(\.isWhitespace) {
                problem = .badRequest("override.reason must not be empty", details: ["field": "override.reason"])
            }
        } catch {
            problem = .invalid(error)
        }
        do {
            let validated = try body.validated()
            require(problem == nil, "\(body) from \(text(json)) is accepted although \(problem!)")
            require(validated == body, "\(body) from \(text(json)) is validated as \(validated)")
            wireRoundTrip(body.program, json)
        } catch {
            checkRefusal(error, json)
            require(error == problem, "\(body) from \(text(json)) is refused with \(error), expected \(String(describing: problem))")
        }
    }

    static func checkValidated<T: MessagePayload & Hashable>(
        _ body: T, _ json: Data, extra: Bool, _ validated: () throws(RequestError) -> T
    ) {
        var valid = extra
        do {
            try body.validate()
        } catch {
            valid = false
        }
        do {
            let value = try validated()
            require(valid, "\(body) from \(text(json)) is accepted though it fails validate() or its kind is not a clinician's")
            require(value == body, "\(body) from \(text(json)) is validated as \(value)")
            wireRoundTrip(body, json)
        } catch {
            checkRefusal(error, json)
            require(!valid, "\(body) from \(text(json)) passes validate() but is refused with \(error)")
        }
    }

    static func checkAlarmMask(_ body: AcknowledgeAlarmsBody, _ json: Data) {
        var expected: UInt32?
        switch (body.alarms, body.mask) {
        case (let alarms?, nil):
            var mask: UInt32 = 0
            for alarm in alarms { mask |= 1 << UInt32(alarm.rawValue) }
            expected = mask == 0 ? nil : mask
        case (nil, let mask?):
            let defined = AlarmCode.allCases.map { UInt32(1) << UInt32($0.rawValue) }.reduce(0, |)
            expected = mask != 0 && mask & ~defined == 0 ? mask : nil
        default:
            expected = nil
        }
        do {
            let mask = try body.alarmMask()
            require(mask == expected, "\(body) from \(text(json)) gives the mask \(mask), expected \(String(describing: expected))")
            wireRoundTrip(AcknowledgeAlarmsRequest(alarmMask: mask), json)
        } catch {
            checkRefusal(error, json)
            require(expected == nil, "\(body) from \(text(json)) is refused with \(error), expected the mask \(expected!)")
        }
    }

    /// EmptyBody takes an empty object, nothing else (not even a field given as null).
    static func checkEmpty(_ json: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) as? [String: Any] else {
            return
        }
        let accepted = (try? APIJSON.decodeStrict(EmptyBody.self, from: json)) != nil
        require(accepted == object.isEmpty, "\(text(json)) is \(accepted ? "accepted" : "refused") as an empty body")
    }

    static func wireRoundTrip<T: WireCodable & Hashable>(_ value: T, _ json: Data) {
        do {
            let wire = try value.encoded()
            let again = try T(payload: wire)
            require(again == value, "\(value) from \(text(json)) comes back from the wire as \(again)")
        } catch {
            violated("\(value) from \(text(json)) is accepted but does not go through the wire: \(error)")
        }
    }

    /// The input with a field no body has added after its opening brace, and the field's name;
    /// nil unless the input is UTF-8 text of one object (other encodings are left alone). After
    /// the brace, not before the closing one: Foundation takes a trailing comma (`{"a": 1,}`).
    static func withUnknownField(_ json: Data) -> (Data, String)? {
        let bytes = [UInt8](json)
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        guard let first = bytes.firstIndex(where: { !whitespace.contains($0) }), bytes[first] == UInt8(ascii: "{") else {
            return nil
        }
        // A name neither written in the input nor one of its fields under an escaped spelling.
        let fields = (try? JSONSerialization.jsonObject(with: json, options: [])) as? [String: Any] ?? [:]
        var name = "unknownField"
        let textForm = String(decoding: bytes, as: UTF8.self)
        while textForm.contains(name) || fields[name] != nil { name += "x" }
        let rest = bytes[(first + 1)...]
        let empty = rest.first { !whitespace.contains($0) } == UInt8(ascii: "}")
        let insertion = Array(("\"\(name)\":1" + (empty ? "" : ",")).utf8)
        return (Data(bytes[...first] + insertion + rest), name)
    }

    static func text(_ json: Data) -> String {
        String(decoding: json, as: UTF8.self).debugDescription + " (hex \(hex(json)))"
    }
}

enum QueryProperties {
    static func checkInteger(_ input: FuzzInput) {
        var input = input
        switch input.u8() % 4 {
        case 0: check(UInt32(0)...UInt32.max, name: "from", &input)
        case 1: check(1...1000, name: "limit", &input)
        case 2:
            let bounds = [Int8(bitPattern: input.u8()), Int8(bitPattern: input.u8())]
            check(bounds.min()!...bounds.max()!, name: "small", &input)
        default:
            let bounds = [Int64(bitPattern: input.integer(UInt64.self)), Int64(bitPattern: input.integer(UInt64.self))]
            check(bounds.min()!...bounds.max()!, name: "wide", &input)
        }
    }

    static func check<T: FixedWidthInteger>(_ range: ClosedRange<T>, name: String, _ input: inout FuzzInput) {
        let text = String(decoding: input.rest, as: UTF8.self)
        let expected = reference(text).flatMap { value in
            value >= Int128(range.lowerBound) && value <= Int128(range.upperBound) ? T(value) : nil
        }
        do {
            let value = try QueryParameters.integer(text, name: name, in: range)
            require(value == expected, "\(text.debugDescription) in \(range) is read as \(String(describing: value)), expected \(String(describing: expected))")
        } catch {
            require(expected == nil, "\(text.debugDescription) in \(range) is refused with \(error), expected \(expected!)")
            require(
                error.code == .badRequest && !error.message.isEmpty && error.details == ["parameter": name, "value": text],
                "\(text.debugDescription) in \(range) is refused with \(error)")
        }
        require((try? QueryParameters.integer(nil, name: name, in: range)) == .some(nil), "an absent \(name) is not nil")
    }

    /// An optional sign and one or more ASCII digits, as a number (nil beyond 40 digits: out of
    /// every range here anyway).
    static func reference(_ text: String) -> Int128? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.unicodeScalars.allSatisfy({ $0.isASCII && ("0"..."9").contains($0) }) else { return nil }
        let significant = digits.drop { $0 == "0" }
        guard significant.count <= 30 else { return negative ? Int128.min : Int128.max }
        var value: Int128 = 0
        for scalar in significant.unicodeScalars { value = value * 10 + Int128(scalar.value - 48) }
        return negative ? -value : value
    }

    static func checkQuery(_ query: String) {
        let allowed: Set<String> = ["from", "limit", "pump"]
        let pairs: [(name: String, value: String)] = query.split(separator: "&", omittingEmptySubsequences: false).map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(pieces[0]), pieces.count > 1 ? String(pieces[1]) : "")
        }
        let names = pairs.map(\.name)
        let acceptable = names.allSatisfy(allowed.contains) && Set(names).count == names.count
        do {
            let parameters = try QueryParameters.parse(pairs, allowed: allowed)
            require(acceptable, "\(query.debugDescription) is accepted as \(parameters)")
            require(parameters.count == pairs.count && pairs.allSatisfy { parameters[$0.name] == $0.value }, "\(query.debugDescription) is read as \(parameters)")
        } catch {
            require(!acceptable, "\(query.debugDescription) is refused with \(error)")
            let named = error.details["parameter"].map { name in !allowed.contains(name) || names.filter { $0 == name }.count > 1 } ?? false
            require(error.code == .badRequest && named, "\(query.debugDescription) is refused with \(error)")
        }
    }
}
