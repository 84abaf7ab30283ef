"""--workers N: several processes, one stream, the same verdict as one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import ROOT, Listener, parse_events, run_scanner, scanner_env, write_inventory
from .test_report_helpers import assert_valid, schema_validator


def _inventory(tmp_path: Path, open_port: int, closed_port: int) -> Path:
    lines = [
        f"  - {{name: up, host: 127.0.4.0/24, port: {open_port}}}",
        f"  - {{name: down, host: 127.0.5.0/24, port: {closed_port}}}",
    ]
    return write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {timeout: 2}\ntargets:\n" + "\n".join(lines) + "\n",
    )


def test_workers_report_the_same_as_one_process(tmp_path: Path, closed_port: int) -> None:
    server = Listener("0.0.0.0")  # every 127.x reaches it; nothing off-host does
    try:
        inv = _inventory(tmp_path, server.port, closed_port)
        single = run_scanner("check", str(inv), "--format", "json")
        multi = run_scanner(
            "check",
            str(inv),
            "--format",
            "json",
            "--workers",
            "2",
            "--report",
            str(tmp_path / "report.json"),
            "--junit",
            str(tmp_path / "junit.xml"),
        )
    finally:
        server.close()
    assert single.returncode == multi.returncode == 1, multi.stderr
    one, many = parse_events(single.stdout), parse_events(multi.stdout)
    assert [e["event"] for e in many].count("scan.started") == 1
    assert [e["event"] for e in many].count("scan.finished") == 1
    assert many[0]["event"] == "scan.started" and many[0]["targets"] == 512
    assert many[-1]["event"] == "scan.finished"

    def verdicts(events: list[dict[str, object]]) -> dict[object, object]:
        return {e["target"]: e["category"] for e in events if e["event"] == "target.result"}

    assert verdicts(many) == verdicts(one)
    assert Counter(verdicts(many).values()) == {"open": 256, "refused": 256}
    assert many[-1]["counts"]["open"] == 256 and many[-1]["counts"]["failed"] == 256
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["targets"]) == 512
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == 512


def test_workers_show_the_console_and_refuse_a_shard(tmp_path: Path, closed_port: int) -> None:
    """The console of a scan by two workers is one process's: they send their results."""
    inv = _inventory(tmp_path, closed_port, closed_port)
    # -v: every failed target (a group lists its first ten otherwise)
    single = run_scanner("check", str(inv), "--format", "console", "--workers", "1", "-v")
    console = run_scanner("check", str(inv), "--format", "console", "--workers", "2", "-v")
    assert console.returncode == single.returncode == 1, console.stderr
    failed = sorted(line for line in console.stdout.splitlines() if line.startswith("FAIL"))
    assert failed == sorted(line for line in single.stdout.splitlines() if line.startswith("FAIL"))
    assert len(failed) == 512
    assert (
        console.stdout.splitlines()[-1].split(" in ")[0]
        == (single.stdout.splitlines()[-1].split(" in ")[0])
    )
    sharded = run_scanner("check", str(inv), "--format", "json", "--workers", "2", "--shard", "1/2")
    assert sharded.returncode == 2 and sharded.stdout == ""


def test_sigint_reaches_every_worker(tmp_path: Path, full_port: int) -> None:
    lines = "\n".join(
        f"  - {{name: hang{i}, host: 127.0.0.1, port: {full_port}, timeout: 30}}" for i in range(6)
    )
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inv), "--format", "json", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the parent's scan.started: every worker is running
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(timeout=20) == 130
    events = parse_events(first + rest)
    finished = events[-1]
    assert finished["event"] == "scan.finished" and finished["interrupted"] is True
    results = [e for e in events if e["event"] == "target.result"]
    assert len(results) == 6 and {r["category"] for r in results} == {"inconclusive"}


