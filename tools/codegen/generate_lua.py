#!/usr/bin/env python3
"""Generates tools/wireshark/pumplink.lua, the Wireshark dissector, from protocol/messages.json.

Usage: generate_lua.py [--check]   (--check: exit 1 if the committed file is out of date)

The dissector is the hand-written runtime in templates/pumplink_runtime.lua (COBS, CRC-32C,
header, field readers, expert infos) with the tables below put in place of its
`--@DEFINITIONS@--` line: message types and their request and response fields, enumerations,
structures, ranges, units, bit masks and the few cross-references the definitions state in
words (Event.code per kind, Error.detail per code). Every name those tables use is checked
against the definitions here, so a renamed field fails generation instead of silently losing
its decoding.
"""
import re
import sys

from definitions import ROOT, load, int_bounds, payloads, payload_struct_name, write_or_check

HERE = ROOT / "tools" / "codegen"
TEMPLATE = HERE / "templates" / "pumplink_runtime.lua"
OUTPUT = ROOT / "tools" / "wireshark" / "pumplink.lua"
MARKER = "--@DEFINITIONS@--"

# Units stated by field names (SPEC §1.2), longest suffix first. Shown after the value, "12000 µL".
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
    ("Minute", "min"),
    ("Ms", "ms"),
    ("Bytes", "bytes"),
    ("Frames", "frames"),
    ("Length", "bytes"),
]

# Bit masks. The definitions say in words which bits a mask carries; these rules turn that into
# named bits. AlarmCode's values are its bit indices in the alarm masks (its doc says so); the
# weekday bits are in dayMask's doc; the capability bits are SPEC §5.3.
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
CAPABILITIES = [
    (0, "telemetryStreaming", "SetTelemetry and unsolicited Status (SPEC §5.10)"),
    (1, "windowedBulkTransfer", "more than one request in flight, up to receiveWindowFrames (SPEC §7.7)"),
    (2, "requestRecordQuery", "QueryRequest (SPEC §6.9, §7.6)"),
]

# Integer fields whose value names something else, as their docs say.
MESSAGE_TYPE_FIELDS = {"ErrorResponse.requestType", "QueryRequestResponse.responseType"}
ENUM_REFERENCES = {
    # owner.field: (enum, text for 0)
    "Status.bolusActive": ("BolusKind", "none"),
    "ProgramVerifyResponse.verdict": ("ErrorCode", "can be activated"),
}

# Blobs that carry a whole encoding of something the definitions describe.
EMBEDDED = {
    # ReadProgram's data is the encoded Program (SPEC §6.8); decoded when one answer holds it all.
    "ReadProgramResponse.data": {"struct": "Program", "when_offset": "offset", "when_total": "totalLength"},
    # QueryRequest's stored answer is a payload of responseType's response form (SPEC §6.9).
    "QueryRequestResponse.responsePayload": {"response_of": "responseType"},
}

# What Error.detail holds for each code (SPEC §13).
ERROR_DETAIL = {
    "staleRequestId": {"text": "the pump's lastExecutedRequestId"},
    "invalidArgument": {"request_field": True, "text": "index of the offending request field"},
    "programInvalid": {"text": "rule number of SPEC §9.5"},
    "checksumMismatch": {"hex": True, "text": "the CRC-32C the pump computed"},
    "stagingIncomplete": {"text": "bytes received"},
    "programIdMismatch": {"text": "the staged program's id"},
    "volumeExceedsCapacity": {"text": "reservoir capacity in µL"},
    "reservoirEmpty": {"text": "µL in the reservoir"},
    "therapyNotRunning": {"enum": "TherapyState"},
    "therapyNotSuspended": {"enum": "TherapyState"},
    "bolusInProgress": {"enum": "BolusKind"},
    "criticalAlarmActive": {"bits": "AlarmCode", "text": "alarmConditionMask & 0xFF"},
    "busy": {"text": "ms to wait before retrying (0: unspecified)"},
}

