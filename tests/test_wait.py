"""``scanner wait`` end to end: real listeners that start late, stop, restart and flap, a DNS
server whose answers change between rounds, deadlines, CMD and signals, as users run it."""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import build_parser

from .conftest import (
    DnsServer,
    Listener,
    free_port,
    parse_events,
    run_on_tty,
    run_scanner,
    scanner_env,
    write_inventory,
)
from .test_report_helpers import assert_valid, assert_valid_junit, schema_validator
from .wait_support import (
    Service,
    ZoneServer,
    free_port_both,
    read_until,
    schedule,
    start_scanner,
    wall,
)

FAST = ("--interval", "0.1", "--max-interval", "0.2")
PY = sys.executable


@pytest.fixture
def zone_server(tmp_path: Path) -> Iterator[ZoneServer]:
    server = ZoneServer(tmp_path, {})
    try:
        yield server
    finally:
        server.close()


def _inventory(tmp_path: Path, server: ZoneServer | None, targets: list[str]) -> Path:
    resolver = (
        f"resolver: {{nameservers: ['{server.nameserver}'], timeout: 0.3, tries: 1}}\n"
        if server is not None
        else ""
    )
    body = "".join(f"  - {t}\n" for t in targets)
    return write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 1, retries: 0}}\n{resolver}targets:\n{body}",
    )


