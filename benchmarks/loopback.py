"""Wall time and peak RSS of one ``scanner check`` over N loopback targets.

Half the targets hit a listener (open), half a port nobody listens on (refused); all are
distinct endpoints 127.x.y.z:port. Traffic stays on loopback. Usage::

    python benchmarks/loopback.py --targets 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def accept_forever(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        conn.close()


def write_inventory(path: Path, count: int, open_port: int, closed_port: int) -> None:
    lines = ["version: 1", "defaults: {timeout: 3, retries: 0}", "targets:"]
    for i in range(count):
        address = f"127.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
        lines.append(f"  - {address}:{open_port if i % 2 == 0 else closed_port}")
    path.write_text("\n".join(lines) + "\n")


def run_once(inventory: Path, extra: list[str]) -> tuple[float, dict[str, int]]:
    """(wall seconds, category counts) of one scanner run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inventory), "--format", "json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err = proc.communicate(timeout=600)
    wall = time.perf_counter() - started
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if b'"target.result"' in line:
            category = line.split(b'"category":"', 1)[1].split(b'"', 1)[0].decode()
            counts[category] = counts.get(category, 0) + 1
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scanner failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("scanner_args", nargs="*", help="extra args for scanner check")
    args = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))  # every 127.x.y.z reaches it; nothing off-host is sent
    server.listen(4096)
    open_port = server.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=accept_forever, args=(server, stop), daemon=True)
    thread.start()
    walls = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = Path(tmp) / "loopback.yaml"
            write_inventory(inventory, args.targets, open_port, closed_port)
            for run in range(args.repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                wall, counts = run_once(inventory, args.scanner_args)
                peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                walls.append(wall)
                print(
                    f"run {run + 1}: {wall:.2f} s, {args.targets / wall:,.0f} targets/s, "
                    f"peak RSS so far {max(peak, before) / 1024:.0f} MiB, {counts}"
                )
    finally:
        stop.set()
        thread.join()
        server.close()
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    median = statistics.median(walls)
    print(
        f"median wall {median:.2f} s ({args.targets / median:,.0f} targets/s), "
        f"peak RSS {rss:.0f} MiB over {args.repeat} runs of {args.targets} targets"
    )


if __name__ == "__main__":
    main()
