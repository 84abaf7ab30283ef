"""The CLI as users run it: a subprocess, real listeners, a real DNS server, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import (
    ROOT,
    DnsServer,
    Listener,
    parse_events,
    run_on_tty,
    run_scanner,
    scanner_env,
    wait_for,
    write_inventory,
)


def _by_event(events: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in events if e["event"] == name]


def test_json_stream_open_refused_and_dns(
    tmp_path: Path, listener: Listener, closed_port: int, dns_server: DnsServer, hosts_file: Path
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
defaults: {{timeout: 1.0, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 0.3, tries: 1}}
targets:
  - name: web
    host: ok.test
    port: {listener.port}
    tags: [prod]
  - 127.0.0.1:{closed_port}
  - "[::1]:{listener.port}"
  - nope.test:80
  - name: must-be-closed
    host: 127.0.0.1
    port: {closed_port}
    expect: closed
""",
    )
    proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts_file)
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    assert events[0]["event"] == "scan.started" and events[0]["targets"] == 5
    assert events[0]["schema_version"] == 1
    assert events[-1]["event"] == "scan.finished"
    targets = {e["target"]: e for e in _by_event(events, "target.result")}
    assert set(targets) == {
        "web",
        f"127.0.0.1:{closed_port}",
        f"[::1]:{listener.port}",
        "nope.test:80",
        "must-be-closed",
    }
    assert targets["web"]["ok"] is True and targets["web"]["category"] == "open"
    assert targets["web"]["addresses"] == ["::1", "127.0.0.1"]
    assert targets["web"]["tags"] == ["prod"]
    assert targets[f"127.0.0.1:{closed_port}"]["category"] == "refused"
    assert str(closed_port) in str(targets[f"127.0.0.1:{closed_port}"]["hint"])
    assert targets["nope.test:80"]["category"] == "dns_nxdomain"
    assert targets["must-be-closed"]["ok"] is True
    probes = _by_event(events, "probe.result")
    web_probes = [p for p in probes if p["target"] == "web"]
    assert {p["family"] for p in web_probes} == {"ipv4", "ipv6"}
    refused = next(p for p in probes if p["target"] == f"127.0.0.1:{closed_port}")
    assert refused["errno"] == "ECONNREFUSED" and refused["icmp_from"] is None
    # every probe.result and dns.result comes before its target.result
    position = {id(e): i for i, e in enumerate(events)}
    for target in targets.values():
        for probe in (p for p in probes if p["target"] == target["target"]):
            assert position[id(probe)] < position[id(target)]
    dns = {e["host"]: e for e in _by_event(events, "dns.result")}
    assert dns["nope.test"]["category"] == "dns_nxdomain"
    assert dns["ok.test"]["nameserver"] == dns_server.nameserver
    finished = events[-1]
    assert finished["ok"] is False and finished["interrupted"] is False
    assert finished["counts"]["failed"] == 2 and finished["counts"]["ok"] == 3


def test_all_open_exits_zero_and_auto_format_is_json_when_piped(
    tmp_path: Path, listener: Listener
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml", f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n"
    )
    proc = run_scanner("check", str(inv))
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    assert events[-1]["ok"] is True


def test_each_name_is_resolved_once(
    tmp_path: Path, listener: Listener, dns_server: DnsServer
) -> None:
    ports = "\n".join(f"  - shared.test:{p}" for p in range(20000, 20040))
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
defaults: {{timeout: 0.5, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 3, tries: 1}}
targets:
{ports}
""",
    )
    before = Counter(dns_server.queries())
    proc = run_scanner("check", str(inv), "--format", "json")
    after = Counter(dns_server.queries())
    events = parse_events(proc.stdout)
    assert len(_by_event(events, "target.result")) == 40
    assert len(_by_event(events, "dns.result")) == 1
    assert after["shared.test A"] - before["shared.test A"] == 1
    assert after["shared.test AAAA"] - before["shared.test AAAA"] == 1


def test_thousands_of_targets(tmp_path: Path) -> None:
    """3,000 distinct loopback endpoints: half answer, half refuse; each reported once."""
    server = Listener("0.0.0.0")  # accepts on every 127.x.y.z; only this host can reach it
    try:
        refused_port = server.port + 1 if server.port < 65535 else server.port - 1
        lines = []
        for i in range(3000):
            address = f"127.{1 + i // 60000}.{(i // 250) % 240}.{i % 250 + 1}"
            port = server.port if i % 2 == 0 else refused_port
            lines.append(f"  - {address}:{port}")
        inv = write_inventory(
            tmp_path / "big.yaml",
            "version: 1\ndefaults: {timeout: 5}\ntargets:\n" + "\n".join(lines) + "\n",
        )
        proc = run_scanner("check", str(inv), "--format", "json", "--concurrency", "256")
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    results = _by_event(events, "target.result")
    assert len(results) == 3000
    assert len({r["target"] for r in results}) == 3000
    assert Counter(r["category"] for r in results) == {"open": 1500, "refused": 1500}
    assert events[-1]["counts"]["open"] == 1500


def test_retries_count_attempts_for_silent_drops(tmp_path: Path, full_port: int) -> None:
    """SYNs dropped by a full accept queue, on loopback: the kernel's table says the
    listener does not accept (``not_accepting``), retried like any timeout."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
