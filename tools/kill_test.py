#!/usr/bin/env python3
"""Kill tests: kill -9 of pumplinkd or of pump-emulator during a program push, an event
download and a bolus; the victim restarted; then the daemon's state is checked against the
pump's own record.

Each round picks a victim (daemon or emulator) and a moment (push, download, bolus), starts
the operation, sends SIGKILL at a random delay, restarts the victim with the same data or state
folder and checks:

  link      the link is back within 5 s: for a killed emulator from its announcement of the
            terminal to the daemon reporting the link up; for a killed daemon from its start
  audit     every intent has an outcome once the daemon has settled: none pending, none left
            uncertain, no unresolved row in the uncertain table
  history   the daemon's event log has no gap and ends at the pump's last sequence; after a
            daemon kill (and at the end, at full speed) it is compared event by event with the
            pump's own log read with `pumpctl events --port`: no gap, no duplicate, no difference
  program   the active program (checksum in the status, content read back) is exactly the old or
            the new program of an interrupted push, and matches the audit outcome
  bolus     a bolus request the pump executed (bolusStarted or patientBolusRefused with its
            request id, matching what was asked) is recorded done or resolved-executed; one it
            never executed is not; no request id starts two boluses
  request-id  no request id is sent for two intents (SPEC: the ids of changing commands
            strictly increase per pump; a reused id makes the pump's record ambiguous)

Kill moments: a push or bolus is killed either at a random delay after the API request is sent
or when the daemon's database shows a chosen phase (intent recorded, a request recorded as sent,
a time after the data chunk when verification and read-back run, an outcome recorded), polled
every 2 ms. A download is made long by letting the pump live days of pump time (hourly periodic
boluses: 48 events a day) in a second while the daemon is stopped; the kill comes when the
restarted daemon has stored a random part of the backlog, or soon after its start.

The line: the emulator paces its output at 115200 baud (8N1), and the daemon is told the same
rate (its pump entry's "baud"), so that its waits for answers allow for their line time (SPEC
§7.2). `--baud 9600` runs the rounds on a slow line.

Python 3 standard library only; driven by tools/kill-test. Exit status 1 on any violated check.
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pumplink_rig as rig  # noqa: E402

PUMP = "pump-1"
VICTIMS = ("daemon", "emulator")
MOMENTS = ("push", "download", "bolus")
LINK_BACK_LIMIT_S = 5.0
EXECUTED = ("done", "resolved-executed")
NOT_EXECUTED = ("failed", "resolved-not-executed", "rejected", "refused")

# MARK: Programs and their checksum (CRC-32C of the Program encoding, SPEC: Program struct)

DEFINITIONS = rig.Definitions()


def encode_program(p):
    return DEFINITIONS.encode("Program", p)


def program_checksum(p):
    return DEFINITIONS.checksum(p)


def make_program(rng, program_id, large=None):
    """A valid morphine program with hourly periodic boluses (so that pump time makes events),
    a patient bolus usable every pump minute, and a basal schedule of 1 to 91 steps (the
    encoding is 290 to 925 bytes, so that an upload takes a while on a paced line)."""
    if large is None:
        large = rng.random() < 0.5
    steps = []
    if large:
        per_day = rng.randint(6, 13)
        for day in range(7):
            starts = [0] + sorted(rng.sample(range(1, 1440), per_day - 1))
            steps += [{"dayMask": 1 << day, "startMinute": m, "doseRateMicrogramsPerDay": rng.randint(450, 650)}
                      for m in starts]
    else:
        starts = [0] + sorted(rng.sample(range(1, 1440), rng.randint(0, 12)))
        steps = [{"dayMask": 127, "startMinute": m, "doseRateMicrogramsPerDay": rng.randint(450, 650)} for m in starts]
    offset = rng.randint(0, 30)
    periodic = [{"dayMask": 127, "startMinute": h * 60 + offset, "doseMicrograms": rng.randint(2, 6),
                 "durationMinutes": 1} for h in range(24)]
    return {
        "programId": program_id,
        "drug": "morphine",
        "concentrationMicrogramsPerMilliliter": 10000,
        "lowReservoirThresholdMicroliters": 2000,
        "steps": steps,
        "periodicBoluses": periodic,
        "patientBolus": {"doseMicrograms": rng.randint(20, 40), "durationMinutes": 1, "lockoutMinutes": 1,
                         "maxPerDay": 48},
    }


# MARK: The daemon's database, read-only (WAL: readable while the daemon runs, or after a kill)

class Store:
    def __init__(self, path):
        self.path = path

    def query(self, sql, args=()):
        if not os.path.exists(self.path):
            return []
        for attempt in range(50):
            try:
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
                try:
                    db.row_factory = sqlite3.Row
                    return [dict(r) for r in db.execute(sql, args).fetchall()]
                finally:
                    db.close()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return []
                if attempt == 49:
                    raise
                time.sleep(0.05)

    def intents(self):
        """Every intent with its outcome rows (oldest first) and the requests sent for it."""
        rows = self.query("SELECT * FROM audit WHERE pumpID = ? ORDER BY id", (PUMP,))
        intents = {}
        for r in rows:
            if r["intentID"] is None and r["outcome"] == "pending":
                intents[r["id"]] = dict(r, outcomes=[], sent=[])
        for r in rows:
            if r["intentID"] is not None and r["intentID"] in intents:
                intents[r["intentID"]]["outcomes"].append(r)
        for s in self.query("SELECT * FROM sent WHERE pumpID = ? ORDER BY rowid", (PUMP,)):
            if s["intentID"] in intents:
                intents[s["intentID"]]["sent"].append(s)
        return intents

    def standalone(self):
        return self.query("SELECT * FROM audit WHERE pumpID = ? AND intentID IS NULL AND outcome != 'pending'", (PUMP,))

    def unresolved(self):
        return self.query("SELECT * FROM uncertain WHERE pumpID = ? AND resolvedAtMs IS NULL", (PUMP,))

    def events(self, start=1):
        return self.query("SELECT * FROM event WHERE pumpID = ? AND sequence >= ? ORDER BY sequence", (PUMP, start))


def final_outcome(intent):
    return intent["outcomes"][-1]["outcome"] if intent["outcomes"] else "pending"


EVENT_FIELDS = ("sequence", "timeMs", "kind", "code", "requestId", "value1", "value2")


def event_key(e):
    return tuple(e[f] for f in EVENT_FIELDS)


KINDS = DEFINITIONS.event_kinds
BOLUS_KINDS = {"single": 1, "bridge": 2, "priming": 3, "periodic": 4, "patient": 5}


def db_event(r):
    """An event row of the store as the API shows it (timeMs holds the UInt64's bit pattern)."""
    return {"sequence": r["sequence"], "timeMs": r["timeMs"] & 0xFFFFFFFFFFFFFFFF, "kind": KINDS.get(r["kind"], r["kind"]),
            "code": r["code"], "requestId": r["requestID"], "value1": r["value1"], "value2": r["value2"]}


# MARK: The rig


class Violation(Exception):
    pass


class KillTest:
    def __init__(self, options):
        self.o = options
        self.rng = random.Random(options.seed)
        self.work = options.work
        self.processes = rig.Processes(self.work)
        self.pumpctl = os.path.join(options.bin, "pumpctl")
        self.emulator_args = ["--baud", str(options.baud), "--time-scale", str(options.time_scale)]
        self.emulator = rig.Emulator(self.processes, os.path.join(options.bin, "pump-emulator"), self.work,
                                     extra=self.emulator_args)
        self.daemon = None
        self.store = None
        self.next_program_id = 100
        self.program = None          # what the pump runs, as far as the test knows (dict)
        self.violations = []
        self.aborted = False
        self.seen = set()
        self.rounds = []
        self.pump_log = {}           # sequence -> event, as the pump itself reported it
        self.push_seconds = 2.0
        self.bolus_seconds = 0.3
        self.verify_seconds = 0.3

    def log(self, text):
        if self.o.verbose:
            print(f"  {time.strftime('%H:%M:%S')} {text}", flush=True)

    def violate(self, round_, check, text):
        # A standing violation (found again by every later round's whole-log checks) counts once.
        if (check, text) in self.seen:
            return
        self.seen.add((check, text))
        message = f"round {round_['n']} ({round_['victim']} kill during {round_['moment']}): {check}: {text}"
        print("VIOLATION " + message, flush=True)
        self.violations.append(message)
        round_["failed"].add(check)

    # MARK: Processes

    def start_daemon(self):
        if self.daemon is None:
            self.daemon = rig.Daemon(self.processes, os.path.join(self.o.bin, "pumplinkd"), self.work,
                                     [{"id": PUMP, "port": self.emulator.link, "keyFile": self.emulator.key_file,
                                       "baud": self.o.baud or 115200}],
                                     extra_config={"telemetryIntervalMs": 1000})
            self.store = Store(os.path.join(self.daemon.data, "pumplink.sqlite"))
        started = time.monotonic()
        api = self.daemon.start()
        return started, api

    def pumpctl_direct(self, arguments, timeout=300.0):
        return rig.pumpctl_json(self.pumpctl, self.emulator.link, self.emulator.key_file, arguments,
                                cwd=self.work, timeout=timeout, baud=self.o.baud)

    def read_pump_log(self, start):
        """The pump's own events from `start` on (the daemon must not hold the port)."""
        events = self.pumpctl_direct(["events", "--from", str(start)])
        return events.get("events", events) if isinstance(events, dict) else events

    def settle(self, round_, timeout=120.0):
        """Waits until the daemon is up and caught up: link up, no uncertain request, no intent
        without outcome, every event of the pump stored."""
        deadline = time.monotonic() + timeout
        last = None
        steady = 0
        while time.monotonic() < deadline:
            self.daemon.check_alive()
            detail = self.daemon.pump(PUMP)
            summary = detail["summary"]
            status = summary.get("status") or {}
            open_intents = [i for i in self.store.intents().values() if final_outcome(i) in ("pending", "uncertain")]
            state = (summary["link"]["state"], tuple(summary.get("uncertainRequests", [])), len(open_intents),
                     detail.get("lastStoredEventSequence"), status.get("lastEventSequence"))
            if (state[0] == "up" and not state[1] and not state[2] and state[3] == state[4] and state[3]):
                steady = steady + 1 if state == last else 1
                if steady >= 3:
                    return detail
            else:
                steady = 0
            last = state
            time.sleep(0.1)
        if round_ is not None:
            self.violate(round_, "settle", f"not settled within {timeout:.0f} s: link={last[0]} uncertain={list(last[1])} "
                         f"open intents={last[2]} stored={last[3]} pump last={last[4]}; {self.daemon_log_digest()}")
        raise Violation("not settled")

    def daemon_log_digest(self):
        """The daemon's complaints in its current log: each distinct warning with its count."""
        counts = {}
        try:
            with open(self.daemon.log, errors="replace") as f:
                for line in f:
                    if " warning " in line or " error " in line or " critical " in line:
                        text = line.split(" pumplinkd: ", 1)[-1].strip()
                        counts[text] = counts.get(text, 0) + 1
        except (OSError, AttributeError):
            return "no daemon log"
        if not counts:
            return "no warnings in the daemon's log"
        return "daemon log: " + "; ".join(f"{n} x '{t[:160]}'" for t, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4])

    # MARK: Setup

    def setup(self):
        self.emulator.start()
        started, _ = self.start_daemon()
        self.daemon.wait_link_up(PUMP)
        # The first program: hourly periodic boluses, so that pump time makes events. Its push
        # also measures how long an upload of the largest size takes on this line.
        program = make_program(self.rng, self.new_program_id(), large=True)
        t = time.monotonic()
        status, body = self.daemon.request("POST", f"/v1/pumps/{PUMP}/program",
                                           body={"program": program, "override": {"reason": "kill test"}})
        if status != 200:
            raise rig.RigError(f"first push: {status} {body}")
        self.push_seconds = time.monotonic() - t
        # From the data sent to the activation sent: verification and read-back.
        sent = {r["messageType"]: r["timeMs"] for r in self.store.query("SELECT messageType, timeMs FROM sent")}
        if "ProgramStageData" in sent and "ProgramActivate" in sent:
            self.verify_seconds = max(0.01, (sent["ProgramActivate"] - sent["ProgramStageData"]) / 1000)
        self.set_program(program)
        t = time.monotonic()
        status, body = self.daemon.request("POST", f"/v1/pumps/{PUMP}/bolus/clinician",
                                           body={"kind": "single", "doseMicrograms": 5, "volumeMicroliters": 0,
                                                 "durationMinutes": 1})
        if status != 200:
            raise rig.RigError(f"first bolus: {status} {body}")
        self.bolus_seconds = time.monotonic() - t
        self.settle(None)

    def new_program_id(self):
        self.next_program_id += 1
        return self.next_program_id

    def set_program(self, program):
        self.program = program

    # MARK: Rounds

    def plan(self):
        combos = [(v, m) for v in self.o.victims for m in self.o.moments]
        if self.o.smoke:
            order = list(combos)
            self.rng.shuffle(order)
            return order
        order = []
        while len(order) < self.o.rounds:
            batch = list(combos)
            self.rng.shuffle(batch)
            order += batch
        return order[:self.o.rounds]

    def run(self):
        began = time.monotonic()
        self.setup()
        print(f"setup: first push {self.push_seconds:.2f} s (largest program; data to activation "
              f"{self.verify_seconds:.2f} s), first bolus {self.bolus_seconds:.2f} s; "
              f"line {self.o.baud} baud, pump time x{self.o.time_scale}", flush=True)
        for n, (victim, moment) in enumerate(self.plan(), 1):
            round_ = {"n": n, "victim": victim, "moment": moment, "failed": set(), "landed": "?", "link_s": None,
                      "api_s": None}
            self.rounds.append(round_)
            t = time.monotonic()
            try:
                getattr(self, f"round_{moment}")(round_)
                self.check_round(round_)
            except Violation:
                if "settle" in round_["failed"]:
                    print("the daemon did not settle: the rounds stop here (the state is not known)", flush=True)
                    self.aborted = True
            except rig.RigError as error:
                self.violate(round_, "rig", str(error))
                try:
                    self.recover()
                except rig.RigError:
                    self.aborted = True
            round_["seconds"] = time.monotonic() - t
            link = f"{round_['link_s']:.2f} s" if round_["link_s"] is not None else "-"
            print(f"round {n:3d} {victim:8s} {moment:8s} landed: {round_['landed']:40s} link back {link:>7s}  "
                  f"{'ok' if not round_['failed'] else 'FAILED ' + ','.join(sorted(round_['failed']))}  "
                  f"({round_['seconds']:.1f} s)", flush=True)
            if self.aborted:
                break
        self.final_check()
        self.report(time.monotonic() - began)
        return 1 if self.violations else 0

    def recover(self):
        """After a rig error: both processes running again, whatever state they are in."""
        try:
            if self.emulator.process is None or self.emulator.process.poll() is not None:
                self.emulator.start()
            if self.daemon.process is None or self.daemon.process.poll() is not None:
                self.daemon.start()
            self.daemon.wait_link_up(PUMP)
        except rig.RigError as error:
            print(f"recovery failed: {error}", flush=True)
            raise

    def kill_victim(self, round_):
        if round_["victim"] == "daemon":
            self.daemon.kill()
        else:
            self.emulator.kill()

    def restart_victim(self, round_):
        """Restarts the killed process; records the link-back time (the limit is 5 s)."""
        self.log(f"{round_['victim']} killed; restarting it")
        if round_["victim"] == "daemon":
            started, api = self.start_daemon()
            self.daemon.wait_link_up(PUMP, timeout=30.0)
            round_["link_s"] = time.monotonic() - started
            round_["api_s"] = api
        else:
            # The daemon notices the hang-up; then the port returns.
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                if self.daemon.pump(PUMP)["summary"]["link"]["state"] != "up":
                    break
                time.sleep(0.02)
            else:
                self.violate(round_, "link", "the daemon still reports the link up 10 s after the emulator was killed")
            if round_.get("pause"):
                time.sleep(round_["pause"])
            self.emulator.start()
            announced = time.monotonic()
            self.daemon.wait_link_up(PUMP, timeout=30.0)
            round_["link_s"] = time.monotonic() - announced
        if round_["link_s"] > LINK_BACK_LIMIT_S:
            self.violate(round_, "link", f"link back after {round_['link_s']:.2f} s (limit {LINK_BACK_LIMIT_S:.0f} s)")

    def in_background(self, method, path, body, token=None):
        """Sends an API request from a thread; returns (thread, result holder)."""
        result = {}

        def send():
            result["answer"] = rig.http(self.daemon.port, method, path, token=token or self.daemon.clinician,
                                        body=body, timeout=120.0)
            result["at"] = time.monotonic()
        thread = threading.Thread(target=send, daemon=True)
        result["sent"] = time.monotonic()
        thread.start()
        return thread, result

    def last_intent_before(self, action, before_ids):
        new = [i for i in self.store.intents().values() if i["action"] == action and i["id"] not in before_ids]
        return new[-1] if new else None

    def newest_audit_id(self):
        rows = self.store.query("SELECT max(id) AS m FROM audit")
        return (rows[0]["m"] or 0) if rows else 0

    def phase(self, action, after_id):
        """How far the daemon's record of the newest `action` intent after `after_id` has got:
        (intent id or None, message types sent for it, whether it has an outcome)."""
        rows = self.store.query(
            "SELECT id FROM audit WHERE action = ? AND intentID IS NULL AND outcome = 'pending' AND id > ? "
            "ORDER BY id DESC LIMIT 1", (action, after_id))
        if not rows:
            return None, [], False
        intent = rows[0]["id"]
        sent = [r["messageType"] for r in self.store.query("SELECT messageType FROM sent WHERE intentID = ? ORDER BY rowid", (intent,))]
        concluded = bool(self.store.query("SELECT 1 FROM audit WHERE intentID = ? LIMIT 1", (intent,)))
        return intent, sent, concluded

    def kill_at(self, round_, action, after_id, result, thread, target, longest):
        """Kills the victim at `target`: ("delay", seconds) after the request was sent, or at a
        phase of the daemon's record (polled in its database every few milliseconds):
        ("intent",) recorded, nothing sent; ("sent", TYPE, n) the n-th TYPE request recorded as
        sent; ("done",) an outcome recorded. Gives up waiting for a phase after `longest`
        seconds or when the request has ended, and kills then."""
        if target[0] == "delay":
            time.sleep(max(0.0, result["sent"] + target[1] - time.monotonic()))
            self.kill_now(round_, action, after_id)
            return
        deadline = result["sent"] + longest
        while time.monotonic() < deadline and thread.is_alive():
            _, sent, concluded = self.phase(action, after_id)
            if target[0] == "intent" and _ is not None:
                break
            if target[0] == "sent" and sent.count(target[1]) >= target[2]:
                if len(target) > 3:
                    time.sleep(target[3])
                break
            if target[0] == "done" and concluded:
                break
            time.sleep(0.002)
        self.kill_now(round_, action, after_id)

    def kill_now(self, round_, action, after_id):
        """Kills the victim and files where the kill landed: the daemon's record just before
        the kill (an emulator kill is followed by the daemon's reaction to it), or, for a
        killed daemon, what it left."""
        before = self.phase(action, after_id)
        self.kill_victim(round_)
        intent, sent, concluded = self.phase(action, after_id) if round_["victim"] == "daemon" else before
        if intent is None:
            category = "no intent yet"
        elif concluded:
            category = "outcome recorded"
        elif not sent:
            category = "intent, nothing sent"
        elif sent[-1] in ("ProgramStageBegin", "ProgramStageData"):
            category = "staging"
        elif sent[-1] == "ProgramActivate":
            category = "activate sent"
        else:
            category = "sent, no answer"
        round_["category"] = category

    def interrupt(self, round_, action, after_id, target, longest, pump_last, request, label):
        """Sends `request` (method, path, body[, token]) in the background, kills the victim at
        `target`, records where the kill landed, and restarts the victim."""
        thread, result = self.in_background(*request)
        self.kill_at(round_, action, after_id, result, thread, target, longest)
        killed_after = time.monotonic() - result["sent"]
        landed = self.landing(action, after_id, f"{label} ({killed_after * 1000:.0f} ms)")
        thread.join(130.0)
        if round_["victim"] == "daemon":
            self.compare_with_pump(round_, pump_last + 20)
        answer = result.get("answer")
        round_["landed"] = landed + (f"; HTTP {answer[0]}" if answer else "")
        self.restart_victim(round_)

    def landing(self, action, after_id, delay_text):
        intent, sent, concluded = self.phase(action, after_id)
        if intent is None:
            return f"{delay_text}: no intent recorded"
        if not sent:
            where = "intent, nothing sent"
        else:
            counts = []
            for t in dict.fromkeys(sent):
                n = sent.count(t)
                counts.append(t.replace("Program", "") + (f" x{n}" if n > 1 else ""))
            where = "sent " + ", ".join(counts)
        outcome = self.store.query("SELECT outcome FROM audit WHERE intentID = ? ORDER BY id", (intent,))
        return f"{delay_text}: {where}; " + (",".join(r["outcome"] for r in outcome) if outcome else "no outcome")

    @staticmethod
    def target_text(target):
        if target[0] == "delay":
            return f"at {target[1] * 1000:.0f} ms"
        if target[0] == "sent":
            return (f"at {target[1].replace('Program', '')}" + (f" #{target[2]}" if target[2] > 1 else "")
                    + (f" +{target[3] * 1000:.0f} ms" if len(target) > 3 else ""))
        return f"at {target[0]}"

    # push

    def round_push(self, round_):
        pump_last = self.settle(round_)["summary"]["status"]["lastEventSequence"]
        old = self.program
        new = make_program(self.rng, self.new_program_id())
        before = set(self.store.intents())
        after_id = self.newest_audit_id()
        chunks = max(1, -(-len(encode_program(new)) // 960))  # PumpSession.pushProgram's chunk
        target = self.rng.choice([
            ("delay", self.rng.uniform(0.0, self.push_seconds * 1.1)),
            ("delay", self.rng.uniform(0.0, self.push_seconds * 1.1)),
            ("intent",),
            ("sent", "ProgramStageBegin", 1),
            ("sent", "ProgramStageData", self.rng.randint(1, chunks)),
            # Verify is not a changing request (not in the sent table): between the last data
            # chunk and the activation the daemon verifies and reads the staged program back.
            ("sent", "ProgramStageData", chunks, self.rng.uniform(0.0, self.verify_seconds)),
            ("sent", "ProgramActivate", 1),
            ("done",),
        ])
        self.log(f"push of program {new['programId']} ({len(encode_program(new))} bytes), kill {self.target_text(target)}")
        self.interrupt(round_, "program.push", after_id, target, self.push_seconds * 3 + 5, pump_last,
                       ("POST", f"/v1/pumps/{PUMP}/program", {"program": new, "override": {"reason": "kill test"}}),
                       self.target_text(target))
        detail = self.settle(round_)
        # Which one runs: the status checksum and the program read back.
        status = detail["summary"]["status"]
        running = None
        if status.get("activeProgramChecksum") == program_checksum(new) and status.get("activeProgramId") == new["programId"]:
            running = new
        elif status.get("activeProgramChecksum") == program_checksum(old) and status.get("activeProgramId") == old["programId"]:
            running = old
        if running is None:
            self.violate(round_, "program", f"the pump runs program {status.get('activeProgramId')} checksum "
                         f"{status.get('activeProgramChecksum')}: neither the old ({old['programId']}, {program_checksum(old)}) "
                         f"nor the new ({new['programId']}, {program_checksum(new)})")
            return
        code, shown = self.daemon.request("GET", f"/v1/pumps/{PUMP}/program")
        if code != 200 or shown != running:
            self.violate(round_, "program", f"the program the daemon reads back ({code}) is not exactly program "
                         f"{running['programId']}, which the status names: {json.dumps(shown)[:200]}")
        intent = self.last_intent_before("program.push", before)
        outcome = final_outcome(intent) if intent else None
        round_["landed"] += f" -> {'new' if running is new else 'old'} program" + (f" ({outcome})" if outcome else "")
        if running is new and outcome not in EXECUTED:
            self.violate(round_, "program", f"the new program runs, but the push is recorded {outcome}")
        if running is old and outcome in EXECUTED:
            self.violate(round_, "program", f"the old program runs, but the push is recorded {outcome}")
        self.set_program(running)

    # bolus

    def round_bolus(self, round_):
        pump_last = self.settle(round_)["summary"]["status"]["lastEventSequence"]
        patient = self.rng.random() < 0.5
        if patient:
            path, body, token, action = f"/v1/pumps/{PUMP}/bolus/patient", {}, self.daemon.patient, "bolus.patient"
        else:
            path, action, token = f"/v1/pumps/{PUMP}/bolus/clinician", "bolus.clinician", None
            body = {"kind": "single", "doseMicrograms": self.rng.randint(5, 20), "volumeMicroliters": 0, "durationMinutes": 1}
        # No bolus running (periodic ones last a pump minute).
        deadline = time.monotonic() + 30
        while self.daemon.pump(PUMP)["summary"]["status"].get("bolusActive") and time.monotonic() < deadline:
            time.sleep(0.1)
        before = set(self.store.intents())
        after_id = self.newest_audit_id()
        target = self.rng.choice([
            ("delay", self.rng.uniform(0.0, self.bolus_seconds * 1.3)),
            ("delay", self.rng.uniform(0.0, self.bolus_seconds * 1.3)),
            ("intent",),
            ("sent", "PatientBolus" if patient else "ClinicianBolus", 1),
            ("done",),
        ])
        self.log(f"{action} {json.dumps(body)}, kill {self.target_text(target)}")
        self.interrupt(round_, action, after_id, target, self.bolus_seconds * 3 + 5, pump_last,
                       ("POST", path, body, token), f"{action.split('.')[1]} {self.target_text(target)}")
        self.settle(round_)
        round_["bolus"] = {"before": before, "action": action}

    # download

    def round_download(self, round_):
        """Makes the pump's log long while the daemon is away, then kills during the sync."""
        self.settle(round_)
        detail = self.daemon.pump(PUMP)
        reservoir = detail["summary"]["status"]["reservoirMicroliters"]
        if reservoir < 8000:
            code, body = self.daemon.request("POST", f"/v1/pumps/{PUMP}/refill",
                                             body={"aspiratedMicroliters": reservoir, "newVolumeMicroliters": 20000})
            if code != 200:
                raise rig.RigError(f"refill: {code} {body}")
            self.settle(round_)
        self.daemon.stop()
        # The daemon is away: its log so far is compared with the pump's own, read unpaced.
        self.emulator.stop()
        self.emulator.extra = ["--baud", "0", "--time-scale", str(self.o.time_scale)]
        self.emulator.start()
        self.compare_with_pump(round_)
        # Pump days pass in about a second of wall time: hourly periodic boluses, 48 events a day.
        days = self.rng.uniform(2.0, 5.0) if self.o.smoke else self.rng.uniform(2.0, 10.0)
        self.log(f"{days:.1f} pump days pass while the daemon is stopped")
        self.emulator.stop()
        self.emulator.extra = ["--baud", "0", "--time-scale", str(int(days * 86400))]
        self.emulator.start()
        time.sleep(1.0)
        self.emulator.stop()
        self.emulator.extra = list(self.emulator_args)
        self.emulator.start()
        stored_before = self.stored_last()
        # The backlog: what the pump holds now (read from its state file would need the model;
        # the daemon tells it at link up). Kill when the daemon has stored a random part of it,
        # or at a random moment of the connection before the sync begins.
        started, _ = self.start_daemon()
        early = self.rng.random() < 0.2
        backlog = 0
        if early:
            time.sleep(self.rng.uniform(0.0, 0.4))
            target_text = f"{(time.monotonic() - started) * 1000:.0f} ms after the daemon's start"
        else:
            deadline = time.monotonic() + 30
            pump_last = None
            while time.monotonic() < deadline and pump_last is None:
                answer = rig.http(self.daemon.port, "GET", f"/v1/pumps/{PUMP}", token=self.daemon.clinician, timeout=2.0)
                if answer and answer[0] == 200:
                    pump_last = (answer[1]["summary"].get("status") or {}).get("lastEventSequence")
                if pump_last is None:
                    time.sleep(0.005)
            if pump_last is None:
                raise rig.RigError("the daemon did not report the pump's status within 30 s")
            backlog = max(pump_last - stored_before, 0)
            goal = stored_before + self.rng.randint(0, max(backlog - 1, 0))
            while time.monotonic() < deadline and self.stored_last() < goal:
                time.sleep(0.002)
            target_text = f"at {goal - stored_before} of {backlog} new events"
        if round_["victim"] == "daemon":
            self.daemon.kill()
        else:
            self.emulator.kill()
        stored_at_kill = self.contiguous_stored()
        round_["landed"] = f"{target_text}: {stored_at_kill - stored_before} stored"
        if early or stored_at_kill == stored_before:
            round_["category"] = "before the first event stored"
        elif stored_at_kill >= stored_before + backlog:
            round_["category"] = "after the last event stored"
        else:
            round_["category"] = "mid-sync"
        self.restart_victim(round_)
        self.settle(round_)

    def stored_last(self):
        rows = self.store.query("SELECT max(sequence) AS m FROM event WHERE pumpID = ?", (PUMP,))
        return (rows[0]["m"] or 0) if rows else 0

    def contiguous_stored(self):
        seqs = [r["sequence"] for r in self.store.query("SELECT sequence FROM event WHERE pumpID = ? ORDER BY sequence", (PUMP,))]
        n = 0
        for s in seqs:
            if s != n + 1:
                break
            n = s
        return n

    # MARK: Checks

    def compare_with_pump(self, round_, pump_last=None):
        """With the daemon down: the pump's log (read from where the last comparison ended) is
        compared with the daemon's copy, event by event. On the paced line a long read fails
        (PumpSession's bulk-read timeouts, see above) and leaves the pump answering stale
        requests, so more than 250 events wait for the next unpaced comparison."""
        start = (max(self.pump_log) + 1) if self.pump_log else 1
        if pump_last is not None and pump_last - start > 250:
            self.log(f"{pump_last - start} events since the last comparison: left for an unpaced one")
            return
        for e in self.read_pump_log(start):
            self.pump_log[e["sequence"]] = e
        stored = {r["sequence"]: db_event(r) for r in self.store.events(start)}
        for seq, e in stored.items():
            p = self.pump_log.get(seq)
            if p is None:
                self.violate(round_, "history", f"the daemon has event {seq} ({e['kind']}) that the pump does not have")
            elif event_key(p) != event_key(e):
                self.violate(round_, "history", f"event {seq} differs: pump {json.dumps(p)} daemon {json.dumps(e)}")

    def check_round(self, round_):
        """After a round has settled: audit, history and bolus checks on what the daemon holds."""
        intents = self.store.intents()
        for i in intents.values():
            outcome = final_outcome(i)
            if outcome in ("pending", "uncertain"):
                self.violate(round_, "audit", f"intent {i['id']} ({i['action']}) is still {outcome}")
        if self.store.unresolved():
            self.violate(round_, "audit", f"unresolved uncertain requests: {self.store.unresolved()}")
        events = self.daemon.events(PUMP)
        seqs = [e["sequence"] for e in events]
        if seqs != list(range(1, len(seqs) + 1)):
            missing = sorted(set(range(1, (max(seqs) if seqs else 0) + 1)) - set(seqs))
            self.violate(round_, "history", f"the daemon's log has gaps or repeats: missing {missing[:10]}, "
                         f"{len(seqs) - len(set(seqs))} repeated")
        status = self.daemon.pump(PUMP)["summary"]["status"]
        if seqs and status["lastEventSequence"] < seqs[-1]:
            self.violate(round_, "history", f"the daemon has events up to {seqs[-1]}, the pump only {status['lastEventSequence']}")
        self.check_requests(round_, intents, {e["sequence"]: e for e in events})
        if round_["moment"] == "bolus":
            b = round_["bolus"]
            intent = self.last_intent_before(b["action"], b["before"])
            if intent is not None:
                executed = self.executions(intent, {e["sequence"]: e for e in events})
                round_["landed"] += f" -> {final_outcome(intent)}, pump {'executed' if executed else 'did not execute'} it"

    @staticmethod
    def executions(intent, log):
        """The pump's events that show this intent executed: an event carrying one of its
        request ids and matching what it asked for (a request id may have been used for more
        than one intent, see the request-id check, so the id alone is not enough)."""
        ids = {s["requestID"] for s in intent["sent"]}
        parameters = json.loads(intent["parameters"] or "{}")
        found = []
        for e in log.values():
            if e["requestId"] not in ids:
                continue
            if intent["action"] == "program.push":
                program = parameters.get("program") or {}
                if (e["kind"] == "programActivated" and e["value1"] == program.get("programId")
                        and e["value2"] == program_checksum(program)):
                    found.append(e)
            elif intent["action"] == "bolus.patient":
                if (e["kind"] == "bolusStarted" and e["code"] == BOLUS_KINDS["patient"]) or e["kind"] == "patientBolusRefused":
                    found.append(e)
            elif intent["action"] == "bolus.clinician":
                if (e["kind"] == "bolusStarted" and e["code"] == BOLUS_KINDS.get(parameters.get("kind"))
                        and (parameters.get("doseMicrograms") in (0, e["value1"]))):
                    found.append(e)
        return found

    def check_requests(self, round_, intents, log):
        """Every bolus and push intent against the pump's log (`log`: sequence -> event)."""
        started_by = {}
        for e in log.values():
            if e["kind"] == "bolusStarted" and e["requestId"]:
                started_by.setdefault(e["requestId"], []).append(e["sequence"])
        for rid, seqs in started_by.items():
            if len(seqs) > 1:
                self.violate(round_, "bolus", f"request {rid} started {len(seqs)} boluses (events {seqs})")
        # SPEC: request ids of changing commands strictly increase per pump. One id sent for two
        # intents makes the pump's record (QueryRequest, the event log) ambiguous about both.
        owners = {}
        for i in intents.values():
            for sent in i["sent"]:
                owners.setdefault(sent["requestID"], []).append(i)
        for rid, users in sorted(owners.items()):
            if len(users) > 1:
                self.violate(round_, "request-id", f"request id {rid} was sent for {len(users)} intents (the pump's "
                             "log cannot tell which one an event with that id belongs to, so their outcomes are not "
                             "checked against it): " + "; ".join(
                                 f"intent {u['id']} {u['action']} {u['parameters'][:60]} -> {final_outcome(u)}" for u in users))
        shared = {rid for rid, users in owners.items() if len(users) > 1}
        for i in intents.values():
            if not i["action"].startswith("bolus.") and i["action"] != "program.push":
                continue
            if any(sent["requestID"] in shared for sent in i["sent"]):
                continue
            check = "program" if i["action"] == "program.push" else "bolus"
            outcome = final_outcome(i)
            executed = self.executions(i, log)
            ids = [s["requestID"] for s in i["sent"]]
            if len(executed) > 1:
                self.violate(round_, check, f"intent {i['id']} ({i['action']}, requests {ids}) executed {len(executed)} times: "
                             f"{executed}")
            if outcome in EXECUTED and not executed:
                self.violate(round_, check, f"intent {i['id']} ({i['action']}) is recorded {outcome}, but the pump's log "
                             f"shows no execution of its requests {ids}")
            if outcome in NOT_EXECUTED and executed:
                self.violate(round_, check, f"intent {i['id']} ({i['action']}) is recorded {outcome}, but the pump "
                             f"executed it: {executed}")

    def final_check(self):
        """The daemon stopped; the pump restarted unpaced; its whole log read and compared with
        the daemon's, and every request checked against it."""
        final = {"n": "final", "victim": "-", "moment": "-", "failed": set()}
        try:
            self.settle(final)
        except (Violation, rig.RigError):
            pass
        self.daemon.stop()
        self.emulator.stop()
        self.emulator.extra = ["--baud", "0", "--time-scale", "1"]
        self.emulator.start()
        pump = {e["sequence"]: e for e in self.read_pump_log(1)}
        stored = {r["sequence"]: db_event(r) for r in self.store.events(1)}
        seqs = sorted(pump)
        if seqs != list(range(1, len(seqs) + 1)):
            self.violate(final, "history", "the pump's own log is not numbered 1...n")
        missing = [s for s in seqs if s not in stored]
        extra = [s for s in stored if s not in pump]
        differ = [s for s in stored if s in pump and event_key(stored[s]) != event_key(pump[s])]
        # The pump's last events may have come after the daemon's last sync.
        missing_inside = [s for s in missing if s <= max(stored or [0])]
        if missing_inside:
            self.violate(final, "history", f"the daemon lacks events {missing_inside[:10]}")
        if extra:
            self.violate(final, "history", f"the daemon has events the pump does not: {extra[:10]}")
        for s in differ[:10]:
            self.violate(final, "history", f"event {s} differs: pump {json.dumps(pump[s])} daemon {json.dumps(stored[s])}")
        intents = self.store.intents()
        for i in intents.values():
            if final_outcome(i) in ("pending", "uncertain"):
                self.violate(final, "audit", f"intent {i['id']} ({i['action']}) is still {final_outcome(i)}")
        self.check_requests(final, intents, pump)
        self.final = {"pump_events": len(pump), "stored_events": len(stored), "intents": len(intents),
                      "outcomes": {}}
        for i in intents.values():
            key = (i["action"], final_outcome(i))
            self.final["outcomes"][key] = self.final["outcomes"].get(key, 0) + 1
        self.final["failed"] = final["failed"]
        self.emulator.stop()

    def report(self, seconds):
        print()
        print(f"{'victim':9s} {'moment':9s} {'rounds':>6s} {'passed':>6s} {'link max':>9s} {'link p50':>9s}  where the kills landed")
        for v in VICTIMS:
            for m in MOMENTS:
                rs = [r for r in self.rounds if r["victim"] == v and r["moment"] == m]
                if not rs:
                    continue
                links = [r["link_s"] for r in rs if r["link_s"] is not None]
                ok = sum(1 for r in rs if not r["failed"])
                lm = f"{max(links):.2f} s" if links else "-"
                lp = f"{statistics.median(links):.2f} s" if links else "-"
                where = {}
                for r in rs:
                    where[r.get("category", "?")] = where.get(r.get("category", "?"), 0) + 1
                landed = ", ".join(f"{c} {n}" for c, n in sorted(where.items(), key=lambda kv: -kv[1]))
                print(f"{v:9s} {m:9s} {len(rs):6d} {ok:6d} {lm:>9s} {lp:>9s}  {landed}")
        api = [r["api_s"] for r in self.rounds if r.get("api_s") is not None]
        dl = [r["link_s"] for r in self.rounds if r["victim"] == "daemon" and r["link_s"] is not None]
        el = [r["link_s"] for r in self.rounds if r["victim"] == "emulator" and r["link_s"] is not None]
        if dl:
            print(f"daemon restarts: API answering after max {max(api):.2f} s (p50 {statistics.median(api):.2f} s); "
                  f"link up after max {max(dl):.2f} s (p50 {statistics.median(dl):.2f} s) from the daemon's start")
        if el:
            print(f"emulator restarts: link up after max {max(el):.2f} s (p50 {statistics.median(el):.2f} s) "
                  f"from the emulator's announcement of its terminal")
        f = getattr(self, "final", None)
        if f:
            print(f"final: pump log {f['pump_events']} events, daemon {f['stored_events']}; {f['intents']} intents: " +
                  ", ".join(f"{a} {o} {n}" for (a, o), n in sorted(f["outcomes"].items())))
        print(f"{len(self.rounds)} rounds in {seconds:.0f} s; "
              + ("all checks passed" if not self.violations else f"{len(self.violations)} violations:"))
        for v in self.violations:
            print("  " + v)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder with pumplinkd, pump-emulator and pumpctl")
    parser.add_argument("--work", required=True, help="scratch folder (logs, state, database)")
    parser.add_argument("--rounds", type=int, default=60, help="rounds of the full run (default 60: each of the 6 "
                        "victim x moment combinations 10 times, about 4 minutes)")
    parser.add_argument("--smoke", action="store_true", help="6 rounds, each combination once (about 15 s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--baud", type=int, default=115200, help="the line's rate: the emulator's UART pace and the daemon's \"baud\" (default 115200; 0: no pacing)")
    parser.add_argument("--time-scale", type=int, default=60, help="pump time per wall second (default 60)")
    parser.add_argument("--victims", default="daemon,emulator", help="comma-separated: daemon, emulator")
    parser.add_argument("--moments", default="push,download,bolus", help="comma-separated: push, download, bolus")
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args()
    options.victims = [v for v in options.victims.split(",") if v]
    options.moments = [m for m in options.moments.split(",") if m]
    if not options.victims or not set(options.victims) <= set(VICTIMS) or not options.moments or not set(options.moments) <= set(MOMENTS):
        parser.error("--victims: daemon, emulator; --moments: push, download, bolus")
    if options.seed is None:
        options.seed = int(time.time()) % 100000
    print(f"kill test: seed {options.seed}, {'smoke' if options.smoke else f'{options.rounds} rounds'}; "
          f"scratch {options.work}", flush=True)
    test = KillTest(options)
    code = 1
    try:
        code = test.run()
    except (rig.RigError, Violation) as error:
        print(f"kill test could not go on: {error}", flush=True)
        for v in test.violations:
            print("  " + v)
    finally:
        test.processes.stop_all()
    sys.exit(code)


if __name__ == "__main__":
    main()
