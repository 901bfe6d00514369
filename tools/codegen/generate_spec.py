#!/usr/bin/env python3
"""Renders the generated parts of protocol/SPEC.md from protocol/messages.json.

Each generated part sits between a pair of marker comments in SPEC.md:

    <!-- generated:KIND begin -->
    ...
    <!-- generated:KIND end -->

KIND is one of: types, hash, index, message:NAME, struct:NAME, enum:NAME, example.
Everything outside the markers is hand-written and left alone. Every message, struct and enum
of the definitions must have its marker pair somewhere in SPEC.md.

Usage: generate_spec.py [--check]   (--check: exit 1 if SPEC.md's generated parts are out of date)
"""
import hashlib
import hmac
import re
import sys

from definitions import ROOT, load, INT_TYPES

SPEC = ROOT / "protocol" / "SPEC.md"

MARKER = re.compile(r"<!-- generated:(\S+) begin -->\n(.*?)<!-- generated:\1 end -->", re.DOTALL)


# Sizes ---------------------------------------------------------------------------------------

def field_size(field, data):
    """(smallest, largest) encoded size of a field in bytes."""
    t = field["type"]
    if t in INT_TYPES:
        size = INT_TYPES[t][0]
        return size, size
    if t == "enum":
        size = INT_TYPES[data["enums"][field["enum"]]["type"]][0]
        return size, size
    if t == "bytes":
        return field["length"], field["length"]
    if t == "string":
        return 1, 1 + field["max"]
    if t == "blob":
        return 2, 2 + field["max"]
    if t == "array":
        _, element_max = fields_size(data["structs"][field["of"]]["fields"], data)
        return 1, 1 + field["max"] * element_max
    if t == "struct":
        return fields_size(data["structs"][field["struct"]]["fields"], data)
    raise ValueError(t)


def fields_size(fields, data):
    low = high = 0
    for field in fields:
        a, b = field_size(field, data)
        low += a
        high += b
    return low, high


def size_text(low, high):
    return "%d bytes" % low if low == high else "%d to %d bytes" % (low, high)


# Columns -------------------------------------------------------------------------------------

UNIT_SUFFIXES = [
    ("MicrogramsPerMilliliter", "µg/mL"),
    ("MicrogramsPerDay", "µg/day"),
    ("MicrolitersPerDay", "µL/day"),
    ("Microliters", "µL"),
    ("Micrograms", "µg"),
    ("Millivolts", "mV"),
    ("Percent", "%"),
    ("Seconds", "s"),
    ("Minutes", "min"),
    ("Minute", "minute of the local day"),
    ("Days", "days"),
    ("Bytes", "bytes"),
    ("Frames", "frames"),
    ("Length", "bytes"),
    ("PerDay", "per 24 h"),
]


def unit(name):
    """The unit a field's name states (SPEC §1.3)."""
    if name == "timeMs" or name.endswith("TimeMs") or name.endswith("AtMs"):
        return "ms since the epoch"
    if name.endswith("Ms"):
        return "ms"
    if "Days" in name:
        return "days"
    for suffix, text in UNIT_SUFFIXES:
        if name.endswith(suffix) or name == suffix[0].lower() + suffix[1:]:
            return text
    if name == "offset":
        return "bytes"
    return ""


def type_text(field, data):
    t = field["type"]
    if t == "enum":
        return "%s enum %s" % (data["enums"][field["enum"]]["type"], field["enum"])
    if t == "struct":
        return "struct %s" % field["struct"]
    if t == "array":
        return "array of %s" % field["of"]
    if t == "bytes":
        return "bytes[%d]" % field["length"]
    return t


def range_text(field):
    t = field["type"]
    if t in INT_TYPES:
        if "range" in field:
            return "%d to %d" % tuple(field["range"])
        return "any"
    if t == "enum":
        return "listed values"
    if t == "bytes":
        return "exactly %d bytes" % field["length"]
    if t in ("string", "blob"):
        return "at most %d bytes" % field["max"]
    if t == "array":
        return "at most %d elements" % field["max"]
    return ""


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def field_table(fields, data):
    rows = [
        "| Offset | Field | Type | Unit | Range | Description |",
        "|---:|---|---|---|---|---|",
    ]
    offset = 0
    for field in fields:
        low, high = field_size(field, data)
        shown = str(offset) if offset is not None else "–"
        offset = offset + low if offset is not None and low == high else None
        description = field.get("doc", "")
        if field["type"] == "enum":
            description = (description + " " if description else "") + "(see %s)" % field["enum"]
        rows.append("| %s | `%s` | %s | %s | %s | %s |" % (
            shown, field["name"], type_text(field, data), unit(field["name"]) or "–",
            range_text(field), cell(description) or "–"))
    return "\n".join(rows)


