#!/usr/bin/env python3
"""Runs the PumpLink Wireshark dissector over the conformance vectors with tshark and checks it.

    python3 tools/wireshark/test_dissector.py [--keep DIR] [--dissector FILE]

1. Writes a pcapng capture as PumpLink writes them (SPEC §15: a section, one interface of link
   type 147 with if_tsresol 9, one Enhanced Packet Block per line candidate, epb_flags giving
   the direction): every frame of protocol/vectors/frames.json, every candidate of every stream
   of protocol/vectors/broken.json, and a candidate cut short by the capture's 2048-byte limit.
2. Runs tshark with tools/wireshark/pumplink.lua over it (PDML output, plus the Info column).
3. Compares: for each valid frame the decoder outcome, header fields, CRC status, tag, direction
   and every payload field (names, values, enums by name, structures and arrays) against the
   vector, and the units shown; for each discarded candidate the reported error and its details
   and that nothing of the payload is shown; for frames whose payload does not decode, the first
   decoding error. Lua errors, malformed-packet markers and unexpected expert infos fail too.

Python 3 standard library only. Exit status 0 when everything matches, 1 on any mismatch, 77
(skipped) when tshark is not installed. --keep DIR leaves the capture and tshark's output there;
--dissector FILE tests another copy of the dissector (an installed one, say).
"""
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[2]
DISSECTOR = ROOT / "tools" / "wireshark" / "pumplink.lua"
VECTORS = ROOT / "protocol" / "vectors"
DEFINITIONS = ROOT / "protocol" / "messages.json"

sys.dont_write_bytecode = True
sys.path.insert(0, str(ROOT / "tools" / "codegen"))
import generate_lua  # noqa: E402  (the unit and bit-mask rules the dissector was generated with)

LINKTYPE_USER0 = 147
INBOUND, OUTBOUND = 1, 2
CAPTURE_LIMIT = 2048          # SPEC §15: longer candidates are recorded as their first 2048 bytes

SEVERITY_NOTE, SEVERITY_WARN, SEVERITY_ERROR = 0x00400000, 0x00600000, 0x00800000

# The expert info each discard reason carries, and the detail fields of broken.json it is
# checked against (vector key -> PDML field).
DISCARDS = {
    "oversize": ("pumplink.expert.oversize", {}),
    "truncated": ("pumplink.expert.truncated", {"length": "pumplink.packet_length"}),
    "tooShort": ("pumplink.expert.too_short", {"length": "pumplink.packet_length"}),
    "checkFailed": ("pumplink.expert.check_failed", {"received": "pumplink.crc", "computed": "pumplink.crc.computed"}),
    "unsupportedVersion": ("pumplink.expert.unsupported_version", {"version": "pumplink.version"}),
    "reservedFlags": ("pumplink.expert.reserved_flags", {"flags": "pumplink.flags"}),
    "lengthMismatch": ("pumplink.expert.length_mismatch",
                       {"declared": "pumplink.payload_length", "packetLength": "pumplink.packet_length"}),
}

# The order in which the dissector prints a payload decoding error's details.
MESSAGE_ERROR_DETAILS = {
    "unknownMessageType": ["messageType"],
    "noSuchDirection": ["messageType", "isResponse"],
    "truncated": ["offset", "needed"],
    "trailingBytes": ["count"],
    "outOfRange": ["field", "value"],
    "invalidEnum": ["field", "value"],
    "tooLong": ["field", "count", "max"],
    "invalidUTF8": ["field"],
}


class Mismatch(Exception):
    pass


# pcapng (SPEC §15) ---------------------------------------------------------------------------

def _pad4(data):
    return data + b"\0" * (-len(data) % 4)


def _option(code, value):
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _block(block_type, body):
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def pcapng(packets):
    """packets: (timestamp ns, direction, data, original length)."""
    end = _option(0, b"")
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                  + _option(4, b"tools/wireshark/test_dissector.py") + end)]
    out.append(_block(0x00000001, struct.pack("<HHI", LINKTYPE_USER0, 0, 0)
                      + _option(2, b"/dev/pts/4") + _option(3, b"pump vectors") + _option(9, b"\x09") + end))
    for ns, direction, data, original in packets:
        body = struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(data), original) + _pad4(data)
        body += _option(2, struct.pack("<I", direction)) + end
        out.append(_block(0x00000006, body))
    return b"".join(out)


# Cases ---------------------------------------------------------------------------------------

def candidates(stream):
    """The candidates a decoder sees: bytes between delimiters, empty ones skipped; bytes after
    the last delimiter are not a candidate yet."""
    parts = stream.split(b"\0")
    return [p for p in parts[:-1] if p]


