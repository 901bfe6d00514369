#!/usr/bin/env python3
"""pumplinkd at scale and at rest (driven by tools/scale-bench; Python 3 standard library only).

Phases, each on fresh processes:
  idle-empty  a daemon with no pump configured: CPU and wake-ups at rest
  idle-off    N pumps linked, telemetry off (`telemetryIntervalMs: 0`; the link is then kept
              alive by the daemon's keepalive Pings): start-up time, CPU and wake-ups at rest
  rest-1s     N pumps at the default telemetry interval (1 s), for reference
  scale       N pumps streaming Status at 10 Hz (`telemetryIntervalMs: 100`) and C clients on
              `GET /v1/stream`: daemon CPU and memory, end-to-end latency from the emulator's
              write of each Status frame to its arrival at every client

Latency. Each streamed Status carries `pumpTimeMs`, the emulator's clock: at --time-scale 1 a
new pump's clock starts at the wall clock (VirtualClock(startMs: wallClockMs())) and follows it,
truncated to the millisecond, so it runs 0-2 ms behind the moment the frame is written. Where
`perf` may trace syscalls, the time of the write itself is taken from the kernel: every write(2)
of the emulator is recorded (tracepoint syscalls:sys_enter_write, CLOCK_MONOTONIC, ns), its file
descriptor tells the pump (the pty's tty-index), and `pumpTimeMs` only identifies which write
(one every 100 ms per pump) carried the frame a client received. Clients take CLOCK_MONOTONIC
right after each read; they also ask the kernel for the time the bytes reached their socket
(SO_TIMESTAMPNS), which leaves out their own scheduling delay. Without perf, latency is measured
from `pumpTimeMs` (and says so).

CPU is utime + stime from /proc/PID/stat over the window, in % of one core; memory is VmRSS and
VmHWM from /proc/PID/status; wake-ups are context switches (perf stat -e context-switches over
the window when perf works, and the sum of voluntary_ctxt_switches over the threads).
"""

import argparse
import array
import bisect
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pumplink_rig import Processes, free_port, http_raw  # noqa: E402

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS


class BenchError(Exception):
    """Something did not work: the run fails (links not up, no events, a process died)."""


# MARK: - processes


def read_stat(pid):
    """(utime + stime in seconds, threads) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[17])


def read_memory(pid):
    """VmRSS and VmHWM in kB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    values[key] = int(rest.split()[0])
    except FileNotFoundError:
        pass
    return values


def read_pss(pid):
    """Proportional set size in kB: shared pages (libraries) divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def largest_mappings(pid, count=8):
    """The mappings holding the most resident memory: [(kB, name)], from /proc/PID/smaps."""
    totals = {}
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                if "-" in fields[0] and not fields[0].endswith(":"):
                    name = fields[5] if len(fields) > 5 else "[anonymous]"
                    name = os.path.basename(name) if name.startswith("/") else name
                elif fields[0] == "Rss:":
                    totals[name] = totals.get(name, 0) + int(fields[1])
    except FileNotFoundError:
        return []
    return sorted(((kb, n) for n, kb in totals.items()), reverse=True)[:count]


def read_machine_busy():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def read_switches(pid):
    """Context switches summed over the process's threads now alive: {tid: (voluntary, involuntary)}."""
    result = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return result
    for tid in tids:
        voluntary = involuntary = 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary = int(line.split()[1])
        except FileNotFoundError:
            continue
        result[tid] = (voluntary, involuntary)
    return result


def read_run_time(pid):
    """Nanoseconds on a CPU, summed over the threads now alive (/proc/PID/task/*/schedstat)."""
    result = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return result
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                result[tid] = int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return result


def switch_delta(before, after):
    voluntary = involuntary = 0
    for tid, (v, i) in after.items():
        v0, i0 = before.get(tid, (0, 0))
        voluntary += v - v0
        involuntary += i - i0
    return voluntary, involuntary


