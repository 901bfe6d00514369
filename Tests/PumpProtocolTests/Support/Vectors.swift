import Foundation
import PumpProtocol
import Testing

/// A JSON value as the vector files hold it: integers only, no floating point.
enum JSON: Hashable, Sendable, Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Int64)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let fields) = self { fields[key] } else { nil }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .object(let fields):
            "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

extension JSON {
    static func int(_ value: some BinaryInteger) -> JSON { .number(Int64(value)) }

    /// A decoded message as the vectors render it (protocol/vectors/README.md): unsigned and
    /// signed integers as numbers, bytes as lowercase hex, enumerations by name, structures as
    /// objects keyed by field name.
    init(_ value: WireValue) {
        switch value {
        case .unsigned(let number):
            // The vectors keep integers below 2^53; anything larger renders as a string so a
            // comparison fails loudly instead of wrapping.
            self = Int64(exactly: number).map(JSON.number) ?? .string("\(number)")
        case .signed(let number): self = .int(number)
        case .string(let text): self = .string(text)
        case .bytes(let bytes): self = .string(bytes.hexadecimal)
        case .enumeration(let name): self = .string(name)
        case .list(let values): self = .array(values.map(JSON.init))
        case .record(let fields):
            self = .object(Dictionary(fields.map { ($0.name, JSON($0.value)) }, uniquingKeysWith: { first, _ in first }))
        }
    }

    /// A decoder outcome as the vectors describe it.
    init(_ event: FrameDecoder.Event) {
        switch event {
        case .frame(let frame):
            var fields: [String: JSON] = [
                "event": .string("frame"),
                "flags": .int(frame.header.flags.rawValue),
                "messageType": .int(frame.header.messageType),
                "requestId": .int(frame.header.requestID),
                "payloadLength": .int(frame.header.payloadLength),
                "payload": .string(Array(frame.payload).hexadecimal),
                "tag": frame.tag.map { .string($0.bytes.hexadecimal) } ?? .null,
            ]
            do {
                let message = try frame.message()
                fields["message"] = .string(message.payload.messageTypeName)
                fields["direction"] = .string(frame.header.isResponse ? "response" : "request")
                fields["fields"] = JSON(message.payload.wireValue)
            } catch {
                fields["messageError"] = JSON(error)
            }
            self = .object(fields)
        case .discarded(let error):
            var fields = JSON(error).objectFields
            fields["event"] = .string("discarded")
            self = .object(fields)
        }
    }

    init(_ error: FrameError) {
        self = switch error {
        case .oversize: .object(["error": "oversize"])
        case .truncated(let length): .object(["error": "truncated", "length": .int(length)])
        case .tooShort(let length): .object(["error": "tooShort", "length": .int(length)])
        case .checkFailed(let received, let computed):
            .object(["error": "checkFailed", "received": .int(received), "computed": .int(computed)])
        case .unsupportedVersion(let version): .object(["error": "unsupportedVersion", "version": .int(version)])
        case .reservedFlags(let flags): .object(["error": "reservedFlags", "flags": .int(flags)])
        case .lengthMismatch(let declared, let packetLength):
            .object(["error": "lengthMismatch", "declared": .int(declared), "packetLength": .int(packetLength)])
        }
    }

    init(_ error: FrameMessageError) {
        switch error {
        case .unknownMessageType(let type):
            self = .object(["error": "unknownMessageType", "messageType": .int(type)])
        case .sealed(let counter):
            self = .object(["error": "sealed", "counter": .int(counter)])
        case .payload(let type, let wireError):
            var fields = JSON(wireError).objectFields
            fields["messageType"] = .int(type.rawValue)
            self = .object(fields)
        }
    }

    init(_ error: WireError) {
        self = switch error {
        case .truncated(let offset, let needed):
            .object(["error": "truncated", "offset": .int(offset), "needed": .int(needed)])
        case .trailingBytes(let count): .object(["error": "trailingBytes", "count": .int(count)])
        case .outOfRange(let field, let value):
            .object(["error": "outOfRange", "field": .string(field), "value": .int(value)])
        case .invalidEnum(let field, let value):
            .object(["error": "invalidEnum", "field": .string(field), "value": .int(value)])
        case .tooLong(let field, let count, let max):
            .object(["error": "tooLong", "field": .string(field), "count": .int(count), "max": .int(max)])
        case .wrongLength(let field, let count, let expected):
            .object(["error": "wrongLength", "field": .string(field), "count": .int(count), "expected": .int(expected)])
        case .invalidUTF8(let field): .object(["error": "invalidUTF8", "field": .string(field)])
        case .noSuchDirection(let type, let isResponse):
            .object(["error": "noSuchDirection", "messageType": .int(type.rawValue), "isResponse": .bool(isResponse)])
        }
    }

    var objectFields: [String: JSON] {
        if case .object(let fields) = self { fields } else { [:] }
    }
}

extension JSON: ExpressibleByStringLiteral {
    init(stringLiteral value: String) { self = .string(value) }
}

extension MessagePayload {
    var messageTypeName: String { Self.messageType.name }
}

// MARK: - The vector files

struct VectorSession: Decodable, Sendable {
    let key: String
    let hostNonce: String
    let pumpNonce: String

    func authenticator() throws -> FrameAuthenticator {
        FrameAuthenticator(
            key: try PairingKey(hex: key),
            hostNonce: try hexBytes(hostNonce),
            pumpNonce: try hexBytes(pumpNonce)
        )
    }
}

struct FrameVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Authentication: Decodable, Sendable {
        let key: String
        let hostNonce: String
        let pumpNonce: String
        let tag: String