def test_worker_slices_are_balanced_and_cover_everything(tmp_path: Path) -> None:
    """Every N-th target per worker: sizes differ by at most one, together all targets."""
    from scanner.inventory import load_inventories
    from scanner.inventory.targets import EveryNth

    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n  - 198.51.100.0/26:80-82\n  - db.example:5432\n",
    )
    targets = load_inventories([str(inv)]).targets
    slices = [EveryNth(targets, k, 3) for k in range(3)]
    assert sorted(len(s) for s in slices) == [64, 64, 65]
    names = [t.name for s in slices for t in s]
    assert sorted(names) == sorted(t.name for t in targets) and len(set(names)) == 193
    assert slices[1][2] == list(slices[1])[2] and slices[2][-1] == list(slices[2])[-1]


def hosts_file(path: Path, names: list[str], block: int) -> Path:
    """A hosts file that gives ``names[i]`` the address 127.<block>.<i // 250>.<i % 250 + 1>."""
    path.write_text(
        "".join(f"127.{block}.{i // 250}.{i % 250 + 1} {name}\n" for i, name in enumerate(names))
    )
    return path


def test_a_names_targets_share_one_worker(tmp_path: Path) -> None:
    """When names are the hosts of several targets, each name's targets go to one share
    (so it is looked up once), the shares stay balanced and cover every target once, and
    each share knows where its targets are in the whole inventory."""
    from scanner.inventory import load_inventories
    from scanner.inventory.targets import EveryNth, Picked
    from scanner.workers import shares

    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n"
        "  - {host: web.example, ports: [80, 443, 8080]}\n"
        "  - 198.51.100.0/29:22\n"
        "  - db.example:5432\n"
        "  - db.example:6432\n"
        "  - {name: db6, host: db.example, family: ipv6, port: 5432}\n"
        "  - cache.example:6379\n"
        "  - 198.51.100.64/30:9000\n",
    )
    targets = load_inventories([str(inv)]).targets
    whole = list(targets)
    parts = shares(targets, 3)
    assert all(isinstance(part, Picked) for part in parts)
    owners: dict[tuple[str, str], set[int]] = {}
    seen: list[int] = []
    for number, part in enumerate(parts):
        for offset, target in enumerate(part):
            index = part.index_in_source(offset)
            assert whole[index] == target == part[offset]
            seen.append(index)
            if not target.host[0].isdigit():
                owners.setdefault((target.host, target.family), set()).add(number)
    assert sorted(seen) == list(range(len(whole)))
    assert len(owners) == 4 and all(len(o) == 1 for o in owners.values())
    assert max(map(len, parts)) - min(map(len, parts)) <= 3  # web.example's three
    distinct = load_inventories(
        [str(write_inventory(tmp_path / "d.yaml", "version: 1\ntargets:\n  - a.example:1\n"))]
    ).targets
    assert all(isinstance(part, EveryNth) for part in shares(distinct, 2))


def test_names_of_several_targets_across_workers_are_each_resolved_once(
    tmp_path: Path, closed_port: int
) -> None:
    """A name inventory where every name is the host of three targets, in two processes
    (as ``--workers auto`` splits it from 10,000 targets): each name looked up once, every
    target once with its name's address, and the report (which the workers' results reach
    by where each target is in the inventory) in inventory order."""
    from scanner.inventory import load_inventories

    names = 400
    hosts = hosts_file(tmp_path / "hosts", [f"m{i:04d}.workers.test" for i in range(names)], 8)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {family: ipv4, retries: 0}\ntargets:\n"
        + "".join(
            f"  - {{host: m{i:04d}.workers.test, ports: [{closed_port}, {closed_port + 1}]}}\n"
            f"  - 127.9.{i // 250}.{i % 250 + 1}:{closed_port}\n"
            for i in range(names)
        )
        + "".join(f"  - m{i:04d}.workers.test:{closed_port + 2}\n" for i in range(names)),
    )
    report = tmp_path / "r.json"
    proc = run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--workers",
        "2",
        "--report",
        str(report),
        hosts=hosts,
    )
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    lookups = [e["host"] for e in events if e["event"] == "dns.result"]
    assert len(lookups) == names == len(set(lookups))
    results = [e for e in events if e["event"] == "target.result"]
    assert len(results) == 4 * names == len({r["target"] for r in results})
    document = json.loads(report.read_text())
    in_report = [t["target"] for t in document["targets"]]
    expected = [t.name for t in load_inventories([str(inv)]).targets]
    assert in_report == expected
    by_name = {t["target"]: t for t in document["targets"]}
    assert by_name[f"m0123.workers.test:{closed_port + 1}"]["addresses"] == ["127.8.0.124"]


