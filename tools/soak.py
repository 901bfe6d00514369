#!/usr/bin/env python3
"""The noisy-link soak: pumplinkd and one emulated pump over a pseudo-terminal with injected
bit errors, dropped, duplicated and garbage bytes, delays and hang-ups, under thousands of API
commands (patient and clinician boluses, program pushes, suspend and resume, reads). Then it
counts, from the pump's own record and from captures of both sides of the fault injector:

- corrupted frames accepted: damaged candidates (not byte-equal to any frame written) that
  decode as valid frames, in each direction; must be 0;
- boluses: those the pump's event log shows started = those the daemon reported started, and
  every uncertain request resolved truthfully (executed: the pump's log shows its effect; not
  executed: it shows nothing of it);
- programs: every activation in the pump's log, every program the daemon served during the run
  and the program active at the end is exactly one of the programs pushed (or the pump's first);
- the daemon's copy of the event log equals the pump's: no gap, no duplicate, same content;
- no request executed twice; no request id sent for two commands; no request executed that the
  daemon did not record sending; no uncertain request left unresolved for 20 s on a clean link.

Each check prints a figure; any violation makes the exit status 1. Python 3 standard library
only; run through tools/soak, which builds and cleans up.
"""

import argparse
import collections
import glob
import json
import os
import random
import sqlite3
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pumplink_rig import Daemon, Definitions, Emulator, Processes, RigError, crc32c, pumpctl_json, tail  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUMP = "pump-1"
DEFAULT_FAULTS = "ber=1e-3,drop=1e-4,dup=0.01,garbage=0.01,delay=5"
PUMP_SIDE = "pump before link faults"


# MARK: - Protocol pieces (CRC-32C, COBS, frame checks, program encoding)

MAX_PACKET = 1053


