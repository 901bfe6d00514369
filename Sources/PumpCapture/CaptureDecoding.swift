#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PumpProtocol

/// A capture with every recorded candidate run through the frame decoder (SPEC §3.4): what
/// `pumpctl capture decode` shows.
public struct DecodedCapture: Sendable, Hashable {
    public var interfaces: [Capture.Interface]
    public var records: [CaptureRecord]
    /// The file ended inside a block (see `Capture.truncatedTail`).
    public var truncatedTail: Bool
}

/// One recorded candidate and what the decoder made of it.
public struct CaptureRecord: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// A frame whose check passed; its message decoded or not.
        case frame(DecodedFrame)
        /// Not a frame: the decoder discarded it with this error.
        case discarded(FrameError)
        /// Only the start of the candidate was captured (a snap length of another tool), too
        /// little to decide: nothing is decoded.
        case notFullyCaptured
        /// The packet holds no candidate (empty, or delimiters only).
        case empty
    }

    /// The packet's number in the file, from 1, as Wireshark counts.
    public var packetNumber: Int
    public var timestampNanoseconds: UInt64
    /// Index in `DecodedCapture.interfaces`.
    public var interfaceIndex: Int
    public var interfaceName: String?
    public var interfaceDescription: String?
    public var direction: CaptureDirection?
    /// The candidate as captured (COBS-encoded, without delimiters).
    public var bytes: [UInt8]
    public var originalLength: Int
    public var outcome: Outcome
}

/// A frame's header fields and its message.
public struct DecodedFrame: Sendable, Hashable {
    public var header: FrameHeader
    public var payload: [UInt8]
    public var tag: AuthenticationTag?
    /// The payload decoded as the message its type and direction say, or why it is not one.
    public var message: Result<Message, FrameMessageError>
    /// For a sealed frame opened with the pump's key (`DecodedCapture.opened(with:)`): its
    /// counter; `header` and `payload` are then the opened frame's.
    public var openedCounter: UInt64?

    /// The definitions' name of the message type ("Ping"), if known.
    public var messageName: String? {
        MessageType(rawValue: header.messageType)?.name
    }
}

extension Capture {
    /// Decodes every packet's bytes as one candidate between delimiters. A packet holding
    /// `0x00` bytes (possible in files from other tools) gives a record per candidate in it.
    public func decoded() -> DecodedCapture {
        var decoder = FrameDecoder()
        var records: [CaptureRecord] = []
        records.reserveCapacity(packets.count)
        var line: [UInt8] = []
        for (index, packet) in packets.enumerated() {
            let interface = interfaces.indices.contains(packet.interfaceIndex) ? interfaces[packet.interfaceIndex] : nil
            var record = CaptureRecord(
                packetNumber: index + 1,
                timestampNanoseconds: packet.timestampNanoseconds,
                interfaceIndex: packet.interfaceIndex,
                interfaceName: interface?.name,
                interfaceDescription: interface?.description,
                direction: packet.direction,
                bytes: packet.data,
                originalLength: packet.originalLength,
                outcome: .empty
            )
            line.removeAll(keepingCapacity: true)
            line.append(0)
            line.append(contentsOf: packet.data)
            line.append(0)
            var outcomes: [CaptureRecord.Outcome] = []
            decoder.reset()
            decoder.decode(line) { event in
                switch event {
                case .frame(let frame):
                    outcomes.append(.frame(DecodedFrame(frame)))
                case .discarded(let error):
                    outcomes.append(.discarded(error))
                }
            }
            if packet.originalLength > packet.data.count {
                // Only a prefix was captured: an oversize verdict holds for the whole
                // candidate (the prefix alone overflowed); nothing else can be trusted.
                let last = outcomes.last
                outcomes = [last == .discarded(.oversize) ? .discarded(.oversize) : .notFullyCaptured]
            }
            if outcomes.isEmpty {
                records.append(record)
            }
            for outcome in outcomes {
                record.outcome = outcome
                records.append(record)
            }
        }
        return DecodedCapture(interfaces: interfaces, records: records, truncatedTail: truncatedTail)
    }
}

extension DecodedFrame {
    init(_ frame: Frame) {
        let message: Result<Message, FrameMessageError>
        do {
            message = .success(try frame.message())
        } catch {
            message = .failure(error)
        }
        self.init(header: frame.header, payload: Array(frame.payload), tag: frame.tag, message: message, openedCounter: nil)
    }
}

