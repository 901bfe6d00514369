/// Finds an object key given twice, at any depth, in JSON text that has already parsed.
///
/// Foundation's JSONSerialization keeps one of two equal keys and says nothing, and JSON
/// readers disagree on which (it keeps the first, most keep the last): a body with a key given
/// twice means two things to two readers, so the API refuses it. Keys are compared as their
/// decoded text, scalar by scalar (`"a"` and `"\u0061"` are the same key; `"é"` and `"e\u0301"`
/// are not, as JSON defines no normalization).
public enum DuplicateKeys {
    /// Where a duplicate was found: the path of the object (as in refusals) and the key.
    public struct Duplicate: Sendable, Hashable {
        public var path: String
        public var key: String
    }

    public enum ScanError: Error, Sendable, Hashable {
        /// The text is not JSON as far as this scanner reads it.
        case malformed(offset: Int)
    }

    /// The first key given twice in the same object, in text order; nil if none is.
    ///
    /// Tolerates what Foundation accepts beside JSON (a trailing comma); anything it cannot
    /// read is `malformed`, which the caller refuses. Iterative, so depth costs no stack.
    public static func first(in bytes: some Collection<UInt8>) throws(ScanError) -> Duplicate? {
        let text = Array(bytes)
        var scanner = Scanner(text: text)
        return try scanner.scan()
    }

    private struct Container {
        var isObject: Bool
        var path: String
        var keys: Set<[Unicode.Scalar]> = []
        /// The path of the value being read: the key's or the element's.
        var elementPath = ""
        var nextIndex = 0
    }

    private struct Scanner {
        let text: [UInt8]
        var offset = 0

        init(text: [UInt8]) {
            self.text = text
            // A UTF-8 byte order mark, which Foundation skips.
            if text.starts(with: [0xEF, 0xBB, 0xBF]) { offset = 3 }
        }

        mutating func scan() throws(ScanError) -> Duplicate? {
            var stack: [Container] = []
            try value(path: "", stack: &stack)
            while !stack.isEmpty {
                skipWhitespace()
                guard offset < text.count else { throw .malformed(offset: offset) }
                let byte = text[offset]
                let top = stack.count - 1
                if byte == (stack[top].isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    offset += 1
                    stack.removeLast()
                    continue
                }
                if stack[top].nextIndex > 0 {
                    guard byte == UInt8(ascii: ",") else { throw .malformed(offset: offset) }
                    offset += 1
                    skipWhitespace()
                    // A trailing comma: the closing bracket comes on the next turn.
                    if offset < text.count, text[offset] == (stack[top].isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        continue
                    }
                }
                let containerPath = stack[top].path
                let elementPath: String
                if stack[top].isObject {
                    let key = try string()
                    if !stack[top].keys.insert(key).inserted {
                        var name = ""
                        name.unicodeScalars.append(contentsOf: key)
                        return Duplicate(path: containerPath, key: name)
                    }
                    skipWhitespace()
                    guard offset < text.count, text[offset] == UInt8(ascii: ":") else { throw .malformed(offset: offset) }
                    offset += 1
                    var name = ""
                    name.unicodeScalars.append(contentsOf: key)
                    elementPath = containerPath.isEmpty ? name : "\(containerPath).\(name)"
                } else {
                    elementPath = "\(containerPath)[\(stack[top].nextIndex)]"
                }
                stack[top].nextIndex += 1
                try value(path: elementPath, stack: &stack)
            }
            skipWhitespace()
            guard offset == text.count else { throw .malformed(offset: offset) }
            return nil
        }

        /// Reads a scalar value, or opens a container (pushed on `stack`, read by `scan`).
        private mutating func value(path: String, stack: inout [Container]) throws(ScanError) {
            skipWhitespace()
            guard offset < text.count else { throw .malformed(offset: offset) }
            switch text[offset] {
            case UInt8(ascii: "{"):
                offset += 1
                stack.append(Container(isObject: true, path: path))
            case UInt8(ascii: "["):
                offset += 1
                stack.append(Container(isObject: false, path: path))
            case UInt8(ascii: "\""):
                _ = try string()
            default:
                // A number or a literal: its text runs to the next delimiter; the parser that
                // accepted the body checked it.
                let start = offset
                while offset < text.count, !Self.isDelimiter(text[offset]) { offset += 1 }
                guard offset > start else { throw .malformed(offset: offset) }
            }
        }

        private static func isDelimiter(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ":"), UInt8(ascii: "\""),
                UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"),
                UInt8(ascii: "\r"):
                true
            default: false
            }
        }

        private mutating func skipWhitespace() {
            while offset < text.count,
                text[offset] == UInt8(ascii: " ") || text[offset] == UInt8(ascii: "\t")
                    || text[offset] == UInt8(ascii: "\n") || text[offset] == UInt8(ascii: "\r")
            {
                offset += 1
            }
        }

        /// A string at `offset`, decoded: escapes resolved, UTF-8 decoded (invalid sequences and
        /// lone surrogates as U+FFFD, so they still compare).
        private mutating func string() throws(ScanError) -> [Unicode.Scalar] {
            guard offset < text.count, text[offset] == UInt8(ascii: "\"") else { throw .malformed(offset: offset) }
            offset += 1
            var raw: [UInt8] = []
            var scalars: [Unicode.Scalar] = []
            func flush() {
                guard !raw.isEmpty else { return }
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            var pendingHighSurrogate: UInt32?
            func appendUnit(_ unit: UInt32) {
                if let high = pendingHighSurrogate {
                    pendingHighSurrogate = nil
                    if (0xDC00...0xDFFF).contains(unit) {
                        scalars.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)) ?? "\u{FFFD}")
                        return
                    }
                    scalars.append("\u{FFFD}")
                }
                if (0xD800...0xDBFF).contains(unit) {
                    pendingHighSurrogate = unit
                } else {
                    scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                }
            }
            func endEscapes() {
                if pendingHighSurrogate != nil {
                    pendingHighSurrogate = nil
                    scalars.append("\u{FFFD}")
                }
            }
            while true {
                guard offset < text.count else { throw .malformed(offset: offset) }
                let byte = text[offset]
                offset += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    endEscapes()
                    return scalars
                case UInt8(ascii: "\\"):
                    flush()
                    guard offset < text.count else { throw .malformed(offset: offset) }
                    let escaped = text[offset]
                    offset += 1
                    if escaped == UInt8(ascii: "u") {
                        guard offset + 4 <= text.count, let unit = UInt32(String(decoding: text[offset..<offset + 4], as: UTF8.self), radix: 16)
                        else { throw .malformed(offset: offset) }
                        offset += 4
                        appendUnit(unit)
                        continue
                    }
                    endEscapes()
                    switch escaped {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    default: throw .malformed(offset: offset - 1)
                    }
                default:
                    endEscapes()
                    raw.append(byte)
                }
            }
        }
    }
}
