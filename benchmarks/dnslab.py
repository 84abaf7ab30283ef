"""A real DNS resolver for the benchmarks: Unbound inside a namespace, and a delay in front of it.

* :func:`start_unbound` — Debian's ``unbound`` started by ``tests/lab/real_dns.py`` with a
  configuration written there (never the packaged one, which would ask the root servers):
  authoritative for the benchmark's zone, NXDOMAIN for every other name, no control socket,
  no pid file, no trust anchor, on one loopback address of the namespace.
* :func:`start_delay` — the resolver "1 ms away". This kernel has neither ``sch_netem`` nor
  ``sch_fq`` (so no ``tc`` delay and no EDT pacing), so the delay is a small C forwarder
  (``c/delayq.c``, compiled here with ``cc``) on another loopback address: it holds each query
  for the delay in a FIFO under one timerfd, then passes it to Unbound; answers go back at once.
  :func:`measure_rtt` says what it adds to a round trip, as a client sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.lab import netns as lab  # noqa: E402 - needs the checkout on sys.path first
from tests.lab import real_dns  # noqa: E402


def compile_c(source: str, dest: Path) -> Path:
    """Compile ``c/<source>`` with the system's C compiler into ``dest``; returns the binary."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("a C compiler (cc or gcc) is needed to build the benchmark's helpers")
    binary = dest / Path(source).stem
    subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(binary), str(HERE / "c" / source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return binary


def start_unbound(
    ns: lab.Netns, work: Path, address: str, zone: str, records: Iterable[tuple[str, str]]
) -> subprocess.Popen[str]:
    """Unbound on ``address``:53 in ``ns``, authoritative for ``zone`` with these A records.

    ``tests/lab/real_dns.py`` writes the configuration (auth-zone, every other name NXDOMAIN,
    the root a stub in the unrouted test net) and waits until it answers. Returns the process.
    """
    origin = zone.rstrip(".") + "."
    lines = [f"{name.removesuffix('.' + zone)} A {ip}" for name, ip in records]
    server = real_dns.start_unbound(ns, work, [address], zones=[real_dns.Zone(origin, lines)])
    return server.proc


def start_delay(
    ns: lab.Netns, binary: Path, listen: str, upstream: str, delay_us: int, stats: Path
) -> subprocess.Popen[str]:
    """``delayq`` on ``listen``:53 in ``ns``: each query waits ``delay_us``, then ``upstream``.

    Returns once a query through it is answered.
    """
    proc = ns.spawn(
        [str(binary), listen, "53", upstream, "53", str(delay_us), str(stats)],
        ready_line="listening",
    )
    real_dns.wait_answering(ns, listen)
    return proc


def delay_stats(proc: subprocess.Popen[str], stats: Path) -> dict[str, int]:
    """The forwarder's counters now (it writes them on SIGUSR1)."""
    stats.unlink(missing_ok=True)
    os.kill(proc.pid, 10)  # SIGUSR1
    for _ in range(100):  # bounded: 1 s
        if stats.exists() and stats.read_text().endswith("\n"):
            words = stats.read_text().split()
            return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
        time.sleep(0.01)
    return {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RTT_PROBE = """
import socket, statistics, struct, sys, time
name, count = sys.argv[1], int(sys.argv[2])
labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
out = []
for server in sys.argv[3:]:
    rtts = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.connect((server, 53))
        for qid in range(count):
            packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\\0\\0\\1\\0\\1"
            started = time.perf_counter()
            sock.send(packet)
            while struct.unpack("!H", sock.recv(2048)[:2])[0] != qid:
                pass
            rtts.append(time.perf_counter() - started)
    out.append(statistics.median(rtts) * 1000)
print(" ".join(f"{ms:.3f}" for ms in out))
"""


def measure_rtt(ns: lab.Netns, name: str, servers: list[str], count: int = 200) -> list[float]:
    """Median round trip in ms of ``count`` sequential A queries to each server, from ``ns``."""
    done = ns.run([sys.executable, "-c", RTT_PROBE, name, str(count), *servers], timeout=60)
    return [float(ms) for ms in done.stdout.split()]


def _self_test() -> None:  # pragma: no cover - by hand: python benchmarks/dnslab.py (root)
    import tempfile

    ns = lab.Netns(f"{lab.run_id()}-dnslab")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            start_unbound(ns, work, "127.0.0.53", "bench.test", [("a.bench.test", "127.5.0.1")])
            binary = compile_c("delayq.c", work)
            proc = start_delay(ns, binary, "127.0.0.54", "127.0.0.53", 1000, work / "stats")
            direct, delayed = measure_rtt(ns, "a.bench.test", ["127.0.0.53", "127.0.0.54"])
            print(f"direct {direct:.3f} ms, through delayq {delayed:.3f} ms")
            print(delay_stats(proc, work / "stats"))
    finally:
        ns.delete()


if __name__ == "__main__":
    _self_test()