// MARK: - Text

extension DecodedCapture {
    /// One line per record: time (UTC), direction arrow (→ sent, ← received), interface, what
    /// the candidate was, key fields.
    public func text() -> String {
        var text = ""
        for record in records {
            text += record.line
            text += "\n"
        }
        if truncatedTail {
            text += "(the file ends inside a block: the writer was stopped or is still writing)\n"
        }
        return text
    }
}

extension CaptureRecord {
    /// The record in one line, e.g.
    /// `2025-03-14 09:26:51.420123456 → pump 1  #21 Ping request  echo=7`.
    public var line: String {
        var line = CaptureTime.text(nanoseconds: timestampNanoseconds, separator: " ") + " "
        switch direction {
        case .outbound: line += "→"
        case .inbound: line += "←"
        case nil: line += "·"
        }
        line += " " + (interfaceDescription ?? interfaceName ?? "interface \(interfaceIndex)") + "  "
        switch outcome {
        case .frame(let frame):
            line += frame.summary
        case .discarded(let error):
            line += "discarded: \(FrameErrorText.describe(error)) (\(bytes.count) bytes)"
        case .notFullyCaptured:
            line += "not fully captured (\(bytes.count) of \(originalLength) bytes)"
        case .empty:
            line += "empty"
        }
        return line
    }
}

extension DecodedFrame {
    /// Request id, message, direction, authentication and fields, in one line.
    public var summary: String {
        var text = "#\(header.requestID) "
        text += messageName ?? "type \(header.messageType)"
        text += header.isResponse ? " response" : " request"
        if header.isAuthenticated { text += " (authenticated)" }
        if let openedCounter { text += " (sealed, opened; counter \(openedCounter))" }
        switch message {
        case .success(let message):
            let fields = WireValueText.fields(message.payload.wireValue)
            if !fields.isEmpty { text += "  " + fields }
        case .failure(.unknownMessageType):
            text += "  unknown message type, \(header.payloadLength)-byte payload"
        case .failure(.sealed(let counter)):
            text += "  sealed (counter \(counter), \(header.payloadLength - FrameLayout.counterLength) bytes; SPEC §8.4)"
        case .failure(.payload(_, let error)):
            text += "  undecodable payload (\(header.payloadLength) bytes): \(error)"
        }
        return text
    }
}

/// Compact `name=value` rendering of decoded fields (long byte strings and lists shortened).
public enum WireValueText {
    static let maxBytesShown = 16
    static let maxElementsShown = 8

    /// The top-level record's fields without braces.
    static func fields(_ value: WireValue) -> String {
        if case .record(let fields) = value {
            return fields.map { "\($0.name)=\(text($0.value))" }.joined(separator: " ")
        }
        return text(value)
    }

    public static func text(_ value: WireValue) -> String {
        switch value {
        case .unsigned(let number): return "\(number)"
        case .signed(let number): return "\(number)"
        case .string(let string): return string.debugDescription
        case .enumeration(let name): return name
        case .bytes(let bytes):
            if bytes.isEmpty { return "(0 bytes)" }
            if bytes.count <= maxBytesShown { return bytes.hexadecimal }
            return Array(bytes.prefix(maxBytesShown)).hexadecimal + "…(\(bytes.count) bytes)"
        case .list(let values):
            var items = values.prefix(maxElementsShown).map(text)
            if values.count > maxElementsShown { items.append("…(\(values.count) items)") }
            return "[" + items.joined(separator: ", ") + "]"
        case .record(let fields):
            return "{" + fields.map { "\($0.name)=\(text($0.value))" }.joined(separator: " ") + "}"
        }
    }
}

enum FrameErrorText {
    static func describe(_ error: FrameError) -> String {
        switch error {
        case .oversize: "oversize"
        case .truncated(let length): "truncated after \(length) bytes"
        case .tooShort(let length): "too short (\(length) bytes)"
        case .checkFailed(let received, let computed):
            "check failed (received \(hex32(received)), computed \(hex32(computed)))"
        case .unsupportedVersion(let version): "unsupported version \(version)"
        case .reservedFlags(let flags): "reserved flags set (0x\(String(flags, radix: 16)))"
        case .lengthMismatch(let declared, let packetLength):
            "length mismatch (payload length \(declared), packet \(packetLength) bytes)"
        }
    }