# Key values shown in the Info column, by form; other forms show their first few scalar fields.
SUMMARY = {
    "GetStatus.response": ["status.therapyState", "status.reservoirMicroliters", "status.alarmConditionMask"],
    "Error.response": ["code", "requestType", "detail"],
    "ReadProgram.response": ["slot", "programId", "offset", "totalLength"],
    "QueryRequest.response": ["requestId", "state", "responseType"],
}
SUMMARY_DEFAULT_COUNT = 3
SCALAR_TYPES = {"u8", "u16", "u32", "u64", "i16", "enum", "string", "array"}


def unit(name):
    for suffix, text in UNIT_SUFFIXES:
        if name.endswith(suffix) or name == suffix[0].lower() + suffix[1:]:
            return text
    if name == "offset":
        return "bytes"
    if "Days" in name:
        return "days"
    return None


def time_kind(name):
    if name == "timeMs" or name.endswith("TimeMs") or name.endswith("AtMs"):
        return "epoch_ms"
    if name == "utcOffsetMinutes":
        return "utc_offset"
    if name == "startMinute":
        return "minute_of_day"
    return None


def bits_of(field):
    name = field["name"]
    if field["type"] not in ("u8", "u16", "u32"):
        return None
    if name == "dayMask":
        return "Weekday"
    if name.startswith("alarm") and name.endswith("Mask"):
        return "AlarmCode"
    if name == "capabilities":
        return "Capability"
    return None


def bitsets(data):
    alarm = [(v["value"], v["name"], v.get("doc", "")) for v in data["enums"]["AlarmCode"]["values"]]
    return {
        "AlarmCode": {"prefix": "alarm", "bits": alarm},
        "Weekday": {"prefix": "day", "bits": [(i, d, "") for i, d in enumerate(WEEKDAYS)]},
        "Capability": {"prefix": "capability", "bits": CAPABILITIES},
    }


def event_code_enums(data):
    """EventKind value -> the enum its `code` holds, from the EventKind docs ("code AlarmCode; ...")."""
    found = {}
    for value in data["enums"]["EventKind"]["values"]:
        match = re.match(r"code (\w+)", value.get("doc", ""))
        if match and match.group(1) in data["enums"]:
            found[value["value"]] = match.group(1)
    return found


def field_entry(owner, field, data, bit_widths):
    t = field["type"]
    entry = {"name": field["name"], "type": t}
    path = "%s.%s" % (owner, field["name"])
    if field.get("doc"):
        entry["doc"] = field["doc"]
    if t == "enum":
        entry["enum"] = field["enum"]
        entry["int"] = data["enums"][field["enum"]]["type"]
    if t == "struct":
        entry["struct"] = field["struct"]
    if t == "array":
        entry["of"] = field["of"]
        if field["of"] not in data["structs"]:
            raise SystemExit("%s: arrays of %s are not supported by the dissector" % (path, field["of"]))
    if t in ("string", "blob", "array"):
        entry["max"] = field["max"]
    if t == "bytes":
        entry["length"] = field["length"]
    if "range" in field:
        lo, hi = field["range"]
        if t == "u64" and (lo, hi) != int_bounds("u64"):
            raise SystemExit("%s: ranges on u64 fields are not supported by the dissector" % path)
        if (lo, hi) != int_bounds(field["type"] if t != "enum" else entry["int"]):
            entry["range"] = [lo, hi]
    if t in ("u8", "u16", "u32", "u64", "i16"):
        text = unit(field["name"])
        if text:
            entry["unit"] = text
        kind = time_kind(field["name"])
        if kind:
            entry["time"] = kind
        bits = bits_of(field)
        if bits:
            entry["bits"] = bits
            width = {"u8": 8, "u16": 16, "u32": 32}[t]
            if bit_widths.setdefault(bits, width) != width:
                raise SystemExit("%s: bit set %s used at two widths" % (path, bits))
            entry.pop("unit", None)
        if "hecksum" in field["name"] or bits:
            entry["hex"] = True
        if path in MESSAGE_TYPE_FIELDS:
            entry["message_type"] = True
        if path in ENUM_REFERENCES:
            enum, zero = ENUM_REFERENCES[path]
            entry["refers"] = {"enum": enum, "zero": zero}
    if path in EMBEDDED:
        entry["embedded"] = EMBEDDED[path]
    if field["name"] == "definitionsHash":
        entry["definitions_hash"] = True
    return entry


