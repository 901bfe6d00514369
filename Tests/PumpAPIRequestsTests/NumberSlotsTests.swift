import Foundation
import Testing

@testable import PumpAPIRequests

/// The probes of the search for numbers that do not fit: the body as JSONSerialization reads it,
/// with chosen numbers kept and the rest 0.
struct NumberSlotsTests {
    func parse(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data, options: []) as? NSDictionary)
    }

    /// The tree with every number (booleans too) not at a kept path, or not finite, set to 0.
    func zeroed(_ value: Any, _ path: String, keeping kept: Set<String>) -> Any {
        if let object = value as? [String: Any] {
            return object.reduce(into: [String: Any]()) { $0[$1.key] = zeroed($1.value, path.isEmpty ? $1.key : "\(path).\($1.key)", keeping: kept) }
        } else if let array = value as? [Any] {
            return array.enumerated().map { zeroed($0.element, "\(path)[\($0.offset)]", keeping: kept) }
        } else if let number = value as? NSNumber, !kept.contains(path) || !number.doubleValue.isFinite {
            return 0
        }
        return value
    }

    @Test func everyKindOfValueIsWrittenSoItReadsBackTheSame() throws {
        let text = #"""
            {"b": [1, -2, 1.5, 18446744073709551615, -9223372036854775808, 123456789012345678901234567890,
                   1e300, 0.1, true, false, null, "x", [], {}],
             "a\"\\\u0001\/é\u2028": {"n": 3e2, "s": "q\"\\\n\t\u0000😀", "t": [[{"u": 7}]]},
             "a.n": -0, "c": 4294967296}
            """#
        let tree = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [])
        let slots = try #require(NumberSlots(tree))
        #expect(slots.paths == [
            "a\"\\\u{1}/é\u{2028}.n", "a\"\\\u{1}/é\u{2028}.t[0][0].u", "a.n",
            "b[0]", "b[1]", "b[2]", "b[3]", "b[4]", "b[5]", "b[6]", "b[7]", "b[8]", "b[9]", "c",
        ])
        let all = Set(slots.paths)
        #expect(try parse(slots.text(keeping: all)) == zeroed(tree, "", keeping: all) as! NSDictionary)
        #expect(try parse(slots.text(keeping: [])) == zeroed(tree, "", keeping: []) as! NSDictionary)
        let some: Set = ["b[2]", "c", "b[8]"]
        let kept = try parse(slots.text(keeping: some))
        #expect(kept == zeroed(tree, "", keeping: some) as! NSDictionary)
        #expect(kept != zeroed(tree, "", keeping: []) as! NSDictionary)
    }

    @Test func randomBodiesReadBackTheSame() throws {
        var generator = SystemRandomNumberGenerator()
        func value(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &generator) {
            case 0: return ["0", "-1", "1.25", "1e3", "99999999999999999999", "true", "false", "1E-2"].randomElement()!
            case 1: return "null"
            case 2: return #""\#(["", "x\\\"y", "\\u0007", "ü", "\\ud83d\\ude00"].randomElement()!)""#
            case 3: return String(Int.random(in: -5000...5000))
            case 4: return "[" + (0..<Int.random(in: 0...4)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            default:
                let keys = Set((0..<Int.random(in: 0...4)).map { _ in ["a", "b", "a.b", "c\\\"", "d\\u0000"].randomElement()! })
                return "{" + keys.map { #""\#($0)":"# + value(depth + 1) }.joined(separator: ",") + "}"
            }
        }
        for _ in 0..<500 {
            let text = #"{"root":\#(value(0)), "a": {"b": 5}}"#
            let tree = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [])
            let slots = try #require(NumberSlots(tree))
            let kept = Set(slots.paths.filter { _ in Bool.random(using: &generator) })
            #expect(try parse(slots.text(keeping: kept)) == zeroed(tree, "", keeping: kept) as! NSDictionary, "\(text) keeping \(kept)")
        }
    }
}
