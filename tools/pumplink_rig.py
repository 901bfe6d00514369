"""Real pump-emulator and pumplinkd processes for the tools that drive them (soak, kill tests).

Python 3 standard library only. Every process is started in its own session and recorded in
WORK/pids, so that a shell trap can end them even if the driving script is killed; `stop_all`
ends whatever is still running, in reverse order.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RigError(Exception):
    """Something did not work: a process died, a link did not come up, an answer was malformed."""


def tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def free_port():
    """A TCP port nobody listens on now: the kernel's pick for a socket bound to port 0."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Processes:
    """Every process started, recorded in WORK/pids, stopped in reverse order at the end."""

    def __init__(self, work):
        self.work = work
        self.running = []  # (name, Popen)
        self.pid_file = os.path.join(work, "pids")

    def start(self, name, argv, log=None, cwd=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                cwd=cwd, start_new_session=True)
        finally:
            if log:
                out.close()
        with open(self.pid_file, "a") as f:
            f.write(f"{process.pid} {name}\n")
        self.running.append((name, process))
        return process

    def stop(self, process, sig=signal.SIGTERM, timeout=10.0):
        """Stops one process; returns its exit code (negative: the signal that ended it)."""
        if process.poll() is None:
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = [(n, p) for (n, p) in self.running if p is not process]
        return process.returncode

    def kill(self, process):
        """SIGKILL, and wait for it: nothing of the process runs after this returns."""
        return self.stop(process, sig=signal.SIGKILL, timeout=10.0)

    def stop_all(self):
        for _, process in reversed(list(self.running)):
            self.stop(process, timeout=8.0)


