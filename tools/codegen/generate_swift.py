#!/usr/bin/env python3
"""Generates Sources/PumpProtocol/Generated/Messages.swift from protocol/messages.json.

Usage: generate_swift.py [--check]   (--check: exit 1 if the committed file is out of date)
"""
import sys

from definitions import ROOT, load, field_range, int_bounds, payloads, payload_struct_name, lower_camel, write_or_check

OUTPUT = ROOT / "Sources" / "PumpProtocol" / "Generated" / "Messages.swift"

SWIFT_INT = {"u8": "UInt8", "u16": "UInt16", "u32": "UInt32", "u64": "UInt64", "i16": "Int16"}
READ_INT = {"u8": "readU8", "u16": "readU16", "u32": "readU32", "u64": "readU64", "i16": "readI16"}


def swift_type(field):
    t = field["type"]
    if t in SWIFT_INT:
        return SWIFT_INT[t]
    if t == "enum":
        return field["enum"]
    if t == "struct":
        return field["struct"]
    if t == "array":
        return "[%s]" % field["of"]
    if t == "string":
        return "String"
    if t in ("bytes", "blob"):
        return "[UInt8]"
    raise ValueError(t)


def doc_lines(text, indent):
    return ["%s/// %s" % (indent, line) for line in text.split("\n")] if text else []


def field_doc(field):
    parts = []
    if field.get("doc"):
        parts.append(field["doc"].rstrip(".") + ".")
    if "range" in field:
        parts.append("Range %d...%d." % tuple(field["range"]))
    return " ".join(parts)


def gen_struct(name, doc, fields, out, conformance="WireCodable", extra_static=None):
    out += doc_lines(doc, "")
    out.append("public struct %s: Sendable, Hashable, Codable {" % name)
    for f in fields:
        out += doc_lines(field_doc(f), "    ")
        out.append("    public var %s: %s" % (f["name"], swift_type(f)))
    if fields:
        out.append("")
    params = ", ".join("%s: %s" % (f["name"], swift_type(f)) for f in fields)
    out.append("    public init(%s) {" % params)
    for f in fields:
        out.append("        self.%s = %s" % (f["name"], f["name"]))
    out.append("    }")
    out.append("}")
    out.append("")
    out.append("extension %s: %s {" % (name, conformance))
    for line in extra_static or []:
        out.append("    " + line)
    # validate
    out.append("    public func validate() throws(WireError) {")
    for f in fields:
        label = "%s.%s" % (name, f["name"])
        t = f["type"]
        v = f["name"]
        if t in SWIFT_INT and "range" in f:
            lo, hi = field_range(f)
            tlo, thi = int_bounds(t)
            conds = []
            if lo > tlo:
                conds.append("%s >= %d" % (v, lo))
            if hi < thi:
                conds.append("%s <= %d" % (v, hi))
            if conds:
                out.append('        guard %s else { throw .outOfRange(field: "%s", value: Int64(%s)) }'
                           % (" && ".join(conds), label, v))
        elif t == "string":
            out.append('        guard %s.utf8.count <= %d else { throw .tooLong(field: "%s", count: %s.utf8.count, max: %d) }'
                       % (v, f["max"], label, v, f["max"]))
        elif t == "blob":
            out.append('        guard %s.count <= %d else { throw .tooLong(field: "%s", count: %s.count, max: %d) }'
                       % (v, f["max"], label, v, f["max"]))
        elif t == "bytes":
            out.append('        guard %s.count == %d else { throw .wrongLength(field: "%s", count: %s.count, expected: %d) }'
                       % (v, f["length"], label, v, f["length"]))
        elif t == "array":
            out.append('        guard %s.count <= %d else { throw .tooLong(field: "%s", count: %s.count, max: %d) }'
                       % (v, f["max"], label, v, f["max"]))
            out.append("        for element in %s { try element.validate() }" % v)
        elif t == "struct":
            out.append("        try %s.validate()" % v)
    out.append("    }")
    out.append("")
    # encode
    out.append("    public func encode(into writer: inout WireWriter) {")
    for f in fields:
        t = f["type"]
        v = f["name"]
        if t in SWIFT_INT:
            out.append("        writer.write(%s)" % v)
        elif t == "enum":
            out.append("        writer.write(%s.rawValue)" % v)
        elif t == "struct":
            out.append("        %s.encode(into: &writer)" % v)
        elif t == "array":
            out.append("        writer.writeCount(%s.count)" % v)
            out.append("        for element in %s { element.encode(into: &writer) }" % v)
        elif t == "string":
            out.append("        writer.writeString(%s)" % v)
        elif t == "blob":
            out.append("        writer.writeBlob(%s)" % v)
        elif t == "bytes":
            out.append("        writer.writeBytes(%s)" % v)
    out.append("    }")
    out.append("")
    # decode
    out.append("    public init(from reader: inout WireReader) throws(WireError) {")
    for f in fields:
        t = f["type"]
        v = f["name"]
        label = "%s.%s" % (name, v)
        if t in SWIFT_INT:
            out.append("        let %s = try reader.%s()" % (v, READ_INT[t]))
            if "range" in f:
                lo, hi = field_range(f)
                tlo, thi = int_bounds(t)
                conds = []
                if lo > tlo:
                    conds.append("%s >= %d" % (v, lo))
                if hi < thi:
                    conds.append("%s <= %d" % (v, hi))
                if conds:
                    out.append('        guard %s else { throw .outOfRange(field: "%s", value: Int64(%s)) }'
                               % (" && ".join(conds), label, v))
        elif t == "enum":
            enum = ENUMS[f["enum"]]
            raw = "raw" + v[0].upper() + v[1:]
            out.append("        let %s = try reader.%s()" % (raw, READ_INT[enum["type"]]))
            out.append('        guard let %s = %s(rawValue: %s) else { throw .invalidEnum(field: "%s", value: UInt64(%s)) }'
                       % (v, f["enum"], raw, label, raw))
        elif t == "struct":
            out.append("        let %s = try %s(from: &reader)" % (v, f["struct"]))
        elif t == "array":
            out.append('        let %sCount = try reader.readCount(max: %d, field: "%s")' % (v, f["max"], label))
            out.append("        var %s: [%s] = []" % (v, f["of"]))
            out.append("        %s.reserveCapacity(%sCount)" % (v, v))
            out.append("        for _ in 0..<%sCount { %s.append(try %s(from: &reader)) }" % (v, v, f["of"]))
        elif t == "string":
            out.append('        let %s = try reader.readString(max: %d, field: "%s")' % (v, f["max"], label))
        elif t == "blob":
            out.append('        let %s = try reader.readBlob(max: %d, field: "%s")' % (v, f["max"], label))
        elif t == "bytes":
            out.append("        let %s = try reader.readBytes(count: %d)" % (v, f["length"]))
    out.append("        self.init(%s)" % ", ".join("%s: %s" % (f["name"], f["name"]) for f in fields))
    out.append("    }")
    out.append("")
    # wireValue
    out.append("    public var wireValue: WireValue {")
    if not fields:
        out.append("        .record([])")
    else:
        out.append("        .record([")
        for f in fields:
            t = f["type"]
            v = f["name"]
            if t in ("u8", "u16", "u32", "u64"):
                value = ".unsigned(UInt64(%s))" % v
            elif t == "i16":
                value = ".signed(Int64(%s))" % v
            elif t == "enum":
                value = ".enumeration(%s.name)" % v
            elif t == "struct":
                value = "%s.wireValue" % v
            elif t == "array":
                value = ".list(%s.map(\\.wireValue))" % v
            elif t == "string":
                value = ".string(%s)" % v
            else:
                value = ".bytes(%s)" % v
            out.append('            WireField("%s", %s),' % (v, value))
        out.append("        ])")
    out.append("    }")
    out.append("}")
    out.append("")


