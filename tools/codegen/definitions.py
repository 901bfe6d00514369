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
    raw = DEFINITIONS.read_bytes()
    data = json.loads(raw)
    data["hash"] = hashlib.sha256(raw).digest()[:8]
    return data


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
