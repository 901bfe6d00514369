#!/usr/bin/env python3
"""Generates the conformance vectors in protocol/vectors/ from protocol/messages.json.

An independent second implementation of PumpLink v1 and v2: its own CRC-32C (bit by bit), COBS,
payload encoder and decoder driven by the definitions, frame builder, reference stream decoder,
HMAC-SHA256 and HKDF from Python's standard library, and ChaCha20-Poly1305 from the
`cryptography` package. It shares nothing with the Swift codec but the definitions, so that the
Swift tests running these vectors compare two implementations.

Usage: generate_vectors.py [--check]   (--check: exit 1 if the committed vectors are out of date)

The format of the files is described in protocol/vectors/README.md.
"""
import datetime
import hashlib
import hmac
import json
import pathlib
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "codegen"))

from definitions import ROOT, INT_TYPES, load, field_range, payloads, payload_struct_name  # noqa: E402

OUTPUT = ROOT / "protocol" / "vectors"

VERSION = 1
SEALED_VERSION = 2
HEADER_LENGTH = 9
COUNTER_LENGTH = 8
TAG_LENGTH = 16
CHECK_LENGTH = 4
MAX_PAYLOAD = 1024
MIN_PACKET = HEADER_LENGTH + CHECK_LENGTH
MAX_PACKET = HEADER_LENGTH + MAX_PAYLOAD + TAG_LENGTH + CHECK_LENGTH
FLAG_RESPONSE = 0x01
FLAG_AUTHENTICATED = 0x02
FLAG_SEALED = 0x04
DOMAIN = b"PumpLink/1"
HELLO_DOMAIN = b"PumpLink/2 hello"
HOST_TO_PUMP = b"PumpLink/2 host to pump"
PUMP_TO_HOST = b"PumpLink/2 pump to host"


# --- CRC-32C, bit by bit (reflected 0x82F63B78, init and xorout 0xFFFFFFFF) -----------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# --- COBS (Cheshire and Baker 1999, StuffData as published) ----------------------------------

def cobs_encode(data):
    """Every zero becomes the end of a block; a block of 254 data bytes (code 0xFF) carries no
    implicit zero. As in the paper, the data ends with a final block even right after a full
    one, so 254 non-zero bytes encode as FF <254 bytes> 01."""
    out = bytearray([0])
    code_index = 0
    code = 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_index] = code
                code_index = len(out)
                out.append(0)
                code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(data):
    """Decodes one zero-free COBS block sequence; raises ValueError if a block is cut short."""
    out = bytearray()
    index = 0
    while index < len(data):
        code = data[index]
        if code == 0:
            raise ValueError("zero inside COBS data")
        block = data[index + 1:index + code]
        if len(block) != code - 1:
            raise ValueError("block cut short")
        out += block
        index += code
        if code != 0xFF and index < len(data):
            out.append(0)
    return bytes(out)


# --- Payloads, driven by the definitions -------------------------------------------------------

class WireError(Exception):
    """A payload decoding failure, with the fields the vectors record."""

    def __init__(self, **fields):
        super().__init__(fields)
        self.fields = fields


class Codec:
    def __init__(self, data):
        self.enums = data["enums"]
        self.structs = data["structs"]

    # Encoding (validates like an encoder must).

    def encode_fields(self, fields, value, label):
        out = bytearray()
        if set(value) != {f["name"] for f in fields}:
            raise ValueError("%s: fields %s, expected %s" % (label, sorted(value), [f["name"] for f in fields]))
        for field in fields:
            out += self.encode_field(field, value[field["name"]], "%s.%s" % (label, field["name"]))
        return bytes(out)

    def encode_field(self, field, value, label):
        kind = field["type"]
        if kind in INT_TYPES:
            lo, hi = field_range(field)
            if not lo <= value <= hi:
                raise ValueError("%s = %d outside %d...%d" % (label, value, lo, hi))
            size, signed = INT_TYPES[kind]
            return value.to_bytes(size, "little", signed=signed)
        if kind == "enum":
            enum = self.enums[field["enum"]]
            (raw,) = [v["value"] for v in enum["values"] if v["name"] == value]
            return raw.to_bytes(INT_TYPES[enum["type"]][0], "little")
        if kind == "struct":
            name = field["struct"]
            return self.encode_fields(self.structs[name]["fields"], value, name)
        if kind == "array":
            if len(value) > field["max"]:
                raise ValueError("%s has %d elements, max %d" % (label, len(value), field["max"]))
            name = field["of"]
            return bytes([len(value)]) + b"".join(
                self.encode_fields(self.structs[name]["fields"], element, name) for element in value)
        if kind == "string":
            utf8 = value.encode("utf-8")
            if len(utf8) > field["max"]:
                raise ValueError("%s is %d bytes, max %d" % (label, len(utf8), field["max"]))
            return bytes([len(utf8)]) + utf8
        if kind == "blob":
            if len(value) > field["max"]:
                raise ValueError("%s is %d bytes, max %d" % (label, len(value), field["max"]))
            return len(value).to_bytes(2, "little") + bytes(value)
        if kind == "bytes":
            if len(value) != field["length"]:
                raise ValueError("%s is %d bytes, expected %d" % (label, len(value), field["length"]))
            return bytes(value)
        raise ValueError(kind)

    # Decoding (checks every range, enumeration and length, in field order).

    def decode_payload(self, fields, label, payload):
        reader = Reader(payload)
        value = self.decode_fields(fields, label, reader)
        if reader.remaining:
            raise WireError(error="trailingBytes", count=reader.remaining)
        return value

    def decode_fields(self, fields, label, reader):
        return {f["name"]: self.decode_field(f, "%s.%s" % (label, f["name"]), reader) for f in fields}

    def decode_field(self, field, label, reader):
        kind = field["type"]
        if kind in INT_TYPES:
            value = reader.integer(kind)
            lo, hi = field_range(field)
            if not lo <= value <= hi:
                raise WireError(error="outOfRange", field=label, value=value)
            return value
        if kind == "enum":
            enum = self.enums[field["enum"]]
            raw = reader.integer(enum["type"])
            names = [v["name"] for v in enum["values"] if v["value"] == raw]
            if not names:
                raise WireError(error="invalidEnum", field=label, value=raw)
            return names[0]
        if kind == "struct":
            name = field["struct"]
            return self.decode_fields(self.structs[name]["fields"], name, reader)
        if kind == "array":
            count = reader.integer("u8")
            if count > field["max"]:
                raise WireError(error="tooLong", field=label, count=count, max=field["max"])
            name = field["of"]
            return [self.decode_fields(self.structs[name]["fields"], name, reader) for _ in range(count)]
        if kind == "string":
            count = reader.integer("u8")
            if count > field["max"]:
                raise WireError(error="tooLong", field=label, count=count, max=field["max"])
            raw = reader.take(count)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(error="invalidUTF8", field=label)
        if kind == "blob":
            count = reader.integer("u16")
            if count > field["max"]:
                raise WireError(error="tooLong", field=label, count=count, max=field["max"])
            return reader.take(count)
        if kind == "bytes":
            return reader.take(field["length"])
        raise ValueError(kind)


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.offset = 0

    @property
    def remaining(self):
        return len(self.data) - self.offset

    def take(self, count):
        if self.remaining < count:
            raise WireError(error="truncated", offset=self.offset, needed=count - self.remaining)
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def integer(self, kind):
        size, signed = INT_TYPES[kind]
        return int.from_bytes(self.take(size), "little", signed=signed)


def render(value):
    """A decoded value as the vectors (and WireValue) show it: bytes as lowercase hex."""
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


# --- Frames -----------------------------------------------------------------------------------

class Session:
    def __init__(self, key, host_nonce, pump_nonce):
        assert len(key) == 32 and len(host_nonce) == 8 and len(pump_nonce) == 8
        self.key, self.host_nonce, self.pump_nonce = key, host_nonce, pump_nonce

    def tag(self, packet):
        return hmac.new(self.key, DOMAIN + self.host_nonce + self.pump_nonce + packet, hashlib.sha256).digest()[:16]

    def json(self):
        return {"key": self.key.hex(), "hostNonce": self.host_nonce.hex(), "pumpNonce": self.pump_nonce.hex()}


def hkdf_sha256(key, salt, info, length=32):
    """RFC 5869: extract, then expand."""
    prk = hmac.new(salt, key, hashlib.sha256).digest()
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