def check_names(data):
    """Every name the hand-made tables above use must exist in the definitions."""
    owners = {name: [f["name"] for f in s["fields"]] for name, s in data["structs"].items()}
    for message, direction, fields in payloads(data):
        owners[payload_struct_name(message, direction)] = [f["name"] for f in fields]
    for path in list(MESSAGE_TYPE_FIELDS) + list(ENUM_REFERENCES) + list(EMBEDDED):
        owner, name = path.split(".")
        if name not in owners.get(owner, []):
            raise SystemExit("generate_lua.py names %s, which the definitions do not have" % path)
    for path, spec in EMBEDDED.items():
        owner = path.split(".")[0]
        for key in ("when_offset", "when_total", "response_of"):
            if key in spec and spec[key] not in owners[owner]:
                raise SystemExit("generate_lua.py: %s refers to %s.%s, missing" % (path, owner, spec[key]))
        if "struct" in spec and spec["struct"] not in data["structs"]:
            raise SystemExit("generate_lua.py: %s embeds unknown struct %s" % (path, spec["struct"]))
    for enum, _ in ENUM_REFERENCES.values():
        if enum not in data["enums"]:
            raise SystemExit("generate_lua.py refers to unknown enum %s" % enum)
    codes = {v["name"] for v in data["enums"]["ErrorCode"]["values"]}
    for code, spec in ERROR_DETAIL.items():
        if code not in codes:
            raise SystemExit("generate_lua.py: ErrorCode %s is not defined" % code)
        if "enum" in spec and spec["enum"] not in data["enums"]:
            raise SystemExit("generate_lua.py: unknown enum %s" % spec["enum"])
    error = next(m for m in data["messages"] if m["name"] == "Error")
    if [f["name"] for f in error["response"]][:3] != ["requestType", "code", "detail"]:
        raise SystemExit("generate_lua.py expects Error's response to be requestType, code, detail")


def summary(message, direction, fields, data):
    key = "%s.%s" % (message["name"], direction)
    if key in SUMMARY:
        for path in SUMMARY[key]:
            current = fields
            for part in path.split("."):
                match = [f for f in current if f["name"] == part]
                if not match:
                    raise SystemExit("generate_lua.py: summary path %s.%s not in the definitions" % (key, path))
                if match[0]["type"] == "struct":
                    current = data["structs"][match[0]["struct"]]["fields"]
        return SUMMARY[key]
    return [f["name"] for f in fields if f["type"] in SCALAR_TYPES][:SUMMARY_DEFAULT_COUNT]


# Lua literals --------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LUA_KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}


