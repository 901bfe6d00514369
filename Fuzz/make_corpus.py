#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from protocol/vectors/*.json.

Usage: make_corpus.py OUTPUT   (tools/fuzz passes .fuzz/seeds)

One folder per target under OUTPUT, one file per seed, named after the vector it comes from.
The input layouts are the ones described at the top of each target's main.swift:

- frames:   byte 0 seeds the read splits, then a line or stream (every frame of frames.json,
            every stream of broken.json, every line of auth.json, and all frames back to back);
- messages: byte 0 picks (type, direction) as 2 x index in MessageType.allCases + (1 for a
            response), then the payload (frames.json, and the frames of broken.json whose
            payload is not a message);
- programs: a 27-byte header (capacity, reservoir, clock, UTC offset, options, refill volumes),
            then a Program encoding and optionally the active program's;
- json-bodies: byte 0 picks Program, ClinicianBolusRequest, SetClockRequest, RefillRequest,
            AcknowledgeAlarmsRequest or Override, then JSON text; json-bodies.dict beside the
            folders lists the JSON tokens and every field and enumeration name of the definitions;
- api-bodies: byte 0 picks ProgramBody, RefillBody, AcknowledgeAlarmsBody, EmptyBody,
            ClinicianBolusRequest or SetClockRequest, then the request body (an example of each
            schema of protocol/openapi.json, the programs above, the vectors' requests), or (6) a
            query integer or (7) a query string; api-bodies.dict adds the API's own names;
- endpoint: a 7-byte header (options, initial reservoir, start time), then operations on the
            pump side (Fuzz/Sources/EndpointFuzzer/main.swift): a Hello, then each request of
            frames.json tagged, untagged and forged; the SetClock of 2^64 - 1 of issue 15;
            program uploads (the programs above); restarts through the state file; raw lines;
- pcapng:   capture files (SPEC §15) holding the candidates of frames.json and broken.json, in
            both byte orders, several timestamp resolutions, an unknown block, two sections, a
            cut last block.

Programs are encoded by the vectors generator's codec (driven by protocol/messages.json), which
shares nothing with the Swift codec.
"""
import json
import pathlib
import shutil
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "protocol" / "vectors"
sys.dont_write_bytecode = True  # leave no cache beside the generator
sys.path.insert(0, str(ROOT / "tools" / "vectors"))

import generate_vectors  # noqa: E402  (its codec and example program)


def load(name):
    return json.loads((VECTORS / name).read_text())


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(bytes(data))


def frame_seeds(out):
    folder = out / "frames"
    everything = bytearray()
    for index, frame in enumerate(load("frames.json")["frames"]):
        line = bytes.fromhex(frame["line"])
        write(folder, "frame-" + frame["name"], bytes([index % 256]) + line)
        everything += line
    write(folder, "all-frames", b"\x07" + everything)
    for index, stream in enumerate(load("broken.json")["streams"]):
        write(folder, "broken-" + stream["name"], bytes([(index * 37) % 256]) + bytes.fromhex(stream["stream"]))
    auth = load("auth.json")
    write(folder, "auth-hello-request", b"\x01" + bytes.fromhex(auth["hello"]["request"]))
    write(folder, "auth-hello-response", b"\x02" + bytes.fromhex(auth["hello"]["response"]))
    for check in auth["checks"]:
        write(folder, "auth-" + check["name"], b"\x03" + bytes.fromhex(check["line"]))
    for index, step in enumerate(auth.get("replay", {}).get("steps", [])):
        write(folder, "auth-replay-%d-request" % index, b"\x04" + bytes.fromhex(step["request"]))
        write(folder, "auth-replay-%d-response" % index, b"\x05" + bytes.fromhex(step["response"]))


def message_selectors():
    messages = sorted(json.loads((ROOT / "protocol" / "messages.json").read_text())["messages"], key=lambda m: m["type"])
    return {m["type"]: index for index, m in enumerate(messages)}


def message_seeds(out):
    folder = out / "messages"
    selectors = message_selectors()
    for frame in load("frames.json")["frames"]:
        selector = 2 * selectors[frame["messageType"]] + (1 if frame["direction"] == "response" else 0)
        write(folder, frame["name"], bytes([selector]) + bytes.fromhex(frame["payload"]))
    for stream in load("broken.json")["streams"]:
        for index, event in enumerate(stream["events"]):
            if event["event"] != "frame" or event["messageType"] not in selectors:
                continue
            selector = 2 * selectors[event["messageType"]] + (event["flags"] & 1)
            write(folder, "broken-%s-%d" % (stream["name"], index), bytes([selector]) + bytes.fromhex(event["payload"]))


def program(**changes):
    value = json.loads(json.dumps(generate_vectors.PROGRAM))
    value.update(changes)
    return value


PROGRAMS = {
    "vectors": program(),
    "no-basal": program(steps=[], periodicBoluses=[],
                        patientBolus={"doseMicrograms": 0, "durationMinutes": 0, "lockoutMinutes": 0, "maxPerDay": 0}),
    "flat-every-day": program(steps=[{"dayMask": 0x7F, "startMinute": 0, "doseRateMicrogramsPerDay": 500}],
                              periodicBoluses=[]),
    "thirteen-steps": program(drug="ziconotide", concentrationMicrogramsPerMilliliter=100,
                              steps=[{"dayMask": 0x7F, "startMinute": 60 * hour + 5, "doseRateMicrogramsPerDay": 1 + hour}
                                     for hour in range(13)]),
    "busy-boluses": program(drug="baclofen", concentrationMicrogramsPerMilliliter=2000,
                            periodicBoluses=[{"dayMask": 0x7F if i % 2 else 0x15, "startMinute": 60 * i,
                                              "doseMicrograms": 25, "durationMinutes": 59} for i in range(24)]),
    "too-much": program(steps=[{"dayMask": 0x7F, "startMinute": 0, "doseRateMicrogramsPerDay": 0xFFFFFFFF}]),
}


def program_header(capacity, reservoir, clock_ms, offset_minutes, options, aspirated, new_volume):
    return struct.pack("<IIQHBII", capacity, reservoir, clock_ms, offset_minutes + 900, options, aspirated, new_volume)


def program_seeds(out):
    folder = out / "programs"
    data = json.loads((ROOT / "protocol" / "messages.json").read_text())
    codec = generate_vectors.Codec(data)
    fields = data["structs"]["Program"]["fields"]
    encoded = {name: codec.encode_fields(fields, value, "Program") for name, value in PROGRAMS.items()}
    for name, program_bytes in encoded.items():
        header = program_header(20000, 14250, 1741944411420, 60, 0, 14000, 20000)
        write(folder, name, header + program_bytes)
        with_active = program_header(40000, 3000, 1741944411420, -300, 3, 2500, 41000)
        write(folder, name + "-with-active", with_active + program_bytes + encoded["vectors"])


JSON_REQUESTS = {1: "ClinicianBolus", 2: "SetClock", 3: "Refill", 4: "AcknowledgeAlarms"}


def json_body_seeds(out):
    folder = out / "json-bodies"
    for name, value in PROGRAMS.items():
        write(folder, "program-" + name, b"\x00" + json.dumps(value).encode())
    for frame in load("frames.json")["frames"]:
        for selector, message in JSON_REQUESTS.items():
            if frame["message"] == message and frame["direction"] == "request":
                write(folder, frame["name"], bytes([selector]) + json.dumps(frame["fields"]).encode())
    write(folder, "acknowledge-alarms-all", b"\x04" + json.dumps({"alarmMask": 0xFFFFFFFF}).encode())
    write(folder, "override", b"\x05" + json.dumps({"reason": "bridge dose agreed with the pain team"}).encode())
    write(folder, "override-blank", b"\x05" + json.dumps({"reason": " \u00a0\t"}).encode())

    # A libFuzzer dictionary: JSON's tokens and every name of the definitions.
    data = json.loads((ROOT / "protocol" / "messages.json").read_text())
    names = set()
    for struct in data["structs"].values():
        names.update(field["name"] for field in struct["fields"])
    for message in data["messages"]:
        for direction in ("request", "response"):
            names.update(field["name"] for field in message.get(direction) or [])
    for enum in data["enums"].values():
        names.update(value["name"] for value in enum["values"])
    names.add("reason")
    tokens = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "-", ".", "e+", "E-", "0", "-1",
              "4294967295", "4294967296", "65535", "65536", "18446744073709551615", "1e3", "0.5", "\\\\u0000"]
    lines = ['"%s"' % token.replace('"', '\\"') for token in tokens]
    lines += ['"\\"%s\\""' % name for name in sorted(names)]
    (out / "json-bodies.dict").write_text("\n".join(lines) + "\n")
    # api-bodies: the same, and the names only the API uses.
    lines += ['"\\"%s\\""' % name for name in ("program", "override", "alarms", "mask", "aspiratedMicroliters",
                                            "newVolumeMicroliters", "from", "limit", "pump")]
    lines += ['"+"', '"&"', '"="', '"\\\\u"']
    (out / "api-bodies.dict").write_text("\n".join(lines) + "\n")


API_BODIES = {"ProgramBody": 0, "RefillBody": 1, "AcknowledgeAlarmsBody": 2, "EmptyBody": 3,
              "ClinicianBolusBody": 4, "SetClockRequest": 5}


def schema_example(schema, schemas, depth=0):
    """A value of an openapi.json schema: its required fields (all of them at the top), integers
    at their minimum, the first enumeration name, arrays of one element."""
    if "$ref" in schema:
        return schema_example(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, depth)
    if "oneOf" in schema:
        return schema_example(schema["oneOf"][0], schemas, depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        names = schema.get("properties", {}) if depth == 0 else schema.get("required", [])
        return {name: schema_example(schema["properties"][name], schemas, depth + 1) for name in names}
    if kind == "array":
        return [schema_example(schema["items"], schemas, depth + 1)]
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "string":
        return "x" * schema.get("minLength", 1)
    if kind == "boolean":
        return False
    return None


def api_body_seeds(out):
    folder = out / "api-bodies"
    schemas = json.loads((ROOT / "protocol" / "openapi.json").read_text())["components"]["schemas"]
    for name, selector in API_BODIES.items():
        write(folder, "schema-" + name, bytes([selector]) + json.dumps(schema_example(schemas[name], schemas)).encode())
    for name, value in PROGRAMS.items():
        write(folder, "program-" + name, b"\x00" + json.dumps({"program": value}).encode())
    write(folder, "program-override", b"\x00" + json.dumps(
        {"program": PROGRAMS["vectors"], "override": {"reason": "bridge dose agreed with the pain team"}}).encode())
    write(folder, "program-override-blank", b"\x00" + json.dumps(
        {"program": PROGRAMS["vectors"], "override": {"reason": " \u00a0\t"}}).encode())
    write(folder, "program-unknown-nested", b"\x00" + json.dumps(
        {"program": dict(PROGRAMS["vectors"], overide=1), "override": None}).encode())
    write(folder, "refill", b"\x01" + json.dumps({"aspiratedMicroliters": 1200, "newVolumeMicroliters": 20000}).encode())
    write(folder, "refill-too-large", b"\x01" + b'{"aspiratedMicroliters": 4294967296, "newVolumeMicroliters": -1.5}')
    write(folder, "alarms-names", b"\x02" + json.dumps({"alarms": ["reservoirLow", "motorStall"]}).encode())
    write(folder, "alarms-mask", b"\x02" + json.dumps({"mask": 0x102}).encode())
    write(folder, "alarms-both", b"\x02" + json.dumps({"alarms": [], "mask": 0}).encode())
    write(folder, "empty", b"\x03{}")
    write(folder, "empty-nulls", b"\x03" + json.dumps({"a": None, "b": None}).encode())
    write(folder, "not-an-object", b"\x03[]")
    requests = {"ClinicianBolus": 4, "SetClock": 5}
    for frame in load("frames.json")["frames"]:
        for message, selector in requests.items():
            if frame["message"] == message and frame["direction"] == "request":
                write(folder, frame["name"], bytes([selector]) + json.dumps(frame["fields"]).encode())
    # Query integers: byte 1 picks the range (0 from, 1 limit, 2 Int8, 3 Int64 with bounds).
    for name, data in {"from": b"\x00" + b"4294967295", "limit": b"\x01" + b"1000", "limit-signed": b"\x01+20",
                       "small": b"\x02\x80\x7f-0", "wide": b"\x03" + b"\x00" * 7 + b"\x80" + b"\xff" * 7 + b"\x7f" +
                       b"-9223372036854775808"}.items():
        write(folder, "query-integer-" + name, b"\x06" + data)
    write(folder, "query-string", b"\x07from=5&limit=20&pump=pump-1")
    write(folder, "query-string-twice", b"\x07limit=1&limit=2")


# The request types of the endpoint target, in the order of its `requestTypes` table.
ENDPOINT_REQUESTS = [2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]
E_HELLO, E_TAGGED, E_UNTAGGED, E_FORGED, E_RAW, E_TIME, E_DROP, E_UPLOAD, E_STATUS, E_RESTART = 0, 1, 2, 3, 4, 5, 6, 8, 9, 31


def endpoint_header(options=0, reservoir=20000, start=0):
    return bytes([options]) + struct.pack("<HI", reservoir, start)


def endpoint_hello(capabilities=7, nonce=b"\x01\x02\x03\x04\x05\x06\x07\x08"):
    return bytes([E_HELLO, capabilities, 1, 1]) + nonce


def endpoint_request(message_type, payload, operation=E_TAGGED, id_mode=2):
    """One request: its type's index, the id mode (2: the next id), then the payload."""
    selector = ENDPOINT_REQUESTS.index(message_type)
    body = bytes([operation, selector, id_mode])
    if message_type == 17:  # ProgramStageData: the data length, then id, offset and data
        body += struct.pack("<H", len(payload) - 6)
    return body + payload + (b"\x00" if operation == E_FORGED else b"")


def endpoint_seeds(out):
    folder = out / "endpoint"
    requests = [f for f in load("frames.json")["frames"] if f["direction"] == "request" and f["messageType"] in ENDPOINT_REQUESTS]
    for operation, name in ((E_TAGGED, "tagged"), (E_UNTAGGED, "untagged"), (E_FORGED, "forged")):
        for frame in requests:
            payload = bytes.fromhex(frame["payload"])
            write(folder, "%s-%s" % (name, frame["name"]),
                  endpoint_header() + endpoint_hello() + endpoint_request(frame["messageType"], payload, operation))
        everything = endpoint_header() + endpoint_hello()
        for frame in requests:
            everything += endpoint_request(frame["messageType"], bytes.fromhex(frame["payload"]), operation)
            everything += bytes([E_TIME, 2]) + struct.pack("<H", 7)
        write(folder, "%s-all-requests" % name, everything)
    get_status = endpoint_request(3, b"")
    set_clock_max = endpoint_request(21, struct.pack("<Qh", 2**64 - 1, 0))
    write(folder, "set-clock-max", endpoint_header() + endpoint_hello() + set_clock_max + get_status
          + bytes([E_TIME, 3, 30, 0]) + get_status + bytes([E_RESTART]) + get_status)
    write(folder, "set-clock-latest", endpoint_header() + endpoint_hello()
          + endpoint_request(21, struct.pack("<Qh", 253402300799999, 900)) + bytes([E_TIME, 3, 0, 1]) + get_status)
    write(folder, "start-latest", endpoint_header(options=4)[:3] + struct.pack("<Q", 253402300799999 - 86400000)
          + endpoint_hello() + endpoint_request(26, b"") + bytes([E_TIME, 3, 48, 0]) + get_status)
    write(folder, "no-program-no-capabilities", endpoint_header(options=3, reservoir=500) + endpoint_hello(capabilities=0)
          + endpoint_request(4, struct.pack("<I", 100)) + endpoint_request(7, struct.pack("<I", 1)) + bytes([E_STATUS]))
    data = json.loads((ROOT / "protocol" / "messages.json").read_text())
    codec = generate_vectors.Codec(data)
    fields = data["structs"]["Program"]["fields"]
    for name, value in PROGRAMS.items():
        program_bytes = codec.encode_fields(fields, value, "Program")
        upload = bytes([E_UPLOAD]) + struct.pack("<H", len(program_bytes)) + program_bytes
        write(folder, "upload-" + name, endpoint_header() + endpoint_hello() + upload
              + endpoint_request(26, b"") + bytes([E_TIME, 3, 0, 2]) + bytes([E_RESTART]) + get_status + bytes([E_STATUS]))
    bolus = [f for f in requests if f["name"] == "clinician-bolus-request-bridge"][0]
    write(folder, "bolus-restart-query", endpoint_header() + endpoint_hello() + endpoint_request(25, bytes.fromhex(bolus["payload"]))
          + bytes([E_RESTART]) + endpoint_hello() + endpoint_request(25, bytes.fromhex(bolus["payload"]), id_mode=0)
          + endpoint_request(7, struct.pack("<I", 2)) + bytes([E_DROP]) + endpoint_request(26, b""))
    lines = b"".join(bytes.fromhex(f["line"]) for f in load("frames.json")["frames"])
    write(folder, "raw-frames", endpoint_header() + bytes([E_RAW]) + struct.pack("<H", len(lines)) + lines)
    auth = load("auth.json")
    hello = bytes.fromhex(auth["hello"]["request"])
    write(folder, "raw-auth-hello", endpoint_header() + bytes([E_RAW]) + struct.pack("<H", len(hello)) + hello)


def pcapng_block(block_type, body, endian):
    body = bytes(body) + b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(endian + "II", block_type, length) + body + struct.pack(endian + "I", length)


def pcapng_options(options, endian):
    out = b""
    for code, value in options:
        out += struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + (struct.pack(endian + "HH", 0, 0) if options else b"")


def pcapng_file(candidates, endian="<", resolution=9, unknown_block=False, user_application=b"PumpLink fuzz seeds"):
    """A section, two interfaces (host side, pump side) and one packet per candidate."""
    out = pcapng_block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                       + pcapng_options([(4, user_application)], endian), endian)
    for name, description in ((b"/dev/ttyUSB0", b"pump 3"), (b"/dev/pts/4", b"host")):
        options = [(2, name), (3, description)]
        if resolution is not None:
            options.append((9, bytes([resolution])))
        out += pcapng_block(1, struct.pack(endian + "HHI", 147, 0, 0) + pcapng_options(options, endian), endian)
    if unknown_block:
        out += pcapng_block(4, b"\x01\x00\x04\x00\x0a\x00\x00\x01pump\0\0\0\0", endian)  # a name resolution block
    time = 1741944411420 * 10**6
    for index, candidate in enumerate(candidates):
        time += 1234567 * (index + 1)
        ticks = time if resolution == 9 else time // 1000
        body = struct.pack(endian + "IIIII", index % 2, ticks >> 32, ticks & 0xFFFFFFFF, len(candidate), len(candidate))
        body += candidate + b"\0" * (-len(candidate) % 4)
        body += pcapng_options([(2, struct.pack(endian + "I", 1 + index % 2))], endian)
        out += pcapng_block(6, body, endian)
    return out