def gen_enum(name, enum, out):
    out += doc_lines(enum.get("doc", ""), "")
    out.append("public enum %s: %s, Sendable, Hashable, CaseIterable, Codable {" % (name, SWIFT_INT[enum["type"]]))
    for value in enum["values"]:
        out += doc_lines(value.get("doc", ""), "    ")
        out.append("    case %s = %d" % (value["name"], value["value"]))
    out.append("")
    out.append("    /// The name used in the definitions, the vectors and the JSON API.")
    out.append("    public var name: String {")
    out.append("        switch self {")
    for value in enum["values"]:
        out.append('        case .%s: "%s"' % (value["name"], value["name"]))
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The case with this name, as in the definitions.")
    out.append("    public init?(name: String) {")
    out.append("        switch name {")
    for value in enum["values"]:
        out.append('        case "%s": self = .%s' % (value["name"], value["name"]))
    out.append("        default: return nil")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// JSON carries the name.")
    out.append("    public init(from decoder: any Decoder) throws {")
    out.append("        let container = try decoder.singleValueContainer()")
    out.append("        let name = try container.decode(String.self)")
    out.append("        guard let value = Self(name: name) else {")
    out.append('            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown %s \\(name)")' % name)
    out.append("        }")
    out.append("        self = value")
    out.append("    }")
    out.append("")
    out.append("    public func encode(to encoder: any Encoder) throws {")
    out.append("        var container = encoder.singleValueContainer()")
    out.append("        try container.encode(name)")
    out.append("    }")
    out.append("}")
    out.append("")


