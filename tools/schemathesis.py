#!/usr/bin/env python3
"""schemathesis against a real pumplinkd and pump-emulator (driven by tools/schemathesis).

Starts one emulated pump and a daemon linked to it (tokens in the daemon's configuration, as
the daemon reads them today), waits until the link is up, then runs `schemathesis run` on
protocol/openapi.json with `--checks all` on every operation, the clinician's token as the
bearer token and the pump's id as every `{id}`, so that requests reach the pump. Exits with
schemathesis's status; the daemon must still be running at the end.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pumplink_rig import Daemon, Emulator, Processes, RigError, tail  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUMP = "pump-1"


def config_text(daemon, examples, seed):
    """schemathesis.toml: the API, its token, the pump's id, how many examples."""
    return f"""base-url = "http://127.0.0.1:{daemon.port}"
seed = {seed}
request-timeout = 30.0
workers = 1
# /v1/stream never ends: read this many events of each (with telemetry at 10 Hz, a fraction of
# a second), then check them.
max-stream-events = 3

[generation]
max-examples = {examples}

[parameters]
"path.id" = "{PUMP}"

[auth.openapi.bearer]
bearer = "{daemon.clinician}"
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder of the pumplinkd and pump-emulator binaries")
    parser.add_argument("--work", required=True, help="scratch folder (configuration, logs, pids)")
    parser.add_argument("--smoke", action="store_true", help="50 examples per operation (CI)")
    parser.add_argument("--examples", type=int, help="examples per operation and phase (default 300, smoke 50)")
    parser.add_argument("--seed", type=int, default=20261204, help="schemathesis's seed (reproducible runs)")
    options = parser.parse_args()
    examples = options.examples or (50 if options.smoke else 300)

    processes = Processes(options.work)
    try:
        emulator = Emulator(processes, os.path.join(options.bin, "pump-emulator"), options.work).start()
        daemon = Daemon(processes, os.path.join(options.bin, "pumplinkd"), options.work,
                        [{"id": PUMP, "port": emulator.link, "keyFile": emulator.key_file}],
                        extra_config={"telemetryIntervalMs": 100})
        daemon.start()
        daemon.wait_link_up(PUMP, timeout=60)
        config = os.path.join(options.work, "schemathesis.toml")
        with open(config, "w") as f:
            f.write(config_text(daemon, examples, options.seed))
        report = os.path.join(options.work, "report")
        argv = ["schemathesis", "--config-file", config, "run", os.path.join(ROOT, "protocol", "openapi.json"),
                "--checks", "all", "--report", "junit", "--report-dir", report]
        print(f"schemathesis: {examples} examples per operation, seed {options.seed}", flush=True)
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, cwd=options.work,
                                env=dict(os.environ, SCHEMATHESIS_TELEMETRY="false"))
        daemon.check_alive()
        emulator_alive = emulator.process is not None and emulator.process.poll() is None
        if not emulator_alive:
            raise RigError(f"pump-emulator exited during the run: {tail(emulator.log)}")
        if result.returncode != 0:
            print(f"schemathesis failed (exit {result.returncode}); daemon log: {daemon.log}", file=sys.stderr)
            return 1
        print("schemathesis: every operation conforms to protocol/openapi.json")
        return 0
    except RigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
