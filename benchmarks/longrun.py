"""A long run: 200,000 targets (open, refused, dropped) with RSS and descriptors sampled.

Whatever the scan does for long, its memory must stay flat once warmed up and every
descriptor it opened must be closed at the end. Runs the engine in this process through
the Python API (on loopback only: 127.x addresses, a listener, a port nobody listens on,
and a port whose accept queue is full, where the kernel drops SYNs as a firewall would),
and samples this process's RSS and open descriptors every second from /proc.

    python benchmarks/longrun.py                    # 200,000 targets
    python benchmarks/longrun.py --targets 20000    # a shorter run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scanner
from scanner.models import Inventory, ScanStart, ScanSummary, Target

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

    def on_target(self, result: object) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200_000)
    parser.add_argument("--timeout", type=float, default=0.5)
    args = parser.parse_args()

    listener = socket.create_server(("0.0.0.0", 0), backlog=4096)  # every 127.x reaches it
    stop = threading.Event()
    threading.Thread(target=accept_and_close, args=(listener, stop), daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused_port = probe.getsockname()[1]
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = [socket.create_connection(full.getsockname(), timeout=0.2) for _ in range(1)]
    with contextlib.suppress(OSError):
        fillers.append(socket.create_connection(full.getsockname(), timeout=0.2))
    ports = (listener.getsockname()[1], refused_port, full.getsockname()[1])

    def target(i: int) -> Target:
        kind = 0 if i % 10 < 6 else 1 if i % 10 < 9 else 2  # 60 % open, 30 % refused, 10 % dropped
        host = f"127.{16 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
        if kind == 2:
            host = "127.0.0.1"  # the full accept queue is on 127.0.0.1
        return Target(f"t{i}", host, ports[kind], timeout=args.timeout, retries=0)

    targets = [target(i) for i in range(args.targets)]
    # a first small scan creates what lives as long as the process (libuv's signal pipe
    # pair): the baseline is taken after it
    scanner.check(Inventory(paths=("warm-up",), targets=targets[:10]))
    baseline_fds = open_fds()
    sampler = Sampler()
    options = scanner.ScanOptions(max_duration=DEADLINE_S, handle_signals=True)
    result = scanner.check(
        Inventory(paths=("longrun",), targets=targets), options, observer=sampler
    )
    after = open_fds()  # the event loop of the scan is closed now too
    stop.set()
    listener.close()
    full.close()
    for filler in fillers:
        filler.close()

    print(
        f"{args.targets:,} targets in {result.summary.duration_s:.1f} s: "
        f"{dict(result.summary.counts)}"
    )
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


if __name__ == "__main__":
    raise SystemExit(main())
