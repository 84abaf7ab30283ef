"""Verdicts that must not depend on timing or on hand-edited files.

* a service that accepts and then resets has completed the handshake: ``open``;
* output that backs up pauses the probing, never the clocks;
* ``scanner merge`` refuses shards of different scans, and reports whose fields are
  malformed or whose ``ok`` contradicts their category, naming file and field.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scanner
from scanner.classify import classify_connect
from scanner.models import Category, Inventory, Target
from scanner.probers.tcp import Dialer

from .conftest import run_scanner, write_inventory
from .test_report_helpers import schema_validator


class AcceptAndReset:
    """A real server that accepts every connection and resets it at once (linger 0)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.resets = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self.resets += 1

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def resetting() -> Iterator[AcceptAndReset]:
    server = AcceptAndReset()
    try:
        yield server
    finally:
        server.close()


async def test_accepted_then_reset_is_open_whoever_runs_first(resetting: AcceptAndReset) -> None:
    """The staged race: our loop is busy while the server accepts and resets, so the
    socket often reports ECONNRESET by the time we look (unless the dialer saw it
    connected at once). Either way the handshake had completed: open."""
    loop = asyncio.get_running_loop()
    dialer = Dialer(loop)
    outcomes = []
    try:
        for _ in range(20):
            done = loop.create_future()
            dialer.connect(
                "127.0.0.1",
                resetting.port,
                "ipv4",
                2.0,
                lambda outcome, local, done=done: done.set_result(outcome),
            )
            before = resetting.resets
            deadline = time.monotonic() + 2
            while resetting.resets == before and time.monotonic() < deadline:
                time.sleep(0.001)  # the loop is blocked: the reset lands before we look
            outcomes.append(await done)
    finally:
        dialer.close()
    errnos = {o.errno for o in outcomes}
    assert 104 in errnos and errnos <= {0, 104}  # ECONNRESET was seen, for real
    assert {classify_connect(o) for o in outcomes} == {Category.OPEN}


def test_a_service_that_resets_after_accepting_is_open_in_a_scan(
    resetting: AcceptAndReset,
) -> None:
    targets = [
        Target(f"t{i}", "127.0.0.1", resetting.port, timeout=2, retries=0) for i in range(2000)
    ]
    result = scanner.check(
        Inventory(paths=("x",), targets=targets), scanner.ScanOptions(concurrency=200)
    )
    assert {t.category for t in result.targets} == {Category.OPEN}, result.summary


async def test_backed_up_output_pauses_the_probing_not_the_clocks(
    monkeypatch: pytest.MonkeyPatch, full_port: int
) -> None:
    """A 64 KiB backlog on a pipe read at 200 KB/s: the pump pauses (seen), and no handshake
    to a loopback listener ends `slow` against a 50 ms budget. Half the targets are dropped
    (0.2 s each), so the scan lasts long enough for its output to back up."""
    from scanner.report import _sink
    from scanner.report.events import JsonEventWriter

    monkeypatch.setattr(_sink, "BACKLOG_BYTES", 64 << 10)
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    read_end, write_end = os.pipe()
    received: list[bytes] = []

    def slow_reader() -> None:
        while chunk := os.read(read_end, 10_000):
            received.append(chunk)
            time.sleep(0.05)

    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()

    class Watching(JsonEventWriter):
        paused = 0

        def backlogged(self) -> bool:
            backed_up = super().backlogged()
            Watching.paused += backed_up
            return backed_up

    writer = Watching(os.fdopen(write_end, "wb", buffering=0))
    targets = [
        Target(f"t{i}", f"127.14.{i // 250}.{i % 250 + 1}", port, timeout=3, max_latency_ms=50)
        if i % 2
        else Target(f"t{i}", "127.0.0.1", full_port, timeout=0.2, retries=0)
        for i in range(1500)
    ]
    collector = scanner.Collector()
    try:
        await scanner.check_async(
            Inventory(paths=("x",), targets=targets),
            scanner.ScanOptions(concurrency=50),
            observer=scanner.FanOut(writer, collector),
        )
    finally:
        writer.sink.drain()
        os.close(write_end)
        reader.join(timeout=60)
        os.close(read_end)
        listener.close()
    assert Watching.paused > 0  # the output did back up, and the pump waited for it
    opened = [p.category for p in collector.probes if int(p.target.name[1:]) % 2]
    dropped = {p.category for p in collector.probes if not int(p.target.name[1:]) % 2}
    assert opened == [Category.OPEN] * 750  # none `slow`
    assert dropped == {Category.TIMEOUT}
    lines = b"".join(received).splitlines()
    assert len(lines) == 3000 + 2  # every event arrived, whole