def build_cases():
    cases = []
    frames = json.loads((VECTORS / "frames.json").read_text())["frames"]
    for frame in frames:
        line = bytes.fromhex(frame["line"])
        if line[:1] != b"\0" or line[-1:] != b"\0" or b"\0" in line[1:-1]:
            raise Mismatch("frames.json %s: line is not 00 COBS 00" % frame["name"])
        event = {"event": "frame", **{k: frame[k] for k in ("flags", "messageType", "requestId", "payloadLength",
                                                             "payload", "message", "direction", "fields")}}
        event["tag"] = frame["authentication"]["tag"] if frame["authentication"] else None
        event["check"] = frame["check"]
        cases.append({"name": frame["name"], "data": line[1:-1], "original": len(line) - 2, "event": event})
    broken = json.loads((VECTORS / "broken.json").read_text())["streams"]
    for stream in broken:
        found = candidates(bytes.fromhex(stream["stream"]))
        if len(found) != len(stream["events"]):
            raise Mismatch("broken.json %s: %d candidates but %d events" % (stream["name"], len(found),
                                                                          len(stream["events"])))
        for index, (data, event) in enumerate(zip(found, stream["events"])):
            cases.append({"name": "%s#%d" % (stream["name"], index), "data": data, "original": len(data),
                          "event": event})
    # Version 2: sealed frames show their header, counter and tag; the payload stays sealed.
    for frame in json.loads((VECTORS / "sealed.json").read_text())["frames"]:
        line = bytes.fromhex(frame["line"])
        event = {"event": "sealed", **{k: frame[k] for k in ("messageType", "requestId", "counter", "message",
                                                              "direction")},
                 "flags": 0x04 | (1 if frame["direction"] == "response" else 0)}
        cases.append({"name": "sealed " + frame["name"], "data": line[1:-1], "original": len(line) - 2,
                      "event": event})
    # A candidate longer than the capture limit is recorded cut short, with its original length.
    long_candidate = bytes([0xFF] + [0x11] * 254) * 12
    cases.append({"name": "capture-limit-oversize", "data": long_candidate[:CAPTURE_LIMIT],
                  "original": len(long_candidate), "event": {"event": "discarded", "error": "oversize"},
                  "capture_truncated": True})
    return cases


def direction_of(event):
    if event["event"] in ("frame", "sealed"):
        return INBOUND if event["flags"] & 1 else OUTBOUND
    return INBOUND


# PDML ----------------------------------------------------------------------------------------

def fields_named(element, name):
    return [e for e in element.iter("field") if e.get("name") == name]


def one(element, name, case):
    found = fields_named(element, name)
    if len(found) != 1:
        raise Mismatch("%s: expected one %s, found %d" % (case, name, len(found)))
    return found[0]


def int_of(field):
    return int(field.get("show"), 0)


def children(element):
    return [c for c in element if c.tag == "field" and not c.get("name", "").startswith("_ws.")]