# Sections ------------------------------------------------------------------------------------

def render_types(data):
    rows = ["| Type | Encoding |", "|---|---|"]
    for name, text in data["types"].items():
        rows.append("| `%s` | %s |" % (name, cell(text)))
    return "\n".join(rows)


def render_hash(data):
    rows = ["For the messages.json these tables were generated from, `definitionsHash` is "
            "`%s` (hexadecimal, in wire order), from these fingerprints:" % data["hash"].hex(), "",
            "| Type | Message | Fingerprint |", "|---:|---|---|"]
    for message in sorted(data["messages"], key=lambda m: m["type"]):
        rows.append("| %d | %s | `0x%08x` |" % (message["type"], message["name"], data["fingerprints"][message["type"]]))
    return "\n".join(rows)


def render_index(data):
    rows = [
        "| Type | Message | Request auth | Request size | Response size |",
        "|---:|---|---|---|---|",
    ]
    for m in data["messages"]:
        req = size_text(*fields_size(m["request"], data)) if "request" in m else "no request"
        res = size_text(*fields_size(m["response"], data)) if "response" in m else "no response"
        rows.append("| %d (0x%02X) | %s | %s | %s | %s |" % (m["type"], m["type"], m["name"], m["auth"], req, res))
    return "\n".join(rows)


def render_message(data, name):
    message = next((m for m in data["messages"] if m["name"] == name), None)
    if message is None:
        raise KeyError("message " + name)
    out = ["Message type **%d** (0x%02X). Request authentication: **%s**." % (
        message["type"], message["type"], message["auth"])]
    for direction in ("request", "response"):
        title = direction.capitalize()
        if direction not in message:
            out.append("")
            out.append("%s: none (this message type has no %s form)." % (title, direction))
            continue
        fields = message[direction]
        size = size_text(*fields_size(fields, data))
        out.append("")
        if not fields:
            out.append("%s payload: empty (0 bytes)." % title)
            continue
        out.append("%s payload (%s):" % (title, size))
        out.append("")
        out.append(field_table(fields, data))
    return "\n".join(out)


def render_struct(data, name):
    struct = data["structs"][name]
    out = []
    if struct.get("doc"):
        out.append(struct["doc"])
        out.append("")
    out.append("Struct **%s**, encoded size %s:" % (name, size_text(*fields_size(struct["fields"], data))))
    out.append("")
    out.append(field_table(struct["fields"], data))
    return "\n".join(out)


def render_enum(data, name):
    enum = data["enums"][name]
    out = []
    if enum.get("doc"):
        out.append(enum["doc"])
        out.append("")
    out.append("Enum **%s**, encoded as `%s`:" % (name, enum["type"]))
    out.append("")
    mask = name == "AlarmCode"
    if mask:
        out.append("| Value | Name | Mask bit | Meaning |")
        out.append("|---:|---|---|---|")
    else:
        out.append("| Value | Name | Meaning |")
        out.append("|---:|---|---|")
    for value in enum["values"]:
        doc = cell(value.get("doc", "")) or "–"
        if mask:
            out.append("| %d | `%s` | `0x%08X` | %s |" % (value["value"], value["name"], 1 << value["value"], doc))
        else:
            out.append("| %d | `%s` | %s |" % (value["value"], value["name"], doc))
    return "\n".join(out)


# Worked examples -----------------------------------------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def cobs(data):
    out = bytearray([0])
    code_index, code = 0, 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index, code = len(out), 1
            out.append(0)
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_index] = code
                code_index, code = len(out), 1
                out.append(0)
    out[code_index] = code
    return bytes(out)


def hexs(data):
    return " ".join("%02x" % b for b in data)


def message_type(data, name):
    return next(m["type"] for m in data["messages"] if m["name"] == name)


def frame(flags, type_, request_id, payload, tag_key=None):
    packet = bytes([1, flags, type_]) + request_id.to_bytes(4, "little") + len(payload).to_bytes(2, "little") + payload
    tag = b""
    if tag_key is not None:
        key, nonces = tag_key
        tag = hmac.new(key, b"PumpLink/1" + nonces + packet, hashlib.sha256).digest()[:16]
    body = packet + tag
    check = crc32c(body)
    full = body + check.to_bytes(4, "little")
    return packet, tag, check, full, b"\x00" + cobs(full) + b"\x00"