targets:
  - name: dropped
    host: 127.0.0.1
    port: {full_port}
    timeout: 0.3
    retries: 2
""",
    )
    proc = run_scanner("check", str(inv), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    probe = _by_event(events, "probe.result")[0]
    assert probe["category"] == "not_accepting"
    assert probe["attempts"] == 3
    assert _by_event(events, "target.result")[0]["category"] == "not_accepting"
    assert events[-1]["duration_s"] < 0.3 * 3 + 1.5 + 1.0  # timeouts + backoff, not more


def test_max_duration_makes_unfinished_targets_inconclusive(tmp_path: Path, full_port: int) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - name: slow\n    host: 127.0.0.1\n"
        f"    port: {full_port}\n    timeout: 20\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--max-duration", "0.5")
    assert proc.returncode == 3, proc.stderr
    events = parse_events(proc.stdout)
    result = _by_event(events, "target.result")[0]
    assert result["category"] == "inconclusive" and result["ok"] is False
    assert events[-1]["interrupted"] is True
    assert events[-1]["counts"]["inconclusive"] == 1


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_scan_and_still_reports(
    tmp_path: Path, full_port: int, listener: Listener, signum: int, code: int
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
targets:
  - 127.0.0.1:{listener.port}
  - name: hangs
    host: 127.0.0.1
    port: {full_port}
    timeout: 30
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inv), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if '"target.result"' in line:  # the open target is done; the other hangs
            break
    proc.send_signal(signum)
    # keep reading through the same buffered file: communicate() would skip what
    # readline() has already buffered
    rest = proc.stdout.read()
    assert proc.wait(timeout=15) == code
    events = parse_events("".join(seen) + rest)
    results = {e["target"]: e for e in _by_event(events, "target.result")}
    assert results["hangs"]["category"] == "inconclusive"
    assert results[f"127.0.0.1:{listener.port}"]["category"] == "open"
    assert events[-1]["event"] == "scan.finished" and events[-1]["interrupted"] is True


def test_inventory_errors_exit_2_with_locations_and_probe_nothing(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path / "bad.yaml",
        """version: 1
defaults:
  timout: 1
targets:
  - name: a
    host: 127.0.0.1
    port: 70000
  - 127.0.0.1:22
  - name: 127.0.0.1:22
    host: 127.0.0.1
    port: 23
""",
    )
    for command in ("check", "validate"):
        proc = (
            run_scanner(command, str(inv), "--format", "json")
            if command == "check"
            else run_scanner(command, str(inv))
        )
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert f"{inv}:3:3: unknown key 'timout'" in proc.stderr
        assert f"{inv}:7:11: port must be between 1 and 65535" in proc.stderr
        assert f"{inv}:9:5: duplicate target name '127.0.0.1:22'" in proc.stderr
        assert "nothing was probed" in proc.stderr


def test_validate_ok(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path / "ok.yaml", "version: 1\ntargets:\n  - db.example:5432\n  - 127.0.0.1:80\n"
    )
    proc = run_scanner("validate", str(inv))
    assert proc.returncode == 0
    assert "2 targets" in proc.stdout


def test_tags_select_targets(tmp_path: Path, listener: Listener, closed_port: int) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
targets:
  - {{name: a, host: 127.0.0.1, port: {listener.port}, tags: [prod]}}
  - {{name: b, host: 127.0.0.1, port: {closed_port}, tags: [staging]}}
""",
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--tags", "prod,other")
    assert proc.returncode == 0
    names = [e["target"] for e in _by_event(parse_events(proc.stdout), "target.result")]
    assert names == ["a"]
    none = run_scanner("check", str(inv), "--format", "json", "--tags", "nothing")
    assert none.returncode == 2 and none.stdout == ""


def test_usage_error_exits_2() -> None:
    assert run_scanner("check").returncode == 2
    assert run_scanner("check", "x.yaml", "--concurrency", "0").returncode == 2
    assert run_scanner("frobnicate").returncode == 2


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_scanner("check", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}:1:1: cannot read" in proc.stderr