    static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Timestamps as UTC calendar time, without Foundation's calendar.
public enum CaptureTime {
    /// `2025-03-14T09:26:51.420123456Z` (with `separator` "T"), nanoseconds since 1970 UTC.
    public static func text(nanoseconds: UInt64, separator: String = "T") -> String {
        let seconds = nanoseconds / 1_000_000_000
        let fraction = nanoseconds % 1_000_000_000
        let days = Int64(seconds / 86_400)
        let secondOfDay = Int(seconds % 86_400)
        let (year, month, day) = civilDate(daysSince1970: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))\(separator)"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
            + ".\(pad(Int(fraction), 9))Z"
    }

    /// Year, month, day of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
    static func civilDate(daysSince1970 days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

// MARK: - JSON

extension DecodedCapture: Encodable {
    private enum CodingKeys: String, CodingKey {
        case interfaces, records, truncatedTail
    }

    private struct InterfaceJSON: Encodable {
        var index: Int
        var name: String?
        var description: String?
        var linkType: UInt16
        var section: Int
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(
            interfaces.enumerated().map {
                InterfaceJSON(
                    index: $0.offset, name: $0.element.name, description: $0.element.description,
                    linkType: $0.element.linkType, section: $0.element.section)
            },
            forKey: .interfaces
        )
        try container.encode(records, forKey: .records)
        try container.encode(truncatedTail, forKey: .truncatedTail)
    }

    /// The decoded capture as JSON: `{interfaces, records, truncatedTail}`. Bytes are hex,
    /// enumerations by name, fields by name, as in protocol/vectors/README.md.
    public func json(prettyPrinted: Bool = true) -> String {
        let encoder = JSONEncoder()
        // Sorted keys: the same capture always gives the same text, so outputs can be diffed.
        encoder.outputFormatting = prettyPrinted
            ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Every value here is encodable; a failure would be a bug in this file.
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

extension CaptureRecord: Encodable {
    private enum CodingKeys: String, CodingKey {
        case packet, time, timeNanoseconds, interface, interfaceName, interfaceDescription, direction
        case length, originalLength, bytes, outcome, frame, error
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(packetNumber, forKey: .packet)
        try container.encode(CaptureTime.text(nanoseconds: timestampNanoseconds), forKey: .time)
        try container.encode(timestampNanoseconds, forKey: .timeNanoseconds)
        try container.encode(interfaceIndex, forKey: .interface)
        try container.encode(interfaceName, forKey: .interfaceName)
        try container.encode(interfaceDescription, forKey: .interfaceDescription)
        try container.encode(direction, forKey: .direction)
        try container.encode(bytes.count, forKey: .length)
        try container.encode(originalLength, forKey: .originalLength)
        try container.encode(bytes.hexadecimal, forKey: .bytes)
        switch outcome {
        case .frame(let frame):
            try container.encode("frame", forKey: .outcome)
            try container.encode(frame, forKey: .frame)
        case .discarded(let error):
            try container.encode("discarded", forKey: .outcome)
            try container.encode(JSONObject(error), forKey: .error)
        case .notFullyCaptured:
            try container.encode("notFullyCaptured", forKey: .outcome)
        case .empty:
            try container.encode("empty", forKey: .outcome)
        }
    }
}

extension DecodedFrame: Encodable {
    private enum CodingKeys: String, CodingKey {
        case response, authenticated, messageType, message, requestId, payloadLength, payload, tag, fields, messageError
        case openedCounter
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(header.isResponse, forKey: .response)
        try container.encode(header.isAuthenticated, forKey: .authenticated)
        try container.encode(header.messageType, forKey: .messageType)
        try container.encode(messageName, forKey: .message)
        try container.encode(header.requestID, forKey: .requestId)
        try container.encode(header.payloadLength, forKey: .payloadLength)
        try container.encode(payload.hexadecimal, forKey: .payload)
        try container.encode(tag.map { $0.bytes.hexadecimal }, forKey: .tag)
        try container.encodeIfPresent(openedCounter, forKey: .openedCounter)
        switch message {
        case .success(let message):
            try container.encode(WireValueJSON(message.payload.wireValue), forKey: .fields)
        case .failure(let error):
            try container.encode(JSONObject(error), forKey: .messageError)
        }
    }
}

/// A decoded value as protocol/vectors/README.md renders it: numbers, hex bytes, enumeration
/// names, objects keyed by field name.
struct WireValueJSON: Encodable {
    let value: WireValue

    init(_ value: WireValue) {
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        switch value {
        case .unsigned(let number):
            var container = encoder.singleValueContainer()
            try container.encode(number)
        case .signed(let number):
            var container = encoder.singleValueContainer()
            try container.encode(number)
        case .string(let text), .enumeration(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .bytes(let bytes):
            var container = encoder.singleValueContainer()
            try container.encode(bytes.hexadecimal)
        case .list(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(WireValueJSON(value)) }
        case .record(let fields):
            var container = encoder.container(keyedBy: NameKey.self)
            for field in fields { try container.encode(WireValueJSON(field.value), forKey: NameKey(field.name)) }
        }
    }
}

struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// An error as `{"error": name, details...}`, the shape of protocol/vectors/broken.json.
struct JSONObject: Encodable {
    enum Value: Encodable {
        case string(String)
        case integer(Int64)
        case unsigned(UInt64)
        case bool(Bool)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .integer(let value): try container.encode(value)
            case .unsigned(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            }
        }
    }

    var fields: [(String, Value)]

    init(_ fields: [(String, Value)]) {
        self.fields = fields
    }

    init(_ error: FrameError) {
        switch error {
        case .oversize: self.init([("error", .string("oversize"))])
        case .truncated(let length): self.init([("error", .string("truncated")), ("length", .integer(Int64(length)))])
        case .tooShort(let length): self.init([("error", .string("tooShort")), ("length", .integer(Int64(length)))])
        case .checkFailed(let received, let computed):
            self.init([
                ("error", .string("checkFailed")), ("received", .unsigned(UInt64(received))),
                ("computed", .unsigned(UInt64(computed))),
            ])
        case .unsupportedVersion(let version):
            self.init([("error", .string("unsupportedVersion")), ("version", .unsigned(UInt64(version)))])
        case .reservedFlags(let flags):
            self.init([("error", .string("reservedFlags")), ("flags", .unsigned(UInt64(flags)))])
        case .lengthMismatch(let declared, let packetLength):
            self.init([
                ("error", .string("lengthMismatch")), ("declared", .integer(Int64(declared))),
                ("packetLength", .integer(Int64(packetLength))),
            ])
        }
    }

    init(_ error: FrameMessageError) {
        switch error {
        case .unknownMessageType(let type):
            self.init([("error", .string("unknownMessageType")), ("messageType", .unsigned(UInt64(type)))])
        case .sealed(let counter):
            self.init([("error", .string("sealed")), ("counter", .unsigned(counter))])
        case .payload(let type, let wireError):
            var object = JSONObject(wireError)
            object.fields.append(("messageType", .unsigned(UInt64(type.rawValue))))
            self = object
        }
    }

    init(_ error: WireError) {
        switch error {
        case .truncated(let offset, let needed):
            self.init([("error", .string("truncated")), ("offset", .integer(Int64(offset))), ("needed", .integer(Int64(needed)))])
        case .trailingBytes(let count):
            self.init([("error", .string("trailingBytes")), ("count", .integer(Int64(count)))])
        case .outOfRange(let field, let value):
            self.init([("error", .string("outOfRange")), ("field", .string(field)), ("value", .integer(value))])
        case .invalidEnum(let field, let value):
            self.init([("error", .string("invalidEnum")), ("field", .string(field)), ("value", .unsigned(value))])
        case .tooLong(let field, let count, let max):
            self.init([
                ("error", .string("tooLong")), ("field", .string(field)), ("count", .integer(Int64(count))),
                ("max", .integer(Int64(max))),
            ])
        case .wrongLength(let field, let count, let expected):
            self.init([
                ("error", .string("wrongLength")), ("field", .string(field)), ("count", .integer(Int64(count))),
                ("expected", .integer(Int64(expected))),
            ])
        case .invalidUTF8(let field):
            self.init([("error", .string("invalidUTF8")), ("field", .string(field))])
        case .noSuchDirection(let type, let isResponse):
            self.init([
                ("error", .string("noSuchDirection")), ("messageType", .unsigned(UInt64(type.rawValue))),
                ("isResponse", .bool(isResponse)),
            ])
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: NameKey.self)
        for (name, value) in fields { try container.encode(value, forKey: NameKey(name)) }
    }
}