class SealedSession:
    """A version 2 session (SPEC §8.3, §8.4): the keys from the Hello exchange, a counter per direction."""

    def __init__(self, key, hello_request_payload, hello_answer_packet):
        self.key = key
        self.request_payload = hello_request_payload
        self.answer_packet = hello_answer_packet
        self.hello_tag = hello_tag(key, hello_request_payload, hello_answer_packet)
        self.salt = hashlib.sha256(hello_request_payload + hello_answer_packet + self.hello_tag).digest()
        self.host_to_pump = hkdf_sha256(key, self.salt, HOST_TO_PUMP)
        self.pump_to_host = hkdf_sha256(key, self.salt, PUMP_TO_HOST)

    def seal(self, message_type, response, request_id, payload, counter):
        """The sealed packet: header | counter | ciphertext | tag | CRC-32C."""
        length = COUNTER_LENGTH + len(payload)
        flags = FLAG_SEALED | (FLAG_RESPONSE if response else 0)
        clear = (bytes([SEALED_VERSION, flags, message_type]) + request_id.to_bytes(4, "little")
                 + length.to_bytes(2, "little") + counter.to_bytes(8, "little"))
        key = self.pump_to_host if response else self.host_to_pump
        sealed = ChaCha20Poly1305(key).encrypt(sealed_nonce(counter), payload, clear)
        body = clear + sealed
        return body + crc32c(body).to_bytes(4, "little")

    def open(self, packet, receiver, last_counter):
        """(outcome, plaintext or None, counter) for the receiver ("host" or "pump")."""
        flags = packet[1]
        if packet[0] != SEALED_VERSION or not flags & FLAG_SEALED:
            return "notSealed", None, last_counter
        if bool(flags & FLAG_RESPONSE) != (receiver == "host"):
            return "wrongDirection", None, last_counter
        counter = int.from_bytes(packet[HEADER_LENGTH:HEADER_LENGTH + COUNTER_LENGTH], "little")
        if counter <= last_counter:
            return "replayed", None, last_counter
        key = self.pump_to_host if receiver == "host" else self.host_to_pump
        clear_end = HEADER_LENGTH + COUNTER_LENGTH
        try:
            plaintext = ChaCha20Poly1305(key).decrypt(sealed_nonce(counter), packet[clear_end:-4], packet[:clear_end])
        except InvalidTag:
            return "forged", None, last_counter
        return "opened", plaintext, counter


def hello_tag(key, hello_request_payload, hello_answer_packet):
    return hmac.new(key, HELLO_DOMAIN + hello_request_payload + hello_answer_packet, hashlib.sha256).digest()[:16]


def sealed_nonce(counter):
    return bytes(4) + counter.to_bytes(8, "little")


def build_packet(message_type, response, request_id, payload, session=None, flags=None, version=VERSION,
                 declared_length=None, tag=None):
    """header | payload | tag | CRC-32C. The keyword arguments after `session` build broken packets."""
    if flags is None:
        flags = (FLAG_RESPONSE if response else 0) | (FLAG_AUTHENTICATED if session else 0)
    length = len(payload) if declared_length is None else declared_length
    header = bytes([version, flags, message_type]) + request_id.to_bytes(4, "little") + length.to_bytes(2, "little")
    body = header + payload
    if session is not None:
        body += session.tag(body) if tag is None else tag
    return body + crc32c(body).to_bytes(4, "little")


def line(packet):
    return b"\x00" + cobs_encode(packet) + b"\x00"


