"""The engine's callback pump, in process, against real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections import Counter

import pytest

from scanner.engine import Gate, ScanOptions, Tries, run_scan
from scanner.engine._admission import Admission
from scanner.models import (
    Category,
    DnsResult,
    Inventory,
    ProbeResult,
    ResolverConfig,
    Target,
)
from scanner.observers import Collector

from .conftest import DnsServer, Listener


class Collect(Collector):
    pass


def inventory(*targets: Target) -> Inventory:
    return Inventory(paths=("test",), targets=list(targets))


def names_inventory(dns_server: DnsServer, port: int, count: int) -> Inventory:
    """``count`` targets of names the test DNS server does not know (NXDOMAIN)."""
    return Inventory(
        paths=("test",),
        targets=[
            Target(f"t{i}", f"n{i}.missing.test", port, timeout=1, retries=0) for i in range(count)
        ],
        resolver=ResolverConfig((dns_server.nameserver,), timeout=2, tries=1),
    )


async def test_every_target_is_probed_once_with_more_targets_than_slots(
    listener: Listener, closed_port: int
) -> None:
    targets = [
        Target(
            f"t{i}",
            f"127.0.4.{i % 250 + 1}",
            listener.port if i % 2 else closed_port,
            timeout=2,
            retries=0,
        )
        for i in range(300)
    ]
    seen = Collect()
    summary = await run_scan(inventory(*targets), seen, ScanOptions(concurrency=7))
    results = seen.results
    # the listener is on 127.0.0.1 only: other 127.x addresses refuse
    assert [r.target.name for r in results] == [t.name for t in targets]
    assert sorted(p.target.name for p in seen.probes) == sorted(t.name for t in targets)
    assert summary.total == 300
    assert Counter(r.category for r in results)[Category.REFUSED] >= 298


class Exploding(Collect):
    def on_probe(self, result: ProbeResult) -> None:
        super().on_probe(result)
        if len(self.probes) == 5:
            raise RuntimeError("observer bug")


async def test_an_error_inside_a_probe_callback_ends_the_scan(closed_port: int) -> None:
    """A bug in a loop callback must surface, not be logged by the loop and hang the scan."""
    targets = [Target(f"t{i}", "127.0.0.1", closed_port, timeout=1, retries=0) for i in range(50)]
    with pytest.raises(ExceptionGroup) as caught:  # the engine's task groups wrap it
        await run_scan(inventory(*targets), Exploding(), ScanOptions(concurrency=3))
    bugs = caught.value.subgroup(lambda exc: isinstance(exc, RuntimeError))
    assert bugs is not None
    assert "observer bug" in repr(bugs)


class ExplodingOnDns(Collect):
    def on_dns(self, result: DnsResult) -> None:
        super().on_dns(result)
        if len(self.dns) == 3:
            raise RuntimeError("observer bug in on_dns")


async def test_an_error_inside_a_lookup_ends_the_scan(
    dns_server: DnsServer, closed_port: int
) -> None:
    """Lookups are plain tasks, not a task group's: a bug in one still ends the scan with
    it, and no lookup is left running."""
    scan = names_inventory(dns_server, closed_port, 40)
    with pytest.raises(ExceptionGroup) as caught:
        await run_scan(scan, ExplodingOnDns(), ScanOptions())
    bugs = caught.value.subgroup(lambda exc: isinstance(exc, RuntimeError))
    assert bugs is not None and "observer bug in on_dns" in repr(bugs)
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in left if "_lookup" in repr(t)], left


async def test_retries_keep_their_slot_and_count_attempts(full_port: int) -> None:
    targets = [Target(f"d{i}", "127.0.0.1", full_port, timeout=0.1, retries=1) for i in range(3)]
    seen = Collect()
    await run_scan(inventory(*targets), seen, ScanOptions(concurrency=2))
    results = seen.results
    assert [r.category for r in results] == [Category.NOT_ACCEPTING] * 3  # full queue, retried
    assert [p.attempts for p in seen.probes] == [2, 2, 2]


@pytest.mark.parametrize(
    ("outcomes", "retries", "delays", "attempts"),
    [
        ([Category.OPEN], 1, [None], 1),
        ([Category.REFUSED], 3, [None], 1),
        ([Category.TIMEOUT, Category.TIMEOUT], 1, [0.0, None], 2),
        ([Category.TIMEOUT, Category.OPEN], 2, [0.0, None], 2),
        # our own shortage: retried three times without counting, then inconclusive
        ([Category.INCONCLUSIVE] * 4, 0, [0.0, 0.0, 0.0, None], 1),
        ([Category.INCONCLUSIVE, Category.REFUSED], 0, [0.0, None], 1),
    ],
)
def test_tries_decide_retries(
    outcomes: list[Category], retries: int, delays: list[float | None], attempts: int
) -> None:
    tries = Tries()
    got = [tries.again(category, retries) for category in outcomes]
    assert [None if d is None else 0.0 for d in got] == delays
    assert all(d is None or d > 0 for d in got)
    assert tries.attempts == attempts


async def test_gate_parks_per_address_and_hands_the_slot_on() -> None:
    gate = Gate(rate=None, per_address=2)
    started: list[str] = []

    def start(label: str):  # type: ignore[no-untyped-def]
        return lambda: started.append(label)

    a3 = start("a3")
    for label in ("a1", "a2"):
        gate.enter("a", start(label))
    gate.enter("a", a3)
    gate.enter("a", start("a4"))
    gate.enter("b", start("b1"))
    assert started == ["a1", "a2", "b1"]  # a3 and a4 wait for a slot at "a"
    gate.withdraw("a", a3)  # gave up while parked: never started, holds nothing
    gate.leave("a")
    assert started == ["a1", "a2", "b1", "a4"]
    gate.leave("a")
    gate.leave("a")
    gate.leave("b")
    assert gate._busy == {} and gate._parked == {}


async def test_rate_never_bursts_after_the_loop_is_held_up() -> None:
    """--rate 50 and a loop held up for 150 ms by the second start, all ten waiting: the
    starts that came due meanwhile do not go out together; every two are 20 ms apart or
    more."""
    gate = Gate(rate=50, per_address=None)
    started: list[float] = []
    done = asyncio.get_running_loop().create_future()

    def start() -> None:
        started.append(time.monotonic())
        if len(started) == 2:
            time.sleep(0.15)  # the loop is busy elsewhere
        if len(started) == 10:
            done.set_result(None)

    for _ in range(10):
        gate.enter("a", start)
    await asyncio.wait_for(done, timeout=5)
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert min(gaps) >= 0.02 * 0.9, [round(g, 4) for g in gaps]


class TaskPeak(Collect):
    """Records the most asyncio tasks alive whenever a name's answer arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def on_dns(self, result: DnsResult) -> None:
        super().on_dns(result)
        self.peak = max(self.peak, len(asyncio.all_tasks()))