def perf_works(event_args):
    try:
        result = subprocess.run(["perf", "stat", "-x,", *event_args, "true"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "not supported" not in result.stderr and "<not" not in result.stderr


def perf_trace_works(work):
    data = os.path.join(work, "perf-probe.data")
    try:
        result = subprocess.run(
            ["perf", "record", "-q", "-k", "mono", "-e", "syscalls:sys_enter_write", "-o", data, "--", "sh", "-c", "echo > /dev/null"],
            capture_output=True, text=True, timeout=20)
        if result.returncode != 0:
            return False
        script = subprocess.run(["perf", "script", "-i", data, "-F", "time,trace", "--ns"], capture_output=True, text=True, timeout=20)
        return "fd:" in script.stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    finally:
        if os.path.exists(data):
            os.unlink(data)


def realtime_offset_ns():
    """CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of a few bracketed readings."""
    best = None
    for _ in range(20):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    return best[1]


def http_get(port, path, token=None, timeout=1.0):
    """(status, body bytes) of a GET on the loopback, or None when nothing answers."""
    return http_raw(port, "GET", path, token=token, timeout=timeout)


# MARK: - the emulator and the daemon


class Rig:
    def __init__(self, args, processes):
        self.args = args
        self.processes = processes
        self.work = args.work
        self.keys = os.path.join(self.work, "keys")
        self.token = os.urandom(16).hex()
        self.emulator = None
        self.emulator_ttys = {}  # pump index -> tty index
        self.daemon = None
        self.port = None
        self.runs = 0

    def emulator_binary(self):
        return os.path.join(self.args.bin, "pump-emulator")

    def start_emulator(self, count):
        """A fresh emulator (no saved state, so every pump clock starts at the wall clock)."""
        self.runs += 1
        log = os.path.join(self.work, f"emulator-{self.runs}.log")
        links = os.path.join(self.work, f"pty-{self.runs}")
        os.makedirs(links)
        self.links = os.path.join(links, "p")
        self.emulator = self.processes.start(
            "pump-emulator",
            [self.emulator_binary(), "--count", str(count), "--link", self.links, "--state-dir", "",
             "--key-dir", self.keys, "--time-scale", "1"],
            log=log, cwd=self.work)
        pattern = re.compile(r"^pump (\d+): (\S+) on /dev/pts/(\d+)")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.emulator.poll() is not None:
                raise BenchError(f"pump-emulator exited with {self.emulator.returncode}: {tail(log)}")
            found = {}
            with open(log) as f:
                for line in f:
                    m = pattern.match(line)
                    if m:
                        found[int(m.group(1))] = (m.group(2), int(m.group(3)))
            if len(found) == count:
                self.serials = {i: found[i][0] for i in found}
                self.emulator_ttys = {i: found[i][1] for i in found}
                return
            time.sleep(0.05)
        raise BenchError(f"pump-emulator did not announce {count} pumps in 30 s: {tail(log)}")

    def stop_emulator(self):
        if self.emulator is None:
            return
        if self.emulator.poll() is not None:
            raise BenchError(f"pump-emulator died during the phase (exit {self.emulator.returncode})")
        code = self.processes.stop(self.emulator)
        self.emulator = None
        if code not in (0, -signal.SIGTERM):
            raise BenchError(f"pump-emulator ended with {code} when stopped")

    def pump_id(self, index):
        return f"pump-{index:03d}"

    def write_config(self, name, pumps, telemetry_ms):
        self.port = free_port()
        config = {
            "pumps": [
                {"id": self.pump_id(i), "port": f"{self.links}{i}", "keyFile": os.path.join(self.keys, f"{self.serials[i]}.key")}
                for i in range(pumps)
            ],
            "dataDirectory": os.path.join(self.work, f"data-{name}"),
            "api": {"host": "127.0.0.1", "port": self.port,
                    "tokens": [{"token": self.token, "name": "scale-bench", "role": "observer"}]},
        }
        if telemetry_ms is not None:
            config["telemetryIntervalMs"] = telemetry_ms
        path = os.path.join(self.work, f"pumplinkd-{name}.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        return path

    def start_daemon(self, name, pumps, telemetry_ms):
        """Starts pumplinkd and waits for its API and every link: the start-up figures."""
        config = self.write_config(name, pumps, telemetry_ms)
        log = os.path.join(self.work, f"pumplinkd-{name}.log")
        started = time.monotonic()
        self.daemon = self.processes.start(
            "pumplinkd", [os.path.join(self.args.bin, "pumplinkd"), "--config", config], log=log, cwd=self.work)
        self.daemon_log = log
        api_at = links_at = None
        deadline = started + self.args.startup_timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise BenchError(f"pumplinkd ({name}) exited with {self.daemon.returncode} during start-up: {tail(log)}")
            answer = http_get(self.port, "/v1/health", timeout=0.5)
            if answer and answer[0] == 200:
                api_at = time.monotonic()
                break
            time.sleep(0.005)
        if api_at is None:
            raise BenchError(f"pumplinkd ({name}): the API did not answer within {self.args.startup_timeout} s: {tail(log)}")
        up = 0
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise BenchError(f"pumplinkd ({name}) exited with {self.daemon.returncode} during start-up: {tail(log)}")
            answer = http_get(self.port, "/v1/pumps", self.token, timeout=2.0)
            if answer and answer[0] == 200:
                summaries = json.loads(answer[1])
                up = sum(1 for s in summaries if s.get("link", {}).get("state") == "up")
                if up == pumps:
                    links_at = time.monotonic()
                    break
            time.sleep(0.02)
        if links_at is None:
            raise BenchError(f"pumplinkd ({name}): {up} of {pumps} links up after {self.args.startup_timeout} s: {tail(log)}")
        return {"api_s": api_at - started, "links_s": links_at - started}

    def stop_daemon(self):
        if self.daemon is None:
            return None
        if self.daemon.poll() is not None:
            raise BenchError(f"pumplinkd died during the phase (exit {self.daemon.returncode}): {tail(self.daemon_log)}")
        started = time.monotonic()
        code = self.processes.stop(self.daemon, timeout=15.0)
        self.daemon = None
        if code != 0:
            raise BenchError(f"pumplinkd ended with {code} when stopped: {tail(self.daemon_log)}")
        return time.monotonic() - started

    def check_alive(self):
        for name, process in (("pumplinkd", self.daemon), ("pump-emulator", self.emulator)):
            if process is not None and process.poll() is not None:
                raise BenchError(f"{name} died (exit {process.returncode})")

    def pty_fds(self):
        """The emulator's pty controller descriptors: {fd: pump index}, by tty-index."""
        by_tty = {tty: index for index, tty in self.emulator_ttys.items()}
        pid = self.emulator.pid
        result = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != "/dev/ptmx":
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    for line in f:
                        if line.startswith("tty-index:"):
                            tty = int(line.split()[1])
                            if tty in by_tty:
                                result[int(fd)] = by_tty[tty]
            except (FileNotFoundError, OSError):
                continue
        return result


def tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            return "\n    " + "\n    ".join(f.read().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# MARK: - measuring a window


class Window:
    """CPU, memory and context switches of some processes over one measured window."""

    def __init__(self, processes, perf_stat, work, name, seconds):
        self.targets = {n: p for n, p in processes.items() if p is not None}
        self.perf_stat = perf_stat
        self.work = work
        self.name = name
        self.seconds = seconds

    def run(self, during=None):
        perf = None
        perf_out = os.path.join(self.work, f"perf-stat-{self.name}.csv")
        daemon = self.targets.get("daemon")
        if self.perf_stat and daemon is not None:
            perf = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "context-switches,cpu-migrations,task-clock", "-p", str(daemon.pid),
                 "-o", perf_out, "--", "sleep", str(self.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        start = time.monotonic()
        cpu0 = {n: read_stat(p.pid) for n, p in self.targets.items()}
        sw0 = {n: read_switches(p.pid) for n, p in self.targets.items()}
        run0 = {n: read_run_time(p.pid) for n, p in self.targets.items()}
        machine0 = read_machine_busy()
        rss_max = {n: 0 for n in self.targets}
        end = start + self.seconds
        while True:
            for n, p in self.targets.items():
                rss_max[n] = max(rss_max[n], read_memory(p.pid).get("VmRSS", 0))
            if during:
                during()
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(min(1.0, end - now))
        elapsed = time.monotonic() - start
        result = {}
        for n, p in self.targets.items():
            c1 = read_stat(p.pid)
            if c1 is None or cpu0[n] is None:
                raise BenchError(f"{n} (pid {p.pid}) is gone")
            voluntary, involuntary = switch_delta(sw0[n], read_switches(p.pid))
            run1 = read_run_time(p.pid)
            run_ns = sum(t - run0[n].get(tid, 0) for tid, t in run1.items())
            memory = read_memory(p.pid)
            result[n] = {
                "cpu_percent": 100.0 * (c1[0] - cpu0[n][0]) / elapsed,
                "cpu_seconds": c1[0] - cpu0[n][0],
                # ns resolution, but blind to threads that ended within the window
                "cpu_percent_schedstat": 100.0 * run_ns / 1e9 / elapsed,
                "threads": c1[1],
                "vm_rss_kb": memory.get("VmRSS"),
                "vm_hwm_kb": memory.get("VmHWM"),
                "vm_rss_max_kb": rss_max[n],
                "rss_anon_kb": memory.get("RssAnon"),
                "rss_file_kb": memory.get("RssFile"),
                "pss_kb": read_pss(p.pid),
                "voluntary_switches_per_s": voluntary / elapsed,
                "involuntary_switches_per_s": involuntary / elapsed,
            }
        result["window_s"] = elapsed
        machine1 = read_machine_busy()
        # Everything on the machine, ours and others' (it is shared): % of all cores.
        result["machine_busy_percent"] = 100.0 * (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1])
        result["load_average_after"] = open("/proc/loadavg").read().split()[:3]
        if "daemon" in self.targets:
            result["daemon"]["largest_mappings_kb"] = largest_mappings(self.targets["daemon"].pid)
        if perf is not None:
            perf.wait()
            counts = {}
            try:
                with open(perf_out) as f:
                    for line in f:
                        parts = line.strip().split(",")
                        if len(parts) > 2 and parts[0] and parts[0][0].isdigit():
                            # task-clock comes in msec, the counts as numbers.
                            counts[parts[2]] = float(parts[0]) * (1e6 if parts[1] == "msec" else 1)
            except FileNotFoundError:
                pass
            if "context-switches" in counts:
                result["daemon"]["perf_context_switches_per_s"] = counts["context-switches"] / self.seconds
                result["daemon"]["perf_cpu_migrations_per_s"] = counts.get("cpu-migrations", 0) / self.seconds
                result["daemon"]["perf_task_clock_percent"] = counts.get("task-clock", 0) / 1e9 / self.seconds * 100
        return result


# MARK: - the stream clients




class StreamClient:
    """One `GET /v1/stream` connection: HTTP/1.1, chunked body, Server-Sent Events."""

    def __init__(self, port, token, timestamps):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if timestamps:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.sendall(
            f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.sock.setblocking(False)
        self.head = bytearray()
        self.headers_done = False
        self.raw = bytearray()
        self.sse = bytearray()
        self.connected = False
        self.closed = False
        self.last_id = 0
        self.lost = 0
        self.counts = {}

    def feed(self, data, t_read, t_kernel, out):
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end])
            if not head.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"stream refused: {head.splitlines()[0].decode(errors='replace')}")
            if b"transfer-encoding: chunked" not in head.lower():
                raise BenchError("stream response is not chunked")
            data = bytes(self.head[end + 4:])
            self.headers_done = True
        self.raw += data
        raw = self.raw
        position = 0
        while True:
            line_end = raw.find(b"\r\n", position)
            if line_end < 0:
                break
            size = int(raw[position:line_end].split(b";")[0], 16)
            if size == 0:
                self.closed = True
                position = line_end + 2
                break
            if len(raw) < line_end + 2 + size + 2:
                break
            self.sse += raw[line_end + 2:line_end + 2 + size]
            position = line_end + 4 + size
        del raw[:position]
        last = self.sse.rfind(b"\n\n")
        if last < 0:
            return
        block = bytes(self.sse[:last + 2])
        del self.sse[:last + 2]
        if not self.connected and b": connected\n\n" in block:
            self.connected = True
        pumps, times, reads, kernels = out
        counts = self.counts
        # Plain finds, not regular expressions: this runs for every event at every client.
        for message in block.split(b"\n\n"):
            if not message.startswith(b"id: "):
                continue  # a comment (": keepalive") or the empty tail
            first = message.find(b"\n")
            second = message.find(b"\n", first + 1)
            update_id = int(message[4:first])
            if self.last_id and update_id != self.last_id + 1:
                self.lost += max(0, update_id - self.last_id - 1)
            self.last_id = update_id
            name = message[first + 8:second]
            counts[name] = counts.get(name, 0) + 1
            if name == b"status":
                # data: {"pumpID":"pump-NNN",...,"pumpTimeMs":T,...}
                pump_at = message.find(b'"pumpID":"pump-', second)
                time_at = message.find(b'"pumpTimeMs":', second)
                if pump_at < 0 or time_at < 0:
                    continue
                pump_end = message.find(b'"', pump_at + 15)
                time_end = message.find(b",", time_at + 13)
                if time_end < 0:
                    time_end = message.find(b"}", time_at + 13)
                pumps.append(int(message[pump_at + 15:pump_end]))
                times.append(int(message[time_at + 13:time_end]))
                reads.append(t_read)
                kernels.append(t_kernel)


def client_worker(args):
    """A process holding `--connections` stream clients, until SIGTERM; then it writes what
    each status event was (pump, pumpTimeMs, read time, socket arrival time) to `--out`."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    clients = [StreamClient(args.port, args.token, args.kernel_timestamps) for _ in range(args.connections)]
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    out = (array.array("H"), array.array("Q"), array.array("q"), array.array("q"))
    ancillary = socket.CMSG_SPACE(16) if args.kernel_timestamps else 0
    ready_written = False
    error = None
    try:
        while not stopping:
            events = selector.select(timeout=0.2)
            received = []
            # Read every ready socket first, timestamping each read, then parse.
            for key, _ in events:
                client = key.data
                try:
                    if ancillary:
                        data, anc, _, _ = client.sock.recvmsg(262144, ancillary)
                    else:
                        data, anc = client.sock.recv(262144), ()
                except BlockingIOError:
                    continue
                t_read = time.monotonic_ns()
                t_kernel = 0
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(value) >= 16:
                        seconds, nanoseconds = struct.unpack("qq", value[:16])
                        t_kernel = seconds * 1_000_000_000 + nanoseconds
                received.append((client, data, t_read, t_kernel))
            for client, data, t_read, t_kernel in received:
                if not data:
                    client.closed = True
                    selector.unregister(client.sock)
                    continue
                client.feed(data, t_read, t_kernel, out)
            if not ready_written and all(c.connected for c in clients):
                with open(args.out + ".ready", "w") as f:
                    f.write("ready\n")
                ready_written = True
    except BenchError as e:
        error = str(e)
    base = args.out
    for suffix, values in zip(("pumps", "times", "reads", "kernels"), out):
        with open(f"{base}.{suffix}", "wb") as f:
            values.tofile(f)
    summary = {
        "error": error,
        "clients": [{"counts": {k.decode(): v for k, v in c.counts.items()}, "lost": c.lost, "closed": c.closed, "connected": c.connected} for c in clients],
    }
    with open(base + ".json", "w") as f:
        json.dump(summary, f)


def start_clients(rig, processes, count, procs, kernel_timestamps):
    workers = []
    per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    for index, connections in enumerate(c for c in per if c > 0):
        out = os.path.join(rig.work, f"clients-{index}")
        argv = [sys.executable, os.path.abspath(__file__), "--client-worker", "--port", str(rig.port), "--token", rig.token,
                "--connections", str(connections), "--out", out]
        if kernel_timestamps:
            argv.append("--kernel-timestamps")
        workers.append((out, processes.start(f"stream-clients-{index}", argv, log=out + ".log")))
    deadline = time.monotonic() + 30
    while not all(os.path.exists(out + ".ready") for out, _ in workers):
        for out, worker in workers:
            if worker.poll() is not None:
                raise BenchError(f"stream client process exited with {worker.returncode}: {tail(out + '.log')}")
        if time.monotonic() > deadline:
            raise BenchError("stream clients not connected after 30 s")
        time.sleep(0.02)
    return workers


def collect_clients(processes, workers):
    records = [array.array("H"), array.array("Q"), array.array("q"), array.array("q")]
    clients = []
    for out, worker in workers:
        if worker.poll() is not None:
            raise BenchError(f"stream client process died (exit {worker.returncode}): {tail(out + '.log')}")
        processes.stop(worker, timeout=30)
        with open(out + ".json") as f:
            summary = json.load(f)
        if summary["error"]:
            raise BenchError(f"stream client: {summary['error']}")
        clients += summary["clients"]
        for values, suffix in zip(records, ("pumps", "times", "reads", "kernels")):
            path = f"{out}.{suffix}"
            with open(path, "rb") as f:
                values.frombytes(f.read())
    return clients, records


# MARK: - write times from the kernel


def start_write_trace(rig, processes):
    out = os.path.join(rig.work, "emulator-writes.data")
    process = processes.start(
        "perf-record-writes",
        ["perf", "record", "-q", "-k", "mono", "-e", "syscalls:sys_enter_write", "-p", str(rig.emulator.pid), "-o", out],
        log=os.path.join(rig.work, "perf-record-writes.log"))
    time.sleep(1.0)  # perf attaches to every thread
    if process.poll() is not None:
        raise BenchError(f"perf record failed: {tail(os.path.join(rig.work, 'perf-record-writes.log'))}")
    return out, process


def read_write_trace(path, fds):
    """{pump index: sorted write times (CLOCK_MONOTONIC ns)} from a perf record of write(2)."""
    result = subprocess.run(["perf", "script", "-i", path, "-F", "time,trace", "--ns"], capture_output=True, text=True)
    pattern = re.compile(r"^\s*(\d+)\.(\d{9}):\s+fd: 0x([0-9a-f]+), buf: 0x[0-9a-f]+, count: 0x([0-9a-f]+)")
    writes = {}
    for line in result.stdout.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        fd = int(m.group(3), 16)
        if fd in fds:
            writes.setdefault(fds[fd], []).append(int(m.group(1)) * 1_000_000_000 + int(m.group(2)))
    for times in writes.values():
        times.sort()
    return writes


# MARK: - latency


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


def distribution_ms(values):
    values.sort()
    if not values:
        return None
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.50) / 1e6,
        "p90_ms": percentile(values, 0.90) / 1e6,
        "p99_ms": percentile(values, 0.99) / 1e6,
        "p999_ms": percentile(values, 0.999) / 1e6,
        "max_ms": values[-1] / 1e6,
        "min_ms": values[0] / 1e6,
    }


def latencies(records, window, offset, writes):
    """Latency distributions over the window, from the pump clock and, with `writes`, from the
    kernel's record of each write."""
    pumps, times, reads, kernels = records
    start, end = window
    by_clock, by_write, by_write_kernel, clock_lag = [], [], [], []
    matched = {}
    unmatched = 0
    for i in range(len(reads)):
        t_read = reads[i]
        if t_read < start or t_read > end:
            continue
        pump_time_ns = times[i] * 1_000_000
        by_clock.append(t_read + offset - pump_time_ns)
        if writes is None:
            continue
        key = (pumps[i], times[i])
        write = matched.get(key, -1)
        if write == -1:
            write = None
            series = writes.get(pumps[i])
            if series:
                # The first write at or after the pump-clock time (which runs 0-2 ms behind).
                j = bisect.bisect_left(series, pump_time_ns - offset - 1_000_000)
                if j < len(series) and series[j] - (pump_time_ns - offset) < 50_000_000 and series[j] <= t_read:
                    write = series[j]
                    clock_lag.append(series[j] + offset - pump_time_ns)
            matched[key] = write
        if write is None:
            unmatched += 1
            continue
        by_write.append(t_read - write)
        if kernels[i]:
            by_write_kernel.append(kernels[i] - offset - write)
    result = {"pump_clock_to_read": distribution_ms(by_clock)}
    if writes is not None:
        result["write_to_read"] = distribution_ms(by_write)
        result["write_to_socket"] = distribution_ms(by_write_kernel)
        result["pump_clock_behind_write"] = distribution_ms(clock_lag)
        result["unmatched_events"] = unmatched
    return result


# MARK: - phases


def phase_idle(rig, args, perf_stat, name, pumps, telemetry_ms, report):
    """A daemon at rest: start-up (with pumps), settle, then CPU and wake-ups over the window."""
    if pumps:
        rig.start_emulator(pumps)
    startup = rig.start_daemon(name, pumps, telemetry_ms)
    time.sleep(args.settle)
    window = Window({"daemon": rig.daemon, "emulator": rig.emulator}, perf_stat, rig.work, name, args.idle).run(rig.check_alive)
    rig.check_alive()
    stop_s = rig.stop_daemon()
    rig.stop_emulator()
    report["phases"][name] = {"pumps": pumps, "telemetry_ms": telemetry_ms, "startup": startup, "window": window,
                              "daemon_stop_s": stop_s}
    d = window["daemon"]
    print(f"  {name}: daemon {d['cpu_percent']:.2f} % CPU, {d['voluntary_switches_per_s']:.0f} voluntary switches/s"
          + (f", links up in {startup['links_s']:.2f} s" if pumps else ""), flush=True)


def phase_scale(rig, args, processes, perf_stat, trace_writes, report):
    name = "scale"
    rig.start_emulator(args.pumps)
    startup = rig.start_daemon(name, args.pumps, 100)
    # Traced from before the clients connect: under a backlog a client may receive, in the
    # window, frames written long before it.
    trace = start_write_trace(rig, processes) if trace_writes else None
    workers = start_clients(rig, processes, args.clients, args.client_procs, kernel_timestamps=True)
    time.sleep(args.warmup)
    rig.check_alive()
    profile = None
    if args.profile:
        profile = processes.start(
            "perf-record-profile",
            ["perf", "record", "-q", "-g", "-F", "499", "-e", "cpu-clock", "-p", str(rig.daemon.pid), "-o", args.profile],
            log=os.path.join(rig.work, "perf-record-profile.log"))
    offset = realtime_offset_ns()
    targets = {"daemon": rig.daemon, "emulator": rig.emulator}
    for index, (_, worker) in enumerate(workers):
        targets[f"clients-{index}"] = worker
    if trace:
        targets["perf-writes"] = trace[1]
    window_start = time.monotonic_ns()
    window = Window(targets, perf_stat, rig.work, name, args.measure).run(rig.check_alive)
    window_end = time.monotonic_ns()
    rig.check_alive()
    writes = None
    if profile:
        processes.stop(profile, sig=signal.SIGINT, timeout=60)
    if trace:
        processes.stop(trace[1], sig=signal.SIGINT, timeout=60)
    fds = rig.pty_fds() if trace else None
    clients, records = collect_clients(processes, workers)
    stop_s = rig.stop_daemon()
    rig.stop_emulator()
    if trace:
        writes = read_write_trace(trace[0], fds)
        if not writes:
            print("  (no emulator writes traced: latency from the pump clock only)", flush=True)
            writes = None
    seconds = (window_end - window_start) / 1e9
    in_window = sum(1 for t in records[2] if window_start <= t <= window_end)
    written = None
    if writes:
        written = sum(1 for series in writes.values() for t in series if window_start <= t <= window_end) / seconds
    result = {
        "pumps": args.pumps, "clients": args.clients, "telemetry_ms": 100, "startup": startup, "window": window,
        "daemon_stop_s": stop_s,
        "latency": latencies(records, (window_start, window_end), offset, writes),
        "status_events_per_client_per_s": in_window / max(1, len(clients)) / seconds,
        "status_events_expected_per_client_per_s": args.pumps * 10,
        # Every Status frame the pumps wrote in the window, from the write trace.
        "status_frames_written_per_s": written,
        "lost_updates": sum(c["lost"] for c in clients),
        # Over the whole run (connection to stop), per client: fair shares or not.
        "status_events_per_client_min": min(c["counts"].get("status", 0) for c in clients),
        "status_events_per_client_max": max(c["counts"].get("status", 0) for c in clients),
        "clients_without_status": sum(1 for c in clients if c["counts"].get("status", 0) == 0),
        "clients_closed": sum(1 for c in clients if c["closed"]),
        "latency_write_times": "kernel" if writes else "pump clock",
        "profile": args.profile,
    }
    report["phases"][name] = result
    if result["clients_without_status"] or result["clients_closed"] or in_window == 0:
        raise BenchError(
            f"stream clients: {result['clients_without_status']} got no status event, {result['clients_closed']} were closed")


# MARK: - report


def fmt(value, spec, unit=""):
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def print_table(report):
    phases = report["phases"]
    rows = []
    scale = phases.get("scale")
    if scale and "error" in scale:
        rows.append(("scale", "not measured", scale["error"].splitlines()[0][:70]))
        scale = None
    if scale:
        d = scale["window"]["daemon"]
        lat = scale["latency"]
        primary = lat.get("write_to_read") if scale["latency_write_times"] == "kernel" else lat["pump_clock_to_read"]
        label = "write→client read" if scale["latency_write_times"] == "kernel" else "pump clock→client read"
        rows.append((f"scale: daemon CPU ({scale['pumps']} pumps × 10 Hz, {scale['clients']} clients)",
                     fmt(d["cpu_percent"], ".1f", " % of a core"), "< 15 %"))
        rows.append(("scale: daemon VmRSS at end / max / VmHWM",
                     f"{d['vm_rss_kb'] * 1024 / 1e6:.1f} / {d['vm_rss_max_kb'] * 1024 / 1e6:.1f} / {d['vm_hwm_kb'] * 1024 / 1e6:.1f} MB",
                     "< 50 MB"))
        rows.append(("scale: daemon VmRSS: anonymous + file-backed; PSS",
                     f"{d['rss_anon_kb'] * 1024 / 1e6:.1f} + {d['rss_file_kb'] * 1024 / 1e6:.1f} MB; "
                     f"{(d['pss_kb'] or 0) * 1024 / 1e6:.1f} MB", ""))
        if primary:
            rows.append((f"scale: latency {label} p50 / p99",
                         f"{primary['p50_ms']:.2f} / {primary['p99_ms']:.2f} ms", ""))
        socket_lat = lat.get("write_to_socket")
        if socket_lat:
            rows.append(("scale: latency write→client socket p50 / p99",
                         f"{socket_lat['p50_ms']:.2f} / {socket_lat['p99_ms']:.2f} ms", ""))
        if scale["latency_write_times"] == "kernel":
            c = lat["pump_clock_to_read"]
            rows.append(("scale: latency pump clock→client read p50 / p99", f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} ms", ""))
        written = scale.get("status_frames_written_per_s")
        rows.append(("scale: status events received per client",
                     f"{scale['status_events_per_client_per_s']:.0f}/s of "
                     + (f"{written:.0f}/s written" if written else f"{scale['status_events_expected_per_client_per_s']}/s"),
                     "all"))
        rows.append(("scale: updates lost, seen as SSE id gaps (all clients)", str(scale["lost_updates"]), "0"))
        rows.append(("scale: daemon wake-ups (voluntary switches)", f"{d['voluntary_switches_per_s']:.0f}/s", ""))
        clients_cpu = sum(v["cpu_percent"] for k, v in scale["window"].items() if k.startswith("clients-"))
        rows.append(("scale: stream clients' own CPU (Python)", f"{clients_cpu:.1f} % of a core", ""))
        rows.append(("scale: pump-emulator CPU", f"{scale['window']['emulator']['cpu_percent']:.1f} % of a core", ""))
        rows.append(("scale: whole machine busy (shared; load avg after)",
                     f"{scale['window']['machine_busy_percent']:.0f} % of {report['cpus']} cores "
                     f"({' '.join(scale['window']['load_average_after'])})", ""))
        if "perf-writes" in scale["window"]:
            rows.append(("scale: perf (write trace) CPU", f"{scale['window']['perf-writes']['cpu_percent']:.1f} % of a core", ""))
    source = next((p for p in (phases.get("idle-off"), phases.get("rest-1s"), scale) if p and "startup" in p), None)
    if source:
        startup, count = source["startup"], source["pumps"]
        rows.append((f"start-up: API answering", f"{startup['api_s']:.2f} s", ""))
        rows.append((f"start-up: all {count} links up", f"{startup['links_s']:.2f} s", ""))
    for name, label in (("idle-off", "telemetry off"), ("rest-1s", "telemetry 1 s"), ("idle-empty", "0 pumps")):
        phase = phases.get(name)
        if not phase:
            continue
        if "error" in phase:
            rows.append((f"idle, {label}", "not measured", phase["error"].splitlines()[0][:70]))
            continue
        d = phase["window"]["daemon"]
        pumps = f"{phase['pumps']} pumps, " if phase["pumps"] else ""
        wake = d.get("perf_context_switches_per_s")
        precise = d.get("perf_task_clock_percent")
        rows.append((f"idle, {pumps}{label}: daemon CPU",
                     f"{d['cpu_percent']:.2f} % of a core" + (f" ({precise:.3f} % task-clock)" if precise is not None else ""),
                     ""))
        rows.append((f"idle, {pumps}{label}: wake-ups",
                     f"{d['voluntary_switches_per_s']:.0f}/s voluntary" + (f", {wake:.0f}/s perf" if wake is not None else ""),
                     ""))
        rows.append((f"idle, {pumps}{label}: daemon VmRSS (anon + file)",
                     f"{d['vm_rss_kb'] * 1024 / 1e6:.1f} MB ({d['rss_anon_kb'] * 1024 / 1e6:.1f} + {d['rss_file_kb'] * 1024 / 1e6:.1f})",
                     ""))
        rows.append((f"idle, {pumps}{label}: whole machine busy (shared)",
                     f"{phase['window']['machine_busy_percent']:.0f} % of {report['cpus']} cores", ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    print(f"{'figure':<{width}}  {'value':<{value_width}}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:<{value_width}}  {target}")


# MARK: - main


def main():
    parser = argparse.ArgumentParser(
        prog="tools/scale-bench",
        description="pumplinkd at scale (many pumps streaming, many stream clients) and at rest.",
        epilog="Benchmarks report; a missed target does not fail the run. Anything not working does "
               "(links not up, no events at clients, a process dying).")
    parser.add_argument("--smoke", action="store_true", help="8 pumps, 10 clients, short windows (for CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures as JSON")
    parser.add_argument("--pumps", type=int, help="emulated pumps (default 64; smoke 8)")
    parser.add_argument("--clients", type=int, help="stream clients (default 100; smoke 10)")
    parser.add_argument("--client-procs", type=int, help="processes the clients are spread over (default 4; smoke 1)")
    parser.add_argument("--warmup", type=float, help="seconds before the scale window (default 10; smoke 2)")
    parser.add_argument("--measure", type=float, help="seconds of the scale window (default 60; smoke 5)")
    parser.add_argument("--idle", type=float, help="seconds of each idle window (default 30; smoke 3)")
    parser.add_argument("--settle", type=float, help="seconds between links up and an idle window (default 5; smoke 1)")
    parser.add_argument("--phases", default="idle-empty,idle-off,rest-1s,scale",
                        help="which phases, comma-separated (default: %(default)s)")
    parser.add_argument("--write-times", choices=["auto", "perf", "pump-clock"], default="auto",
                        help="where latency starts: the kernel's record of the emulator's write (perf), or pumpTimeMs")
    parser.add_argument("--profile", metavar="FILE", help="perf record -g the daemon during the scale window into FILE")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--bin", help="folder with release pumplinkd and pump-emulator (tools/scale-bench gives it)")
    parser.add_argument("--work", help="scratch folder (tools/scale-bench gives it)")
    # The stream client processes this script starts run it again with these:
    parser.add_argument("--client-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--kernel-timestamps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_worker:
        client_worker(args)
        return 0
    if not args.bin or not args.work:
        parser.error("--bin and --work are required (run tools/scale-bench)")

    smoke = args.smoke
    defaults = {"pumps": (64, 8), "clients": (100, 10), "client_procs": (4, 1), "warmup": (10, 2), "measure": (60, 5),
                "idle": (30, 3), "settle": (5, 1)}
    for key, (full, short) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, short if smoke else full)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for phase in phases:
        if phase not in ("idle-empty", "idle-off", "rest-1s", "scale"):
            parser.error(f"unknown phase {phase}")

    def terminate(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)

    processes = Processes(args.work)
    rig = Rig(args, processes)
    perf_stat = perf_works(["-e", "context-switches"])
    trace_writes = False
    if "scale" in phases and args.write_times != "pump-clock":
        trace_writes = perf_trace_works(args.work)
        if args.write_times == "perf" and not trace_writes:
            raise BenchError("--write-times perf: perf cannot trace syscalls:sys_enter_write here")
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = []
    report = {
        "mode": "smoke" if smoke else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_before": load,
        "cpus": os.cpu_count(),
        "settings": {k: getattr(args, k) for k in ("pumps", "clients", "client_procs", "warmup", "measure", "idle", "settle")},
        "perf_stat": perf_stat,
        "phases": {},
    }
    print(f"pumplinkd scale-bench ({report['mode']}): {args.pumps} pumps, {args.clients} stream clients; "
          f"load average {' '.join(load)} on {os.cpu_count()} cores", flush=True)
    failures = []
    try:
        for phase in phases:
            print(f"- {phase}", flush=True)
            try:
                if phase == "idle-empty":
                    phase_idle(rig, args, perf_stat, "idle-empty", 0, None, report)
                elif phase == "idle-off":
                    phase_idle(rig, args, perf_stat, "idle-off", args.pumps, 0, report)
                elif phase == "rest-1s":
                    phase_idle(rig, args, perf_stat, "rest-1s", args.pumps, 1000, report)
                elif phase == "scale":
                    phase_scale(rig, args, processes, perf_stat, trace_writes, report)
            except BenchError as error:
                # Each phase starts its own processes: the next one can still run.
                print(f"  {phase}: FAILED: {error}", flush=True)
                failures.append(f"{phase}: {error}")
                report["phases"][phase] = {"error": str(error)}
                processes.stop_all()
                rig.daemon = rig.emulator = None
    except KeyboardInterrupt:
        failures.append("interrupted")
    finally:
        processes.stop_all()
    failed = "; ".join(f.splitlines()[0] for f in failures) if failures else None
    if report["phases"]:
        print_table(report)
    if args.json:
        report["error"] = failed
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nraw figures: {args.json}")
    if failed:
        print(f"\ntools/scale-bench: FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
