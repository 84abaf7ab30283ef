"""Start-up time: ``scanner --help`` and ``scanner validate`` of a 10-target inventory.

Issue 6 bounds both at 150 ms, issue 18 ``--help`` at 50 ms. Each command runs
``--repeat`` times (after one warm-up run, so the page cache holds the modules) and the
median wall time is printed, with its bound. The ``scanner`` console script next to this
Python is used when installed (what a user types), ``python -m scanner`` from this
checkout otherwise. Nothing is probed.

Usage::

    python benchmarks/startup.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: seconds each command may take at most (median)
BOUNDS_S = {"--help": 0.050, "validate (10 targets)": 0.150}


def command() -> tuple[list[str], dict[str, str]]:
    script = Path(sys.executable).with_name("scanner")
    if script.exists():
        return [str(script)], dict(os.environ)
    found = shutil.which("scanner")
    if found:
        return [found], dict(os.environ)
    return [sys.executable, "-m", "scanner"], dict(os.environ, PYTHONPATH=str(ROOT))


def timed(argv: list[str], env: dict[str, str], repeat: int) -> float:
    subprocess.run(argv, env=env, capture_output=True, check=True)  # warm-up
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    base, env = command()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "ten.yaml"
        inventory.write_text(
            "version: 1\ntargets:\n"
            + "".join(
                f"  - {{name: svc-{n}, host: 127.0.0.{n + 1}, port: {5000 + n}, tags: [prod]}}\n"
                for n in range(10)
            )
        )
        results = {
            "--help": timed([*base, "--help"], env, args.repeat),
            "validate (10 targets)": timed([*base, "validate", str(inventory)], env, args.repeat),
        }
    print(f"{' '.join(base)}: median of {args.repeat}")
    failed = False
    for name, wall in results.items():
        bound = BOUNDS_S[name]
        within = wall <= bound
        failed |= not within
        print(
            f"  {name:<24} {wall * 1000:6.1f} ms  "
            f"{'within' if within else 'EXCEEDS'} {bound * 1000:.0f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
