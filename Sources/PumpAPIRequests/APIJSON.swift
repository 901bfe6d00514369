import Foundation

/// JSON in and out of the API: compact, keys sorted (stable output for tests and diffs), enums
/// by name (the protocol types encode them so), unknown fields refused.
public enum APIJSON {
    /// A value as the API writes it.
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Decodes a request body strictly: it must be a JSON object, decode as `T`, and hold no
    /// field `T` does not know, at any depth, whatever its value. A misspelt field (say
    /// `overide`) is an error, not a silently dropped value. No key may be given twice in an
    /// object and no value may be `null` (an optional field is left out): readers disagree on
    /// both, and the API's document allows neither.
    public static func decodeStrict<T: Codable>(_ type: T.Type, from data: Data) throws(RequestError) -> T {
        let input: Any
        do {
            input = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw .badRequest("the body is not valid JSON")
        }
        guard input is [String: Any] else { throw .badRequest("the body must be a JSON object") }
        let duplicate: DuplicateKeys.Duplicate?
        do {
            duplicate = try DuplicateKeys.first(in: data)
        } catch {
            // Foundation also reads UTF-16 and UTF-32 text; the API takes UTF-8 (RFC 8259 §8.1).
            throw .badRequest("the body is not JSON in UTF-8")
        }
        if let duplicate {
            let field = duplicate.path.isEmpty ? duplicate.key : "\(duplicate.path).\(duplicate.key)"
            throw .badRequest("field \(field) is given twice", details: ["field": field])
        }
        var nulls: [String] = []
        Self.collectNulls(input, path: "", into: &nulls)
        if !nulls.isEmpty {
            nulls.sort()
            throw .badRequest(
                "null is not a value of any field (leave an optional field out): \(nulls.joined(separator: ", "))",
                details: ["fields": nulls.joined(separator: ",")])
        }
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            if Self.isUnrepresentableNumber(error) {
                throw Self.describeUnrepresentableNumbers(in: input, decoding: T.self)
            }
            throw Self.describe(error)
        } catch {
            throw .badRequest("the body could not be decoded: \(error)")
        }
        let canonical: Any
        do {
            canonical = try JSONSerialization.jsonObject(with: try encode(value), options: [])
        } catch {
            throw RequestError(.internalError, "could not re-encode the request body")
        }
        var unknown: [String] = []
        Self.collectUnknownFields(input, known: canonical, path: "", into: &unknown)
        if !unknown.isEmpty {
            unknown.sort()
            throw .badRequest(
                "unknown field\(unknown.count == 1 ? "" : "s"): \(unknown.joined(separator: ", "))",
                details: ["fields": unknown.joined(separator: ",")])
        }
        return value
    }

    private static func collectNulls(_ input: Any, path: String, into nulls: inout [String]) {
        if let object = input as? [String: Any] {
            for (key, value) in object {
                collectNulls(value, path: path.isEmpty ? key : "\(path).\(key)", into: &nulls)
            }
        } else if let array = input as? [Any] {
            for (index, element) in array.enumerated() {
                collectNulls(element, path: "\(path)[\(index)]", into: &nulls)
            }
        } else if input is NSNull {
            nulls.append(path)
        }
    }

    private static func collectUnknownFields(_ input: Any, known: Any, path: String, into unknown: inout [String]) {
        if let object = input as? [String: Any] {
            let knownObject = known as? [String: Any] ?? [:]
            for (key, value) in object {
                let fieldPath = path.isEmpty ? key : "\(path).\(key)"
                if let knownValue = knownObject[key] {
                    collectUnknownFields(value, known: knownValue, path: fieldPath, into: &unknown)
                } else {
                    unknown.append(fieldPath)
                }
            }
        } else if let array = input as? [Any], let knownArray = known as? [Any] {
            for (index, element) in array.enumerated() where index < knownArray.count {
                collectUnknownFields(element, known: knownArray[index], path: "\(path)[\(index)]", into: &unknown)
            }
        }
    }

    /// Foundation reports a number that does not fit its field (negative, fractional, too
    /// large) as invalid JSON with no path; the JSON was valid, so that is what it means.
    private static func isUnrepresentableNumber(_ error: DecodingError) -> Bool {
        if case .dataCorrupted(let context) = error, context.codingPath.isEmpty { return true }
        return false
    }

    /// The most fields a "does not fit" refusal names.
    public static let unrepresentableNumbersListed = 10

    /// Finds the numbers that do not fit their fields. A probe keeps some numbers, sets every
    /// other to 0 (which fits every integer field) and decodes the body again: it fails when it
    /// keeps a culprit. Halving the failing sets finds k culprits among n numbers in about
    /// 2k log2(n) probes, where one probe per number made a large body with one bad number cost
    /// n decodings of the whole body. Each culprit named is confirmed alone; the first
    /// `unrepresentableNumbersListed` (in path order) are named.
    private static func describeUnrepresentableNumbers<T: Decodable>(in input: Any, decoding type: T.Type) -> RequestError {
        guard let body = NumberSlots(input) else { return .badRequest("a number does not fit its field") }
        let leaves = body.paths
        func fails(_ kept: ArraySlice<String>) -> Bool {
            do {
                _ = try JSONDecoder().decode(T.self, from: body.text(keeping: Set(kept)))
            } catch let error as DecodingError where isUnrepresentableNumber(error) {
                return true
            } catch {}
            return false
        }
        var culprits: [String] = []
        var more = false
        func search(_ slice: ArraySlice<String>) {
            guard !more, !slice.isEmpty, fails(slice) else { return }
            guard slice.count > 1 else {
                if culprits.count == unrepresentableNumbersListed { more = true } else { culprits.append(slice[slice.startIndex]) }
                return
            }
            let middle = slice.startIndex + slice.count / 2
            search(slice[..<middle])
            search(slice[middle...])
        }
        search(leaves[...])
        guard !culprits.isEmpty else { return .badRequest("a number does not fit its field") }
        let fields = culprits.joined(separator: ", ") + (more ? " and more" : "")
        return .badRequest(
            "\(fields): not an integer in the range of the field", details: ["field": culprits.joined(separator: ",")])
    }

    private static func describe(_ error: DecodingError) -> RequestError {
        func pathString(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "the body" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = pathString(context.codingPath + [key])
            return .badRequest("missing field \(field)", details: ["field": field])
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = pathString(context.codingPath)
            return .badRequest("\(field) has the wrong type: \(context.debugDescription)", details: ["field": field])
        case .dataCorrupted(let context):
            let field = pathString(context.codingPath)
            return .badRequest("\(field) is invalid: \(context.debugDescription)", details: ["field": field])
        @unknown default:
            return .badRequest("the body could not be decoded")
        }
    }
}