def split_points(name, length):
    """A few fixed read boundaries for a line of `length` bytes: the edges, the middle and three
    positions derived from the vector's name (so they stay put when other vectors change)."""
    if length < 3:
        return []
    digest = hashlib.sha256(name.encode()).digest()
    points = {1, 2, length // 2, length - 1}
    for i in range(3):
        points.add(1 + int.from_bytes(digest[2 * i:2 * i + 2], "little") % (length - 1))
    return sorted(p for p in points if 0 < p < length)


def block_starts(encoded_line):
    """Offsets of the COBS code bytes in a line (0x00, blocks, 0x00)."""
    starts, index = [], 1
    while index < len(encoded_line) - 1:
        starts.append(index)
        index += encoded_line[index]
    return starts


def cut_inside_block(encoded_line):
    """The line up to the middle of its longest block: a frame cut short inside a block."""
    start = max(block_starts(encoded_line), key=lambda i: encoded_line[i])
    assert encoded_line[start] > 2
    return encoded_line[:start + encoded_line[start] // 2 + 1]


def cut_at_block_boundary(encoded_line):
    """The line up to the first block boundary past 6 bytes, where a block ends exactly."""
    start = [i for i in block_starts(encoded_line) if i > 6][0]
    return encoded_line[:start]


# --- The reference stream decoder --------------------------------------------------------------

class StreamDecoder:
    """Byte at a time, as the specification describes: every zero ends a candidate; a candidate
    is COBS-decoded on the fly into at most MAX_PACKET bytes, then checked."""

    def __init__(self, codec, messages):
        self.codec = codec
        self.messages = messages
        self.reset()

    def reset(self):
        self.buffer = bytearray()
        self.remaining = 0
        self.code = 0
        self.overflow = False

    def feed(self, data):
        events = []
        for byte in data:
            if byte == 0:
                event = self.finish()
                self.reset()
                if event is not None:
                    events.append(event)
                continue
            if self.overflow:
                continue
            if self.remaining == 0:
                if self.code not in (0, 0xFF):
                    if len(self.buffer) >= MAX_PACKET:
                        self.overflow = True
                        continue
                    self.buffer.append(0)
                self.code = byte
                self.remaining = byte - 1
                continue
            if len(self.buffer) >= MAX_PACKET:
                self.overflow = True
                continue
            self.buffer.append(byte)
            self.remaining -= 1
        return events

    def finish(self):
        packet = bytes(self.buffer)
        if self.overflow:
            return {"event": "discarded", "error": "oversize"}
        if not packet and self.code == 0:
            return None
        if self.remaining:
            return {"event": "discarded", "error": "truncated", "length": len(packet)}
        if len(packet) < MIN_PACKET:
            return {"event": "discarded", "error": "tooShort", "length": len(packet)}
        received = int.from_bytes(packet[-4:], "little")
        computed = crc32c(packet[:-4])
        if received != computed:
            return {"event": "discarded", "error": "checkFailed", "received": received, "computed": computed}
        if packet[0] not in (VERSION, SEALED_VERSION):
            return {"event": "discarded", "error": "unsupportedVersion", "version": packet[0]}
        flags = packet[1]
        defined = FLAG_RESPONSE | FLAG_AUTHENTICATED | (FLAG_SEALED if packet[0] == SEALED_VERSION else 0)
        if flags & ~defined or (flags & FLAG_AUTHENTICATED and flags & FLAG_SEALED):
            return {"event": "discarded", "error": "reservedFlags", "flags": flags}
        declared = int.from_bytes(packet[7:9], "little")
        tag_length = TAG_LENGTH if flags & (FLAG_AUTHENTICATED | FLAG_SEALED) else 0
        if (declared > MAX_PAYLOAD or HEADER_LENGTH + declared + tag_length + CHECK_LENGTH != len(packet)
                or (flags & FLAG_SEALED and declared < COUNTER_LENGTH)):
            return {"event": "discarded", "error": "lengthMismatch", "declared": declared, "packetLength": len(packet)}
        if flags & FLAG_SEALED:
            # The payload is a counter and ciphertext: nothing to decode without the keys.
            return {
                "event": "frame", "version": packet[0], "flags": flags, "messageType": packet[2],
                "requestId": int.from_bytes(packet[3:7], "little"), "payloadLength": declared,
                "counter": int.from_bytes(packet[HEADER_LENGTH:HEADER_LENGTH + COUNTER_LENGTH], "little"),
                "tag": packet[HEADER_LENGTH + declared:HEADER_LENGTH + declared + TAG_LENGTH].hex(),
            }
        payload = packet[HEADER_LENGTH:HEADER_LENGTH + declared]
        tag = packet[HEADER_LENGTH + declared:HEADER_LENGTH + declared + tag_length]
        return {
            "event": "frame",
            "flags": flags,
            "messageType": packet[2],
            "requestId": int.from_bytes(packet[3:7], "little"),
            "payloadLength": declared,
            "payload": payload.hex(),
            "tag": tag.hex() if tag else None,
            **self.message(packet[2], bool(flags & FLAG_RESPONSE), payload),
        }

    def message(self, message_type, response, payload):
        message = self.messages.get(message_type)
        if message is None:
            return {"messageError": {"error": "unknownMessageType", "messageType": message_type}}
        direction = "response" if response else "request"
        if direction not in message:
            return {"messageError": {"error": "noSuchDirection", "messageType": message_type, "isResponse": response}}
        try:
            fields = self.codec.decode_payload(message[direction], payload_struct_name(message, direction), payload)
        except WireError as error:
            return {"messageError": {"messageType": message_type, **error.fields}}
        return {"message": message["name"], "direction": direction, "fields": render(fields)}


# --- The vectors -------------------------------------------------------------------------------

def ms(text):
    """Milliseconds since the epoch of an ISO 8601 UTC time."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def derived(label, count):
    """Fixed pseudo-random bytes for keys and nonces, reproducible from their label."""
    return hashlib.sha256(("PumpLink vectors: " + label).encode()).digest()[:count]


KEY = derived("pairing key", 32)
HOST_NONCE = derived("host nonce", 8)
PUMP_NONCE = derived("pump nonce", 8)
SESSION = Session(KEY, HOST_NONCE, PUMP_NONCE)
OTHER_SESSION = Session(KEY, derived("host nonce, next session", 8), derived("pump nonce, next session", 8))
# An example definitions hash: vectors must not change when a comment in messages.json does.
EXAMPLE_DEFINITIONS_HASH = bytes.fromhex("5d1e0c3a9b7f2468")

NOW = ms("2025-03-14T09:26:53.250Z")
UTC_OFFSET = 60  # Central European Time

PROGRAM = {
    "programId": 42,
    "drug": "morphine",
    "concentrationMicrogramsPerMilliliter": 10000,  # 10 mg/mL
    "lowReservoirThresholdMicroliters": 2000,
    # Flex: weekdays 4 mg/day from 06:00 and 2.5 mg/day from 22:00 (running across midnight to
    # 06:00 next morning); weekends 3.5 mg/day from 08:00 and 2.5 mg/day from 23:30.
    "steps": [
        {"dayMask": 0x1F, "startMinute": 6 * 60, "doseRateMicrogramsPerDay": 4000},
        {"dayMask": 0x1F, "startMinute": 22 * 60, "doseRateMicrogramsPerDay": 2500},
        {"dayMask": 0x60, "startMinute": 8 * 60, "doseRateMicrogramsPerDay": 3500},
        {"dayMask": 0x60, "startMinute": 23 * 60 + 30, "doseRateMicrogramsPerDay": 2500},
    ],
    "periodicBoluses": [
        {"dayMask": 0x7F, "startMinute": 12 * 60, "doseMicrograms": 200, "durationMinutes": 30},
    ],
    "patientBolus": {"doseMicrograms": 100, "durationMinutes": 10, "lockoutMinutes": 180, "maxPerDay": 4},
}


def status(**changes):
    value = {
        "pumpTimeMs": NOW,
        "utcOffsetMinutes": UTC_OFFSET,
        "therapyState": "running",
        "reservoirMicroliters": 14250,
        "reservoirCapacityMicroliters": 20000,
        "currentDoseRateMicrogramsPerDay": 4000,
        "currentFlowMicrolitersPerDay": 400,
        "totalDeliveredMicroliters": 183402,
        "totalDeliveredMicrograms": 1834020,
        "activeProgramId": 42,
        "activeProgramChecksum": 0,  # set below
        "bolusActive": 0,
        "bolusRemainingMicroliters": 0,
        "batteryState": "ok",
        "batteryPercent": 87,
        "batteryDaysToEndOfService": 2650,
        "alarmConditionMask": 0,
        "alarmUnacknowledgedMask": 0,
        "patientBolusAvailableInSeconds": 0,
        "patientBolusesInLast24h": 2,
        "lastEventSequence": 1207,
        "lastExecutedRequestId": 120,
    }
    value.update(changes)
    return value


def event(sequence, time, kind, code=0, request_id=0, value1=0, value2=0):
    return {"sequence": sequence, "timeMs": time, "kind": kind, "code": code, "requestId": request_id,
            "value1": value1, "value2": value2}


class Generator:
    def __init__(self, data):
        self.data = data
        self.codec = Codec(data)
        self.messages = {m["type"]: m for m in data["messages"]}
        self.by_name = {m["name"]: m for m in data["messages"]}
        self.program_bytes = self.codec.encode_fields(data["structs"]["Program"]["fields"], PROGRAM, "Program")
        self.program_checksum = crc32c(self.program_bytes)

    def payload(self, name, direction, value):
        message = self.by_name[name]
        return self.codec.encode_fields(message[direction], value, payload_struct_name(message, direction))

    def decoder(self):
        return StreamDecoder(self.codec, self.messages)

    def events(self, stream):
        decoder = self.decoder()
        events = decoder.feed(stream)
        # The stream must not depend on how it is split into reads.
        byte_wise = self.decoder()
        assert [e for b in stream for e in byte_wise.feed(bytes([b]))] == events
        return events

    # frames.json

    def frame_vector(self, name, description, message, direction, request_id, value, session=None):
        definition = self.by_name[message]
        payload = self.payload(message, direction, value)
        packet = build_packet(definition["type"], direction == "response", request_id, payload, session)
        encoded = line(packet)
        (event,) = self.events(encoded)
        assert event["event"] == "frame" and event["fields"] == render(value), name
        # The Python decoder must read back exactly what was encoded.
        assert cobs_decode(encoded[1:-1]) == packet
        vector = {
            "name": name,
            "description": description,
            "message": message,
            "messageType": definition["type"],
            "direction": direction,
            "flags": packet[1],
            "requestId": request_id,
            "payloadLength": len(payload),
            "payload": payload.hex(),
            "authentication": None,
            "check": int.from_bytes(packet[-4:], "little"),
            "packet": packet.hex(),
            "line": encoded.hex(),
            "splits": split_points(name, len(encoded)),
            "fields": render(value),
        }
        if session is not None:
            vector["authentication"] = {**session.json(), "tag": packet[-20:-4].hex()}
        return vector

    def frames(self):
        checksum = self.program_checksum
        program = self.program_bytes
        hello_request = {
            "protocolVersionMin": 1, "protocolVersionMax": 1, "capabilities": 0x00000003,
            "definitionsHash": EXAMPLE_DEFINITIONS_HASH, "hostNonce": HOST_NONCE, "hostTimeMs": NOW - 1830,
        }
        hello_response = {
            "protocolVersion": 1, "capabilities": 0x00000003, "definitionsHash": EXAMPLE_DEFINITIONS_HASH,
            "pumpNonce": PUMP_NONCE, "model": "PumpLink IT-20 emulator", "serialNumber": "PLE20-0004217",
            "firmwareVersion": "1.4.2 µC-r7", "reservoirCapacityMicroliters": 20000, "pumpTimeMs": NOW,
            "utcOffsetMinutes": UTC_OFFSET, "lastExecutedRequestId": 120, "lastEventSequence": 1207,
            "maxPayloadBytes": 1024, "receiveWindowFrames": 4,
        }
        t = NOW - 86_400_000
        events = [
            event(1201, t + 3_600_000, "alarmRaised", code=8, value1=2000),
            event(1202, t + 7_200_000, "bolusStarted", code=5, value1=100, value2=10),
            event(1203, t + 7_800_000, "bolusCompleted", code=5, value1=100, value2=10),
            event(1204, t + 9_000_000, "patientBolusRefused", code=2, value1=1, value2=7_200),
            event(1205, t + 40_000_000, "refilled", code=0, request_id=118, value1=1_850, value2=18_000),
            event(1206, t + 40_060_000, "alarmCleared", code=8, value1=18_000),
            event(1207, t + 41_000_000, "programActivated", request_id=120, value1=42, value2=checksum),
        ]
        full_window = [
            event(1 + i, ms("2024-11-02T00:00:00Z") + i * 1_234_567,
                  ["bolusStarted", "bolusCompleted", "suspended", "resumed", "clockSet", "alarmAcknowledged"][i % 6],
                  code=[5, 5, 0, 0, 0, 9][i % 6], request_id=[0, 0, 40 + i, 40 + i, 40 + i, 40 + i][i % 6],
                  value1=[100, 100, 0, 0, 1_730_505_600 + i, 0][i % 6],
                  value2=[10, 10, 0, 0, 1_730_505_660 + i, 0][i % 6])
            for i in range(38)
        ]
        vectors = []

        def add(*args, **kwargs):
            vectors.append(self.frame_vector(*args, **kwargs))

        add("hello-request", "Hello opening a session; carries the host nonce. Never authenticated.",
            "Hello", "request", 1, hello_request)
        add("hello-response", "Hello response: identity, clock, request record state and the pump nonce; "
            "authenticated with the nonces of both sides.", "Hello", "response", 1, hello_response, SESSION)
        add("ping-request", "Keepalive.", "Ping", "request", 2, {"echo": 0x0123456789ABCD})
        add("ping-response", "Keepalive echo.", "Ping", "response", 2, {"echo": 0x0123456789ABCD})
        add("get-status-request", "Status on request: an empty payload.", "GetStatus", "request", 3, {})
        add("get-status-response", "Status: running a morphine flex program, no alarms.",
            "GetStatus", "response", 3, {"status": status(activeProgramChecksum=checksum)})
        add("get-status-unsolicited-low-reservoir", "Unsolicited streamed status (request id 0): "
            "reservoir low alarm active (condition and unacknowledged bit 8), patient bolus in lockout.",
            "GetStatus", "response", 0, {"status": status(
                pumpTimeMs=NOW + 5_000, reservoirMicroliters=1_980, activeProgramChecksum=checksum,
                alarmConditionMask=1 << 8, alarmUnacknowledgedMask=1 << 8,
                patientBolusAvailableInSeconds=5_400, totalDeliveredMicroliters=183_403,
                totalDeliveredMicrograms=1_834_030)})
        add("get-status-unsolicited-stopped", "Unsolicited status: therapy stopped by an empty reservoir "
            "(critical, bit 0), low reservoir latched (unacknowledged only), battery at elective replacement, "
            "no patient bolus allowed.", "GetStatus", "response", 0, {"status": status(
                pumpTimeMs=NOW + 3 * 86_400_000, therapyState="stopped", reservoirMicroliters=0,
                currentDoseRateMicrogramsPerDay=0, currentFlowMicrolitersPerDay=0,
                activeProgramChecksum=checksum, batteryState="electiveReplacement", batteryPercent=9,
                batteryDaysToEndOfService=88, alarmConditionMask=(1 << 0) | (1 << 9),
                alarmUnacknowledgedMask=(1 << 0) | (1 << 8) | (1 << 9),
                patientBolusAvailableInSeconds=0xFFFFFFFF, patientBolusesInLast24h=0, lastEventSequence=1260,
                utcOffsetMinutes=-300)})
        add("set-telemetry-request", "Stream status every 5 s.", "SetTelemetry", "request", 4, {"intervalMs": 5000})
        add("set-telemetry-response", "Streaming confirmed.", "SetTelemetry", "response", 4, {"intervalMs": 5000})
        add("read-events-request", "Read the event log from sequence 1201 on, up to 38 events.",
            "ReadEvents", "request", 5, {"firstSequence": 1201, "maxCount": 38})
        add("read-events-response", "Seven events: low reservoir alarm, a patient bolus, a refused one "
            "(lockout), a refill, the alarm cleared and a program activation.",
            "ReadEvents", "response", 5, {"oldestSequence": 1, "lastSequence": 1207, "events": events})
        add("read-events-response-full-window", "A full response of 38 events (997-byte payload): "
            "a frame longer than one COBS block.", "ReadEvents", "response", 6,
            {"oldestSequence": 1, "lastSequence": 1207, "events": full_window})
        add("read-events-response-empty", "Nothing new after sequence 1207.", "ReadEvents", "response", 7,
            {"oldestSequence": 1, "lastSequence": 1207, "events": []})
        add("read-program-request", "Read the staged program back.", "ReadProgram", "request", 8,
            {"slot": "staged", "offset": 0, "maxLength": 960})
        add("read-program-response", "The staged program, whole.", "ReadProgram", "response", 8,
            {"slot": "staged", "programId": 42, "checksum": checksum, "totalLength": len(program),
             "offset": 0, "data": program})
        add("query-request-request", "Was request 121 executed?", "QueryRequest", "request", 9, {"requestId": 121})
        add("query-request-response-executed", "Request 121 was executed; its stored response (a "
            "ClinicianBolus response) follows.", "QueryRequest", "response", 9,
            {"requestId": 121, "state": "executed", "lastExecutedRequestId": 121, "oldestRememberedRequestId": 114,
             "responseType": 25, "responsePayload": self.payload("ClinicianBolus", "response", {
                 "kind": "bridge", "doseMicrograms": 500, "volumeMicroliters": 50, "startedAtMs": NOW + 60_000,
                 "endsAtMs": NOW + 60_000 + 15 * 60_000, "eventSequence": 1208})})
        add("query-request-response-not-remembered", "Request 122 is not in the record and above the last "
            "executed id: it was never executed.", "QueryRequest", "response", 10,
            {"requestId": 122, "state": "notRemembered", "lastExecutedRequestId": 121,
             "oldestRememberedRequestId": 114, "responseType": 0, "responsePayload": b""})
        add("definitions-request", "Which messages does the pump know, and what is each on the wire?",
            "Definitions", "request", 11, {})
        add("definitions-response", "Three of the pump's message fingerprints (example values).", "Definitions",
            "response", 11, {"fingerprints": [
                {"messageType": 1, "fingerprint": 0x11223344}, {"messageType": 2, "fingerprint": 0x55667788},
                {"messageType": 127, "fingerprint": 0x99AABBCC}]})
        add("program-stage-begin-request", "Start staging program 42 (morphine flex program).",
            "ProgramStageBegin", "request", 130, {"programId": 42, "totalLength": len(program), "checksum": checksum},
            SESSION)
        add("program-stage-begin-response", "Staging started.", "ProgramStageBegin", "response", 130,
            {"programId": 42, "totalLength": len(program)}, SESSION)
        half = len(program) // 2
        add("program-stage-data-request-1", "First chunk of the program.", "ProgramStageData", "request", 131,
            {"programId": 42, "offset": 0, "data": program[:half]}, SESSION)
        add("program-stage-data-request-2", "Second chunk, pipelined before the first is answered.",
            "ProgramStageData", "request", 132, {"programId": 42, "offset": half, "data": program[half:]}, SESSION)
        add("program-stage-data-response-1", "First chunk received.", "ProgramStageData", "response", 131,
            {"programId": 42, "receivedLength": half}, SESSION)
        add("program-stage-data-response-2", "All bytes received.", "ProgramStageData", "response", 132,
            {"programId": 42, "receivedLength": len(program)}, SESSION)
        add("program-verify-request", "Verify the staged program.", "ProgramVerify", "request", 133, {}, SESSION)
        add("program-verify-response", "Staged program complete and valid. Largest daily dose 3.7 mg, on "
            "weekdays: 2.5 mg/day from 00:00 to 06:00 (the step that started at 22:00 the evening before), "
            "4 mg/day to 22:00, 2.5 mg/day to midnight (3.5 mg), plus the 200 µg periodic bolus.",
            "ProgramVerify", "response", 133,
            {"programId": 42, "totalLength": len(program), "checksum": checksum, "verdict": 0, "problem": 0,
             "dailyDoseMicrograms": 3700}, SESSION)
        add("program-activate-request", "Activate program 42 with its checksum.", "ProgramActivate", "request",
            134, {"programId": 42, "checksum": checksum}, SESSION)
        add("program-activate-response", "Activated atomically.", "ProgramActivate", "response", 134,
            {"programId": 42, "checksum": checksum, "activatedAtMs": NOW + 120_000, "eventSequence": 1209}, SESSION)
        add("refill-request", "Refill: 1.85 mL aspirated, 18 mL filled.", "Refill", "request", 135,
            {"aspiratedMicroliters": 1850, "newVolumeMicroliters": 18000}, SESSION)
        add("refill-response", "Refill recorded; expected 2.1 mL, no discrepancy.", "Refill", "response", 135,
            {"expectedMicroliters": 2100, "aspiratedMicroliters": 1850, "discrepancy": 0,
             "reservoirMicroliters": 18000, "eventSequence": 1210}, SESSION)
        add("set-clock-request", "Set the clock, moving the pump to New York time (UTC-5).", "SetClock",
            "request", 136, {"timeMs": NOW + 180_000, "utcOffsetMinutes": -300}, SESSION)
        add("set-clock-response", "Clock set.", "SetClock", "response", 136,
            {"previousTimeMs": NOW + 179_250, "timeMs": NOW + 180_000, "utcOffsetMinutes": -300}, SESSION)
        add("acknowledge-alarms-request", "Acknowledge low reservoir and elective replacement.",
            "AcknowledgeAlarms", "request", 137, {"alarmMask": (1 << 8) | (1 << 9)}, SESSION)
        add("acknowledge-alarms-response", "Elective replacement still present (acknowledged), nothing "
            "unacknowledged.", "AcknowledgeAlarms", "response", 137,
            {"alarmConditionMask": 1 << 9, "alarmUnacknowledgedMask": 0}, SESSION)
        add("suspend-request", "Suspend delivery.", "Suspend", "request", 138, {}, SESSION)
        add("suspend-response", "Suspended.", "Suspend", "response", 138,
            {"therapyState": "suspended", "eventSequence": 1211}, SESSION)
        add("resume-request", "Resume delivery.", "Resume", "request", 139, {}, SESSION)
        add("resume-response", "Running again.", "Resume", "response", 139,
            {"therapyState": "running", "eventSequence": 1212}, SESSION)
        add("clinician-bolus-request-bridge", "Bridge bolus of 500 µg over 15 minutes.", "ClinicianBolus",
            "request", 140, {"kind": "bridge", "doseMicrograms": 500, "volumeMicroliters": 0,
                             "durationMinutes": 15}, SESSION)
        add("clinician-bolus-request-priming", "Priming bolus of 220 µL (catheter dead space) over 30 minutes.",
            "ClinicianBolus", "request", 141, {"kind": "priming", "doseMicrograms": 0, "volumeMicroliters": 220,
                                               "durationMinutes": 30}, SESSION)
        add("clinician-bolus-response", "Bridge bolus started.", "ClinicianBolus", "response", 140,
            {"kind": "bridge", "doseMicrograms": 500, "volumeMicroliters": 50, "startedAtMs": NOW + 240_000,
             "endsAtMs": NOW + 240_000 + 15 * 60_000, "eventSequence": 1213}, SESSION)
        add("patient-bolus-request", "The patient presses the button.", "PatientBolus", "request", 142, {}, SESSION)
        add("patient-bolus-response-started", "Patient bolus started (third in 24 h).", "PatientBolus",
            "response", 142, {"outcome": "started", "doseMicrograms": 100, "bolusesInLast24h": 3,
                              "nextAllowedInSeconds": 10_800, "eventSequence": 1214}, SESSION)
        add("patient-bolus-response-refused", "Refused: daily maximum reached; none allowed until the "
            "oldest of the last 24 h ages out.", "PatientBolus", "response", 143,
            {"outcome": "refusedDailyMaximum", "doseMicrograms": 0, "bolusesInLast24h": 4,
             "nextAllowedInSeconds": 0xFFFFFFFF, "eventSequence": 1215}, SESSION)
        add("error-response-authentication-required", "An unauthenticated Suspend refused: the Error is "
            "not authenticated because the request was not.", "Error", "response", 144,
            {"requestType": 23, "code": "authenticationRequired", "detail": 0})
        add("error-response-authenticated", "A refill above the capacity refused; the Error answers an "
            "authenticated request and is authenticated.", "Error", "response", 145,
            {"requestType": 20, "code": "volumeExceedsCapacity", "detail": 40000}, SESSION)
        add("get-status-request-authenticated", "Reads may be authenticated too.", "GetStatus", "request", 146,
            {}, SESSION)
        return vectors

    # broken.json

    def stream_vector(self, name, description, stream, expected_errors, splits=None):
        events = self.events(stream)
        kinds = [e["error"] if e["event"] == "discarded" else
                 ("frame" if "message" in e or "counter" in e else "frame:" + e["messageError"]["error"])
                 for e in events]
        assert kinds == expected_errors, (name, kinds)
        return {
            "name": name,
            "description": description,
            "stream": stream.hex(),
            "splits": splits if splits is not None else split_points(name, len(stream)),
            "events": events,
        }

    def broken(self):
        ping = self.payload("Ping", "request", {"echo": 7})
        assert self.by_name["Ping"]["type"] == 2  # the hand-built packets below use the numbers
        ping_packet = build_packet(2, False, 21, ping)
        ping_line = line(ping_packet)
        status_packet = build_packet(3, True, 0, self.payload("GetStatus", "response", {"status": status(
            activeProgramChecksum=self.program_checksum)}))
        status_line = line(status_packet)
        suspend_packet = build_packet(23, False, 150, b"", SESSION)
        vectors = []

        def add(name, description, stream, expected, splits=None):
            vectors.append(self.stream_vector(name, description, stream, expected, splits))

        def corrupt(packet, index, mask=0x01):
            damaged = bytearray(packet)
            damaged[index] ^= mask
            return bytes(damaged)

        def recheck(body):
            """A packet whose CRC is right for a damaged body: errors beyond the check."""
            return body + crc32c(body).to_bytes(4, "little")

        # Frame level.
        add("bad-check-payload-bit", "One bit of the payload flipped: the CRC-32C fails; the next frame is "
            "decoded.", line(corrupt(ping_packet, 9)) + ping_line, ["checkFailed", "frame"])
        add("bad-check-crc-byte", "The last byte of the check itself damaged.",
            line(corrupt(ping_packet, len(ping_packet) - 1, 0xFF)), ["checkFailed"])
        add("bad-check-header", "The request id damaged: covered by the check like everything else.",
            line(corrupt(ping_packet, 4, 0x80)), ["checkFailed"])
        add("truncated-frame", "The line cut in the middle of a frame, then the next frame: the delimiter "
            "arrives inside a COBS block.", cut_inside_block(status_line) + status_line, ["truncated", "frame"])
        add("truncated-at-block-boundary", "A frame cut right after a complete COBS block: what arrived is "
            "well-formed but too short.", cut_at_block_boundary(ping_line) + ping_line, ["tooShort", "frame"])
        add("cut-cobs-block", "The code byte promises more data than arrives before the delimiter.",
            bytes([0, 0x09, 1, 2, 3, 0]), ["truncated"])
        add("truncated-after-code-byte", "Only a code byte before the delimiter.", bytes([0, 0x05, 0]),
            ["truncated"])
        add("oversize-candidate", "1100 non-zero bytes without a delimiter: more than the largest packet "
            "(1053 bytes) once decoded. Discarded; the next frame is decoded.",
            b"\x00" + cobs_encode(bytes([0x41]) * 1100) + ping_line, ["oversize", "frame"])
        add("oversize-garbage", "2000 bytes of 0x55 noise, then a frame.",
            bytes([0x55]) * 2000 + ping_line, ["oversize", "frame"])
        add("too-short", "A well-formed COBS candidate of 12 bytes: below the 13-byte minimum.",
            line(bytes(range(1, 13))), ["tooShort"])
        add("too-short-empty-packet", "A candidate that decodes to nothing (a lone 0x01 code byte).",
            bytes([0, 1, 0]), ["tooShort"])
        add("unsupported-version", "Version 3 with a correct check.",
            line(build_packet(2, False, 22, ping, version=3)), ["unsupportedVersion"])
        add("unsupported-version-zero", "Version 0 with a correct check.",
            line(build_packet(2, False, 23, ping, version=0)), ["unsupportedVersion"])
        add("reserved-flags", "Flag bit 2 (sealed) set on a version 1 frame, with a correct check.",
            line(build_packet(2, False, 24, ping, flags=0x04)), ["reservedFlags"])
        add("reserved-flags-version-2", "Flag bit 3 set on a version 2 frame, with a correct check.",
            line(build_packet(2, False, 29, ping, flags=0x08, version=2)), ["reservedFlags"])
        add("reserved-flags-sealed-and-authenticated", "A version 2 frame with both the sealed and the "
            "authenticated flag (and room for one tag): refused.",
            line(build_packet(2, False, 30, ping + bytes(16), flags=0x06, version=2, declared_length=len(ping))),
            ["reservedFlags"])
        add("length-mismatch-sealed-without-counter", "A version 2 sealed frame whose payload (4 bytes) "
            "cannot hold its 8-byte counter.",
            line(build_packet(2, False, 31, bytes(4) + bytes(16), flags=0x04, version=2, declared_length=4)),
            ["lengthMismatch"])
        add("reserved-flags-high", "Flag bit 7 set on a response, with a correct check.",
            line(build_packet(2, True, 25, ping, flags=0x81)), ["reservedFlags"])
        add("length-mismatch-long", "payloadLength says 9, the packet holds 8 payload bytes.",
            line(build_packet(2, False, 26, ping, declared_length=9)), ["lengthMismatch"])
        add("length-mismatch-short", "payloadLength says 7, the packet holds 8 payload bytes.",
            line(build_packet(2, False, 27, ping, declared_length=7)), ["lengthMismatch"])
        add("length-mismatch-missing-tag", "The authenticated flag set but no tag: 16 bytes short.",
            line(build_packet(2, False, 28, ping, flags=FLAG_AUTHENTICATED)), ["lengthMismatch"])
        add("length-mismatch-over-maximum", "payloadLength 1025 (above the 1024 maximum) and the packet "
            "really that long: refused all the same.",
            line(build_packet(12, True, 29, bytes([0x5A]) * 1025)), ["lengthMismatch"])
        noise = bytes([0x13, 0x37, 0xFF, 0x02, 0x7E])
        add("garbage-before-frame", "Line noise (no delimiter) before the first frame's delimiter.",
            noise + ping_line, ["truncated", "frame"])
        add("garbage-between-frames", "Noise between two frames, delimited on both sides.",
            ping_line + noise + status_line, ["frame", "truncated", "frame"])
        add("valid-cobs-garbage-between-frames", "Between two frames, noise that is valid COBS of 20 bytes "
            "but fails the check.", ping_line + cobs_encode(bytes(range(20))) + b"\x00" + status_line,
            ["frame", "checkFailed", "frame"])
        add("two-frames-one-read", "Two frames back to back sharing one delimiter, in one read.",
            ping_line[:-1] + status_line, ["frame", "frame"], splits=[])
        add("empty-candidates", "Runs of delimiters between frames are ignored.",
            b"\x00" * 5 + ping_line + b"\x00" * 3 + status_line + b"\x00" * 2, ["frame", "frame"])
        long_line = line(build_packet(5, True, 30, self.payload("ReadEvents", "response", {
            "oldestSequence": 1, "lastSequence": 40, "events": [
                event(i, ms("2025-01-01T00:00:00Z") + i * 60_000, "bolusCompleted", code=4, value1=200, value2=20)
                for i in range(1, 31)]})))
        add("one-frame-many-reads", "One 800-byte frame delivered in many reads; the splits give the "
            "read boundaries (offsets into the stream).", long_line, ["frame"],
            splits=list(range(7, len(long_line), 37)))
        add("frame-after-truncated-authenticated", "An authenticated Suspend cut short, then the same "
            "frame intact.", line(suspend_packet)[:20] + line(suspend_packet), ["truncated", "frame"])
        add("tag-cut-short", "An authenticated frame whose last 6 tag bytes were cut and the check "
            "recomputed: the length no longer matches.",
            line(recheck(suspend_packet[:-4 - 6])), ["lengthMismatch"])
        add("no-delimiter-yet", "A frame without its closing delimiter: no outcome until one comes.",
            ping_line[:-1], [])

        # COBS edge: a packet whose last block is a full 0xFF block, encoded without the final 0x01
        # block (as some encoders do): decoders must accept it.
        full_block = self.full_final_block_packet()
        paper = cobs_encode(full_block)
        assert paper.endswith(b"\x01")
        add("cobs-final-full-block-short-form", "A packet ending with 254 non-zero bytes, encoded without "
            "the final empty block (FF <254 bytes> instead of FF <254 bytes> 01): the same packet.",
            b"\x00" + paper[:-1] + b"\x00", ["frame"])
        add("cobs-final-full-block-paper-form", "The same packet in the paper's encoding (with the final "
            "0x01 block).", b"\x00" + paper + b"\x00", ["frame"])

        # Message level: the frame is intact, its payload is not a message.
        add("unknown-message-type", "Message type 200 is not defined: an intact frame whose message cannot "
            "be decoded.", line(build_packet(200, False, 40, b"\x01\x02")), ["frame:unknownMessageType"])
        add("no-such-direction", "An Error (type 127) sent as a request: Error exists only as a response.",
            line(build_packet(127, False, 41, b"\x14\x00\x0f\x00\x00\x00\x00")), ["frame:noSuchDirection"])
        add("out-of-range-field", "ReadEvents request with maxCount 39 (range 1...38).",
            line(build_packet(5, False, 42, (1201).to_bytes(4, "little") + bytes([39]))), ["frame:outOfRange"])
        add("out-of-range-zero", "ReadProgram request with maxLength 0 (range 1...960).",
            line(build_packet(6, False, 43, bytes([1, 0, 0, 0, 0]))), ["frame:outOfRange"])
        add("out-of-range-nested", "Status with batteryPercent 101 (range 0...100): the field is named "
            "by its structure.", line(build_packet(3, True, 0, self.status_with_battery(101))), ["frame:outOfRange"])
        add("out-of-range-signed", "SetClock request with utcOffsetMinutes -901 (range -900...900).",
            line(build_packet(21, False, 44, (NOW).to_bytes(8, "little") + (-901).to_bytes(2, "little", signed=True),
                              SESSION)), ["frame:outOfRange"])
        add("invalid-enum", "ClinicianBolus request with kind 9 (not a BolusKind).",
            line(build_packet(25, False, 45, bytes([9]) + (500).to_bytes(4, "little") + bytes(4)
                              + (15).to_bytes(2, "little"), SESSION)), ["frame:invalidEnum"])
        add("invalid-enum-u16", "Error response with code 999 (not an ErrorCode).",
            line(build_packet(127, True, 46, bytes([20]) + (999).to_bytes(2, "little") + bytes(4))),
            ["frame:invalidEnum"])
        add("invalid-enum-in-array", "ReadEvents response whose second event has kind 0.",
            line(build_packet(5, True, 47, self.events_with_bad_kind())), ["frame:invalidEnum"])
        add("trailing-bytes", "Ping request with 2 bytes after the last field.",
            line(build_packet(2, False, 48, ping + b"\xaa\xbb")), ["frame:trailingBytes"])
        add("trailing-bytes-empty-message", "GetStatus request (no fields) with one byte.",
            line(build_packet(3, False, 49, b"\x00")), ["frame:trailingBytes"])
        add("truncated-payload", "Ping request with 5 of its 8 bytes.",
            line(build_packet(2, False, 50, ping[:5])), ["frame:truncated"])
        add("truncated-blob", "ProgramStageData request whose blob says 100 bytes and holds 10.",
            line(build_packet(17, False, 51, (42).to_bytes(4, "little") + bytes(2) + (100).to_bytes(2, "little")
                              + bytes(range(1, 11)), SESSION)), ["frame:truncated"])
        add("too-long-array", "ReadEvents response claiming 39 events (max 38).",
            line(build_packet(5, True, 52, (1).to_bytes(4, "little") + (40).to_bytes(4, "little") + bytes([39]))),
            ["frame:tooLong"])
        add("too-long-string", "Hello response whose firmwareVersion says 17 bytes (max 16).",
            line(build_packet(1, True, 53, self.hello_with_long_firmware(), SESSION)), ["frame:tooLong"])
        add("too-long-blob", "ReadProgram response whose data says 961 bytes (max 960).",
            line(build_packet(6, True, 54, bytes([1]) + bytes(8) + bytes(4) + (961).to_bytes(2, "little")
                              + bytes([0x11]) * 961)), ["frame:tooLong"])
        add("invalid-utf8", "Hello response whose model is not UTF-8 (a lone 0xC3).",
            line(build_packet(1, True, 55, self.hello_with_bad_utf8(), SESSION)), ["frame:invalidUTF8"])
        add("invalid-utf8-surrogate", "Hello response whose serialNumber holds an encoded UTF-16 surrogate "
            "(ed a0 80), which is not UTF-8.",
            line(build_packet(1, True, 56, self.hello_response_bytes(serial=b"SN\xed\xa0\x80"), SESSION)),
            ["frame:invalidUTF8"])
        add("mixed", "A realistic bad line: noise, a frame, a corrupted frame, an oversize burst, a "
            "version-3 frame and a good frame.",
            noise + ping_line + line(corrupt(status_packet, 40, 0x10)) + bytes([0x99]) * 1200 + b"\x00"
            + line(build_packet(2, False, 60, ping, version=3)) + status_line,
            ["truncated", "frame", "checkFailed", "oversize", "unsupportedVersion", "frame"])
        return vectors

    def full_final_block_packet(self):
        """A ReadProgram response whose packet ends with exactly 254 non-zero bytes after its last
        zero: the last block of its COBS form is a full one."""
        for counter in range(1, 100000):
            data = bytearray(b"\x00") + bytes((1 + (i * 7 + counter) % 255) for i in range(250))
            payload = self.payload("ReadProgram", "response", {
                "slot": "staged", "programId": 42, "checksum": self.program_checksum, "totalLength": 600,
                "offset": 300, "data": bytes(data)})
            packet = build_packet(6, True, counter, payload)
            tail = packet[-254:]
            if 0 not in tail and packet[-255] == 0:
                return packet
        raise RuntimeError("no packet found")

    def events_with_bad_kind(self):
        fields = self.data["structs"]["Event"]["fields"]
        first = self.codec.encode_fields(fields, event(1, NOW, "suspended"), "Event")
        second = bytearray(self.codec.encode_fields(fields, event(2, NOW + 1, "resumed"), "Event"))
        second[12] = 0  # kind, after sequence (4) and timeMs (8)
        return (1).to_bytes(4, "little") + (2).to_bytes(4, "little") + bytes([2]) + first + bytes(second)

    def hello_response_bytes(self, firmware=b"1.0", model=b"IT-20", serial=b"SN-1"):
        return (bytes([1]) + (3).to_bytes(4, "little") + EXAMPLE_DEFINITIONS_HASH + PUMP_NONCE
                + bytes([len(model)]) + model + bytes([len(serial)]) + serial + bytes([len(firmware)]) + firmware
                + (20000).to_bytes(4, "little") + NOW.to_bytes(8, "little") + (60).to_bytes(2, "little")
                + bytes(4) + bytes(4) + (1024).to_bytes(2, "little") + bytes([4]))

    def hello_with_long_firmware(self):
        return self.hello_response_bytes(firmware=b"1.0.0-beta.123456")

    def status_with_battery(self, percent):
        value = status(activeProgramChecksum=self.program_checksum)
        encoded = bytearray(self.payload("GetStatus", "response", {"status": value}))
        offset = 8 + 2 + 1 + 4 * 4 + 8 + 8 + 4 + 4 + 1 + 4 + 1  # up to batteryPercent
        assert encoded[offset] == value["batteryPercent"]
        encoded[offset] = percent
        return bytes(encoded)

    def hello_with_bad_utf8(self):
        return self.hello_response_bytes(model=b"IT-20 \xc3")

    # auth.json

    def auth(self):
        frames = {v["name"]: v for v in self.frames()}
        hello_request = bytes.fromhex(frames["hello-request"]["line"])
        hello_response = bytes.fromhex(frames["hello-response"]["line"])
        bolus = {"kind": "single", "doseMicrograms": 250, "volumeMicroliters": 0, "durationMinutes": 10}
        bolus_payload = self.payload("ClinicianBolus", "request", bolus)
        request = build_packet(25, False, 121, bolus_payload, SESSION)
        forged = bytearray(request)
        forged[-5] ^= 0x01  # last tag byte
        forged = bytes(forged[:-4]) + crc32c(forged[:-4]).to_bytes(4, "little")
        tampered_body = bytearray(request[:-20])
        tampered_body[10] ^= 0x02  # doseMicrograms 250 -> 248, the old tag kept
        tampered = build_packet(25, False, 121, bytes(tampered_body[9:]), SESSION, tag=request[-20:-4])
        unauthenticated = build_packet(25, False, 121, bolus_payload)

        def check(name, description, packet, session, authentic):
            stream = line(packet)
            (decoded,) = self.events(stream)
            entry = {"name": name, "description": description, "line": stream.hex(),
                     "session": session.json(), "decoder": decoded["event"] if decoded["event"] == "frame"
                     else {k: v for k, v in decoded.items() if k != "event"}}
            if decoded["event"] == "frame":
                expected = decoded["tag"] is not None and decoded["tag"] == session.tag(
                    packet[:HEADER_LENGTH + decoded["payloadLength"]]).hex()
                assert expected == authentic, name
                entry["authentic"] = authentic
            return entry

        checks = [
            check("hello-response", "The pump's Hello response, tagged with the session's nonces.",
                  bytes.fromhex(frames["hello-response"]["packet"]), SESSION, True),
            check("tagged-request", "A ClinicianBolus request (id 121) correctly tagged.", request, SESSION, True),
            check("forged-tag", "The same frame with the last tag byte changed (check recomputed): "
                  "not authentic.", forged, SESSION, False),
            check("tampered-payload", "The dose changed, the original tag kept (check recomputed): "
                  "not authentic.", tampered, SESSION, False),
            check("other-session", "The tagged request checked under another session's nonces (a frame "
                  "recorded earlier and replayed after a new Hello): not authentic.", request, OTHER_SESSION,
                  False),
            check("other-key", "The tagged request checked with a different pairing key: not authentic.",
                  request, Session(derived("another pump's key", 32), HOST_NONCE, PUMP_NONCE), False),
            check("unauthenticated", "The same request without the authenticated flag and tag: not "
                  "authentic (a required-auth request must be refused with authenticationRequired).",
                  unauthenticated, SESSION, False),
            check("tag-cut-short", "The tag cut to 10 bytes and the check recomputed: the decoder refuses "
                  "the frame (length mismatch) before authentication.",
                  request[:-4 - 6] + crc32c(request[:-4 - 6]).to_bytes(4, "little"), SESSION, False),
            check("tag-removed-flag-kept", "The tag removed, the authenticated flag kept, the check "
                  "recomputed: length mismatch.",
                  request[:-20] + crc32c(request[:-20]).to_bytes(4, "little"), SESSION, False),
        ]
        return {
            "description": "Authentication (HMAC-SHA256 truncated to 16 bytes over \"PumpLink/1\" || hostNonce "
                           "|| pumpNonce || header || payload) and the pump's request record.",
            "domain": DOMAIN.hex(),
            "session": SESSION.json(),
            "otherSession": OTHER_SESSION.json(),
            "hello": {"request": hello_request.hex(), "response": hello_response.hex()},
            "checks": checks,
            "replay": self.replay(),
        }

    def replay(self):
        def request(request_id, dose):
            return line(build_packet(25, False, request_id, self.payload("ClinicianBolus", "request", {
                "kind": "single", "doseMicrograms": dose, "volumeMicroliters": 0, "durationMinutes": 10}), SESSION))

        def error(request_id, code, detail=0):
            return line(build_packet(127, True, request_id, self.payload("Error", "response", {
                "requestType": 25, "code": code, "detail": detail}), SESSION))

        executed = line(build_packet(25, True, 121, self.payload("ClinicianBolus", "response", {
            "kind": "single", "doseMicrograms": 250, "volumeMicroliters": 25, "startedAtMs": NOW + 1_000,
            "endsAtMs": NOW + 601_000, "eventSequence": 1208}), SESSION))
        return {
            "description": "Requests in one session, in order, and what the pump's request record must make of "
                           "them. All frames are authenticated under `session`. Before the first step the pump "
                           "has executed requests up to id 120 and remembers ids 113 to 120.",
            "initialRecord": {"lastExecutedRequestId": 120, "oldestRememberedRequestId": 113},
            "steps": [
                {"description": "A new bolus, id 121 above the last executed id: executed once.",
                 "request": request(121, 250).hex(), "outcome": "executed", "response": executed.hex(),
                 "lastExecutedRequestIdAfter": 121},
                {"description": "The same frame again (a retransmission after a lost response): answered "
                                "with the stored response, byte for byte; not executed again.",
                 "request": request(121, 250).hex(), "outcome": "answeredFromRecord", "response": executed.hex(),
                 "lastExecutedRequestIdAfter": 121},
                {"description": "Id 121 again with a different dose: refused.",
                 "request": request(121, 300).hex(), "outcome": "error", "errorCode": "requestIdConflict",
                 "response": error(121, "requestIdConflict").hex(), "lastExecutedRequestIdAfter": 121},
                {"description": "An older id (100) that is not in the record: a replay, refused.",
                 "request": request(100, 250).hex(), "outcome": "error", "errorCode": "staleRequestId",
                 "response": error(100, "staleRequestId", detail=121).hex(), "lastExecutedRequestIdAfter": 121},
            ],
        }

    # sealed.json

    def sealed(self):
        hello_request = {
            "protocolVersionMin": 1, "protocolVersionMax": 2, "capabilities": 0x00000007,
            "definitionsHash": EXAMPLE_DEFINITIONS_HASH, "hostNonce": HOST_NONCE, "hostTimeMs": NOW - 1830,
        }
        hello_response = {
            "protocolVersion": 2, "capabilities": 0x00000007, "definitionsHash": EXAMPLE_DEFINITIONS_HASH,
            "pumpNonce": PUMP_NONCE, "model": "PumpLink IT-20 emulator", "serialNumber": "PLE20-0004217",
            "firmwareVersion": "2.0.0", "reservoirCapacityMicroliters": 20000, "pumpTimeMs": NOW,
            "utcOffsetMinutes": UTC_OFFSET, "lastExecutedRequestId": 120, "lastEventSequence": 1207,
            "maxPayloadBytes": 1016, "receiveWindowFrames": 4,
        }
        request_payload = self.payload("Hello", "request", hello_request)
        answer_payload = self.payload("Hello", "response", hello_response)
        answer_body = (bytes([VERSION, FLAG_RESPONSE | FLAG_AUTHENTICATED, 1]) + (121).to_bytes(4, "little")
                       + len(answer_payload).to_bytes(2, "little") + answer_payload)
        session = SealedSession(KEY, request_payload, answer_body)
        answer_packet = answer_body + session.hello_tag + crc32c(answer_body + session.hello_tag).to_bytes(4, "little")
        request_line = line(build_packet(1, False, 121, request_payload))
        (event,) = self.events(line(answer_packet))
        assert event["event"] == "frame" and event["fields"] == render(hello_response)

        def downgraded(**changes):
            return self.payload("Hello", "request", {**hello_request, **changes})

        hello_checks = [
            {"name": "as-sent", "description": "The answer's tag over the request as sent: authentic.",
             "requestPayload": request_payload.hex(), "authentic": True},
            {"name": "version-max-lowered", "description": "protocolVersionMax rewritten from 2 to 1 on the "
             "line: the pump's tag no longer matches the request the host sent.",
             "requestPayload": downgraded(protocolVersionMax=1).hex(), "authentic": False},
            {"name": "capability-stripped", "description": "Capability bit 2 (QueryRequest) stripped from the "
             "request: not authentic.", "requestPayload": downgraded(capabilities=0x00000003).hex(),
             "authentic": False},
            {"name": "other-host-nonce", "description": "Another hostNonce (a replayed answer from an earlier "
             "Hello): not authentic.", "requestPayload": downgraded(hostNonce=derived("host nonce, next session", 8)).hex(),
             "authentic": False},
        ]
        for check in hello_checks:
            tag = hello_tag(KEY, bytes.fromhex(check["requestPayload"]), answer_body)
            assert (tag == session.hello_tag) == check["authentic"], check["name"]

        frames = []
        counters = {"host": 0, "pump": 0}

        def add(name, description, message, direction, request_id, value, counter=None):
            definition = self.by_name[message]
            sender = "pump" if direction == "response" else "host"
            counters[sender] = counter if counter is not None else counters[sender] + 1
            payload = self.payload(message, direction, value)
            packet = session.seal(definition["type"], direction == "response", request_id, payload, counters[sender])
            receiver = "host" if sender == "pump" else "pump"
            outcome, plaintext, _ = session.open(packet, receiver, counters[sender] - 1)
            assert outcome == "opened" and plaintext == payload, name
            (event,) = self.events(line(packet))
            assert event["event"] == "frame" and event["counter"] == counters[sender], name
            frames.append({
                "name": name, "description": description, "message": message, "messageType": definition["type"],
                "direction": direction, "requestId": request_id, "counter": counters[sender],
                "payload": payload.hex(), "fields": render(value), "packet": packet.hex(),
                "line": line(packet).hex(),
            })
            return packet

        bolus = {"kind": "single", "doseMicrograms": 250, "volumeMicroliters": 0, "durationMinutes": 10}
        executed = {"kind": "single", "doseMicrograms": 250, "volumeMicroliters": 25, "startedAtMs": NOW + 1_000,
                    "endsAtMs": NOW + 601_000, "eventSequence": 1208}
        get_status = add("get-status-request", "The host's first sealed frame (counter 1): GetStatus.",
                         "GetStatus", "request", 122, {})
        status_answer = add("get-status-response", "Its answer, the pump's first sealed frame (counter 1).",
                            "GetStatus", "response", 122, {"status": status(activeProgramChecksum=self.program_checksum)})
        bolus_request = add("clinician-bolus-request", "A clinician bolus (counter 2).", "ClinicianBolus",
                            "request", 123, bolus)
        add("clinician-bolus-response", "The bolus started (counter 2).", "ClinicianBolus", "response", 123,
            executed)
        add("clinician-bolus-retransmitted", "The same request sent again after a lost answer: the same id "
            "and payload, sealed again under the next counter (3).", "ClinicianBolus", "request", 123, bolus)
        add("clinician-bolus-response-again", "The pump answers the retransmission from its request record, "
            "sealed under its next counter (3).", "ClinicianBolus", "response", 123, executed)
        add("status-unsolicited", "An unsolicited Status (request id 0), sealed like every pump frame "
            "(counter 4).", "GetStatus", "response", 0, {"status": status(
                pumpTimeMs=NOW + 5_000, activeProgramChecksum=self.program_checksum)})
        add("error-response", "An Error answering a sealed request is sealed too (counter 5).", "Error",
            "response", 124, {"requestType": 20, "code": "volumeExceedsCapacity", "detail": 40000})

        other = SealedSession(KEY, downgraded(hostNonce=derived("host nonce, next session", 8)), answer_body)

        def changed(packet, index, mask=0x01):
            damaged = bytearray(packet[:-4])
            damaged[index] ^= mask
            return bytes(damaged) + crc32c(bytes(damaged)).to_bytes(4, "little")

        clear_status = build_packet(3, True, 122, bytes.fromhex(frames[1]["payload"]))
        opens = []

        def check(name, description, packet, receiver, last, outcome):
            result, plaintext, after = session.open(packet, receiver, last)
            assert result == outcome, (name, result)
            entry = {"name": name, "description": description, "receiver": receiver,
                     "lastCounter": last, "line": line(packet).hex(), "outcome": outcome, "lastCounterAfter": after}
            if plaintext is not None:
                entry["payload"] = plaintext.hex()
            opens.append(entry)

        check("opens", "The pump opens the host's first frame.", get_status, "pump", 0, "opened")
        check("opens-after-a-gap", "Counter 2 after counter 0: a lost frame leaves a gap, nothing more.",
              bolus_request, "pump", 0, "opened")
        check("replayed", "The same frame again after it was opened: refused.", get_status, "pump", 1, "replayed")
        check("reordered", "Counter 1 after counter 2 was opened: refused.", get_status, "pump", 2, "replayed")
        check("wrong-direction", "A host frame offered to the host: refused.", get_status, "host", 0,
              "wrongDirection")
        check("forged-tag", "The last tag byte changed (check recomputed).", changed(status_answer, len(status_answer) - 5),
              "host", 0, "forged")
        check("tampered-ciphertext", "A ciphertext bit flipped.", changed(status_answer, 20), "host", 0, "forged")
        check("tampered-request-id", "The request id in the clear header changed: the header is "
              "associated data.", changed(bolus_request, 3), "pump", 0, "forged")
        check("tampered-counter", "The counter raised from 2 to 3 in transit: the counter is associated data.",
              changed(bolus_request, 9, 0x01), "pump", 0, "forged")
        check("other-session", "A frame sealed in another session (other keys).",
              other.seal(3, False, 122, b"", 1), "pump", 0, "forged")
        check("not-sealed", "A version 1 frame in clear, where a sealed one is due.", clear_status, "host", 0,
              "notSealed")
        return {
            "description": "Version 2: the Hello exchange's tag, the session keys derived from it, sealed frames "
                           "in both directions in the order sent, and what a receiver makes of frames replayed, "
                           "reordered, altered or from elsewhere (SPEC §8.3, §8.4).",
            "key": KEY.hex(),
            "hello": {
                "request": {"payload": request_payload.hex(), "line": request_line.hex(), "fields": render(hello_request)},
                "answer": {"packet": answer_packet.hex(), "line": line(answer_packet).hex(),
                           "tag": session.hello_tag.hex(), "fields": render(hello_response)},
                "checks": hello_checks,
            },
            "salt": session.salt.hex(),
            "keys": {"hostToPump": session.host_to_pump.hex(), "pumpToHost": session.pump_to_host.hex()},
            "frames": frames,
            "open": opens,
        }

    # primitives.json

    def wire_form(self, message):
        """SPEC §1.3, written here again: the message's definition without documentation,
        enumerations and structures in place, as canonical JSON."""
        def field(f):
            out = {}
            for key, value in f.items():
                if key == "doc":
                    continue
                if key == "enum":
                    enum = self.data["enums"][value]
                    value = {"name": value, "type": enum["type"], "values": [[v["name"], v["value"]] for v in enum["values"]]}
                elif key in ("struct", "of"):
                    value = {"name": value, "fields": [field(g) for g in self.data["structs"][value]["fields"]]}
                out[key] = value
            return out
        form = {"type": message["type"], "name": message["name"], "auth": message["auth"]}
        for direction in ("request", "response"):
            if direction in message:
                form[direction] = [field(f) for f in message[direction]]
        return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def fingerprints(self):
        entries = []
        for message in sorted(self.data["messages"], key=lambda m: m["type"]):
            form = self.wire_form(message)
            digest = hashlib.sha256(form.encode("utf-8")).digest()
            entries.append({"messageType": message["type"], "name": message["name"], "wireForm": form,
                            "fingerprint": int.from_bytes(digest[:4], "little")})
        body = b"".join(bytes([e["messageType"]]) + e["fingerprint"].to_bytes(4, "little") for e in entries)
        return {"messages": entries, "definitionsHash": hashlib.sha256(body).digest()[:8].hex()}

    def primitives(self):
        crc_inputs = [
            ("check value", b"123456789"),
            ("empty", b""),
            ("one zero byte", b"\x00"),
            ("32 zero bytes", bytes(32)),
            ("32 0xFF bytes", bytes([0xFF]) * 32),
            ("0 to 31", bytes(range(32))),
            ("PumpLink/1", DOMAIN),
        ]
        cobs_inputs = [
            ("empty", b""),
            ("one zero", b"\x00"),
            ("two zeros", b"\x00\x00"),
            ("zero between", b"\x11\x00\x22"),
            ("no zeros", b"\x11\x22\x33\x44"),
            ("trailing zero", b"\x11\x22\x00"),
            ("leading and trailing zeros", b"\x00\x11\x00"),
            ("16 zeros", bytes(16)),
            ("253 non-zero bytes", bytes(1 + i % 255 for i in range(253))),
            ("254 non-zero bytes", bytes(1 + i % 255 for i in range(254))),
            ("255 non-zero bytes", bytes(1 + i % 255 for i in range(255))),
            ("zero then 254 non-zero bytes", b"\x00" + bytes(1 + i % 255 for i in range(254))),
            ("254 non-zero bytes then zero", bytes(1 + i % 255 for i in range(254)) + b"\x00"),
            ("600 non-zero bytes", bytes(1 + i % 255 for i in range(600))),
            ("0 to 255", bytes(range(256))),
        ]
        cobs = []
        for name, data in cobs_inputs:
            encoded = cobs_encode(data)
            assert cobs_decode(encoded) == data and 0 not in encoded
            cobs.append({"name": name, "decoded": data.hex(), "encoded": encoded.hex()})
        alternative = bytes([0xFF]) + bytes(1 + i % 255 for i in range(254))
        assert cobs_decode(alternative) == bytes(1 + i % 255 for i in range(254))
        return {
            "crc32c": [{"name": name, "input": data.hex(), "crc32c": crc32c(data)} for name, data in crc_inputs],
            "cobs": cobs,
            "cobsDecodeOnly": [
                {"name": "254 non-zero bytes without the final empty block",
                 "encoded": alternative.hex(), "decoded": alternative[1:].hex()},
            ],
            "fingerprints": self.fingerprints(),
            "limits": {
                "version": VERSION, "headerLength": HEADER_LENGTH, "tagLength": TAG_LENGTH,
                "checkLength": CHECK_LENGTH, "maxPayloadLength": MAX_PAYLOAD, "minPacketLength": MIN_PACKET,
                "maxPacketLength": MAX_PACKET,
            },
        }

    def files(self):
        frames = self.frames()
        covered = {(v["message"], v["direction"]) for v in frames}
        for message, direction, _ in payloads(self.data):
            assert (message["name"], direction) in covered, (message["name"], direction)
        header = {"protocol": "PumpLink", "version": VERSION,
                  "generator": "tools/vectors/generate_vectors.py", "format": "protocol/vectors/README.md"}
        return {
            "primitives.json": {**header, **self.primitives()},
            "frames.json": {**header, "frames": frames},
            "broken.json": {**header, "streams": self.broken()},
            "auth.json": {**header, **self.auth()},
            "sealed.json": {**header, "version": SEALED_VERSION, **self.sealed()},
        }


def serialise(value):
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main():
    files = {name: serialise(value) for name, value in Generator(load()).files().items()}
    if "--check" in sys.argv:
        stale = [name for name, text in files.items()
                 if not (OUTPUT / name).exists() or (OUTPUT / name).read_text() != text]
        for name in stale:
            print("protocol/vectors/%s is out of date: run python3 tools/vectors/generate_vectors.py" % name)
        return 1 if stale else 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUTPUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
