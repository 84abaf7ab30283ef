"""A long run: 204,800 targets (open, refused, dropped) with RSS and descriptors sampled.

Whatever the scan does for long, its memory must stay flat once warmed up and every
descriptor it opened must be closed at the end. Runs the engine in this process, streaming
(nothing kept per target), on loopback only: 127.x networks towards a listener, a port
nobody listens on, and a listener whose accept queue is full (the kernel drops SYNs there
as a firewall would). This process's RSS and open descriptors are read from /proc once a
second.

    python benchmarks/longrun.py                  # 204,800 targets, timeout 0.5 s
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scanner
from scanner.engine import ScanOptions, run_scan_sync
from scanner.inventory import load_inventories
from scanner.models import Inventory, ScanStart, ScanSummary, TargetResult

#: the whole run is cut off after this long, whatever happens (every loop is bounded)
DEADLINE_S = 600


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Sampler(scanner.BaseObserver):
    """Samples RSS and descriptors once a second (the engine flushes ten times a second)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int, int]] = []  # (s, RSS KiB, fds, targets)
        self.targets = 0
        self.started = time.monotonic()
        self._next = 0.0
        self.end: tuple[int, int] | None = None

    def on_start(self, start: ScanStart) -> None:
        self.started = time.monotonic()

    def on_target(self, result: TargetResult) -> None:
        self.targets += 1

    def flush(self) -> None:
        now = time.monotonic() - self.started
        if now >= self._next:
            self._next = now + 1.0
            self.samples.append((now, rss_kib(), open_fds(), self.targets))

    def on_finish(self, summary: ScanSummary) -> None:
        self.end = (rss_kib(), open_fds())


def accept_and_close(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.1)
    while not stop.is_set():
        with contextlib.suppress(OSError):
            conn, _ = sock.accept()
            conn.close()


def run(tmp: Path, timeout: float) -> int:
    listener = socket.create_server(("0.0.0.0", 0), backlog=4096)  # every 127.x reaches it
    stop = threading.Event()
    threading.Thread(target=accept_and_close, args=(listener, stop), daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused_port = probe.getsockname()[1]
    # a listener nobody accepts from, its queue full: the kernel drops every further SYN
    full = socket.create_server(("0.0.0.0", 0), backlog=0)
    fillers = []
    for _ in range(2):
        with contextlib.suppress(OSError):
            fillers.append(socket.create_connection(("127.0.0.1", full.getsockname()[1]), 0.2))
    open_port, full_port = listener.getsockname()[1], full.getsockname()[1]
    blocks = [  # (network, port): lazy CIDR targets, as a big inventory has them
        ("127.16.0.0/16", open_port),
        ("127.17.0.0/17", open_port),
        ("127.18.0.0/16", refused_port),
        ("127.19.0.0/18", refused_port),
        ("127.20.0.0/18", full_port),
        ("127.21.0.0/19", full_port),
    ]
    inventory = tmp / "longrun.yaml"
    inventory.write_text(
        f"version: 1\ndefaults: {{timeout: {timeout}, retries: 0}}\ntargets:\n"
        + "".join(f"  - {network}:{port}\n" for network, port in blocks)
    )
    loaded = load_inventories([str(inventory)])
    # a first small scan creates what lives as long as the process (libuv's signal pipe
    # pair): the baseline is taken after it
    warm_up = Inventory(paths=("warm-up",), targets=list(loaded.targets[:10]))
    run_scan_sync(warm_up, Sampler())
    baseline_fds = open_fds()
    sampler = Sampler()
    options = ScanOptions(max_duration=DEADLINE_S, handle_signals=True)
    summary = run_scan_sync(loaded, sampler, options)  # streams: nothing kept per target
    after = open_fds()  # the event loop of the scan is closed now too
    stop.set()
    listener.close()
    full.close()
    for filler in fillers:
        filler.close()

    print(f"{summary.total:,} targets in {summary.duration_s:.1f} s: {dict(summary.counts)}")
    print(f"{'second':>6}  {'RSS MiB':>8}  {'fds':>6}  {'targets done':>12}")
    for second, rss, fds, done in sampler.samples:
        print(f"{second:6.0f}  {rss / 1024:8.1f}  {fds:6d}  {done:12,}")
    warm = [rss for second, rss, _, _ in sampler.samples if second >= 5]
    if warm:
        print(
            f"RSS after 5 s of warm-up: {min(warm) / 1024:.1f} to {max(warm) / 1024:.1f} MiB "
            f"({(max(warm) - min(warm)) / 1024:.1f} MiB apart)"
        )
    assert sampler.end is not None
    print(
        f"descriptors: {baseline_fds} before the scan, {sampler.end[1]} as it finished "
        f"(its event loop's own included), {after} once it returned"
    )
    return 0 if after <= baseline_fds else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return run(Path(tmp), args.timeout)


if __name__ == "__main__":
    raise SystemExit(main())