# --- merge ----------------------------------------------------------------------------------


def _report(tmp_path: Path, name: str, inventory: str, shard: str) -> Path:
    inv = write_inventory(
        tmp_path / inventory,
        "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n"
        + "".join(f"  - {{name: t{i}, host: 127.0.0.1, port: 1}}\n" for i in range(6)),
    )
    out = tmp_path / name
    run_scanner("check", str(inv), "--format", "json", "--shard", shard, "--report", str(out))
    return out


def test_merge_refuses_shards_of_different_inventories(tmp_path: Path) -> None:
    prod = _report(tmp_path, "prod-1.json", "prod.yaml", "1/2")
    staging = _report(tmp_path, "staging-2.json", "staging.yaml", "2/2")
    proc = run_scanner("merge", str(prod), str(staging))
    assert proc.returncode == 2
    assert "different inventories" in proc.stderr


def _malformed(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(case, a hand-edited copy, the field the message must name)."""
    cases = []

    def edit(case: str, field: str, change: Any) -> None:
        copied = copy.deepcopy(document)
        change(copied)
        cases.append((case, copied, field))

    edit("duration null", "summary.duration_s", lambda d: d["summary"].update(duration_s=None))
    edit("duration text", "summary.duration_s", lambda d: d["summary"].update(duration_s="abc"))
    edit("dns a string", "targets[0].dns", lambda d: d["targets"][0].update(dns="x"))
    edit(
        "probe not an object", "targets[0].probes[0]", lambda d: d["targets"][0].update(probes=[1])
    )
    edit(
        "latency text",
        "targets[0].probes[0].latency_ms",
        lambda d: d["targets"][0]["probes"][0].update(latency_ms="x"),
    )
    edit(
        "negative latency",
        "targets[0].probes[0].latency_ms",
        lambda d: d["targets"][0]["probes"][0].update(latency_ms=-1),
    )
    edit("inventories not strings", "inventories[0]", lambda d: d.update(inventories=[1]))
    edit("port out of range", "targets[0].port", lambda d: d["targets"][0].update(port=70000))
    edit(
        "unknown category", "targets[0].category", lambda d: d["targets"][0].update(category="fine")
    )
    edit(
        "errno lower case",
        "targets[0].probes[0].errno",
        lambda d: d["targets"][0]["probes"][0].update(errno="econnrefused"),
    )
    edit("bad timestamp", "started", lambda d: d.update(started="yesterday"))
    edit("bad shard", "shard", lambda d: d.update(shard="one of two"))
    edit("count negative", "summary.counts", lambda d: d["summary"]["counts"].update(ok=-1))
    return cases


def test_merge_names_file_and_field_of_every_malformed_report(tmp_path: Path) -> None:
    good = _report(tmp_path, "good.json", "inv.yaml", "1/1")
    document = json.loads(good.read_text())
    validator = schema_validator("report")
    for case, edited, field in _malformed(document):
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(edited))
        assert list(validator.iter_errors(edited)), f"{case}: the schema accepts it"
        proc = run_scanner("merge", str(path))
        assert proc.returncode == 2, (case, proc.stderr)
        assert "Traceback" not in proc.stderr, case
        assert f"{path}: {field}" in proc.stderr, (case, proc.stderr)


def test_a_hand_edited_ok_does_not_count(tmp_path: Path) -> None:
    good = _report(tmp_path, "good.json", "inv.yaml", "1/1")
    document = json.loads(good.read_text())
    document["targets"][0]["ok"] = True  # refused, expect open: not ok, whatever it says
    document["summary"]["counts"]["failed"] -= 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    proc = run_scanner("merge", str(edited))
    assert proc.returncode == 2
    assert (
        f"{edited}: targets[0].ok is true, but category refused does not meet expect open"
        in proc.stderr
    )
