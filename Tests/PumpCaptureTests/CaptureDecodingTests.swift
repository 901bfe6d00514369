#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PumpCapture
import PumpProtocol
import Testing

/// A JSON value, to compare rendered output with the vector files.
enum JSON: Hashable, Decodable {
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

    subscript(index: Int) -> JSON? {
        if case .array(let values) = self, values.indices.contains(index) { values[index] } else { nil }
    }

    static func parse(_ text: String) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(text.utf8))
    }
}

struct FrameVector: Decodable {
    let name: String
    let messageType: UInt8
    let direction: String
    let flags: UInt8
    let requestId: UInt32
    let payloadLength: Int
    let line: String
    let fields: JSON
}

private struct FramesFile: Decodable {
    let frames: [FrameVector]
}

/// protocol/vectors/frames.json, found from this file's path.
func loadFrameVectors() throws -> [FrameVector] {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
        url.deleteLastPathComponent()
    }
    let data = try Data(contentsOf: url.appendingPathComponent("protocol/vectors/frames.json"))
    return try JSONDecoder().decode(FramesFile.self, from: data).frames
}

@Suite("decoding captures")
struct CaptureDecodingTests {
    static let start: UInt64 = 1_741_944_411_420_123_456

    @Test("frames, bad checks, garbage, cut and odd packets each get their outcome")
    func outcomes() throws {
        let vectors = try loadFrameVectors()
        #expect(vectors.count >= 37)
        var builder = CaptureBuilder()
        builder.section()
        builder.interface("/dev/pts/4", "pump 1")
        var time = Self.start
        func add(_ data: [UInt8], original: Int? = nil, _ direction: CaptureDirection) throws {
            try builder.packet(0, time, data, original: original, direction)
            time += 1_000_000
        }
        for vector in vectors {
            let line = try #require([UInt8](hexadecimal: vector.line))
            try add(Array(line.dropFirst().dropLast()), vector.direction == "request" ? .outbound : .inbound)
        }
        // SPEC §3.6 example 1 with the last byte of its check damaged.
        let ping = hex("02 01 03 02 01 01 01 02 08 0d 88 77 66 55 44 33 22 11 60 d8 b8 7b")
        try add(Array(ping.dropLast()) + [0x7A], .outbound)
        try add(Array("hello".utf8), .inbound)
        var rng = SeededGenerator(seed: 8)
        try add(randomBytes(2048, nonZero: true, using: &rng), original: 3000, .inbound)
        try add(Array(ping.prefix(10)), original: ping.count, .outbound)
        var encoder = FrameEncoder()
        var unknown: [UInt8] = []
        try encoder.encode(messageType: 99, response: true, requestID: 5, payload: [1, 2, 3], into: &unknown)
        try add(Array(unknown.dropFirst().dropLast()), .inbound)
        var errorRequest: [UInt8] = []
        try encoder.encode(messageType: 127, response: false, requestID: 6, payload: [], into: &errorRequest)
        try add(Array(errorRequest.dropFirst().dropLast()), .outbound)
        try add([], .inbound)
        try add(ping + [0] + ping, .outbound)  // two candidates in one packet (another tool's capture)

        let capture = try Capture(pcapng: builder.bytes)
        let decoded = capture.decoded()
        #expect(decoded.records.count == vectors.count + 9)
        #expect(!decoded.truncatedTail)

        for (vector, record) in zip(vectors, decoded.records) {
            guard case .frame(let frame) = record.outcome else {
                Issue.record("\(vector.name): \(record.outcome)")
                continue
            }
            #expect(frame.header.flags.rawValue == vector.flags, "\(vector.name)")
            #expect(frame.header.messageType == vector.messageType, "\(vector.name)")
            #expect(frame.header.requestID == vector.requestId, "\(vector.name)")
            #expect(frame.header.payloadLength == vector.payloadLength, "\(vector.name)")
            #expect((try? frame.message.get()) != nil, "\(vector.name)")
            #expect(record.interfaceDescription == "pump 1")
            #expect(record.direction == (vector.direction == "request" ? .outbound : .inbound))
        }
        let rest = Array(decoded.records.dropFirst(vectors.count))
        #expect(rest[0].outcome == .discarded(.checkFailed(received: 0x7AB8_D860, computed: 0x7BB8_D860)))
        #expect(rest[1].outcome == .discarded(.truncated(length: 4)))
        #expect(rest[2].outcome == .discarded(.oversize))
        #expect(rest[3].outcome == .notFullyCaptured)
        guard case .frame(let unknownFrame) = rest[4].outcome else {
            Issue.record("unknown type: \(rest[4].outcome)")
            return
        }
        #expect(unknownFrame.message == .failure(.unknownMessageType(99)))
        guard case .frame(let errorFrame) = rest[5].outcome else {
            Issue.record("Error request: \(rest[5].outcome)")
            return
        }
        #expect(errorFrame.message == .failure(.payload(type: .error, .noSuchDirection(type: .error, isResponse: false))))
        #expect(rest[6].outcome == .empty)
        #expect(rest[7].packetNumber == rest[8].packetNumber)
        #expect(rest[7].packetNumber == vectors.count + 8)
        #expect(rest[7].outcome == rest[8].outcome)
        if case .frame(let frame) = rest[7].outcome {
            #expect(frame.message == .success(.pingRequest(PingRequest(echo: 0x1122_3344_5566_7788))))
        } else {
            Issue.record("two frames: \(rest[7].outcome)")
        }

        // JSON: fields rendered as the vectors render them.
        let json = try JSON.parse(decoded.json())
        #expect(json["truncatedTail"] == .bool(false))
        #expect(json["interfaces"]?[0]?["name"] == .string("/dev/pts/4"))
        for (index, vector) in vectors.enumerated() {
            let record = json["records"]?[index]
            #expect(record?["outcome"] == .string("frame"), "\(vector.name)")
            #expect(record?["frame"]?["fields"] == vector.fields, "\(vector.name)")
            #expect(record?["frame"]?["requestId"] == .number(Int64(vector.requestId)), "\(vector.name)")
            #expect(record?["bytes"] == .string(String(vector.line.dropFirst(2).dropLast(2))), "\(vector.name)")
        }
        let bad = json["records"]?[vectors.count]
        #expect(bad?["outcome"] == .string("discarded"))
        #expect(bad?["error"] == .object(["error": .string("checkFailed"), "received": .number(0x7AB8_D860), "computed": .number(0x7BB8_D860)]))
        #expect(bad?["direction"] == .string("outbound"))
        #expect(bad?["time"] == .string("2025-03-14T09:26:51.\(420_123_456 + vectors.count * 1_000_000)Z"))
        #expect(json["records"]?[vectors.count + 4]?["frame"]?["messageError"] == .object(["error": .string("unknownMessageType"), "messageType": .number(99)]))
        #expect(json["records"]?[vectors.count + 3]?["outcome"] == .string("notFullyCaptured"))
        #expect(json["records"]?[vectors.count + 3]?["originalLength"] == .number(Int64(ping.count)))

        // Text: one line per record.
        let text = decoded.text()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == decoded.records.count)
        #expect(lines[vectors.count + 7] == "2025-03-14 09:26:51.\(420_123_456 + (vectors.count + 7) * 1_000_000)Z → pump 1  #1 Ping request  echo=1234605616436508552")
        #expect(lines[vectors.count].hasSuffix("→ pump 1  discarded: check failed (received 0x7ab8d860, computed 0x7bb8d860) (22 bytes)"))
        #expect(lines[vectors.count + 1].hasSuffix("← pump 1  discarded: truncated after 4 bytes (5 bytes)"))
        #expect(lines[vectors.count + 4].hasSuffix("← pump 1  #5 type 99 response  unknown message type, 3-byte payload"))
        for line in lines.prefix(vectors.count) {
            #expect(line.contains(" request") || line.contains(" response"))
        }
    }

    @Test("the text of a file cut short says so")
    func truncatedText() throws {
        var builder = CaptureBuilder()
        builder.section()
        builder.interface("/dev/pts/1", nil)
        try builder.packet(0, 0, hex("02 01 03 02 01 01 01 02 08 0d 88 77 66 55 44 33 22 11 60 d8 b8 7b"), .inbound)
        let decoded = try Capture(pcapng: Array(builder.bytes.dropLast(3))).decoded()
        #expect(decoded.records.isEmpty)
        #expect(decoded.truncatedTail)
        #expect(decoded.text().contains("ends inside a block"))
        #expect(try JSON.parse(decoded.json(prettyPrinted: false))["truncatedTail"] == .bool(true))
    }

    @Test(
        "times as UTC calendar dates",
        arguments: [
            (0, "1970-01-01T00:00:00.000000000Z"),
            (1_741_944_411_420_123_456, "2025-03-14T09:26:51.420123456Z"),
            (1_709_164_800_000_000_001, "2024-02-29T00:00:00.000000001Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000000Z"),
            (UInt64.max, "2554-07-21T23:34:33.709551615Z"),
        ] as [(UInt64, String)])
    func times(nanoseconds: UInt64, text: String) {
        #expect(CaptureTime.text(nanoseconds: nanoseconds) == text)
    }

    @Test("calendar dates agree with gmtime")
    func timesAgreeWithGmtime() {
        var rng = SeededGenerator(seed: 12)
        for _ in 0..<2000 {
            var seconds = time_t(Int64.random(in: 0..<(1 << 34), using: &rng))
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let expected =
                String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
            #expect(CaptureTime.text(nanoseconds: UInt64(seconds) * 1_000_000_000).hasPrefix(expected))
        }
    }
}