@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_worker_slices_equal_every_nth_of_the_whole_list(tmp_path: Path, step: int) -> None:
    """The strided walk builds only a slice's own targets; it must match list[start::step]
    across entries of every shape (single hosts, v4 and v6 networks, several ports)."""
    from scanner.inventory import load_inventories
    from scanner.inventory.targets import EveryNth

    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n"
        "  - 198.51.100.0/29:80-82\n  - db.example:5432\n"
        '  - {name: v6, host: "2001:db8::/126", ports: [22, 443]}\n'
        "  - {name: web, host: web.example, ports: [80, 443]}\n"
        "  - 198.51.100.64/30:9000\n",
    )
    targets = load_inventories([str(inv)]).targets
    whole = list(targets)
    assert len(whole) == 24 + 1 + 8 + 2 + 4
    for start in range(step):
        assert list(EveryNth(targets, start, step)) == whole[start::step]


AUTO_CASES = [
    # (inventory lines, extra argv, workers when the machine has more than one core)
    pytest.param(["  - 127.0.0.0/18:1"], [], "many", id="16k-addresses"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--workers", "1"], 1, id="explicit-one"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--workers", "3"], 3, id="explicit-three"),
    pytest.param(["  - 127.0.0.0/20:1"], [], 1, id="4k-too-few"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--format", "console"], 1, id="console"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--rate", "100"], 1, id="rate-is-global"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--per-host", "2"], 1, id="per-host-is-global"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--shard", "1/2"], 1, id="shard"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--trace-failures"], 1, id="trace"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--report", "r.json"], 1, id="report"),
    pytest.param(["  - 127.0.0.0/18:1"], ["--junit", "j.xml"], 1, id="junit"),
    pytest.param(
        ["  - 127.0.0.0/18:1", "  - db.example:5432", "  - db.example:6432"],
        [],
        "many",
        id="a-name-of-two-targets-stays-in-one-worker",
    ),
    pytest.param(
        ["  - {host: db.example, ports: [5432, 6432]}", "  - 127.0.0.0/18:1"],
        [],
        "many",
        id="a-name-with-two-ports-stays-in-one-worker",
    ),
    pytest.param(
        ["  - 127.0.0.0/18:1", "  - db.example:5432", "  - cache.example:6379"],
        [],
        "many",
        id="distinct-names",
    ),
    pytest.param(
        [f"  - n{i}.example:80" for i in range(10_000)], [], "many", id="10k-distinct-names"
    ),
    # TLS: the handshake's CPU outweighs what made processes not pay for plain connects
    pytest.param(["  - {host: 127.0.0.0/24, port: 443, tls: true}"], [], "many", id="tls-256"),
    pytest.param(["  - {host: 127.0.0.0/25, port: 443, tls: true}"], [], 1, id="tls-128-few"),
    pytest.param(
        ["  - {host: 127.0.0.0/24, port: 443, tls: true}"],
        ["--format", "console", "--report", "r.json"],
        "many",
        id="tls-console-report",
    ),
    pytest.param(
        [f"  - {{host: web{i}.example, port: 443, tls: true}}" for i in range(256)],
        [],
        "many",
        id="tls-names",
    ),
    pytest.param(
        ["  - {host: 127.0.0.0/24, port: 443, tls: true}"], ["--rate", "100"], 1, id="tls-rate"
    ),
]