def http_raw(port, method, path, token=None, body=None, timeout=10.0):
    """(status, body bytes) of one request on the loopback; None if nothing answers.

    `body` is sent as JSON when given. One connection per request (Connection: close)."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    if body is not None or method != "GET":
        head += f"Content-Length: {len(payload)}\r\n"
    request = head.encode() + b"\r\n" + payload
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    raw = b"".join(chunks)
    head_bytes, _, content = raw.partition(b"\r\n\r\n")
    if not head_bytes.startswith(b"HTTP/1.1 "):
        return None
    status = int(head_bytes.split()[1])
    if b"transfer-encoding: chunked" in head_bytes.lower():
        content = dechunk(content)
    return status, content


def http(port, method, path, token=None, body=None, timeout=10.0):
    """(status, parsed JSON or raw bytes) of one request on the loopback; None if nothing answers."""
    answer = http_raw(port, method, path, token=token, body=body, timeout=timeout)
    if answer is None:
        return None
    status, content = answer
    try:
        return status, json.loads(content) if content else None
    except ValueError:
        return status, content


def dechunk(body):
    out = bytearray()
    while body:
        line, _, rest = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return bytes(out)


class Emulator:
    """One `pump-emulator` serving one pump on a pseudo-terminal behind a stable link path.

    Its state (reservoir, program, event log, request record) persists in STATE_DIR, so a
    killed emulator restarted with the same arguments is the same pump."""

    ANNOUNCE = re.compile(r"^pump 0: (\S+) on (\S+)")

    def __init__(self, processes, binary, work, name="pump", extra=()):
        self.processes = processes
        self.binary = binary
        self.work = work
        self.link = os.path.join(work, f"{name}-link")
        self.keys = os.path.join(work, "keys")
        self.state = os.path.join(work, f"{name}-state")
        self.control = os.path.join(work, f"{name}-control")
        self.name = name
        self.extra = list(extra)
        self.process = None
        self.serial = None
        self.runs = 0
        os.makedirs(self.state, exist_ok=True)
        open(self.control, "a").close()

    def start(self, timeout=30.0):
        self.runs += 1
        self.log = os.path.join(self.work, f"{self.name}-emulator-{self.runs}.log")
        argv = [self.binary, "--link", self.link, "--key-dir", self.keys, "--state-dir", self.state,
                "--control", self.control] + self.extra
        self.process = self.processes.start("pump-emulator", argv, log=self.log, cwd=self.work)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RigError(f"pump-emulator exited with {self.process.returncode}: {tail(self.log)}")
            with open(self.log, errors="replace") as f:
                for line in f:
                    m = self.ANNOUNCE.match(line)
                    if m:
                        self.serial = m.group(1)
                        return self
            time.sleep(0.02)
        raise RigError(f"pump-emulator did not announce its pump in {timeout} s: {tail(self.log)}")

    @property
    def key_file(self):
        return os.path.join(self.keys, f"{self.serial}.key")

    def control_line(self, line):
        """Appends a line to the control file (`faults SPEC`, `hangup MS`, `inject ...`)."""
        with open(self.control, "a") as f:
            f.write(line + "\n")

    def stop(self):
        if self.process is not None:
            self.processes.stop(self.process)
            self.process = None

    def kill(self):
        if self.process is not None:
            self.processes.kill(self.process)
            self.process = None


class Daemon:
    """`pumplinkd` with one JSON configuration, a clinician and a patient token."""

    def __init__(self, processes, binary, work, pumps, name="pumplinkd", extra_config=None):
        self.processes = processes
        self.binary = binary
        self.work = work
        self.name = name
        self.clinician = "clinician-" + os.urandom(12).hex()
        self.patient = "patient-" + os.urandom(12).hex()
        self.data = os.path.join(work, f"{name}-data")
        self.port = free_port()
        config = {
            "pumps": pumps,
            "dataDirectory": self.data,
            "api": {"host": "127.0.0.1", "port": self.port, "tokens": [
                {"token": self.clinician, "name": "clinician", "role": "clinician"},
                {"token": self.patient, "name": "patient", "role": "patient"},
            ]},
        }
        config.update(extra_config or {})
        self.config = os.path.join(work, f"{name}.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=2)
        self.process = None
        self.runs = 0

    def start(self, timeout=30.0):
        """Starts the daemon and waits until its API answers; returns the seconds it took."""
        self.runs += 1
        self.log = os.path.join(self.work, f"{self.name}-{self.runs}.log")
        started = time.monotonic()
        self.process = self.processes.start("pumplinkd", [self.binary, "--config", self.config], log=self.log, cwd=self.work)
        while time.monotonic() < started + timeout:
            self.check_alive()
            answer = http(self.port, "GET", "/v1/health", timeout=0.5)
            if answer and answer[0] == 200:
                return time.monotonic() - started
            time.sleep(0.01)
        raise RigError(f"pumplinkd: the API did not answer within {timeout} s: {tail(self.log)}")

    def check_alive(self):
        if self.process is not None and self.process.poll() is not None:
            raise RigError(f"pumplinkd exited with {self.process.returncode}: {tail(self.log)}")

    def request(self, method, path, body=None, token=None, timeout=30.0):
        """(status, JSON) of an API request, the clinician's token unless another is given."""
        answer = http(self.port, method, path, token=token or self.clinician, body=body, timeout=timeout)
        if answer is None:
            self.check_alive()
            raise RigError(f"pumplinkd did not answer {method} {path}")
        return answer

    def pump(self, pump_id):
        status, body = self.request("GET", f"/v1/pumps/{pump_id}")
        if status != 200:
            raise RigError(f"GET /v1/pumps/{pump_id}: {status} {body}")
        return body

    def wait_link_up(self, pump_id, timeout=30.0, with_status=True):
        """Waits until the pump's link is up (and its first status read); returns the seconds."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            self.check_alive()
            answer = http(self.port, "GET", f"/v1/pumps/{pump_id}", token=self.clinician, timeout=2.0)
            if answer and answer[0] == 200:
                summary = answer[1].get("summary", {})
                if summary.get("link", {}).get("state") == "up" and (not with_status or summary.get("status")):
                    return time.monotonic() - started
            time.sleep(0.02)
        raise RigError(f"the link to {pump_id} was not up within {timeout} s: {tail(self.log)}")

    def events(self, pump_id, page=500):
        """Every event the daemon stored for the pump, in sequence order."""
        events, start = [], 1
        while True:
            status, body = self.request("GET", f"/v1/pumps/{pump_id}/events?from={start}&limit={page}")
            if status != 200:
                raise RigError(f"GET events: {status} {body}")
            batch = body.get("events", body) if isinstance(body, dict) else body
            events += batch
            if len(batch) < page:
                return events
            start = batch[-1]["sequence"] + 1

    def audit(self, pump_id, limit=1000):
        """The latest LIMIT audit records (at most 1000); the whole log is in DATA/*.sqlite."""
        status, body = self.request("GET", f"/v1/audit?pump={pump_id}&limit={limit}")
        if status != 200:
            raise RigError(f"GET audit: {status} {body}")
        return body

    def stop(self):
        if self.process is not None:
            code = self.processes.stop(self.process, timeout=15.0)
            self.process = None
            return code

    def kill(self):
        if self.process is not None:
            self.processes.kill(self.process)
            self.process = None


def pumpctl_json(binary, port, key_file, arguments, cwd=None, timeout=120.0, baud=None):
    """`pumpctl ARGUMENTS --port PORT --key-file KEY --json` straight to a pump: its own word
    (event log, program, status), not the daemon's. The daemon must not hold the port. BAUD is
    the line's rate, if not pumpctl's default."""
    line = ["--baud", str(baud)] if baud else []
    result = subprocess.run(
        [binary] + arguments + ["--port", port, "--key-file", key_file, "--json"] + line,
        stdin=subprocess.DEVNULL, capture_output=True, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise RigError(f"pumpctl {' '.join(arguments)}: exit {result.returncode}: {result.stderr.decode(errors='replace')}")
    return json.loads(result.stdout)


# MARK: - Protocol pieces the tools check with (independent of the Swift code)


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as SPEC §3 defines the frame check and program checksums."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


class Definitions:
    """Encodes protocol structs from protocol/messages.json (for program checksums) and names
    the event kinds."""

    WIDTH = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i16": "h"}

    def __init__(self, path=os.path.join(ROOT, "protocol", "messages.json")):
        with open(path) as f:
            d = json.load(f)
        self.structs = d["structs"]
        self.enums = d["enums"]
        self.event_kinds = {v["value"]: v["name"] for v in self.enums["EventKind"]["values"]}

    def encode(self, struct_name, value):
        out = bytearray()
        for field in self.structs[struct_name]["fields"]:
            out += self.encode_field(field, value[field["name"]])
        return bytes(out)

    def encode_field(self, field, value):
        kind = field["type"]
        if kind in self.WIDTH:
            return struct.pack("<" + self.WIDTH[kind], value)
        if kind == "enum":
            enum = self.enums[field["enum"]]
            number = value if isinstance(value, int) else next(v["value"] for v in enum["values"] if v["name"] == value)
            return struct.pack("<" + self.WIDTH[enum["type"]], number)
        if kind == "struct":
            return self.encode(field["struct"], value)
        if kind == "array":
            return bytes([len(value)]) + b"".join(self.encode(field["of"], item) for item in value)
        raise ValueError(f"no encoder for {kind}")

    def checksum(self, program):
        """A program's checksum: CRC-32C of its Program encoding."""
        return crc32c(self.encode("Program", program))