@pytest.mark.parametrize(("max_lookups", "bounded"), [(3, True), (1000, False)])
async def test_names_are_looked_up_a_bounded_number_at_a_time(
    dns_server: DnsServer,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    max_lookups: int,
    bounded: bool,
) -> None:
    """A long inventory of names is not pulled whole while the first answers are awaited:
    at most ``max_lookups`` lookups (a task each) exist at once. The unbounded case shows
    that the measure would catch it."""
    monkeypatch.setattr(Admission, "max_lookups", max_lookups)
    scan = names_inventory(dns_server, closed_port, 60)
    targets = scan.targets
    seen = TaskPeak()
    summary = await run_scan(scan, seen, ScanOptions())
    results = seen.results
    assert summary.total == 60
    assert [r.category for r in results] == [Category.DNS_NXDOMAIN] * 60
    assert sorted(d.host for d in seen.dns) == sorted(t.host for t in targets)
    if bounded:
        assert seen.peak <= max_lookups + 8, seen.peak  # a task per lookup; the scan: a few
    else:
        assert seen.peak >= 60


_TABLE_SIZE = """
def table() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("FDSize:"))
"""

_SIZE_TABLE = (
    _TABLE_SIZE
    + """
import os, sys
from scanner.engine._limits import size_descriptor_table

def open_count() -> int:
    return len(os.listdir("/proc/self/fd"))

held = os.dup2(os.open(os.devnull, os.O_RDONLY), 40)  # a descriptor of this process's own
before, fds = table(), open_count()
size_descriptor_table(int(sys.argv[1]), int(sys.argv[2]))
print(before, table(), fds, open_count(), os.fstat(held).st_rdev == os.stat(os.devnull).st_rdev)
"""
)

_SCAN_REFUSED = (
    _TABLE_SIZE
    + """
import sys
from scanner.engine import ScanOptions, run_scan_sync
from scanner.models import Inventory, Target
from scanner.observers import Collector

port = int(sys.argv[1])
targets = [Target(f"t{i}", f"127.0.{i // 250}.{i % 250 + 1}", port) for i in range(600)]
inventory = Inventory(paths=("t",), targets=targets)
before = table()
summary = run_scan_sync(inventory, Collector(), ScanOptions(concurrency=512))
print(before, table(), dict(summary.counts)["refused"])
"""
)


def _python(script: str, *args: object) -> list[str]:
    """Run ``script`` in a fresh interpreter (whose descriptor table starts small)."""
    argv = [sys.executable, "-c", script, *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.split()


@pytest.mark.parametrize(
    ("count", "limit", "at_least"),
    [
        (1088, 20000, 1088),  # a scan of 1,024 at a time, plus the reserve
        (5000, 1200, 1200),  # never past the open-file limit
        (60, 20000, 64),  # fits the table every process starts with (64): nothing to do
    ],
)
def test_descriptor_table_is_sized_at_once_and_nothing_open_is_touched(
    count: int, limit: int, at_least: int
) -> None:
    before, after, fds_before, fds_after, held_intact = _python(_SIZE_TABLE, count, limit)
    # a child's table starts as large as its parent's open descriptors needed (256 under
    # pytest here), below every size asked for but the last
    if count > 256:
        assert int(before) < at_least
        assert at_least <= int(after) <= 2 * at_least  # one growth, to the size asked
    else:
        assert after == before
    assert fds_after == fds_before  # the descriptor used to grow it is closed again
    assert held_intact == "True"


def test_a_scan_sizes_the_table_for_its_concurrency_before_it_starts(closed_port: int) -> None:
    """600 refused targets close each socket at once, so the table would never grow by
    itself; sized for 512 in flight, it holds 512 and the reserve."""
    before, size, refused = _python(_SCAN_REFUSED, closed_port)
    assert int(before) < 512 + 64 <= int(size)
    assert refused == "600"
