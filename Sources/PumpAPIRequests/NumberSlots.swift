import Foundation

/// A parsed JSON body written once as text with a slot at each number (booleans included, as
/// JSONSerialization gives them as numbers), so that the many probes of the search for numbers
/// that do not fit cost a copy each, not a new writing of the body.
///
/// Slots are in path order: keys sorted at each level, array elements by index. A path is
/// written as in refusals (`program.steps[3].dayMask`); two slots can share one (the key `a.b`
/// beside the object `a` holding `b`), and then a probe keeps both or neither.
struct NumberSlots {
    /// The text before each slot; one more than there are slots, the last after the last slot.
    private var chunks: [[UInt8]] = [[]]
    /// Each slot's path and number as JSON text; nil for a number JSON cannot write (not finite),
    /// which every probe sets to 0: kept, it would spoil the probe.
    private var slots: [(path: String, text: [UInt8]?)] = []

    /// Nil if the value holds something JSONSerialization does not give.
    init?(_ value: Any) {
        guard write(value, path: "") else { return nil }
    }

    /// The paths of the numbers a probe can keep, in path order.
    var paths: [String] { slots.compactMap { $0.text == nil ? nil : $0.path } }

    /// The body with the numbers at `kept` paths as they were and every other number 0.
    func text(keeping kept: Set<String>) -> Data {
        var data = Data(chunks[0])
        for (index, slot) in slots.enumerated() {
            if let text = slot.text, kept.contains(slot.path) {
                data.append(contentsOf: text)
            } else {
                data.append(UInt8(ascii: "0"))
            }
            data.append(contentsOf: chunks[index + 1])
        }
        return data
    }

    private mutating func write(_ value: Any, path: String) -> Bool {
        if let object = value as? [String: Any] {
            append("{")
            for (index, (key, element)) in object.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { append(",") }
                appendString(key)
                append(":")
                guard write(element, path: path.isEmpty ? key : "\(path).\(key)") else { return false }
            }
            append("}")
        } else if let array = value as? [Any] {
            append("[")
            for (index, element) in array.enumerated() {
                if index > 0 { append(",") }
                guard write(element, path: "\(path)[\(index)]") else { return false }
            }
            append("]")
        } else if let string = value as? String {
            appendString(string)
        } else if value is NSNull {
            append("null")
        } else if let number = value as? NSNumber {
            // JSONSerialization writes the number as it reads it back: integer, decimal,
            // double or boolean.
            let text = number.doubleValue.isFinite
                ? (try? JSONSerialization.data(withJSONObject: number, options: [.fragmentsAllowed])).map { [UInt8]($0) } : nil
            slots.append((path, text))
            chunks.append([])
        } else {
            return false
        }
        return true
    }

    private mutating func append(_ text: StaticString) {
        chunks[chunks.count - 1].append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A JSON string: quote, backslash and control characters escaped, the rest as UTF-8.
    private mutating func appendString(_ string: String) {
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\"")]
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), byte]
            case ..<0x20: bytes += Array(#"\u00"#.utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        chunks[chunks.count - 1] += bytes
    }
}