def test_console_format_has_no_colour_without_tty(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
targets:
  - 127.0.0.1:{listener.port}
  - 127.0.0.1:{closed_port}
""",
    )
    proc = run_scanner("check", str(inv), "--format", "console")
    assert proc.returncode == 1
    assert "refused" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x1b" not in proc.stderr


def test_control_characters_in_names_are_an_inventory_error(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        'version: 1\ntargets:\n  - {name: "evil\\x1b[31m", host: 127.0.0.1, port: 80}\n',
    )
    proc = run_scanner("check", str(inv), "--format", "console")
    assert proc.returncode == 2
    assert f"{inv}:3:" in proc.stderr and "control characters" in proc.stderr
    assert "\x1b" not in proc.stderr


def test_console_format_lists_failures_and_summary(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
targets:
  - {{name: web, host: 127.0.0.1, port: {listener.port}}}
  - {{name: cache, host: 127.0.0.1, port: {closed_port}}}
""",
    )
    proc = run_scanner("check", str(inv), "--format", "console")
    assert proc.returncode == 1
    assert "FAIL cache  refused" in proc.stdout
    assert "web" not in proc.stdout.split("category")[0].replace("scanner:", "")
    assert "2 targets: 1 ok, 1 failed, 0 inconclusive" in proc.stdout


def test_python_m_and_console_script_agree(tmp_path: Path) -> None:
    import shutil

    script = shutil.which("scanner")
    if script is None:
        pytest.skip("the console script is not installed (pip install .)")
    inv = write_inventory(tmp_path / "ok.yaml", "version: 1\ntargets:\n  - 127.0.0.1:80\n")
    via_script = subprocess.run(
        [script, "validate", str(inv)], capture_output=True, text=True, check=False
    )
    via_module = run_scanner("validate", str(inv))
    assert via_script.returncode == via_module.returncode == 0
    assert via_script.stdout == via_module.stdout


def test_demo_shows_every_loopback_category() -> None:
    proc = run_scanner("demo", "--format", "json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    categories = {e["category"] for e in _by_event(events, "target.result")}
    assert categories == {
        "open",
        "refused",
        "not_accepting",
        "closed_by_peer",
        "dns_nxdomain",
        "dns_no_address",
        "dns_servfail",
        "dns_refused",
        "dns_timeout",
    }
    assert "built for" in proc.stderr


@pytest.mark.parametrize("no_color", [False, True])
def test_tty_gets_console_with_colour_unless_no_color(
    tmp_path: Path, listener: Listener, closed_port: int, no_color: bool
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n  - 127.0.0.1:{closed_port}\n",
    )
    env = scanner_env()
    if no_color:
        env["NO_COLOR"] = "1"
    code, screen = run_on_tty(["check", str(inv)], env, timeout=30)
    assert code == 1
    assert "refused" in screen and '"event"' not in screen  # auto format: console on a TTY
    assert ("\x1b[31m" in screen) is (not no_color)


def test_low_fd_limit_never_blames_targets(tmp_path: Path) -> None:
    """ulimit -n 64, 5,000 targets, --concurrency 5000: concurrency adapts, verdicts stay true."""
    import resource

    server = Listener("0.0.0.0")
    try:
        refused_port = server.port + 1 if server.port < 65535 else server.port - 1
        lines = [
            f"  - 127.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}:"
            f"{server.port if i % 2 == 0 else refused_port}"
            for i in range(5000)
        ]
        inv = write_inventory(
            tmp_path / "big.yaml", "version: 1\ntargets:\n" + "\n".join(lines) + "\n"
        )

        def limit_fds() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scanner",
                "check",
                str(inv),
                "--format",
                "json",
                "--concurrency",
                "5000",
            ],
            capture_output=True,
            text=True,
            env=scanner_env(),
            cwd=ROOT,
            timeout=120,
            preexec_fn=limit_fds,
            check=False,
        )
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    assert events[0]["concurrency"] <= 64
    results = _by_event(events, "target.result")
    assert Counter(r["category"] for r in results) == {"open": 2500, "refused": 2500}


def test_rate_flag_is_respected_at_the_listener(tmp_path: Path) -> None:
    """--rate 40 over 20 targets: the listener's own accept clock shows the spacing."""
    server = Listener("0.0.0.0")  # reachable on every 127.x address, nowhere off-host
    lines = "\n".join(f"  - 127.0.3.{i}:{server.port}" for i in range(1, 21))
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    try:
        proc = run_scanner("check", str(inv), "--format", "json", "--rate", "40", "--per-host", "1")
        wait_for(lambda: len(server.accepted) >= 20, timeout=2)
    finally:
        server.close()
    accepted = server.accepted
    assert proc.returncode == 0, proc.stderr
    assert len(accepted) == 20
    assert max(accepted) - min(accepted) >= 19 / 40 * 0.9