@pytest.mark.parametrize(("lines", "extra", "expected"), AUTO_CASES)
def test_auto_workers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lines: list[str],
    extra: list[str],
    expected: int | str,
) -> None:
    """``--workers auto`` (the default): one process per core only where that is faster
    and every limit and lookup still holds for the scan as a whole."""
    import os

    from scanner.cli import build_parser, plan_check
    from scanner.workers import AUTO_WORKERS_MAX

    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n" + "\n".join(lines) + "\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # that asks for a report too
    monkeypatch.chdir(tmp_path)  # where r.json and j.xml would go
    args = build_parser().parse_args(["check", str(inv), "--format", "json", *extra])
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))  # an idle machine
    plan = plan_check(args)
    assert plan is not None
    assert plan.workers == (AUTO_WORKERS_MAX if expected == "many" else expected)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    if args.workers is None:
        one_core = plan_check(args)
        assert one_core is not None and one_core.workers == 1  # one core: one process


@pytest.mark.parametrize(
    ("cores", "load", "running", "expected"),
    [
        (2, 0.1, None, 2),
        (2, 0.6, None, 1),
        (2, 1.3, None, 1),
        (2, 3.0, None, 1),
        (16, 4.4, None, 8),
        (16, 12.2, None, 4),
        (4, 1.5, None, 2),
        (2, 1.3, 1, 1),  # the load is real: another task runs now
        (2, 1.3, 0, 2),  # the load is the past: the work that made it has ended
        (2, 0.2, 5, 2),  # a burst right now, no load: the average says idle
        (16, 12.2, 3, 8),
    ],
)
def test_auto_workers_use_the_idle_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, running: int | None, expected: int
) -> None:
    """One worker per core that other work leaves idle: workers on busy cores take turns.
    The busy cores are the load average's, unless fewer tasks run right now."""
    import os

    from scanner import workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(workers, "_running_now", lambda: running)
    assert workers.idle_cores() == expected


def test_the_tasks_running_now_are_read_from_the_kernel() -> None:
    """This process is one of the runnable tasks while it reads: it is not counted."""
    from scanner.workers import _running_now

    running = _running_now()
    assert running is not None and 0 <= running < 10_000


def test_a_task_that_keeps_a_core_busy_counts_as_running() -> None:
    """A busy process is seen in every look, so it is counted; this process is not."""
    from scanner.workers import _running_now

    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.2)  # it runs by now
        running = _running_now()
        assert running is not None and running >= 1
    finally:
        spinner.kill()
        spinner.wait()


def test_default_scan_of_many_addresses_is_exact(tmp_path: Path, closed_port: int) -> None:
    """16,384 refused loopback endpoints with default settings (several processes on a
    multi-core machine): every target exactly once, all refused, one stream."""
    inv = write_inventory(
        tmp_path / "inv.yaml", f"version: 1\ntargets:\n  - 127.6.0.0/18:{closed_port}\n"
    )
    proc = run_scanner("check", str(inv), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    results = [e for e in events if e["event"] == "target.result"]
    assert len(results) == 16_384 and len({r["target"] for r in results}) == 16_384
    assert {r["category"] for r in results} == {"refused"}
    assert [e["event"] for e in events].count("scan.started") == 1
    assert events[-1]["counts"]["refused"] == 16_384


def test_distinct_names_across_workers_are_each_resolved_once(
    tmp_path: Path, closed_port: int
) -> None:
    """10,000 distinct names (from a hosts file: no DNS server involved) in two processes,
    as ``--workers auto`` now splits them: each name looked up once, in one process, and
    every target exactly once with its name's address."""
    count = 10_000
    hosts = hosts_file(tmp_path / "hosts", [f"n{i:05d}.workers.test" for i in range(count)], 7)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {family: ipv4}\ntargets:\n"
        + "".join(f"  - n{i:05d}.workers.test:{closed_port}\n" for i in range(count)),
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--workers", "2", hosts=hosts)
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    lookups = [e for e in events if e["event"] == "dns.result"]
    assert len(lookups) == count and len({e["host"] for e in lookups}) == count
    assert {e["category"] for e in lookups} == {"resolved"}
    results = {e["target"]: e for e in events if e["event"] == "target.result"}
    assert len(results) == count and {r["category"] for r in results.values()} == {"refused"}
    assert results[f"n01234.workers.test:{closed_port}"]["addresses"] == ["127.7.4.235"]
    assert events[-1]["counts"]["refused"] == count


def test_per_host_cap_holds_across_workers(tmp_path: Path, full_port: int) -> None:
    """--per-host 2 with --workers 2: the cap is for the scan, not for each process. Six
    silent handshakes to one address (three in each worker's slice) take three timeout
    rounds — at most two in flight in all — where 2 per process would take two."""
    silent = "\n".join(f"  - {{name: d{i}, host: 127.0.0.1, port: {full_port}}}" for i in range(6))
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 0.4, retries: 0}}\ntargets:\n{silent}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--workers", "2", "--per-host", "2")
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    assert Counter(e["category"] for e in events if e["event"] == "target.result") == {
        "not_accepting": 6
    }
    assert events[-1]["duration_s"] >= 3 * 0.4 * 0.95