def cobs_decode(candidate):
    """The packet a candidate (the bytes between two delimiters) encodes, or the reason it does not."""
    out = bytearray()
    i, n = 0, len(candidate)
    while i < n:
        code = candidate[i]
        if code == 0:
            return None, "truncated"
        end = i + code
        if end > n:
            return None, "truncated"  # the delimiter came inside a block
        out += candidate[i + 1:end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
        if len(out) > MAX_PACKET:
            return None, "oversize"
    return bytes(out), None


def frame_verdict(candidate):
    """'frame' if a decoder must accept the candidate, else why it is discarded (SPEC §4)."""
    packet, error = cobs_decode(candidate)
    if error:
        return error
    if len(packet) < 13:
        return "tooShort"
    if crc32c(packet[:-4]) != struct.unpack_from("<I", packet, len(packet) - 4)[0]:
        return "checkFailed"
    version, flags, _, _, length = struct.unpack_from("<BBBIH", packet, 0)
    if version not in (1, 2):
        return "unsupportedVersion"
    if flags & (0xFC if version == 1 else 0xF8) or flags & 0x06 == 0x06:
        return "reservedFlags"
    if 9 + length + (16 if flags & 0x06 else 0) + 4 != len(packet) or (flags & 0x04 and length < 8):
        return "lengthMismatch"
    return "frame"


# MARK: - Captures (pcapng, SPEC §15)

def read_pcapng(path):
    """[(interface name, description, direction, candidate bytes)] of one file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    packets, interfaces, offset = [], [], 0
    while offset + 12 <= len(data):
        block_type, length = struct.unpack_from("<II", data, offset)
        if length < 12 or offset + length > len(data):
            break  # a partial last block
        body = data[offset + 8:offset + length - 4]
        if block_type == 0x0A0D0D0A:
            interfaces = []
        elif block_type == 1:
            options = parse_options(body[8:])
            interfaces.append((options.get(2, b"").decode(errors="replace"), options.get(3, b"").decode(errors="replace")))
        elif block_type == 6:
            interface, _, _, captured, _ = struct.unpack_from("<IIIII", body, 0)
            candidate = bytes(body[20:20 + captured])
            options = parse_options(body[20 + (captured + 3) // 4 * 4:])
            flags = struct.unpack("<I", options[2])[0] if 2 in options else 0
            direction = {1: "in", 2: "out"}.get(flags & 3, "?")
            name, description = interfaces[interface]
            packets.append((name, description, direction, candidate))
        offset += length
    return packets


def parse_options(raw):
    options, i = {}, 0
    while i + 4 <= len(raw):
        code, length = struct.unpack_from("<HH", raw, i)
        if code == 0:
            break
        options[code] = raw[i + 4:i + 4 + length]
        i += 4 + (length + 3) // 4 * 4
    return options


def read_captures(paths):
    packets = []
    for path in paths:
        packets += read_pcapng(path)
    return packets


def direction_figures(written, received):
    """Candidates received, how many are byte-equal to a frame written (intact), how many are
    damaged, and of those how many a decoder would accept (the figure that must be 0)."""
    written = set(written)
    figures = collections.Counter()
    verdicts = collections.Counter()
    for candidate in received:
        figures["received"] += 1
        verdict = frame_verdict(candidate)
        verdicts[verdict] += 1
        if candidate in written:
            figures["intact"] += 1
            if verdict != "frame":
                figures["intactButInvalid"] += 1
        else:
            figures["damaged"] += 1
            if verdict == "frame":
                figures["damagedAccepted"] += 1
    figures["valid"] = verdicts["frame"]
    return figures, verdicts


# MARK: - The run

PATIENT_OUTCOMES_STARTED = {"started"}


class Soak:
    def __init__(self, args):
        self.args = args
        self.random = random.Random(args.seed)
        self.definitions = Definitions(os.path.join(ROOT, "protocol", "messages.json"))
        self.work = args.work
        self.processes = Processes(self.work)
        self.commands = []          # every API call: dict(kind, status, outcome, body, intent, ...)
        self.violations = []        # (check, text)
        self.programs = {}          # programId -> (program JSON, checksum)
        self.program_polls = collections.Counter()
        self.hangups = 0
        self.last_intent = 0
        self.stop_hangups = threading.Event()

    def violation(self, check, text):
        self.violations.append((check, text))
        if sum(1 for c, _ in self.violations if c == check) <= 5:
            print(f"  VIOLATION [{check}] {text}", flush=True)

    # MARK: Setup

    def start(self):
        faults = self.args.faults
        if "seed=" not in faults:
            faults = f"seed={self.args.seed}," + faults
        self.faults = faults
        self.emulator = Emulator(
            self.processes, os.path.join(self.args.bin, "pump-emulator"), self.work,
            extra=["--time-scale", str(self.args.time_scale), "--capacity-microliters", "40000",
                   "--faults", faults, "--capture", os.path.join(self.work, "emulator.pcapng"),
                   "--capture-before-faults"])
        self.emulator.start()
        self.capture_dir = os.path.join(self.work, "daemon-captures")
        self.daemon = Daemon(
            self.processes, os.path.join(self.args.bin, "pumplinkd"), self.work,
            [{"id": PUMP, "port": self.emulator.link, "keyFile": self.emulator.key_file}],
            extra_config={"telemetryIntervalMs": 500,
                          "capture": {"directory": self.capture_dir, "alwaysOn": True,
                                      "maxFileBytes": 1 << 30, "maxFiles": 1000}})
        self.daemon.start()
        self.daemon.wait_link_up(PUMP, timeout=60)

    def make_programs(self):
        """The pump's first program and four pushed ones, each remembered with its checksum."""
        deadline = time.monotonic() + 60
        while True:
            # Under noise the daemon may need a few tries to read the program after connecting.
            status, first = self.daemon.request("GET", f"/v1/pumps/{PUMP}/program")
            if status == 200 and isinstance(first, dict):
                break
            if time.monotonic() > deadline:
                raise RigError(f"GET program: {status} {first}")
            time.sleep(0.5)
        detail = self.daemon.pump(PUMP)
        pump_status = detail["summary"]["status"]
        checksum = self.definitions.checksum(first)
        if checksum != pump_status["activeProgramChecksum"] or first["programId"] != pump_status["activeProgramId"]:
            raise RigError(f"program checksum computed here {checksum} differs from the pump's {pump_status['activeProgramChecksum']}")
        self.programs[first["programId"]] = (first, checksum)

        def program(program_id, steps, bolus):
            p = dict(first)
            p["programId"] = program_id
            p["steps"] = [{"dayMask": 127, "startMinute": m, "doseRateMicrogramsPerDay": r} for m, r in steps]
            p["periodicBoluses"] = []
            p["patientBolus"] = dict(zip(("doseMicrograms", "durationMinutes", "lockoutMinutes", "maxPerDay"), bolus))
            return p

        pushed = [
            program(101, [(0, 2400)], (100, 1, 5, 12)),
            program(102, [(0, 2000), (420, 2700), (1320, 2200)], (150, 1, 10, 8)),
            program(103, [(110 * i, 2200 + 40 * (i % 5)) for i in range(13)], (80, 2, 5, 12)),
            program(104, [(120 * i, 2300 + 25 * (i % 4)) for i in range(12)], (100, 1, 5, 10)),
        ]
        for p in pushed:
            self.programs[p["programId"]] = (p, self.definitions.checksum(p))
        self.pushable = [p["programId"] for p in pushed]

    # MARK: Commands

    def api(self, kind, method, path, body=None, token=None, changing=False):
        started = time.monotonic()
        try:
            status, answer = self.daemon.request(method, path, body=body, token=token, timeout=self.args.request_timeout)
        except RigError as error:
            status, answer = None, str(error)
        record = {"kind": kind, "status": status, "seconds": round(time.monotonic() - started, 3)}
        record["outcome"] = self.outcome(kind, status, answer)
        if isinstance(answer, dict) and status != 200:
            record["error"] = answer.get("error", {}).get("code")
        if changing:
            record["intent"] = self.new_intent(kind)
        if record.get("error") == "linkDown":
            # As a client would: wait for the link before the next command.
            waited = time.monotonic()
            try:
                self.daemon.wait_link_up(PUMP, timeout=60, with_status=False)
            except RigError:
                self.violation("link", f"the link stayed down for 60 s after command {len(self.commands) + 1}")
            record["waitedForLink"] = round(time.monotonic() - waited, 3)
        record["answer"] = answer if kind in ("patientBolus", "clinicianBolus", "push") else None
        self.commands.append(record)
        return record, answer

    @staticmethod
    def outcome(kind, status, answer):
        if status is None:
            return "no-answer"
        if status == 200:
            if kind == "patientBolus":
                return "started" if answer.get("outcome") in PATIENT_OUTCOMES_STARTED else "refused"
            return "started" if kind == "clinicianBolus" else "done"
        if status == 502:
            return "uncertain"
        if status in (400, 401, 403, 404, 409):
            return "refused"
        return "failed"

    def new_intent(self, kind):
        """The audit intent the command just created, if any (commands run one at a time)."""
        status, records = self.daemon.request("GET", f"/v1/audit?pump={PUMP}&limit=8")
        if status != 200:
            raise RigError(f"GET audit: {status} {records}")
        intents = sorted(r["id"] for r in records if r.get("intentID") is None and r["id"] > self.last_intent)
        if len(intents) > 1:
            self.violation("audit", f"{kind}: {len(intents)} audit intents for one command: {intents}")
        if intents:
            self.last_intent = intents[-1]
            return intents[-1]
        return None

    def poll_program(self, when):
        status, program = self.daemon.request("GET", f"/v1/pumps/{PUMP}/program")
        self.program_polls["polls"] += 1
        if status != 200:
            self.program_polls[f"http {status}"] += 1
            return
        known = self.programs.get(program.get("programId")) if isinstance(program, dict) else None
        if program is None:
            self.program_polls["none"] += 1
            self.violation("program", f"{when}: the daemon serves no active program (null), but the pump always runs one")
        elif known is None or known[0] != program:
            self.violation("program", f"{when}: the daemon serves a program that was never pushed: {json.dumps(program)[:300]}")
        else:
            self.program_polls[f"program {program['programId']}"] += 1

    def run_commands(self):
        pump = f"/v1/pumps/{PUMP}"
        mix = [("patientBolus", 30), ("clinicianBolus", 14), ("push", 10), ("suspend", 4), ("resume", 6),
               ("status", 12), ("program", 10), ("events", 8), ("pumps", 6)]
        kinds, weights = zip(*mix)
        events_from = 1
        count = self.args.commands
        started = time.monotonic()
        for n in range(1, count + 1):
            self.daemon.check_alive()
            kind = self.random.choices(kinds, weights)[0]
            if kind == "patientBolus":
                self.api(kind, "POST", f"{pump}/bolus/patient", body={}, token=self.daemon.patient, changing=True)
            elif kind == "clinicianBolus":
                body = {"kind": "single", "doseMicrograms": self.random.choice((50, 100, 200)),
                        "volumeMicroliters": 0, "durationMinutes": self.random.choice((1, 2))}
                self.api(kind, "POST", f"{pump}/bolus/clinician", body=body, changing=True)
            elif kind == "push":
                program_id = self.random.choice(self.pushable)
                program, checksum = self.programs[program_id]
                record, answer = self.api(kind, "POST", f"{pump}/program", body={"program": program}, changing=True)
                record["programId"] = program_id
                if record["status"] == 200:
                    activated = answer.get("activated", {})
                    if (activated.get("programId"), activated.get("checksum")) != (program_id, checksum):
                        self.violation("program", f"push of {program_id} answered with activation {activated}")
                elif record["status"] == 409 and record.get("error") in ("overrideRequired", "limitExceeded"):
                    self.violation("setup", f"program {program_id} refused by the safety rules: {answer}")
            elif kind == "suspend":
                self.api(kind, "POST", f"{pump}/suspend", body={}, changing=True)
            elif kind == "resume":
                self.api(kind, "POST", f"{pump}/resume", body={}, changing=True)
            elif kind == "status":
                self.api(kind, "GET", pump)
            elif kind == "program":
                self.api(kind, "GET", f"{pump}/program")
            elif kind == "events":
                record, answer = self.api(kind, "GET", f"{pump}/events?from={events_from}&limit=200")
                if record["status"] == 200 and isinstance(answer, (list, dict)):
                    batch = answer.get("events", answer) if isinstance(answer, dict) else answer
                    if batch:
                        events_from = max(1, batch[-1]["sequence"] - 5)
            elif kind == "pumps":
                self.api(kind, "GET", "/v1/pumps")
            if n % self.args.poll_every == 0:
                self.poll_program(f"after command {n}")
            if n % 100 == 0 or n == count:
                elapsed = time.monotonic() - started
                outcomes = collections.Counter(c["outcome"] for c in self.commands)
                print(f"  {n}/{count} commands, {elapsed:.0f} s, hang-ups {self.hangups}: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())), flush=True)

    def hang_up_now_and_then(self):
        """Short hang-ups at random moments, through the emulator's control file."""
        rng = random.Random(self.args.seed * 7919 + 1)
        while not self.stop_hangups.wait(rng.uniform(0.5, 2.0) * self.args.hangup_interval):
            milliseconds = rng.choice((100, 300, 800, 1500))
            self.emulator.control_line(f"hangup {milliseconds}")
            self.hangups += 1

    # MARK: End

    def settle(self):
        """Clean link; waits until the daemon is caught up: link up, nothing uncertain, every
        event the pump reports stored. An uncertain request the daemon leaves unresolved for
        20 s on a clean, established link is a violation (new doses stay blocked); one
        hang-up then makes the daemon reconnect and resolve it, so the rest can be checked."""
        self.emulator.control_line("faults none")
        time.sleep(1.0)
        started = time.monotonic()
        deadline = started + 90
        detail = None
        nudged = False
        while time.monotonic() < deadline:
            if not nudged and time.monotonic() > started + 20 and detail is not None \
                    and detail["summary"]["link"]["state"] == "up" and detail["summary"]["uncertainRequests"]:
                self.violation("uncertain stuck", f"requests {detail['summary']['uncertainRequests']} still uncertain after 20 s "
                               "on a clean link that is up: new doses stay blocked until the next reconnection")
                self.emulator.control_line("hangup 200")
                self.hangups += 1
                nudged = True
            try:
                detail = self.daemon.pump(PUMP)
            except RigError:
                time.sleep(0.5)
                continue
            summary = detail["summary"]
            status = summary.get("status") or {}
            if (summary["link"]["state"] == "up" and not summary["uncertainRequests"]
                    and status and detail["lastStoredEventSequence"] >= status.get("lastEventSequence", 1 << 40)):
                # One fresh status read through a changing-free request, then compare again.
                time.sleep(1.5)
                again = self.daemon.pump(PUMP)
                if again["lastStoredEventSequence"] >= (again["summary"].get("status") or {}).get("lastEventSequence", 1 << 40) \
                        and not again["summary"]["uncertainRequests"]:
                    return again
            time.sleep(0.5)
        self.violation("settle", f"the daemon did not catch up within 90 s: {json.dumps(detail)[:400] if detail else None}")
        return detail

    def finish(self):
        self.stop_hangups.set()
        self.hangup_thread.join()
        time.sleep(2.0)  # a hang-up under way comes back
        self.settled = self.settle()
        self.poll_program("at the end")
        status, self.metrics = self.daemon.request("GET", "/metrics")
        self.metrics = self.metrics.decode() if isinstance(self.metrics, bytes) else str(self.metrics)
        self.daemon_exit = self.daemon.stop()
        binary = os.path.join(self.args.bin, "pumpctl")
        link, key = self.emulator.link, self.emulator.key_file
        self.pump_events = self.read_pump(binary, ["events", "--from", "1"])
        self.pump_program = self.read_pump(binary, ["program", "show"])
        self.pump_status = self.read_pump(binary, ["status"])
        self.emulator.stop()

    def read_pump(self, binary, arguments):
        last = None
        for _ in range(5):
            try:
                return pumpctl_json(binary, self.emulator.link, self.emulator.key_file, arguments, cwd=self.work)
            except RigError as error:
                last = error
                time.sleep(1.0)
        raise last

    # MARK: Checks

    def check(self):
        db = sqlite3.connect(os.path.join(self.daemon.data, "pumplink.sqlite"))
        figures = {}
        pump_events = self.pump_events.get("events", self.pump_events) if isinstance(self.pump_events, dict) else self.pump_events
        kind_number = {name: number for number, name in self.definitions.event_kinds.items()}

        def as_row(e):
            kind = e["kind"] if isinstance(e["kind"], int) else kind_number[e["kind"]]
            return (e["sequence"], e["timeMs"], kind, e["code"], e["requestId"], e["value1"], e["value2"])

        pump_rows = [as_row(e) for e in pump_events]
        db_rows = [tuple(r) for r in db.execute(
            "SELECT sequence, timeMs, kind, code, requestID, value1, value2 FROM event WHERE pumpID = ? ORDER BY sequence", (PUMP,))]
        db_rows = [(s, t & 0xFFFFFFFFFFFFFFFF, k, c, r, v1, v2) for s, t, k, c, r, v1, v2 in db_rows]

        # 1. The event log: the daemon's copy is the pump's.
        sequences = [r[0] for r in db_rows]
        gaps = sum(1 for a, b in zip(sequences, sequences[1:]) if b != a + 1) + (1 if sequences and sequences[0] != 1 else 0)
        duplicates = len(sequences) - len(set(sequences))
        pump_by_sequence = {r[0]: r for r in pump_rows}
        db_by_sequence = {r[0]: r for r in db_rows}
        # Events the pump logged after the last status the daemon received cannot be in its copy.
        seen_until = ((self.settled or {}).get("summary", {}).get("status") or {}).get("pumpTimeMs", 0)
        last_stored = max(sequences, default=0)
        later = [s for s, r in pump_by_sequence.items() if s > last_stored and r[1] > seen_until]
        missing = sorted(set(pump_by_sequence) - set(db_by_sequence) - set(later))
        extra = sorted(set(db_by_sequence) - set(pump_by_sequence))
        differing = [s for s in set(pump_by_sequence) & set(db_by_sequence) if pump_by_sequence[s] != db_by_sequence[s]]
        figures["events"] = {"pump": len(pump_rows), "daemon": len(db_rows), "afterLastStatus": len(later),
                             "gaps": gaps, "duplicates": duplicates,
                             "missing": len(missing), "extra": len(extra), "differing": len(differing)}
        for name, value in (("gaps", gaps), ("duplicates", duplicates)):
            if value:
                self.violation("event log", f"{value} {name} in the daemon's event log")
        if missing:
            self.violation("event log", f"{len(missing)} pump events not in the daemon's log, e.g. {missing[:10]}")
        if extra:
            self.violation("event log", f"{len(extra)} events in the daemon's log the pump does not have, e.g. {extra[:10]}")
        for s in sorted(differing)[:5]:
            self.violation("event log", f"event {s}: pump {pump_by_sequence[s]}, daemon {db_by_sequence[s]}")

        # 2. Requests: what the daemon sent, reported and resolved, against the pump's log.
        sent = collections.defaultdict(list)       # intent -> [(requestID, messageType)]
        sender = {}                                 # requestID -> intent
        reused = 0
        for intent, request_id, message_type in db.execute("SELECT intentID, requestID, messageType FROM sent WHERE pumpID = ? ORDER BY timeMs", (PUMP,)):
            sent[intent].append((request_id, message_type))
            if request_id in sender and sender[request_id][0] != intent:
                reused += 1
                self.violation("request id reused", f"request id {request_id} sent for intent {sender[request_id][0]} "
                               f"({sender[request_id][1]}) and again for intent {intent} ({message_type})")
            sender[request_id] = (intent, message_type)
        outcomes = collections.defaultdict(list)    # intent -> [outcome rows in order]
        actions = {}
        for row_id, action, outcome, intent_id in db.execute("SELECT id, action, outcome, intentID FROM audit WHERE pumpID = ? ORDER BY id", (PUMP,)):
            if intent_id is None:
                actions[row_id] = action
                if outcome != "pending":
                    outcomes[row_id].append(outcome)  # a complete row: refused before anything was sent
            else:
                outcomes[intent_id].append(outcome)

        effect_kinds = {"bolus.patient": {"bolusStarted", "patientBolusRefused"}, "bolus.clinician": {"bolusStarted"},
                        "program.push": {"programActivated"}, "suspend": {"suspended"}, "resume": {"resumed"}}
        # Suspending a suspended pump is done and logs nothing; these must show their effect.
        must_show = {"bolus.patient", "bolus.clinician", "program.push"}
        by_request = collections.defaultdict(list)   # requestId -> [event rows]
        for row in pump_rows:
            if row[4]:
                by_request[row[4]].append(row)
        name = self.definitions.event_kinds

        # No request executed twice: one effect event of a kind per request.
        twice = 0
        for request_id, rows in by_request.items():
            kinds = collections.Counter(name[r[2]] for r in rows)
            for kind in ("bolusStarted", "patientBolusRefused", "programActivated", "suspended", "resumed", "refilled", "clockSet"):
                if kinds[kind] > 1:
                    twice += 1
                    self.violation("executed twice", f"request {request_id}: {kinds[kind]} {kind} events")
        unsent = sorted(r for r in by_request if r not in sender)
        if unsent:
            self.violation("requests", f"{len(unsent)} requests in the pump's log the daemon never recorded sending: {unsent[:10]}")
        figures["requests"] = {"sent": len(sender), "idsReused": reused, "executedTwice": twice, "executedUnsent": len(unsent)}

        resolution = collections.Counter()
        for intent, action in actions.items():
            final = outcomes[intent]
            requests = [r for r, _ in sent[intent]]
            effects = [r for req in requests for r in by_request.get(req, []) if name[r[2]] in effect_kinds.get(action, set())]
            if "uncertain" in final:
                resolved = [o for o in final if o.startswith("resolved-")]
                if not resolved:
                    resolution["unresolved"] += 1
                    self.violation("uncertain", f"intent {intent} ({action}) still uncertain at the end")
                    continue
                executed = resolved[-1] == "resolved-executed"
                resolution[resolved[-1]] += 1
                if executed and not effects and action in must_show:
                    any_event = [r for req in requests for r in by_request.get(req, [])]
                    self.violation("uncertain", f"intent {intent} ({action}, requests {requests}) resolved as executed, "
                                   f"but the pump's log shows no {'/'.join(sorted(effect_kinds.get(action, {'effect'})))} "
                                   f"for it (events of its requests: {any_event})")
                    resolution["executedWithoutEffect"] += 1
                if not executed and effects:
                    self.violation("uncertain", f"intent {intent} ({action}) resolved as not executed, but the pump's log shows {effects}")
                    resolution["notExecutedWithEffect"] += 1
            elif final and final[-1] in ("rejected", "failed", "refused") and [
                    r for r in effects if name[r[2]] != "patientBolusRefused"]:
                # A patient bolus the pump refused ran (logged patientBolusRefused) and gave
                # nothing: reported rejected, as it should be.
                self.violation("requests", f"intent {intent} ({action}) reported {final[-1]}, but the pump's log shows {effects}")
                resolution["reportedFailedWithEffect"] += 1
            elif final and final[-1] == "done" and action in must_show and not effects:
                self.violation("requests", f"intent {intent} ({action}) reported done, but the pump's log shows no effect of requests {requests}")
                resolution["reportedDoneWithoutEffect"] += 1
            elif not final:
                resolution["noOutcome"] += 1
                self.violation("audit", f"intent {intent} ({action}) has no outcome")
        figures["uncertain"] = dict(resolution)

        # 3. Boluses: the pump's started boluses = the ones the daemon reported started, plus
        # uncertain ones it resolved as executed.
        for label, codes, action in (("patient", {5}, "patientBolus"), ("clinician", {1, 2, 3}, "clinicianBolus")):
            pump_started = {r[4] for r in pump_rows if name[r[2]] == "bolusStarted" and r[3] in codes}
            without_request = sum(1 for r in pump_rows if name[r[2]] == "bolusStarted" and r[3] in codes and r[4] == 0)
            reported, resolved = set(), set()
            for c in self.commands:
                if c["kind"] != action or c.get("intent") is None:
                    continue
                requests = {r for r, t in sent[c["intent"]] if t in ("PatientBolus", "ClinicianBolus", "patientBolus", "clinicianBolus")}
                if c["outcome"] == "started":
                    reported |= requests
                    if not requests:
                        self.violation("bolus", f"a {label} bolus reported started with no request recorded as sent (intent {c['intent']})")
                if "resolved-executed" in outcomes[c["intent"]]:
                    resolved |= requests & pump_started
            daemon_total = reported | resolved
            figures[f"{label}Boluses"] = {"pump": len(pump_started), "daemonReported": len(reported),
                                          "resolvedExecuted": len(resolved), "daemonTotal": len(daemon_total)}
            if without_request:
                self.violation("bolus", f"{without_request} {label} boluses in the pump's log without a request id")
            if pump_started != daemon_total:
                self.violation("bolus", f"{label} boluses: the pump started {len(pump_started)}, the daemon reported "
                               f"{len(daemon_total)}; only in the pump's log: {sorted(pump_started - daemon_total)[:10]}, "
                               f"only reported: {sorted(daemon_total - pump_started)[:10]}")

        # 4. Programs: every activation, the end state.
        activations = [(r[5], r[6]) for r in pump_rows if name[r[2]] == "programActivated"]
        known = {pid: checksum for pid, (_, checksum) in self.programs.items()}
        foreign = [a for a in activations if known.get(a[0]) != a[1]]
        for a in foreign[:5]:
            self.violation("program", f"the pump activated program {a[0]} with checksum {a[1]}, which was never pushed")
        final_program = self.pump_program
        entry = self.programs.get(final_program.get("programId"))
        exact = entry is not None and entry[0] == final_program
        if not exact:
            self.violation("program", f"the pump's active program at the end is none of the pushed ones: {json.dumps(final_program)[:300]}")
        if activations and activations[-1] != (final_program.get("programId"), known.get(final_program.get("programId"))):
            self.violation("program", f"the last activation in the log is {activations[-1]}, the active program {final_program.get('programId')}")
        status = self.pump_status.get("status", self.pump_status)
        if entry and (status.get("activeProgramId"), status.get("activeProgramChecksum")) != (entry[0]["programId"], entry[1]):
            self.violation("program", f"the pump's status names program {status.get('activeProgramId')}/{status.get('activeProgramChecksum')}")
        figures["programs"] = {"activations": len(activations), "foreign": len(foreign),
                               "activeAtEnd": final_program.get("programId"), "activeExactlyPushed": exact,
                               "polls": dict(self.program_polls)}

        # 5. Frames: captures of both sides of the fault injector.
        emulator_packets = read_captures(sorted(glob.glob(os.path.join(self.work, "emulator*.pcapng"))))
        daemon_packets = read_captures(sorted(glob.glob(os.path.join(self.capture_dir, "*.pcapng"))))
        pump_wrote = [p[3] for p in emulator_packets if p[1] == PUMP_SIDE and p[2] == "out"]
        pump_got = [p[3] for p in emulator_packets if p[1] == PUMP_SIDE and p[2] == "in"]
        line_from_pump = [p[3] for p in emulator_packets if p[1] == "host" and p[2] == "out"]
        hosts_wrote = [p[3] for p in emulator_packets if p[1] == "host" and p[2] == "in"]
        daemon_got = [p[3] for p in daemon_packets if p[2] == "in"]
        daemon_wrote = [p[3] for p in daemon_packets if p[2] == "out"]
        to_daemon, to_daemon_verdicts = direction_figures(pump_wrote, daemon_got)
        to_pump, to_pump_verdicts = direction_figures(hosts_wrote, pump_got)
        for f in (to_daemon, to_pump):
            for key in ("received", "intact", "damaged", "damagedAccepted", "intactButInvalid"):
                f[key] += 0  # present in the figures even when 0
        figures["pumpToDaemon"] = dict(to_daemon, written=len(pump_wrote), verdicts=dict(to_daemon_verdicts))
        figures["daemonToPump"] = dict(to_pump, written=len(hosts_wrote), daemonWrote=len(daemon_wrote), verdicts=dict(to_pump_verdicts))
        if not pump_wrote or not daemon_got or not pump_got or not hosts_wrote:
            self.violation("captures", f"a capture is empty: pump wrote {len(pump_wrote)}, daemon got {len(daemon_got)}, "
                           f"pump got {len(pump_got)}, hosts wrote {len(hosts_wrote)}")
        for label, f in (("pump to daemon", to_daemon), ("daemon to pump", to_pump)):
            if f["damagedAccepted"]:
                self.violation("corrupted frames", f"{label}: {f['damagedAccepted']} damaged candidates decode as valid frames")
            if f["intactButInvalid"]:
                self.violation("captures", f"{label}: {f['intactButInvalid']} candidates equal to a written frame do not decode")
        # The line seen from both ends: the emulator's line capture and the daemon's.
        figures["lineCrossCheck"] = {
            "daemonGotNotOnLine": len(set(daemon_got) - set(line_from_pump)),
            "daemonWroteNotOnLine": len(set(daemon_wrote) - set(hosts_wrote)),
        }
        # The daemon's counters (updated with each status it receives, per session: a lower bound).
        metric = {}
        for line in self.metrics.splitlines():
            for key in ("pumplink_frames_received_total", "pumplink_check_failures_total", "pumplink_frames_sent_total",
                        "pumplink_retransmissions_total", "pumplink_authentication_failures_total"):
                if line.startswith(key + "{"):
                    metric[key] = int(float(line.split()[-1]))
        figures["metrics"] = metric
        if metric.get("pumplink_frames_received_total", 0) > to_daemon["valid"]:
            self.violation("corrupted frames", f"the daemon counts {metric['pumplink_frames_received_total']} frames received, "
                           f"more than the {to_daemon['valid']} valid candidates it was sent")
        figures["emulatorFaults"] = self.emulator_fault_counts()
        figures["hangups"] = {"requested": self.hangups, "emulatorLogged": self.emulator_hangups()}
        return figures

    def emulator_log_lines(self):
        lines = []
        for path in sorted(glob.glob(os.path.join(self.work, "pump-emulator-*.log"))):
            with open(path, errors="replace") as f:
                lines += f.read().splitlines()
        return lines

    def emulator_fault_counts(self):
        for line in self.emulator_log_lines():
            if "link faults injected:" in line:
                return dict(item.split("=") for item in line.split("injected:")[1].split())
        return {}

    def emulator_hangups(self):
        return sum(1 for line in self.emulator_log_lines() if ": hang-up for " in line)


def print_summary(soak, figures, seconds):
    print()
    print(f"noisy-link soak: seed {soak.args.seed}, faults '{soak.faults}', time scale {soak.args.time_scale}, "
          f"{len(soak.commands)} commands in {seconds:.0f} s")
    table = collections.defaultdict(collections.Counter)
    for c in soak.commands:
        table[c["kind"]][c["outcome"]] += 1
    columns = ["started", "done", "refused", "uncertain", "failed", "no-answer"]
    print(f"  {'command':<16}" + "".join(f"{c:>11}" for c in columns) + f"{'total':>8}")
    for kind in sorted(table):
        row = table[kind]
        print(f"  {kind:<16}" + "".join(f"{row[c]:>11}" for c in columns) + f"{sum(row.values()):>8}")
    errors = collections.Counter(c.get("error") for c in soak.commands if c.get("error"))
    if errors:
        print("  refusals and errors by code: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()))
    slow = max((c["seconds"] for c in soak.commands), default=0)
    waited = sum(c.get("waitedForLink", 0) for c in soak.commands)
    print(f"  slowest answer {slow:.1f} s; {waited:.0f} s spent waiting for the link after linkDown answers")
    f = figures
    faults = f["emulatorFaults"]
    print(f"  faults injected (emulator): " + (", ".join(f"{k} {v}" for k, v in faults.items()) or "none logged")
          + f"; hang-ups {f['hangups']['requested']} requested, {f['hangups']['emulatorLogged']} done")
    for label, key in (("pump -> daemon", "pumpToDaemon"), ("daemon -> pump", "daemonToPump")):
        d = f[key]
        print(f"  {label}: {d['written']} frames written, {d.get('received', 0)} candidates received, {d.get('intact', 0)} intact, "
              f"{d.get('damaged', 0)} damaged, {d.get('damagedAccepted', 0)} damaged accepted; verdicts {d['verdicts']}")
    print(f"  line cross-check: {f['lineCrossCheck']}; daemon metrics: {f['metrics']}")
    e = f["events"]
    print(f"  event log: pump {e['pump']}, daemon {e['daemon']}, gaps {e['gaps']}, duplicates {e['duplicates']}, "
          f"missing {e['missing']}, extra {e['extra']}, differing {e['differing']}")
    for label in ("patient", "clinician"):
        b = f[f"{label}Boluses"]
        print(f"  {label} boluses: pump log {b['pump']}, daemon reported {b['daemonReported']} + resolved executed "
              f"{b['resolvedExecuted']} = {b['daemonTotal']}")
    print(f"  uncertain requests: {f['uncertain'] or 'none'}; requests {f['requests']}")
    p = f["programs"]
    print(f"  programs: {p['activations']} activations, {p['foreign']} never pushed, active at the end {p['activeAtEnd']} "
          f"(exactly as pushed: {p['activeExactlyPushed']}); polls {p['polls']}")
    checks = collections.Counter(c for c, _ in soak.violations)
    print(f"  violations: {sum(checks.values())}" + (" (" + ", ".join(f"{k} {v}" for k, v in checks.items()) + ")" if checks else ""))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.rsplit("\n\nEach check", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Through tools/soak, --bin and --work are given for you; tools/soak adds --keep (keep the scratch "
               "folder), --no-build and --bin DIR (use built binaries). Exit status: 0 all checks hold, 1 a violation "
               "or a failure of the rig.")
    parser.add_argument("--bin", required=True, help="folder with pumplinkd, pump-emulator and pumpctl")
    parser.add_argument("--work", required=True, help="scratch folder (state, logs, captures, database)")
    parser.add_argument("--smoke", action="store_true", help="a short run for CI: 100 commands")
    parser.add_argument("--commands", type=int, help="API commands to run (default 3000; smoke 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the command mix, the faults and the hang-ups (default 1)")
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help=f"the emulator's link faults (default '{DEFAULT_FAULTS}'; "
                        "the seed is added unless given). ber is per bit: 1e-3 is about 8e-3 per byte, 1.25e-4 is 1e-3 per byte")
    parser.add_argument("--time-scale", type=int, default=1200, help="pump time per real time (default 1200)")
    parser.add_argument("--hangup-interval", type=float, default=None,
                        help="mean seconds between hang-ups (default 8; smoke 6); 0 for none")
    parser.add_argument("--poll-every", type=int, default=5, help="read the active program every N commands (default 5)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds an API answer may take (default 60)")
    parser.add_argument("--json", help="also write the figures and every command's record to this file")
    args = parser.parse_args()
    if args.commands is None:
        args.commands = 100 if args.smoke else 3000
    if args.hangup_interval is None:
        args.hangup_interval = 6.0 if args.smoke else 8.0

    soak = Soak(args)
    started = time.monotonic()
    try:
        soak.start()
        soak.make_programs()
        print(f"soak: pump {soak.emulator.serial} on {soak.emulator.link}, daemon on 127.0.0.1:{soak.daemon.port}, "
              f"{args.commands} commands, faults '{soak.faults}'", flush=True)
        soak.hangup_thread = threading.Thread(target=soak.hang_up_now_and_then, daemon=True)
        if args.hangup_interval > 0:
            soak.hangup_thread.start()
        else:
            soak.hangup_thread = threading.Thread(target=lambda: None)
            soak.hangup_thread.start()
        soak.run_commands()
        soak.finish()
        figures = soak.check()
    except RigError as error:
        soak.stop_hangups.set()
        print(f"soak: {error}", file=sys.stderr)
        for log in ("daemon", "emulator"):
            thing = getattr(soak, log, None)
            if thing is not None and getattr(thing, "log", None):
                print(f"  {log} log: {tail(thing.log, 10)}", file=sys.stderr)
        soak.processes.stop_all()
        return 1
    finally:
        soak.processes.stop_all()
    seconds = time.monotonic() - started
    print_summary(soak, figures, seconds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "violations": soak.violations, "commands": soak.commands,
                       "seconds": seconds, "arguments": vars(args)}, f, indent=1, default=str)
    if soak.violations:
        print("soak: FAILED", file=sys.stderr)
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