def lua_string(text):
    out = ['"']
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32:
            out.append("\\%03d" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def lua_key(key):
    if isinstance(key, int):
        return "[%d]" % key
    if IDENTIFIER.match(key) and key not in LUA_KEYWORDS:
        return key
    return "[%s]" % lua_string(key)


def lua(value, indent=0):
    pad = "  " * indent
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return "{ " + ", ".join(lua(v) for v in value) + " }" if value else "{}"
        return "{\n" + "".join("%s  %s,\n" % (pad, lua(v, indent + 1)) for v in value) + pad + "}"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ["%s = %s" % (lua_key(k), lua(v, indent + 1)) for k, v in value.items()]
        one_line = "{ " + ", ".join(items) + " }"
        if len(one_line) + len(pad) <= 100 and "\n" not in one_line:
            return one_line
        return "{\n" + "".join("%s  %s,\n" % (pad, item) for item in items) + pad + "}"
    raise TypeError(value)


# Output --------------------------------------------------------------------------------------

def definitions_lua(data):
    check_names(data)
    bit_widths = {}
    out = []
    out.append("-- Definitions generated from protocol/messages.json by tools/codegen/generate_lua.py.")
    out.append("local DEFINITIONS_HASH = %s" % lua_string(data["hash"].hex()))
    out.append("")

    enums = {}
    for name, enum in data["enums"].items():
        enums[name] = {"type": enum["type"], "values": {v["value"]: v["name"] for v in enum["values"]}}
    out.append("-- Enumerations: underlying integer type and value -> name.")
    out.append("local ENUMS = %s" % lua(enums))
    out.append("")

    structs = {}
    for name, struct in data["structs"].items():
        structs[name] = {"owner": name, "fields": [field_entry(name, f, data, bit_widths) for f in struct["fields"]]}
    messages = {}
    for message, direction, fields in payloads(data):
        entry = messages.setdefault(message["type"], {"name": message["name"], "auth": message.get("auth", "none")})
        owner = payload_struct_name(message, direction)
        entry[direction] = {
            "owner": owner,
            "fields": [field_entry(owner, f, data, bit_widths) for f in fields],
            "summary": summary(message, direction, fields, data),
        }
    out.append("-- Structures: fields in wire order. A field is {name, type, ...}: int (an enum's integer")
    out.append("-- type), enum, struct, of (array element), max (string/blob/array count), length (bytes),")
    out.append("-- range {lo, hi} (checked on decode), unit, time (how to show a time), bits (named bits),")
    out.append("-- hex, message_type, refers (an enum the integer names), embedded (what a blob holds),")
    out.append("-- definitions_hash (compared with DEFINITIONS_HASH).")
    out.append("local STRUCTS = %s" % lua(structs))
    out.append("")
    out.append("-- Messages by type number: name, auth (\"required\" for changing requests) and the")
    out.append("-- request and response forms (owner: the filter name prefix; summary: Info column fields).")
    out.append("local MESSAGES = %s" % lua({k: messages[k] for k in sorted(messages)}))
    out.append("")

    sets = {}
    for name, spec in bitsets(data).items():
        width = bit_widths.get(name)
        if width is None:
            continue
        sets[name] = {"prefix": spec["prefix"], "width": width,
                      "bits": [{"bit": b, "name": n, "doc": d} if d else {"bit": b, "name": n}
                               for b, n, d in spec["bits"]]}
    out.append("-- Named bits of mask fields (bit index -> name), with the mask's width in bits.")
    out.append("local BITSETS = %s" % lua(sets))
    out.append("")
    out.append("-- Event.code names a value of this enum, by Event.kind (from the EventKind docs).")
    out.append("local EVENT_CODE_ENUM = %s" % lua(event_code_enums(data)))
    out.append("")
    out.append("-- What Error.detail holds, by ErrorCode name (SPEC §13).")
    out.append("local ERROR_DETAIL = %s" % lua(ERROR_DETAIL))
    return "\n".join(out)


def generate(data):
    template = TEMPLATE.read_text()
    if template.count(MARKER) != 1:
        raise SystemExit("%s must contain the line %s once" % (TEMPLATE, MARKER))
    header = (
        "-- pumplink.lua: Wireshark dissector for PumpLink v1 (see tools/wireshark/README.md).\n"
        "-- GENERATED FILE, do not edit: tools/codegen/generate_lua.py writes it from\n"
        "-- protocol/messages.json and tools/codegen/templates/pumplink_runtime.lua.\n"
        "-- Run python3 tools/codegen/generate.py after changing either.\n"
    )
    return header + template.replace(MARKER, definitions_lua(data))


def main():
    return write_or_check(OUTPUT, generate(load()), sys.argv)


if __name__ == "__main__":
    sys.exit(main())