def render_example(data):
    assert crc32c(b"123456789") == 0xE3069283
    out = []
    ping = message_type(data, "Ping")
    payload = (0x1122334455667788).to_bytes(8, "little")
    packet, _, check, full, line = frame(0x00, ping, 1, payload)
    out += [
        "**Example 1: an unauthenticated Ping request**, request id 1, `echo` = 0x1122334455667788.",
        "",
        "```text",
        "header   %s" % hexs(packet[:9]),
        "         version 1, flags 0x00, type %d, requestId 1, payloadLength %d" % (ping, len(payload)),
        "payload  %s" % hexs(payload),
        "check    %s          CRC-32C = 0x%08X, little-endian" % (hexs(check.to_bytes(4, "little")), check),
        "packet   %s" % hexs(full),
        "line     %s" % hexs(line),
        "```",
        "",
    ]
    key = bytes(range(32))
    host_nonce = bytes(range(0x10, 0x18))
    pump_nonce = bytes(range(0xA0, 0xA8))
    suspend = message_type(data, "Suspend")
    packet, tag, check, full, line = frame(0x02, suspend, 42, b"", (key, host_nonce + pump_nonce))
    out += [
        "**Example 2: an authenticated Suspend request** (empty payload), request id 42, pairing key "
        "00 01 02 ... 1f, hostNonce 10 11 ... 17, pumpNonce a0 a1 ... a7.",
        "",
        "```text",
        "header   %s" % hexs(packet),
        "         version 1, flags 0x02 (authenticated), type %d, requestId 42, payloadLength 0" % suspend,
        "HMAC in  %s" % hexs(b"PumpLink/1" + host_nonce + pump_nonce + packet),
        "         \"PumpLink/1\" || hostNonce || pumpNonce || header || payload",
        "tag      %s" % hexs(tag),
        "         first 16 bytes of HMAC-SHA256(key, HMAC in)",
        "check    %s          CRC-32C over header, payload and tag = 0x%08X" % (hexs(check.to_bytes(4, "little")), check),
        "line     %s" % hexs(line),
        "```",
    ]
    return "\n".join(out)


# Driver --------------------------------------------------------------------------------------

def render(data, kind):
    if kind == "types":
        return render_types(data)
    if kind == "hash":
        return render_hash(data)
    if kind == "index":
        return render_index(data)
    if kind == "example":
        return render_example(data)
    category, _, name = kind.partition(":")
    if category == "message":
        return render_message(data, name)
    if category == "struct":
        if name not in data["structs"]:
            raise KeyError("struct " + name)
        return render_struct(data, name)
    if category == "enum":
        if name not in data["enums"]:
            raise KeyError("enum " + name)
        return render_enum(data, name)
    raise KeyError(kind)


def required_markers(data):
    kinds = ["types", "hash", "index"]
    kinds += ["message:" + m["name"] for m in data["messages"]]
    kinds += ["struct:" + name for name in data["structs"]]
    kinds += ["enum:" + name for name in data["enums"]]
    return kinds


def main():
    check = "--check" in sys.argv
    data = load()
    text = SPEC.read_text()
    problems = []
    stale = []

    def replace(match):
        kind = match.group(1)
        try:
            body = render(data, kind)
        except KeyError as error:
            problems.append("marker generated:%s names nothing in messages.json (%s)" % (kind, error))
            return match.group(0)
        inner = "\n" + body + "\n\n"
        if match.group(2) != inner:
            stale.append(kind)
        return "<!-- generated:%s begin -->\n%s<!-- generated:%s end -->" % (kind, inner, kind)

    new_text = MARKER.sub(replace, text)
    present = {m.group(1) for m in MARKER.finditer(text)}
    for kind in required_markers(data):
        if kind not in present:
            problems.append("SPEC.md has no generated:%s section: add its marker pair where it belongs" % kind)

    name = SPEC.relative_to(ROOT)
    if check:
        for kind in stale:
            print("%s: generated:%s is out of date: run python3 tools/codegen/generate.py" % (name, kind))
    elif new_text != text:
        SPEC.write_text(new_text)
    for problem in problems:
        print("%s: %s" % (name, problem))
    return 1 if problems or (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