def _by_target(events: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["event"] == kind:
            found[event["target"]].append(event)
    return found


def _finished(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["event"] == "scan.finished"
    return events[-1]


def test_a_listener_that_starts_late_then_cmd_runs_in_scanners_place(tmp_path: Path) -> None:
    service = Service(free_port())
    marker = tmp_path / "cmd.json"
    script = (
        "import json, os, sys, time; "
        "facts = {'pid': os.getpid(), 'at': time.time(), 'argv': sys.argv[1:]}; "
        f"json.dump(facts, open({str(marker)!r}, 'w')); "
        "sys.exit(7)"
    )
    with schedule((2.0, service.up)):
        proc = start_scanner(
            "wait", f"127.0.0.1:{service.port}", "--deadline", "20", *FAST,
            "--", PY, "-c", script, "--flag", "-x",
        )  # fmt: skip
        out, err = proc.communicate(timeout=60)
    try:
        assert proc.returncode == 7, err  # CMD's own exit code
        events = parse_events(out)
        waiting = _by_target(events, "target.waiting")[f"127.0.0.1:{service.port}"]
        (ready,) = _by_target(events, "target.ready")[f"127.0.0.1:{service.port}"]
        assert waiting and all(w["category"] == "refused" for w in waiting)
        assert ready["category"] == "open" and ready["round"] == len(waiting) + 1
        assert wall(ready["timestamp"]) >= service.ups[0]
        ran = json.loads(marker.read_text())
        assert ran["pid"] == proc.pid  # exec: the same process, not a child
        assert ran["argv"] == ["--flag", "-x"]  # CMD's options are its own, not scanner's
        assert ran["at"] >= wall(ready["timestamp"])
        assert _finished(events)["waiting"] == []
    finally:
        service.down()


def test_a_ready_target_is_not_probed_again(tmp_path: Path) -> None:
    early, late = Service(free_port()), Service(free_port())
    early.up()
    try:
        with schedule((1.5, late.up)):
            proc = run_scanner(
                "wait",
                f"127.0.0.1:{early.port}",
                f"127.0.0.1:{late.port}",
                "--deadline",
                "20",
                *FAST,
            )
        assert proc.returncode == 0, proc.stderr
        events = parse_events(proc.stdout)
        assert len(_by_target(events, "target.waiting")[f"127.0.0.1:{late.port}"]) >= 5
        assert f"127.0.0.1:{early.port}" not in _by_target(events, "target.waiting")
        assert early.accepted == 1  # one handshake, in round one, then never again
    finally:
        early.down()
        late.down()


def _staged(args: tuple[str, ...], *steps: tuple[float, Any]) -> tuple[int, str, str]:
    """Run ``scanner ARGS``; once its first ``target.waiting`` is out, run ``steps`` (delays
    from then): the staging starts when the wait does, however slow the start-up was."""
    proc = start_scanner(*args)
    try:
        lines = read_until(proc, lambda line: '"target.waiting"' in line, timeout=30)
        with schedule(*steps):
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(lines) + out, err


def _flapper(port: int) -> tuple[Service, tuple[tuple[float, Any], ...]]:
    """Down, up for 0.45 s, down again, then up for good at 2.0 s."""
    service = Service(port)
    return service, ((0.6, service.up), (1.05, service.down), (2.0, service.up))


def test_stable_waits_for_n_good_rounds_in_a_row_through_a_flap(tmp_path: Path) -> None:
    service, steps = _flapper(free_port())
    args = ("--interval", "0.1", "--max-interval", "0.1", "--deadline", "20", "--stable", "8")
    try:
        code, out, err = _staged(("wait", f"127.0.0.1:{service.port}", *args), *steps)
        assert code == 0, err
        events = parse_events(out)
        name = f"127.0.0.1:{service.port}"
        waiting = _by_target(events, "target.waiting")[name]
        (ready,) = _by_target(events, "target.ready")[name]
        good = [w for w in waiting if w["ok"]]
        assert good, "no good round during the flap"
        assert max(w["good_rounds"] for w in good) < 8
        # after the flap's good rounds, a refused round started the count again
        first_good = waiting.index(good[0])
        assert any(
            w["category"] == "refused" and w["good_rounds"] == 0 for w in waiting[first_good:]
        )
        assert ready["good_rounds"] == 8 and ready["stable"] == 8
        # ready only once the service had been up for good: 7 more rounds of 0.1 s at least
        assert wall(ready["timestamp"]) - service.ups[-1] >= 0.6
    finally:
        service.down()


def test_without_stable_the_first_good_round_is_enough(tmp_path: Path) -> None:
    service, steps = _flapper(free_port())
    args = ("--interval", "0.1", "--max-interval", "0.1", "--deadline", "20")
    try:
        code, out, err = _staged(("wait", f"127.0.0.1:{service.port}", *args), *steps)
        assert code == 0, err
        (ready,) = _by_target(parse_events(out), "target.ready")[f"127.0.0.1:{service.port}"]
        # ready in the flap's first 0.45 s up (its later steps were cancelled: the wait ended)
        assert service.ups[0] <= wall(ready["timestamp"]) < service.ups[0] + 0.45
        assert len(service.ups) == 1 and not service.downs
    finally:
        service.down()


def test_names_are_resolved_again_every_round(tmp_path: Path, zone_server: ZoneServer) -> None:
    listener = Listener("127.0.0.1")
    try:
        zone_server.set({"moving.test": {"A": ["127.0.0.2"]}})  # nothing listens there
        inventory = _inventory(
            tmp_path,
            zone_server,
            [f"{{name: moving, host: moving.test, port: {listener.port}, family: ipv4}}",
             f"{{name: late, host: late.test, port: {listener.port}, family: ipv4}}"],
        )  # fmt: skip
        new_zone = {"moving.test": {"A": ["127.0.0.1"]}, "late.test": {"A": ["127.0.0.1"]}}
        with schedule((1.5, lambda: zone_server.set(new_zone))):
            proc = run_scanner("wait", str(inventory), "--deadline", "20", *FAST)
        assert proc.returncode == 0, proc.stderr
        events = parse_events(proc.stdout)
        moving = _by_target(events, "target.waiting")["moving"]
        assert {(w["category"], tuple(w["addresses"])) for w in moving} == {
            ("refused", ("127.0.0.2",))
        }
        assert _by_target(events, "target.ready")["moving"][0]["addresses"] == ["127.0.0.1"]
        late = _by_target(events, "target.waiting")["late"]
        assert {w["category"] for w in late} == {"dns_nxdomain"}  # waited on, not given up
        assert _by_target(events, "target.ready")["late"][0]["category"] == "open"
        asked = zone_server.queries("moving.test")
        assert len(asked) >= len(moving) + 1  # one lookup per round (A only: family ipv4)
    finally:
        listener.close()


def test_a_dual_stack_name_waits_for_the_family_that_comes_up_later(
    tmp_path: Path, zone_server: ZoneServer
) -> None:
    port = free_port_both()
    v4 = Service(port, (("127.0.0.1", socket.AF_INET),))
    v6 = Service(port, (("::1", socket.AF_INET6),))
    zone_server.set({"dual.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]}})
    inventory = _inventory(tmp_path, zone_server, [f"dual.test:{port}"])
    v4.up()
    try:
        with schedule((1.5, v6.up)):
            proc = run_scanner("wait", str(inventory), "--deadline", "20", *FAST)
        assert proc.returncode == 0, proc.stderr
        events = parse_events(proc.stdout)
        name = f"dual.test:{port}"
        waiting = _by_target(events, "target.waiting")[name]
        assert waiting, "ready before ::1 listened"
        for event in waiting:  # IPv4 answered all along; the target waited for ::1
            assert event["category"] == "refused"
            assert sorted(event["addresses"]) == ["127.0.0.1", "::1"]
        probes = [e for e in events if e["event"] == "probe.result"]
        assert probes == []  # the wait's stream: per round a target event, not every probe
        (ready,) = _by_target(events, "target.ready")[name]
        assert wall(ready["timestamp"]) >= v6.ups[0]
    finally:
        v4.down()
        v6.down()


def test_expect_closed_waits_until_the_port_closes(tmp_path: Path) -> None:
    service = Service(free_port())
    service.up()
    with schedule((1.0, service.down)):
        proc = run_scanner(
            "wait", f"127.0.0.1:{service.port}", "--expect", "closed", "--deadline", "20", *FAST
        )
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    name = f"127.0.0.1:{service.port}"
    assert {w["category"] for w in _by_target(events, "target.waiting")[name]} == {"open"}
    (ready,) = _by_target(events, "target.ready")[name]
    assert (ready["expect"], ready["category"], ready["ok"]) == ("closed", "refused", True)


def test_the_deadline_with_a_mix_of_categories(
    tmp_path: Path, zone_server: ZoneServer, full_port: int, listener: Listener
) -> None:
    zone_server.set({"broken.test": {"rcode": "SERVFAIL"}})
    closed = free_port()
    inventory = _inventory(
        tmp_path,
        zone_server,
        [
            f"{{name: db, host: 127.0.0.1, port: {closed}}}",
            f"{{name: cache, host: cache.test, port: {listener.port}}}",
            f"{{name: broken, host: broken.test, port: {listener.port}}}",
            f"{{name: hung, host: 127.0.0.1, port: {full_port}, timeout: 0.5}}",
            f"{{name: leak, host: 127.0.0.1, port: {listener.port}, expect: closed}}",
            f"{{name: api, host: 127.0.0.1, port: {listener.port}}}",
        ],
    )
    report, junit, markdown = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "s.md"
    marker = tmp_path / "ran"
    started = time.monotonic()
    proc = run_scanner(
        "wait", str(inventory), "--deadline", "2.5", "--interval", "0.2", "--max-interval", "0.4",
        "--report", str(report), "--junit", str(junit), "--markdown", str(markdown),
        "--", PY, "-c", f"open({str(marker)!r}, 'w')",
    )  # fmt: skip
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists()  # not ready: CMD never runs
    assert took < 2.5 + 3.0  # the deadline bounds the wait (process start and exit aside)
    events = parse_events(proc.stdout)
    validator = schema_validator("events")
    for event in events:
        assert_valid(validator, event)
    finished = _finished(events)
    assert finished["ok"] is False and finished["interrupted_by"] == "deadline"
    left = {w["target"]: w for w in finished["waiting"]}
    assert {name: w["category"] for name, w in left.items()} == {
        "db": "refused",
        "cache": "dns_nxdomain",
        "broken": "dns_servfail",
        "hung": "not_accepting",
        "leak": "open",
    }
    for entry in left.values():
        assert 2.0 <= entry["for_s"] <= 3.5  # in that state since the first round
        assert entry["hint"]
    results = {e["target"]: e for e in events if e["event"] == "target.result"}
    assert results["api"]["ok"] is True and results["db"]["ok"] is False
    # the summary on stderr, for a person reading the CI log
    (said,) = [line for line in proc.stderr.splitlines() if "not ready after" in line]
    assert "db: refused for 2 s" in said or "db: refused for 3 s" in said
    assert "cache: dns_nxdomain for" in said
    # the artefacts: the end of the wait, valid against their schemas
    document = json.loads(report.read_text())
    assert_valid(schema_validator("report"), document)
    assert {w["target"] for w in document["summary"]["waiting"]} == set(left)
    assert_valid_junit(junit)
    xml = junit.read_text()
    assert 'type="dns_nxdomain"' in xml and "not ready: refused for" in xml
    text = markdown.read_text()
    assert "### Not ready (5)" in text and "refused for" in text


def test_cmd_that_cannot_be_found_or_run(tmp_path: Path, listener: Listener) -> None:
    target = f"127.0.0.1:{listener.port}"
    proc = run_scanner("wait", target, "--", str(tmp_path / "no-such-command"))
    assert proc.returncode == 127
    assert "not found" in proc.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("not executable\n")
    proc = run_scanner("wait", target, "--", str(plain))
    assert proc.returncode == 126
    proc = run_scanner("wait", target, "--")
    assert proc.returncode == 2 and "nothing after --" in proc.stderr


def test_cmd_gets_default_signal_dispositions(tmp_path: Path, listener: Listener) -> None:
    """Python ignores SIGPIPE and SIGXFSZ for itself; CMD must not inherit that."""
    proc = run_scanner("wait", f"127.0.0.1:{listener.port}", "--", "cat", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    (ignored,) = [line for line in proc.stdout.splitlines() if line.startswith("SigIgn:")]
    mask = int(ignored.split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not mask & (1 << (sig - 1)), f"{sig.name} ignored in CMD"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_wait(tmp_path: Path, signum: int, code: int) -> None:
    marker = tmp_path / "ran"
    proc = start_scanner(
        "wait", f"127.0.0.1:{free_port()}", "--deadline", "30", *FAST, "--report",
        str(tmp_path / "r.json"), "--", PY, "-c", f"open({str(marker)!r}, 'w')",
    )  # fmt: skip
    try:
        read_until(proc, lambda line: '"round":3' in line, timeout=20)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, _err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert not marker.exists()
    finished = json.loads(out.splitlines()[-1])
    assert finished["event"] == "scan.finished"
    assert finished["interrupted_by"] == signal.Signals(signum).name
    assert len(finished["waiting"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["interrupted_by"] == signal.Signals(signum).name


def test_a_signal_during_cmd_reaches_cmd(tmp_path: Path, listener: Listener) -> None:
    script = (
        "import signal, sys, time\n"
        "def bye(signum, frame):\n"
        "    print('CMD got', signal.Signals(signum).name, flush=True)\n"
        "    sys.exit(42)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('CMD started', flush=True)\n"
        "time.sleep(20)\n"
        "sys.exit(3)\n"
    )
    proc = start_scanner("wait", f"127.0.0.1:{listener.port}", "--", PY, "-c", script)
    try:
        read_until(proc, lambda line: line.startswith("CMD started"), timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 42  # CMD's handler ran and chose the exit code
    assert "CMD got SIGTERM" in out


def test_many_targets_back_off_and_spread_out(tmp_path: Path) -> None:
    closed = free_port()
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n"
        + "".join(f"  - {{name: t{i}, host: 127.0.0.1, port: {closed}}}\n" for i in range(300)),
    )
    proc = run_scanner(
        "wait", str(inventory), "--deadline", "4", "--interval", "0.5", "--max-interval", "2"
    )
    assert proc.returncode == 1
    events = parse_events(proc.stdout)
    rounds = _by_target(events, "target.waiting")
    assert len(rounds) == 300
    # 0.5, 1, 2, 2 s between rounds (±25 %, and a round takes in what is due within the
    # next 0.1 s): 4 or 5 rounds in 4 s, where a fixed 0.5 s interval would have made 8
    counts = {len(r) for r in rounds.values()}
    assert counts <= {3, 4, 5}, counts
    gaps = [
        [b["waited_s"] - a["waited_s"] for a, b in itertools.pairwise(r)] for r in rounds.values()
    ]
    for target_gaps in gaps:
        for gap, planned in zip(target_gaps, (0.5, 1.0, 2.0, 2.0), strict=False):
            assert planned * 0.75 - 0.12 <= gap <= planned * 1.25 + 0.3
    # jitter: the second rounds spread over most of [0.375, 0.625] s, not one instant
    second = sorted(r[1]["waited_s"] for r in rounds.values() if len(r) > 1)
    assert second[-1] - second[0] >= 0.15
    per_tick: dict[int, int] = defaultdict(int)
    for when in second:
        per_tick[int(when * 20)] += 1  # 50 ms buckets
    assert max(per_tick.values()) < 150  # never half of them at once


def test_a_tty_shows_one_live_line_per_waiting_target(tmp_path: Path) -> None:
    late, never = Service(free_port()), free_port()
    with schedule((1.5, late.up)):
        code, screen = run_on_tty(
            ["wait", f"127.0.0.1:{late.port}", f"127.0.0.1:{never}", "--deadline", "3", *FAST],
            {**scanner_env(), "COLUMNS": "100", "LINES": "30"},
            timeout=30,
        )
    late.down()
    assert code == 1
    assert "\x1b[2F\x1b[J" in screen  # the block of two waiting lines, redrawn in place
    assert f"127.0.0.1:{never}  \x1b[33mrefused for 1." in screen  # time in state, live
    assert f"\x1b[32mok  \x1b[0m 127.0.0.1:{late.port}" in screen
    assert "ready after" in screen
    assert "not ready: 1 of 2 targets after 3.0 s (the deadline)" in screen
    assert f"\x1b[31mFAIL\x1b[0m 127.0.0.1:{never}  \x1b[31mrefused for 3." in screen


def test_console_into_a_file_prints_changes_only(tmp_path: Path) -> None:
    late = Service(free_port())
    with schedule((1.0, late.up)):
        proc = run_scanner(
            "wait", f"127.0.0.1:{late.port}", "--format", "console", "--deadline", "20", *FAST
        )
    late.down()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "\x1b" not in proc.stdout  # no colour, no redraw
    assert lines[0].startswith("scanner: waiting for 1 target (deadline 20 s")
    assert sum(1 for line in lines if line.startswith("wait ")) == 1  # refused, said once
    assert lines[-2].startswith(f"ok   127.0.0.1:{late.port}  open")
    assert lines[-1].startswith("all 1 target ready after")


#: check's options that decide how a round probes: wait takes each, with the same limits
PROBING = (
    "timeout", "dns_timeout", "dns_tries", "retries", "concurrency", "rate", "per_host",
    "allow", "tags", "expect", "family", "format", "junit", "markdown", "report",
)  # fmt: skip
#: check's options wait has no use for: one scan's deadline (wait has --deadline), its
#: console, sharding and workers (wait is one process of few targets), traces, baselines
CHECK_ONLY = (
    "verbosity", "max_duration", "show_ok", "shard", "workers", "trace_failures",
    "max_hops", "hop_timeout", "baseline", "fail_on",
)  # fmt: skip
SAMPLES = ("0", "1", "10", "11", "0.5", "-1", "inf", "nan", "1e9", "two", "127.0.0.0/8", "a,b")


def _actions(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions if a.dest != "help"}


def _parses(action: argparse.Action, text: str) -> object:
    if action.type is None:
        return text
    try:
        return action.type(text)  # type: ignore[operator]
    except argparse.ArgumentTypeError as exc:
        return f"error: {exc}"
    except ValueError:
        return "error"


def test_wait_takes_checks_probing_options_with_the_same_limits() -> None:
    """Same engine, same options: a check option is either wait's too, with the same names
    and the same accepted values, or named here as check's only (a new one fails here)."""
    check, wait = _actions("check"), _actions("wait")
    assert set(check) - {"inventories"} == set(PROBING) | set(CHECK_ONLY)
    for dest in PROBING:
        assert wait[dest].option_strings == check[dest].option_strings, dest
        assert wait[dest].choices == check[dest].choices, dest
        for text in SAMPLES:
            assert _parses(wait[dest], text) == _parses(check[dest], text), (dest, text)
    assert not set(CHECK_ONLY) & set(wait)


def test_dns_timeout_and_tries_reach_every_round(tmp_path: Path, dns_server: DnsServer) -> None:
    """--dns-timeout/--dns-tries replace the inventory's resolver for every round: a silent
    nameserver is a dns_timeout after 0.2 s, several rounds in 2 s (3 s twice: not one)."""
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\n"
        f"resolver: {{nameservers: ['{dns_server.nameserver}'], timeout: 3, tries: 2}}\n"
        "targets:\n  - {name: quiet, host: silent.test, port: 80, retries: 0}\n",
    )
    started = time.monotonic()
    proc = run_scanner(
        "wait", str(inventory), "--deadline", "2", *FAST, "--dns-timeout", "0.2",
        "--dns-tries", "1",
    )  # fmt: skip
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    waiting = _by_target(events, "target.waiting")["quiet"]
    assert len(waiting) >= 3 and {w["category"] for w in waiting} == {"dns_timeout"}
    (left,) = _finished(events)["waiting"]
    assert left["category"] == "dns_timeout"
    assert took < 2 + 3.0  # 3 s per try would hold the first round past the deadline