def pcapng_seeds(out):
    folder = out / "pcapng"
    frames = [bytes.fromhex(frame["line"])[1:-1] for frame in load("frames.json")["frames"]]
    broken = [candidate for stream in load("broken.json")["streams"]
              for candidate in bytes.fromhex(stream["stream"]).split(b"\0") if candidate]
    little = pcapng_file(frames[:8])
    write(folder, "frames-little-endian", little)
    write(folder, "frames-big-endian-microseconds", pcapng_file(frames[8:16], endian=">", resolution=None, unknown_block=True))
    write(folder, "broken-binary-resolution", pcapng_file(broken[:12], resolution=0x8A))
    write(folder, "two-sections", little + pcapng_file(frames[16:20], endian=">"))
    write(folder, "cut-last-block", little[:-7])
    write(folder, "few-packets", pcapng_file(frames[:2] + broken[:2]))
    write(folder, "all-frames", pcapng_file(frames))


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    for target in ("frames", "messages", "programs", "json-bodies", "api-bodies", "pcapng", "endpoint"):
        shutil.rmtree(out / target, ignore_errors=True)
    frame_seeds(out)
    message_seeds(out)
    program_seeds(out)
    json_body_seeds(out)
    api_body_seeds(out)
    pcapng_seeds(out)
    endpoint_seeds(out)
    for target in sorted(p.name for p in out.iterdir() if p.is_dir()):
        print("%-10s %3d seeds" % (target, len(list((out / target).iterdir()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