def test_per_host_below_workers_is_a_usage_error(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:9\n")
    proc = run_scanner("check", str(inv), "--format", "json", "--workers", "3", "--per-host", "2")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--per-host 2 is shared out among the workers" in proc.stderr


def test_a_worker_that_dies_never_passes_the_scan(
    tmp_path: Path, closed_port: int, full_port: int
) -> None:
    """One worker killed mid-scan: its unreported targets count as inconclusive, so the
    stream's own scan.finished says not ok, agreeing with exit 3, and the total holds."""
    # worker 1's slice (even positions) refuses at once, worker 2's hangs on a full queue
    lines = "\n".join(
        f"  - {{name: t{i}, host: 127.0.0.1, port: {closed_port if i % 2 == 0 else full_port},"
        f" expect: closed, timeout: 30}}"
        for i in range(8)
    )
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    report = tmp_path / "report.json"
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "check",
            str(inv),
            "--format",
            "json",
            "--workers",
            "2",
            "--report",
            str(report),
            "--junit",
            str(junit),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # every worker has started
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 2
    time.sleep(0.3)
    os.kill(int(children[1]), signal.SIGKILL)  # the worker that waits on the full queue
    rest = proc.stdout.read()
    assert proc.wait(timeout=20) == 3
    assert "worker 2 exited -9 without finishing" in proc.stderr.read()
    events = parse_events(first + rest)
    assert events[0]["event"] == "scan.started" and events[0]["targets"] == 8
    finished = events[-1]
    assert finished["event"] == "scan.finished" and finished["ok"] is False
    counts = finished["counts"]
    assert counts["ok"] == 4  # worker 1: every refusal meets expect: closed
    assert counts["inconclusive"] == 4 and counts["ok"] + counts["inconclusive"] == 8
    # the artefacts hold every target too: the dead worker's as not checked
    merged = json.loads(report.read_text())
    assert_valid(schema_validator("report"), merged)
    entries = {entry["target"]: entry for entry in merged["targets"]}
    assert sorted(entries) == sorted(f"t{i}" for i in range(8))
    assert merged["summary"]["ok"] is False
    assert merged["summary"]["counts"]["inconclusive"] == 4
    for i in range(1, 8, 2):
        assert entries[f"t{i}"]["category"] == "inconclusive"
        assert "worker 2 of 2 ended before it reported" in entries[f"t{i}"]["hint"]
    assert junit.read_text().count("<testcase") == 8


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30
    ),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_relayed_pieces_are_whole_lines(lines: list[bytes], cuts: list[int]) -> None:
    """However a worker's stream is cut into chunks by the pipe, the parent relays it
    unchanged, in pieces that each end with a whole line (a stream dropped between two
    pieces never ends inside a line)."""
    import itertools
    from types import SimpleNamespace

    from scanner.workers import _Parent

    stream = b"".join(line + b"\n" for line in lines)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    relayed: list[bytes] = []
    parent = _Parent.__new__(_Parent)
    parent.framed, parent.relay, parent.held = True, relayed.append, []
    proc = SimpleNamespace(partial=b"")
    for start, end in itertools.pairwise(bounds):
        parent._lines(proc, stream[start:end])  # type: ignore[arg-type]
    assert b"".join(relayed) == stream and proc.partial == b""
    assert all(piece.endswith(b"\n") for piece in relayed)