class Checker:
    def __init__(self):
        self.definitions = json.loads(DEFINITIONS.read_text())
        self.structs = {name: s["fields"] for name, s in self.definitions["structs"].items()}
        self.enums = {name: {v["name"]: v["value"] for v in e["values"]} for name, e in
                      self.definitions["enums"].items()}
        self.messages = {m["type"]: m for m in self.definitions["messages"]}
        self.compared = 0

    def expect(self, case, what, actual, expected):
        self.compared += 1
        if actual != expected:
            raise Mismatch("%s: %s is %r, expected %r" % (case, what, actual, expected))

    # Payload fields, walked along the definitions.
    def render(self, case, element, owner, fields, expected, path):
        items = children(element)
        names = [c.get("name") for c in items]
        wanted = ["pumplink.%s.%s" % (owner, f["name"]) for f in fields]
        if names != wanted:
            raise Mismatch("%s: %s shows fields %s, expected %s" % (case, path or "payload", names, wanted))
        if set(expected) != {f["name"] for f in fields}:
            raise Mismatch("%s: vector fields %s differ from the definitions" % (case, sorted(expected)))
        for item, field in zip(items, fields):
            self.value(case, item, owner, field, expected[field["name"]], "%s%s" % (path, field["name"]))

    def value(self, case, item, owner, field, expected, path):
        t = field["type"]
        label = item.get("showname", "")
        if not label.startswith(field["name"]):
            raise Mismatch("%s: %s is labelled %r" % (case, path, label))
        if t in ("u8", "u16", "u32", "u64", "i16"):
            self.expect(case, path, int_of(item), expected)
            unit = generate_lua.unit(field["name"])
            if unit and not generate_lua.bits_of(field):
                self.expect(case, path + " unit", "%d %s" % (expected, unit) in label, True)
            bits = generate_lua.bits_of(field)
            if bits:
                shown = {c.get("name").split(".")[-1] for c in children(item) if c.get("show") == "1"}
                names = {b[1] for b in generate_lua.bitsets(self.definitions)[bits]["bits"] if expected >> b[0] & 1}
                self.expect(case, path + " bits", shown, names)
        elif t == "enum":
            match = re.match(r"^%s: (.*) \((\d+)\)$" % re.escape(field["name"]), label)
            if not match:
                raise Mismatch("%s: %s shows %r, not an enum name" % (case, path, label))
            self.expect(case, path, match.group(1), expected)
            self.expect(case, path + " value", int(match.group(2)), self.enums[field["enum"]][expected])
        elif t in ("bytes", "blob"):
            self.expect(case, path, (item.get("show") or "").replace(":", "").lower(), expected)
            if t == "blob":
                length = [c for c in children(item) if c.get("name") == item.get("name") + ".length"]
                self.expect(case, path + ".length", [int_of(c) for c in length], [len(expected) // 2])
        elif t == "string":
            self.expect(case, path, item.get("show"), expected)
            length = [c for c in children(item) if c.get("name") == item.get("name") + ".length"]
            self.expect(case, path + ".length", [int_of(c) for c in length], [len(expected.encode())])
        elif t == "struct":
            self.render(case, item, field["struct"], self.structs[field["struct"]], expected, path + ".")
        elif t == "array":
            items = children(item)
            count = [c for c in items if c.get("name") == item.get("name") + ".count"]
            elements = [c for c in items if c.get("name") == item.get("name") + ".element"]
            if len(count) != 1 or len(items) != 1 + len(elements):
                raise Mismatch("%s: %s has unexpected children %s" % (case, path, [c.get("name") for c in items]))
            self.expect(case, path + " count", int_of(count[0]), len(expected))
            self.expect(case, path + " elements", len(elements), len(expected))
            for i, (element, value) in enumerate(zip(elements, expected)):
                self.render(case, element, field["of"], self.structs[field["of"]], value, "%s[%d]." % (path, i))
        else:
            raise Mismatch("%s: %s has unknown type %s" % (case, path, t))

    def experts(self, proto):
        found = []
        for expert in fields_named(proto, "_ws.expert"):
            names = [c.get("name") for c in expert if c.get("name", "").startswith("pumplink.expert.")]
            severity = [int(c.get("show")) for c in expert if c.get("name") == "_ws.expert.severity"]
            message = [c.get("show") for c in expert if c.get("name") == "_ws.expert.message"]
            found.append((names[0] if names else "?", severity[0] if severity else 0, message[0] if message else ""))
        return found

    def check(self, case, packet, info):
        name, event = case["name"], case["event"]
        text = ET.tostring(packet, encoding="unicode")
        if "Lua Error" in text or "_ws.lua.error" in text:
            raise Mismatch("%s: tshark reports a Lua error" % name)
        if "_ws.malformed.expert" in text or "Exception occurred" in text:
            raise Mismatch("%s: dissection raised an exception (malformed packet)" % name)
        # Wireshark marks a packet with a malformed-group expert info as malformed: only
        # candidates or payloads the vectors call broken may be.
        broken = event["event"] == "discarded" or "messageError" in event
        if "_ws.malformed" in text and not broken:
            raise Mismatch("%s: a valid frame is marked malformed" % name)
        protos = [p for p in packet.iter("proto") if p.get("name") == "pumplink"]
        if len(protos) != 1:
            raise Mismatch("%s: %d PumpLink trees" % (name, len(protos)))
        proto = protos[0]
        experts = self.experts(proto)
        self.expect(name, "pumplink.cobs.length", int_of(one(proto, "pumplink.cobs.length", name)), case["original"])
        outcome = one(proto, "pumplink.outcome", name).get("show")
        if event["event"] == "discarded":
            self.check_discard(name, case, proto, outcome, experts, info)
        elif event["event"] == "sealed":
            self.check_sealed(name, event, proto, outcome, experts, info)
        else:
            self.check_frame(name, event, proto, outcome, experts, info)

    def check_discard(self, name, case, proto, outcome, experts, info):
        event = case["event"]
        error = event["error"]
        self.expect(name, "outcome", outcome, error)
        expert, details = DISCARDS[error]
        self.expect(name, "expert %s (error)" % expert, (expert, SEVERITY_ERROR) in [e[:2] for e in experts], True)
        allowed = {expert, "pumplink.expert.capture_truncated"} if case.get("capture_truncated") else {expert}
        unexpected = [e for e in experts if e[0] not in allowed]
        if unexpected:
            raise Mismatch("%s: unexpected expert infos %s" % (name, unexpected))
        if case.get("capture_truncated"):
            self.expect(name, "capture_truncated expert", "pumplink.expert.capture_truncated" in [e[0] for e in experts],
                        True)
        for key, field in details.items():
            self.expect(name, "%s (%s)" % (field, key), int_of(one(proto, field, name)), event[key])
        if error == "checkFailed":
            self.expect(name, "pumplink.crc.status", int_of(one(proto, "pumplink.crc.status", name)), 0)
        shown = [f.get("name") for f in proto.iter("field")
                 if f.get("name") in ("pumplink.message", "pumplink.payload", "pumplink.tag", "pumplink.message_error")
                 or f.get("name", "").count(".") >= 2 and f.get("name", "").split(".")[1][:1].isupper()]
        if shown:
            raise Mismatch("%s: a discarded candidate shows payload fields %s" % (name, shown))
        self.expect(name, "Info column", info.startswith("Discarded: "), True)

    def check_sealed(self, name, event, proto, outcome, experts, info):
        self.expect(name, "outcome", outcome, "frame")
        self.expect(name, "pumplink.version", int_of(one(proto, "pumplink.version", name)), 2)
        self.expect(name, "pumplink.flags.sealed", int_of(one(proto, "pumplink.flags.sealed", name)), 1)
        self.expect(name, "pumplink.type", int_of(one(proto, "pumplink.type", name)), event["messageType"])
        self.expect(name, "pumplink.request_id", int_of(one(proto, "pumplink.request_id", name)), event["requestId"])
        self.expect(name, "pumplink.counter", int_of(one(proto, "pumplink.counter", name)), event["counter"])
        one(proto, "pumplink.ciphertext", name)
        one(proto, "pumplink.tag", name)
        if fields_named(proto, "pumplink.message"):
            raise Mismatch("%s: a sealed payload is shown decoded" % name)
        serious = [e for e in experts if e[1] >= SEVERITY_WARN]
        if serious:
            raise Mismatch("%s: unexpected expert infos %s" % (name, serious))
        wanted = "%s %s  id=%d" % (event["message"], event["direction"], event["requestId"])
        self.expect(name, "Info column names the message, id and seal", wanted in info and "sealed" in info, True)

    def check_frame(self, name, event, proto, outcome, experts, info):
        self.expect(name, "outcome", outcome, "frame")
        header = {
            "pumplink.version": 1, "pumplink.flags": event["flags"], "pumplink.type": event["messageType"],
            "pumplink.request_id": event["requestId"], "pumplink.payload_length": event["payloadLength"],
            "pumplink.crc.status": 1,
        }
        if "check" in event:
            header["pumplink.crc"] = event["check"]
        for field, value in header.items():
            self.expect(name, field, int_of(one(proto, field, name)), value)
        is_response = bool(event["flags"] & 1)
        arrow = "Pump → Host" if is_response else "Host → Pump"
        self.expect(name, "pumplink.direction", one(proto, "pumplink.direction", name).get("show"), arrow)
        self.expect(name, "pumplink.flags.response", int_of(one(proto, "pumplink.flags.response", name)),
                    int(is_response))
        self.expect(name, "pumplink.payload", one(proto, "pumplink.payload", name).get("value", ""), event["payload"])
        tags = fields_named(proto, "pumplink.tag")
        self.expect(name, "pumplink.tag", [t.get("value") for t in tags], [event["tag"]] if event["tag"] else [])
        if event["tag"]:
            status = one(proto, "pumplink.tag.status", name).get("show")
            self.expect(name, "pumplink.tag.status says unverified", status.startswith("not verified"), True)
        message = one(proto, "pumplink.message", name)
        self.expect(name, "Info column direction", info.startswith(arrow), True)
        if "messageError" in event:
            error = event["messageError"]
            self.expect(name, "messageError messageType", error["messageType"], event["messageType"])
            keys = MESSAGE_ERROR_DETAILS[error["error"]]
            parts = []
            for key in keys:
                value = error[key]
                parts.append("%s=%s" % (key, str(value).lower() if isinstance(value, bool) else value))
            expected = "%s: %s" % (error["error"], " ".join(parts))
            self.expect(name, "pumplink.message_error", one(proto, "pumplink.message_error", name).get("show"),
                        expected)
            self.expect(name, "message error expert", ("pumplink.expert.message_error", SEVERITY_ERROR, expected)
                        in experts, True)
            return
        self.expect(name, "pumplink.message", message.get("show"), "%s %s" % (event["message"], event["direction"]))
        if fields_named(proto, "pumplink.message_error"):
            raise Mismatch("%s: a valid frame shows a message error" % name)
        serious = [e for e in experts if e[1] >= SEVERITY_WARN]
        if serious:
            raise Mismatch("%s: unexpected expert infos %s" % (name, serious))
        form = self.messages[event["messageType"]][event["direction"]]
        owner = event["message"] + ("Request" if event["direction"] == "request" else "Response")
        self.render(name, message, owner, form, event["fields"], "")
        wanted = "%s %s  id=%d" % (event["message"], event["direction"], event["requestId"])
        self.expect(name, "Info column names the message and id", wanted in info, True)
        if event["message"] == "Error":
            self.expect(name, "Info column shows the error code", "code=" + event["fields"]["code"] in info, True)


# Main ----------------------------------------------------------------------------------------

def run(keep, dissector):
    tshark = shutil.which("tshark")
    if tshark is None:
        print("SKIP: tshark is not installed (Debian: apt-get install tshark)")
        return 77
    started = time.monotonic()
    checker = Checker()
    cases = build_cases()
    base_ns = 1741944411420 * 1_000_000
    packets = [(base_ns + i * 1_000_000, direction_of(c["event"]), c["data"], c["original"])
               for i, c in enumerate(cases)]
    work = pathlib.Path(keep) if keep else pathlib.Path(tempfile.mkdtemp(prefix="pumplink-dissector-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        capture = work / "vectors.pcapng"
        capture.write_bytes(pcapng(packets))
        # A private HOME keeps personal preferences and plugins (an installed copy of the
        # dissector, say) out of the run.
        env = dict(os.environ, HOME=str(work))
        env.pop("XDG_CONFIG_HOME", None)
        base = [tshark, "-n", "-r", str(capture), "-X", "lua_script:%s" % dissector]
        pdml = subprocess.run(base + ["-T", "pdml"], capture_output=True, env=env)
        infos = subprocess.run(base + ["-T", "fields", "-e", "_ws.col.Info"], capture_output=True, env=env)
        (work / "vectors.pdml").write_bytes(pdml.stdout)
        problems = []
        for result in (pdml, infos):
            stderr = [line for line in result.stderr.decode(errors="replace").splitlines()
                      if line.strip() and "Running as user" not in line]
            if result.returncode != 0 or stderr:
                problems.append("tshark exited %d: %s" % (result.returncode, "\n".join(stderr)))
        if problems:
            print("FAIL: " + "\n".join(problems))
            return 1
        packets_xml = ET.fromstring(pdml.stdout).findall("packet")
        info_lines = infos.stdout.decode().splitlines()
        if len(packets_xml) != len(cases) or len(info_lines) != len(cases):
            print("FAIL: %d cases written, tshark shows %d packets (%d Info lines)"
                  % (len(cases), len(packets_xml), len(info_lines)))
            return 1
        failures = []
        for case, packet, info in zip(cases, packets_xml, info_lines):
            try:
                checker.check(case, packet, info)
            except Mismatch as error:
                failures.append(str(error))
        valid = sum(1 for c in cases if c["event"]["event"] in ("frame", "sealed") and "messageError" not in c["event"])
        elapsed = time.monotonic() - started
        for failure in failures:
            print("FAIL: " + failure)
        print("%s: %d frames checked (%d decoded, %d discarded, %d with payload errors), %d fields compared, "
              "%d mismatches, %.1f s"
              % ("FAIL" if failures else "OK", len(cases), valid,
                 sum(1 for c in cases if c["event"]["event"] == "discarded"),
                 sum(1 for c in cases if "messageError" in c["event"]), checker.compared, len(failures), elapsed))
        return 1 if failures else 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv):
    options = {"--keep": None, "--dissector": str(DISSECTOR)}
    while argv:
        if argv[0] not in options or len(argv) < 2:
            print("usage: test_dissector.py [--keep DIR] [--dissector FILE]")
            return 2
        options[argv[0]] = argv[1]
        argv = argv[2:]
    try:
        return run(options["--keep"], pathlib.Path(options["--dissector"]).resolve())
    except Mismatch as error:
        print("FAIL: " + str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