        var session: VectorSession { VectorSession(key: key, hostNonce: hostNonce, pumpNonce: pumpNonce) }
    }

    let name: String
    let message: String
    let messageType: UInt8
    let direction: String
    let flags: UInt8
    let requestId: UInt32
    let payloadLength: Int
    let payload: String
    let authentication: Authentication?
    let check: UInt32
    let packet: String
    let line: String
    let splits: [Int]
    let fields: JSON

    var testDescription: String { name }
}

struct StreamVector: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let stream: String
    let splits: [Int]
    let events: [JSON]

    var testDescription: String { name }
}

struct AuthVectors: Decodable, Sendable {
    struct Check: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let line: String
        let session: VectorSession
        /// "frame", or the decoder's error as an object.
        let decoder: JSON
        let authentic: Bool?

        var testDescription: String { name }
    }

    struct Replay: Decodable, Sendable {
        struct Record: Decodable, Sendable {
            let lastExecutedRequestId: UInt32
            let oldestRememberedRequestId: UInt32
        }

        struct Step: Decodable, Sendable {
            let description: String
            let request: String
            let outcome: String
            let errorCode: String?
            let response: String
            let lastExecutedRequestIdAfter: UInt32
        }

        let initialRecord: Record
        let steps: [Step]
    }

    let domain: String
    let session: VectorSession
    let otherSession: VectorSession
    let hello: [String: String]
    let checks: [Check]
    let replay: Replay
}

struct PrimitiveVectors: Decodable, Sendable {
    struct CRC: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let input: String
        let crc32c: UInt32
        var testDescription: String { name }
    }

    struct COBSVector: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let decoded: String
        let encoded: String
        var testDescription: String { name }
    }

    let crc32c: [CRC]
    let cobs: [COBSVector]
    let cobsDecodeOnly: [COBSVector]
    let limits: [String: Int]
}

struct FramesFile: Decodable, Sendable { let frames: [FrameVector] }
struct BrokenFile: Decodable, Sendable { let streams: [StreamVector] }

struct VectorError: Error, CustomStringConvertible {
    let description: String
}

func hexBytes(_ text: String) throws -> [UInt8] {
    guard let bytes = [UInt8](hexadecimal: text) else { throw VectorError(description: "not hexadecimal: \(text.prefix(40))") }
    return bytes
}

/// The vector files in protocol/vectors, found from this file's path (not bundled as resources,
/// so that the tests always run the committed files).
enum Vectors {
    static let directory: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.appendingPathComponent("protocol/vectors")
            }
            url.deleteLastPathComponent()
        }
        return url
    }()

    static func load<T: Decodable>(_ name: String, as type: T.Type) -> Result<T, VectorError> {
        do {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            return .success(try JSONDecoder().decode(T.self, from: data))
        } catch {
            return .failure(VectorError(description: "\(name): \(error)"))
        }
    }

    static let framesFile = load("frames.json", as: FramesFile.self)
    static let brokenFile = load("broken.json", as: BrokenFile.self)
    static let authFile = load("auth.json", as: AuthVectors.self)
    static let primitivesFile = load("primitives.json", as: PrimitiveVectors.self)

    // Test arguments; a file that does not load gives none, and `vectorFilesLoad` fails.
    static var frames: [FrameVector] { (try? framesFile.get().frames) ?? [] }
    static var streams: [StreamVector] { (try? brokenFile.get().streams) ?? [] }
    static var authChecks: [AuthVectors.Check] { (try? authFile.get().checks) ?? [] }
    static var crcs: [PrimitiveVectors.CRC] { (try? primitivesFile.get().crc32c) ?? [] }
    static var cobs: [PrimitiveVectors.COBSVector] { (try? primitivesFile.get().cobs) ?? [] }
}

// MARK: - Feeding decoders

/// Decodes `bytes` with a fresh decoder, cut into reads at `splits` (offsets into `bytes`).
func decodeEvents(_ bytes: [UInt8], splits: [Int]) -> [FrameDecoder.Event] {
    var decoder = FrameDecoder()
    var events: [FrameDecoder.Event] = []
    var start = 0
    bytes.withUnsafeBytes { raw in
        for end in splits.filter({ $0 > 0 && $0 < bytes.count }) + [bytes.count] where end >= start {
            decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { events.append($0) }
            start = end
        }
    }
    return events
}

func decodeWhole(_ bytes: [UInt8]) -> [FrameDecoder.Event] {
    decodeEvents(bytes, splits: [])
}

func decodeByteByByte(_ bytes: [UInt8]) -> [FrameDecoder.Event] {
    decodeEvents(bytes, splits: Array(0..<bytes.count))
}

/// Random read boundaries: reads of 1 to `maxRead` bytes.
func randomSplits(count: Int, maxRead: Int, using rng: inout some RandomNumberGenerator) -> [Int] {
    var splits: [Int] = []
    var offset = 0
    while true {
        offset += Int.random(in: 1...maxRead, using: &rng)
        guard offset < count else { return splits }
        splits.append(offset)
    }
}

/// The line form of any message.
func lineForm(
    _ message: Message,
    requestID: UInt32,
    authenticator: FrameAuthenticator? = nil,
    encoder: inout FrameEncoder
) throws(WireError) -> [UInt8] {
    try encoder.encode(message.payload, requestID: requestID, authenticator: authenticator)
}

extension FrameDecoder.Event {
    var frame: Frame? {
        if case .frame(let frame) = self { frame } else { nil }
    }
}