def test_per_host_cap_holds_one_address_back_not_the_others(tmp_path: Path, full_port: int) -> None:
    """--per-host 2: six silent handshakes to one address take three timeout rounds,
    while handshakes to another address go past them at once."""
    dropped = "\n".join(f"  - {{name: d{i}, host: 127.0.0.1, port: {full_port}}}" for i in range(6))
    refused = "\n".join(f"  - {{name: r{i}, host: 127.0.0.2, port: {full_port}}}" for i in range(6))
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 0.3, retries: 0}}\ntargets:\n{dropped}\n{refused}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--per-host", "2")
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    probes = _by_event(events, "probe.result")
    assert Counter((p["address"], p["category"]) for p in probes) == {
        ("127.0.0.1", "not_accepting"): 6,  # a full accept queue on this host
        ("127.0.0.2", "refused"): 6,
    }
    # three rounds of two 0.3 s timeouts, one after the other
    assert events[-1]["duration_s"] >= 3 * 0.3 * 0.95
    order = [p["address"] for p in probes]
    assert order.index("127.0.0.1") > max(i for i, a in enumerate(order) if a == "127.0.0.2")


def test_a_large_network_streams_and_stops_on_sigint(tmp_path: Path) -> None:
    """1,048,576 targets from one line: events flow at once, and Ctrl-C stops it promptly,
    reporting what finished and counting the rest, rather than a million inconclusives."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        'version: 1\ntargets:\n  - {name: pool, host: 127.0.0.0/16, ports: ["47000-47015"]}\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inv), "--format", "json", "--timeout", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # unbuffered stdout: a write the signal cuts short must go on
        env=scanner_env() | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(200)]  # streaming: results come at once
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()  # the same buffered file: communicate() would skip lines
    assert proc.wait(timeout=60) == 130
    events = parse_events("".join(head) + rest)
    assert events[0]["targets"] == 1_048_576
    finished = events[-1]
    assert finished["event"] == "scan.finished" and finished["interrupted"] is True
    reported = len(_by_event(events, "target.result"))
    assert 0 < reported < 1_048_576
    assert finished["counts"]["not_started"] + reported == 1_048_576


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reader_that_leaves_early_does_not_break_the_scan(
    tmp_path: Path, closed_port: int, workers: str
) -> None:
    """`scanner check … | head -1`: the rest of the stream is dropped, not a traceback,
    and the scan still ends with its verdict and writes its report — in one process, and
    in the parent that relays the workers' streams."""
    lines = "\n".join(f"  - 127.0.5.{i}:{closed_port}" for i in range(1, 201))
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "check",
            str(inv),
            "--format",
            "json",
            "--report",
            str(report),
            "--workers",
            workers,
            "--quiet",  # nothing on stderr but a problem (the summary is tested elsewhere)
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=scanner_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader leaves
    assert proc.wait(timeout=60) == 1  # every target refused: failed, as without the pipe
    assert b"scan.started" in first
    assert proc.stderr.read() == b""
    summary = json.loads(report.read_text())["summary"]
    assert summary["counts"]["refused"] == 200 and summary["interrupted"] is False


def test_dns_timeout_and_tries_from_the_command_line(tmp_path: Path, dns_server: DnsServer) -> None:
    """--dns-timeout/--dns-tries replace the inventory's resolver.timeout/tries (and
    resolv.conf's options): a silent nameserver fails in 0.2 s, once, not 3 s twice."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\n"
        f"resolver: {{nameservers: ['{dns_server.nameserver}'], timeout: 3, tries: 2}}\n"
        "targets:\n  - {host: silent.test, port: 80, retries: 0}\n",
    )
    started = time.monotonic()
    proc = run_scanner(
        "check", str(inv), "--format", "json", "--dns-timeout", "0.2", "--dns-tries", "1"
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    dns = next(e for e in parse_events(proc.stdout) if e["event"] == "dns.result")
    assert dns["category"] == "dns_timeout"
    assert 150 <= dns["latency_ms"] < 1500, dns
    assert elapsed < 2.9  # the inventory's 3 s per try would be past this
    bad = run_scanner("check", str(inv), "--dns-tries", "0")
    assert bad.returncode == 2 and "between 1 and 10" in bad.stderr
