"""Name resolution rate: 10,000 distinct names against scanner.testing.dns_server on loopback.

The zone maps n00000.bench.test … n09999.bench.test to 127.0.0.1 (A) and ::1 (AAAA). Every
target is ``name:PORT`` where PORT is held by sockets bound (never listening) on 127.0.0.1 and
::1, so each probe ends at once with ``refused`` and the run measures resolution, not waiting.
Reports names/s (names resolved ÷ time from scan.started to the last dns.result), wall time and
peak RSS, and checks the categories: every dns.result ``resolved``, every target ``refused``,
no ``dns_timeout`` — a timeout against a local server that answers everything is spurious.
Traffic stays on loopback. Usage::

    python benchmarks/dns.py                       # 10,000 names, 3 repeats
    python benchmarks/dns.py --names 1000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import snapshot_scanner, timed  # noqa: E402  (one copy, shared by both benchmarks)

RUN_DEADLINE_S = 120.0
DOMAIN = "bench.test"
#: scanner.testing.dns_server with a large receive buffer: with the default (~200 KiB) the
#: server's socket overflows under a burst of queries and the benchmark would count the test
#: server's losses as the scanner's dns_timeout.
SERVER = """
import asyncio, json, socket, sys
from scanner.testing.dns_server import start_server

async def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        zone = json.load(handle)
    transport, port = await start_server(zone, "127.0.0.1", 0)
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: root only
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)  # capped by rmem_max
    rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    print("listening", port, rcvbuf, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def hold_closed_port() -> tuple[int, list[socket.socket]]:
    """A port bound but not listening on 127.0.0.1 and ::1: connects there get RST."""
    for _ in range(50):
        v4 = socket.socket(socket.AF_INET)
        v4.bind(("127.0.0.1", 0))
        port = v4.getsockname()[1]
        v6 = socket.socket(socket.AF_INET6)
        try:
            v6.bind(("::1", port))
        except OSError:
            v4.close()
            v6.close()
            continue
        return port, [v4, v6]
    raise SystemExit("no port free on both 127.0.0.1 and ::1")


def start_dns(zone_path: Path, src: Path) -> tuple[subprocess.Popen[str], int, int]:
    """The test DNS server in its own process; returns it, its port and its SO_RCVBUF."""
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(zone_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=src,
        start_new_session=True,
    )
    timer = threading.Timer(15.0, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "listening PORT RCVBUF", or "" if it died / was killed
    finally:
        timer.cancel()
    if not line.startswith("listening"):
        proc.kill()
        raise SystemExit("the DNS server did not start")
    return proc, int(line.split()[1]), int(line.split()[2])


def server_drops(port: int) -> int:
    """Datagrams the kernel dropped at the server's socket (``ss`` skmem ``d``), -1 if unknown."""
    try:
        out = subprocess.run(
            ["ss", "-uanm", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return -1
    match = re.search(r"skmem:\(.*?\bd(\d+)\)", out)
    return int(match.group(1)) if match else -1


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_scanner(
    inventory: Path, out: Path, src: Path, extra: list[str]
) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MiB, exit code, stderr tail) of one scanner run of the snapshot."""
    env = dict(os.environ, PYTHONPATH=str(src))  # and cwd: ``-m`` puts the cwd first
    argv = [
        sys.executable,
        "-m",
        "scanner",
        "check",
        str(inventory),
        "--format",
        "json",
        "--retries",
        "0",
        *extra,
    ]
    wall, rss, code, tail = timed(argv, out, src, env)
    last = tail.strip().splitlines()[-1:]
    return wall, rss, code, last[0] if last else ""


def analyse(out: Path) -> dict[str, object]:
    """Category counts, attempts and the resolution span from the event stream."""
    dns: Counter[str] = Counter()
    targets: Counter[str] = Counter()
    attempts = 0
    started = last_dns = None
    with open(out, "rb") as handle:
        for line in handle:
            event = json.loads(line)
            kind = event["event"]
            if kind == "scan.started":
                started = datetime.fromisoformat(event["timestamp"])
            elif kind == "dns.result":
                dns[event["category"]] += 1
                attempts += event.get("attempts") or 1
                last_dns = datetime.fromisoformat(event["timestamp"])
            elif kind == "target.result":
                targets[event["category"]] += 1
    span = (last_dns - started).total_seconds() if started and last_dns else None
    return {"dns": dns, "targets": targets, "attempts": attempts, "span": span}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dns-timeout", type=float, default=2.0, help="resolver.timeout in the inventory (s)"
    )
    parser.add_argument(
        "--dns-tries",
        type=int,
        default=1,
        help="resolver.tries: 1 (default) shows every lost query",
    )
    parser.add_argument(
        "scanner_args",
        nargs="*",
        help="extra args for scanner check, after --, e.g. -- --concurrency 2000",
    )
    args = parser.parse_args()
    if not 1 <= args.names <= 100_000 or not 1 <= args.repeat <= 20:
        parser.error("--names must be 1..100000, --repeat 1..20")
    names = [f"n{i:05d}.{DOMAIN}" for i in range(args.names)]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind: kill the server
    port, held = hold_closed_port()
    failures = 0
    rates, walls, rss_all = [], [], []
    with tempfile.TemporaryDirectory(prefix="scanner-dns-bench-") as tmp:
        work = Path(tmp)
        zone = {name: {"A": ["127.0.0.1"], "AAAA": ["::1"]} for name in names}
        (work / "zone.json").write_text(json.dumps(zone))
        print(snapshot_scanner(work / "src"))
        server, dns_port, rcvbuf = start_dns(work / "zone.json", work / "src")
        try:
            lines = [
                "version: 1",
                "defaults: {timeout: 1, retries: 0, expect: closed}",
                "resolver:",
                f'  nameservers: ["127.0.0.1:{dns_port}"]',
                f"  timeout: {args.dns_timeout}",
                f"  tries: {args.dns_tries}",
                "targets:",
            ]
            lines += [f"  - {name}:{port}" for name in names]
            inventory = work / "dns.yaml"
            inventory.write_text("\n".join(lines) + "\n")
            print(
                f"{args.names:,} names, DNS server 127.0.0.1:{dns_port}, closed port {port}, "
                f"resolver timeout {args.dns_timeout:g} s × {args.dns_tries} tries, "
                f"server SO_RCVBUF {rcvbuf // 1024} KiB"
            )
            for i in range(args.repeat):
                out = work / "events.jsonl"
                drops, cpu = server_drops(dns_port), cpu_seconds(server.pid)
                wall, rss, code, err = run_scanner(inventory, out, work / "src", args.scanner_args)
                drops = server_drops(dns_port) - drops if drops >= 0 else -1
                cpu = cpu_seconds(server.pid) - cpu
                facts = analyse(out)
                dns, targets, span = facts["dns"], facts["targets"], facts["span"]
                assert isinstance(dns, Counter) and isinstance(targets, Counter)
                correct = (
                    dict(dns) == {"resolved": args.names}
                    and dict(targets) == {"refused": args.names}
                    and code == 0
                )
                failures += not correct
                rate = args.names / span if isinstance(span, float) and span > 0 else 0.0
                if correct:
                    rates.append(rate)
                    walls.append(wall)
                    rss_all.append(rss)
                print(
                    f"run {i + 1}: {rate:,.0f} names/s (resolution {span} s), wall {wall:.2f} s,"
                    f" peak RSS {rss:.1f} MiB, dns.result {dict(dns)}, target.result "
                    f"{dict(targets)}, dns_timeout {dns.get('dns_timeout', 0)}, "
                    f"DNS attempts {facts['attempts']}, server: {drops} queries dropped, "
                    f"{cpu:.2f} CPU s, exit {code} "
                    f"{'correct' if correct else 'WRONG'}{'' if correct else '  ' + err}",
                    flush=True,
                )
        finally:
            server.kill()
            server.wait()
            for sock in held:
                sock.close()
    if rates:
        print(
            f"\nmedian of {len(rates)} correct run(s): {statistics.median(rates):,.0f} names/s, "
            f"wall {statistics.median(walls):.2f} s "
            f"({args.names / statistics.median(walls):,.0f} targets/s end to end), "
            f"peak RSS {statistics.median(rss_all):.1f} MiB"
        )
    print(
        "no spurious dns_timeout, all categories as expected"
        if not failures
        else f"{failures} run(s) WRONG (spurious dns_* or unexpected categories)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: scanner and DNS server stopped", file=sys.stderr)
        sys.exit(130)