def generate(data):
    global ENUMS
    ENUMS = data["enums"]
    out = [
        "// Generated by tools/codegen/generate_swift.py from protocol/messages.json. Do not edit.",
        "// Regenerate: python3 tools/codegen/generate.py",
        "",
        "/// Facts about the message definitions this codec was generated from.",
        "public enum ProtocolDefinitions {",
        "    /// The protocol version these definitions describe.",
        "    public static let version: UInt8 = %d" % data["version"],
        "    /// The first 8 bytes of SHA-256 of every message's fingerprint, exchanged in Hello (SPEC §1.3, §5.4).",
        "    public static let hash: [UInt8] = [%s]" % ", ".join("0x%02x" % b for b in data["hash"]),
        "}",
        "",
    ]
    for name, enum in data["enums"].items():
        gen_enum(name, enum, out)
    for name, struct in data["structs"].items():
        gen_struct(name, struct.get("doc", ""), struct["fields"], out)

    # Message types.
    messages = data["messages"]
    out.append("/// The message types of the protocol (SPEC §6).")
    out.append("public enum MessageType: UInt8, Sendable, Hashable, CaseIterable {")
    for m in messages:
        out += doc_lines(m.get("doc", ""), "    ")
        out.append("    case %s = %d" % (lower_camel(m["name"]), m["type"]))
    out.append("")
    out.append("    /// The name used in the definitions.")
    out.append("    public var name: String {")
    out.append("        switch self {")
    for m in messages:
        out.append('        case .%s: "%s"' % (lower_camel(m["name"]), m["name"]))
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The request's field names in order: an Error `invalidArgument` names a field by its index (SPEC §6.2).")
    out.append("    public var requestFieldNames: [String] {")
    out.append("        switch self {")
    for m in messages:
        names = ", ".join('"%s"' % f["name"] for f in m.get("request", []))
        out.append("        case .%s: [%s]" % (lower_camel(m["name"]), names))
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The first 4 bytes of SHA-256 of the message's wire form (SPEC §1.3): a change to the")
    out.append("    /// message's fields, their types, ranges, enumerations or structures changes it; its")
    out.append("    /// documentation does not.")
    out.append("    public var fingerprint: UInt32 {")
    out.append("        switch self {")
    for m in messages:
        out.append("        case .%s: 0x%08x" % (lower_camel(m["name"]), data["fingerprints"][m["type"]]))
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// Whether a request of this type changes the pump and so must be authenticated (SPEC §8).")
    out.append("    public var requiresAuthentication: Bool {")
    out.append("        switch self {")
    required = [lower_camel(m["name"]) for m in messages if m["auth"] == "required"]
    other = [lower_camel(m["name"]) for m in messages if m["auth"] != "required"]
    out.append("        case %s: true" % ", ".join("." + n for n in required))
    out.append("        case %s: false" % ", ".join("." + n for n in other))
    out.append("        }")
    out.append("    }")
    out.append("}")
    out.append("")

    for message, direction, fields in payloads(data):
        name = payload_struct_name(message, direction)
        doc = "%s %s. %s" % (message["name"], direction, message.get("doc", ""))
        gen_struct(name, doc.strip(), fields, out, conformance="MessagePayload", extra_static=[
            "public static let messageType: MessageType = .%s" % lower_camel(message["name"]),
            "public static let isResponse = %s" % ("true" if direction == "response" else "false"),
            "",
        ])

    # The Message enum.
    cases = [(lower_camel(payload_struct_name(m, d)), payload_struct_name(m, d), m, d) for m, d, _ in payloads(data)]
    out.append("/// Any message of the protocol, decoded from a frame's type, direction and payload.")
    out.append("public enum Message: Sendable, Hashable {")
    for case, struct, _, _ in cases:
        out.append("    case %s(%s)" % (case, struct))
    out.append("")
    out.append("    /// Decodes a payload of the given type and direction.")
    out.append("    public init(type: MessageType, isResponse: Bool, payload: ArraySlice<UInt8>) throws(WireError) {")
    out.append("        switch (type, isResponse) {")
    for case, struct, m, d in cases:
        out.append("        case (.%s, %s): self = .%s(try %s(payload: payload))"
                   % (lower_camel(m["name"]), "true" if d == "response" else "false", case, struct))
    for m in messages:
        for d in ("request", "response"):
            if d not in m:
                out.append("        case (.%s, %s): throw .noSuchDirection(type: .%s, isResponse: %s)"
                           % (lower_camel(m["name"]), "true" if d == "response" else "false",
                              lower_camel(m["name"]), "true" if d == "response" else "false"))
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The payload inside, as its protocol type.")
    out.append("    public var payload: any MessagePayload {")
    out.append("        switch self {")
    for case, _, _, _ in cases:
        out.append("        case .%s(let payload): payload" % case)
    out.append("        }")
    out.append("    }")
    out.append("}")
    out.append("")
    return "\n".join(out)


def main():
    return write_or_check(OUTPUT, generate(load()), sys.argv)


if __name__ == "__main__":
    sys.exit(main())
