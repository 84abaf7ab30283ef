"""A million targets from one line of inventory: memory, time to first result, throughput.

The inventory is issue 6's case: one target line, ``host: 127.0.0.0/16`` times the port
range ``"47000-47015"`` — 1,048,576 endpoints on this host's loopback, expanded lazily
(SPEC §2). Nothing listens on those ports here (checked first), so every handshake is
refused by the kernel; no packet leaves the machine. One run of ``scanner check --format
json`` (workers as the defaults choose, unless given after ``--``) is watched from outside:

* the event stream is read as it comes: when the first ``target.result`` arrives and how
  many arrive within the first second after start;
* memory is sampled every 50 ms for the scanner and every process it forks: the largest
  resident set of any one process (what issue 6 bounds, 150 MB), and the sum of their
  proportional set sizes (PSS: pages forked processes share are counted once);
* every ``target.result`` is counted by category: 1,048,576 in all, or the run failed.

Usage::

    python benchmarks/million.py                 # the defaults (auto workers)
    python benchmarks/million.py -- --workers 1  # one process
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from procmem import Watch

ROOT = Path(__file__).resolve().parent.parent
PORTS = range(47000, 47016)
TOTAL = 65_536 * len(PORTS)
RSS_BOUND_MIB = 150 * 1000 * 1000 / 2**20  # issue 6: 150 MB
DEADLINE_S = 900.0  # every loop here is bounded


def ports_are_closed() -> bool:
    """True when nothing listens on the benchmark's ports (so every answer is a refusal)."""
    for port in PORTS:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scanner_args", nargs="*", help="extra arguments for scanner check")
    args = parser.parse_args()
    if not ports_are_closed():
        print(
            f"something listens on 127.0.0.1:{PORTS.start}-{PORTS.stop - 1}; "
            "the benchmark needs them closed",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "million.yaml"
        inventory.write_text(
            "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n"
            f'  - {{name: pool, host: 127.0.0.0/16, ports: ["{PORTS.start}-{PORTS.stop - 1}"]}}\n'
        )
        argv = [
            sys.executable,
            "-m",
            "scanner",
            "check",
            str(inventory),
            "--format",
            "json",
            *args.scanner_args,
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        counts: Counter[str] = Counter()
        first_result = None
        in_first_second = 0
        finished: dict[str, object] = {}
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=tmp)
        assert proc.stdout is not None
        killer = threading.Timer(DEADLINE_S, proc.kill)
        killer.start()
        try:
            with Watch(proc.pid) as watch:
                for line in proc.stdout:
                    if b'"target.result"' in line:
                        now = time.perf_counter() - started
                        if first_result is None:
                            first_result = now
                        if now <= 1.0:
                            in_first_second += 1
                        counts[line.split(b'"category":"', 1)[1].split(b'"', 1)[0].decode()] += 1
                    elif b'"scan.finished"' in line:
                        finished = json.loads(line)
                code = proc.wait()
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wall = time.perf_counter() - started
    total = sum(counts.values())
    rss_mib, pss_mib = watch.peak_rss_kib / 1024, watch.peak_pss_sum_kib / 1024
    print(f"scanner check, 1 inventory line = {TOTAL:,} targets, {' '.join(args.scanner_args)}")
    print(f"  exit {code}, {total:,} target.result events {dict(counts)}")
    print(
        f"  wall {wall:.1f} s, {total / wall:,.0f} targets/s; scan.finished.duration_s "
        f"{finished.get('duration_s')}"
    )
    first = "never" if first_result is None else f"{first_result:.3f} s"
    print(f"  first target.result after {first}; {in_first_second:,} within the first second")
    print(
        f"  processes {watch.processes}; peak RSS of one process {rss_mib:.1f} MiB "
        f"({'within' if rss_mib <= RSS_BOUND_MIB else 'EXCEEDS'} 150 MB); "
        f"peak PSS of all together {pss_mib:.1f} MiB"
    )
    ok = total == TOTAL and code in (0, 1) and first_result is not None and first_result <= 1.0
    print("correct" if ok else "FAILED: not every target reported, or nothing in the first second")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
