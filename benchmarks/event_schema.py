"""What the JSON event stream costs a scan, and what the proposed schema 2 would save.

Runs the engine in this process over N refused loopback endpoints (127.2.x.y on a port
this script holds bound and never listens on, so nothing can answer but a reset), with
three observers, interleaved round after round:

- ``none``: the engine alone (an observer that writes nothing);
- ``v1``: today's ``--format json`` stream (``probe.result`` and ``target.result`` a target);
- ``v2``: the stream proposed in ``docs/event-schema-2.md`` (one ``target.result`` a target,
  the per-address detail in its ``probes``), as a prototype observer of this script.

Prints the CPU time a target (``time.process_time``, least and median of the rounds) and the
bytes a target of each stream. Traffic stays on loopback; the count is bounded. Usage::

    python benchmarks/event_schema.py --targets 32768 --repeat 10
"""

from __future__ import annotations

import argparse
import gc
import io
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.engine import ScanOptions, run_scan_sync  # noqa: E402
from scanner.inventory import load_inventories  # noqa: E402
from scanner.models import DnsResult, ProbeResult, ScanSummary, TargetResult  # noqa: E402
from scanner.observers import BaseObserver, Observer  # noqa: E402
from scanner.report.events import JsonEventWriter  # noqa: E402
from scanner.verdict import event_level  # noqa: E402


class AddressV2(msgspec.Struct):
    """One address of a schema-2 ``target.result``: v1's ``probe.result`` less the fields
    the target already carries (``target``, ``host``, ``port``); ``hint`` null when it is
    the target's."""

    address: str
    family: str
    category: str
    latency_ms: float | None
    attempts: int
    errno: str | None
    icmp_type: int | None
    icmp_code: int | None
    icmp_from: str | None
    hint: str | None
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    tls: Any


class TargetV2(msgspec.Struct):
    """A schema-2 ``target.result``: v1's fields and ``probes``, one per address."""

    target: str
    host: str
    port: int
    expect: str
    ok: bool
    category: str
    addresses: tuple[str, ...]
    hint: str | None
    tags: tuple[str, ...]
    change: None
    last_hop: Any
    path_verdict: Any
    probes: tuple[AddressV2, ...]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def address_v2(probe: ProbeResult, target_hint: str | None) -> AddressV2:
    icmp = probe.icmp
    latency_ms = _ms(probe.latency_ms)
    return AddressV2(
        probe.address,
        probe.family,
        probe.category,
        latency_ms,
        probe.attempts,
        probe.errno,
        icmp.type if icmp else None,
        icmp.code if icmp else None,
        icmp.sender if icmp else None,
        None if probe.hint == target_hint else probe.hint,
        _ms(probe.dns_ms),
        latency_ms if probe.attempts else None,
        _ms(probe.tls_ms),
        probe.tls,
    )


class SchemaTwoWriter(BaseObserver):
    """The schema-2 prototype: no ``probe.result``; ``target.result`` carries the addresses.

    It writes through a :class:`JsonEventWriter` rather than subclassing it, so that this
    script also runs where the engine's modules are compiled (mypyc classes cannot be
    subclassed by interpreted ones)."""

    def __init__(self, stream: Any) -> None:
        self.writer = JsonEventWriter(stream=stream, frame=False)

    def on_dns(self, result: DnsResult) -> None:
        self.writer.on_dns(result)

    def on_target(self, result: TargetResult) -> None:
        target = result.target
        entry = TargetV2(
            target.name,
            target.host,
            target.port,
            target.expect,
            result.ok,
            result.category,
            result.addresses,
            result.hint,
            target.tags,
            None,
            result.last_hop,
            result.path_verdict,
            tuple(address_v2(p, result.hint) for p in result.probes),
        )
        self.writer.emit("target.result", event_level(result.ok, result.category), entry)

    def on_finish(self, summary: ScanSummary) -> None:
        self.writer.on_finish(summary)

    def flush(self) -> None:
        self.writer.flush()

    def backlogged(self) -> bool:
        return self.writer.backlogged()


def observer(kind: str, stream: Any) -> Observer:
    if kind == "none":
        return BaseObserver()
    if kind == "v1":
        return JsonEventWriter(stream=stream, frame=False)
    return SchemaTwoWriter(stream)


def cpu_per_target(inventory: Any, kind: str, count: int) -> float:
    with open("/dev/null", "wb") as sink:
        watcher = observer(kind, sink)
        gc.collect()
        started = time.process_time()
        run_scan_sync(inventory, watcher, ScanOptions())
        return (time.process_time() - started) / count * 1e6


def bytes_per_target(inventory: Any, kind: str, count: int) -> float:
    """The stream's bytes a target, once its every line is checked: each target refused,
    with its one address (in ``probe.result`` for v1, in ``probes`` for v2)."""
    stream = io.BytesIO()
    run_scan_sync(inventory, observer(kind, stream), ScanOptions())
    events = [msgspec.json.decode(line) for line in stream.getvalue().splitlines()]
    targets = [e for e in events if e["event"] == "target.result"]
    probes = [e for e in events if e["event"] == "probe.result"]
    if kind == "v2":
        probes = [p for t in targets for p in t["probes"]]
    wrong = [e for e in targets + probes if e["category"] != "refused"]
    if len(targets) != count or len(probes) != count or wrong:
        raise SystemExit(f"{kind}: {len(targets)} targets, {len(probes)} addresses, {wrong[:1]}")
    return len(stream.getvalue()) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=32768, help="at most 65,536")
    parser.add_argument("--repeat", type=int, default=10, help="rounds, at most 50")
    args = parser.parse_args()
    count, repeat = max(1, min(args.targets, 65536)), max(1, min(args.repeat, 50))
    holder = socket.socket()  # bound, never listening: the port answers with resets only
    holder.bind(("0.0.0.0", 0))
    port = holder.getsockname()[1]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "refused.yaml"
        lines = ["version: 1", "defaults: {timeout: 1, retries: 0}", "targets:"]
        lines += [f"  - 127.2.{i // 256}.{i % 256}:{port}" for i in range(count)]
        path.write_text("\n".join(lines) + "\n")
        inventory = load_inventories([str(path)])
        kinds = ("none", "v1", "v2")
        sizes = {kind: bytes_per_target(inventory, kind, count) for kind in kinds[1:]}
        gc.freeze()
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(repeat):
            for kind in kinds:
                times[kind].append(cpu_per_target(inventory, kind, count))
    holder.close()
    print(f"{count:,} refused loopback targets, {repeat} interleaved rounds, one process")
    print(f"{'stream':8} {'least µs':>9} {'median µs':>10} {'bytes':>7}  (a target)")
    for kind in kinds:
        size = f"{sizes[kind]:7.0f}" if kind in sizes else "      -"
        least, median = min(times[kind]), statistics.median(times[kind])
        print(f"{kind:8} {least:9.2f} {median:10.2f} {size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
