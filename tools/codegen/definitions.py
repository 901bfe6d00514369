"""Loads protocol/messages.json and gives the generators a typed view of it.

Shared by the Swift generator, the SPEC table generator, the dissector generator and the
vector generator, so that each reads the definitions the same way.
"""
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "protocol" / "messages.json"

INT_TYPES = {
    "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
    "i16": (2, True),
}


def load():
    data = json.loads(DEFINITIONS.read_bytes())
    data["fingerprints"] = {message["type"]: fingerprint(data, message) for message in data["messages"]}
    data["hash"] = definitions_hash(data["fingerprints"])
    return data


def wire_form(data, message):
    """What of a message is on the wire (SPEC §1.3), as canonical JSON: its type number,
    authentication and each direction's fields in order (name, type, range, length, maximum),
    with enumerations and structures written out in place; never the documentation."""
    def field(f):
        out = {k: v for k, v in f.items() if k not in ("doc", "enum", "struct", "of")}
        if "enum" in f:
            enum = data["enums"][f["enum"]]
            out["enum"] = {"name": f["enum"], "type": enum["type"],
                           "values": [[v["name"], v["value"]] for v in enum["values"]]}
        for key in ("struct", "of"):
            if key in f:
                out[key] = {"name": f[key], "fields": [field(g) for g in data["structs"][f[key]]["fields"]]}
        return out
    form = {"type": message["type"], "name": message["name"], "auth": message["auth"]}
    for direction in ("request", "response"):
        if direction in message:
            form[direction] = [field(f) for f in message[direction]]
    return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(data, message):
    """The first 4 bytes of SHA-256 of the message's wire form, as a little-endian u32."""
    return int.from_bytes(hashlib.sha256(wire_form(data, message).encode()).digest()[:4], "little")


def definitions_hash(fingerprints):
    """The first 8 bytes of SHA-256 over every (type u8, fingerprint u32 LE), in type order."""
    body = b"".join(bytes([t]) + fingerprints[t].to_bytes(4, "little") for t in sorted(fingerprints))
    return hashlib.sha256(body).digest()[:8]


def int_bounds(type_name):
    size, signed = INT_TYPES[type_name]
    if signed:
        return -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    return 0, (1 << (8 * size)) - 1


def field_range(field):
    """The inclusive range a field's integer must be in (its type's range if none is stated)."""
    lo, hi = int_bounds(field["type"])
    if "range" in field:
        lo, hi = field["range"]
    return lo, hi


def lower_camel(name):
    return name[0].lower() + name[1:]


def payloads(data):
    """(message, direction, fields) for every request and response form."""
    for message in data["messages"]:
        for direction in ("request", "response"):
            if direction in message:
                yield message, direction, message[direction]


def payload_struct_name(message, direction):
    return message["name"] + ("Request" if direction == "request" else "Response")


def write_or_check(output, text, argv):
    """Writes a generated file, or with --check reports (exit status 1) that it is out of date."""
    if "--check" in argv:
        current = output.read_text() if output.exists() else ""
        if current != text:
            print("%s is out of date: run python3 tools/codegen/generate.py" % output.relative_to(ROOT))
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return 0
