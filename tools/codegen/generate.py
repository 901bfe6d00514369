#!/usr/bin/env python3
"""Regenerates everything derived from protocol/messages.json, or with --check verifies it is current.

The generators: generate_swift.py (Swift codec types) and any other generate_*.py in this folder.
"""
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main():
    failed = False
    for script in sorted(HERE.glob("generate_*.py")):
        result = subprocess.run([sys.executable, str(script), *sys.argv[1:]], cwd=HERE)
        failed |= result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
