"""The console and the stderr summary as a person and a CI log see them: the CLI in a
subprocess, a pseudo-terminal where the TTY matters, real listeners on loopback."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    ROOT,
    Listener,
    parse_events,
    run_on_tty,
    run_scanner,
    scanner_env,
    write_inventory,
)


@pytest.fixture
def everywhere() -> Iterator[Listener]:
    """Accepts on every 127.x address (bound to 0.0.0.0: only this host can reach it)."""
    server = Listener("0.0.0.0")
    try:
        yield server
    finally:
        server.close()


def _mixed(tmp_path: Path, open_port: int, closed_port: int, full_port: int) -> Path:
    """5,121 targets: 4,096 open, 1,000 refused, 20 not accepting, 5 outside the scope."""
    lines = [f"  - {{name: web-pool, host: 127.1.0.0/20, port: {open_port}}}"]
    lines += [
        f"  - {{name: cache-{i}, host: 127.2.{i // 250}.{i % 250 + 1}, port: {closed_port}}}"
        for i in range(1000)
    ]
    lines += [
        f"  - {{name: queue-{i}, host: 127.0.0.1, port: {full_port}, timeout: 0.5}}"
        for i in range(20)
    ]
    lines += [
        f"  - {{name: partner-{i}, host: 127.200.0.{i + 1}, port: {open_port}}}" for i in range(5)
    ]
    return write_inventory(
        tmp_path / "mixed.yaml",
        "version: 1\ndefaults: {timeout: 2, retries: 0}\nscope:\n  allow: [127.0.0.0/9]\n"
        "targets:\n" + "\n".join(lines) + "\n",
    )


def _refused_port(server: Listener) -> int:
    return server.port + 1 if server.port < 65535 else server.port - 1


def test_5121_targets_fit_on_a_screen(tmp_path: Path, everywhere: Listener, full_port: int) -> None:
    """Issue 19: 5,121 targets printed ~3 lines per failure (3,084 lines here); grouped,
    the first ten of each category and one "and K more" line, the whole scan in 45."""
    inv = _mixed(tmp_path, everywhere.port, _refused_port(everywhere), full_port)
    normal = run_scanner("check", str(inv), "--format", "console")
    assert normal.returncode == 1, normal.stderr
    lines = normal.stdout.splitlines()
    assert lines[0] == f"scanner: 5,121 targets from {inv}, 1,024 probes in flight at most"
    assert lines[-1].startswith("5,121 targets: 4,096 ok, 1,025 failed, 0 inconclusive in ")
    assert len(lines) <= 50, normal.stdout
    for heading, more in (
        ("refused: 1,000 targets failed", "… and 990 more refused (-v lists every one)"),
        ("not_accepting: 20 targets failed", "… and 10 more not_accepting (-v lists every one)"),
        ("out_of_scope: 5 targets failed", None),
    ):
        assert heading in lines
        if more:
            assert more in lines
    # the first ten of a group are the first ten of the inventory
    cache = [line.split()[1] for line in lines if line.startswith("FAIL cache-")]
    assert cache == [f"cache-{i}" for i in range(10)]
    assert re.search(r"^open +4,096 +0$", normal.stdout, re.MULTILINE)

    quiet = run_scanner("check", str(inv), "--format", "console", "-q")
    assert quiet.returncode == 1
    assert quiet.stdout.splitlines() == [
        "category       targets  failed",
        "open             4,096       0",
        "refused          1,000   1,000",
        "not_accepting       20      20",
        "out_of_scope         5       5",
        "",
        quiet.stdout.splitlines()[-1],
    ]
    assert quiet.stdout.splitlines()[-1].startswith("5,121 targets: 4,096 ok, 1,025 failed")

    verbose = run_scanner("check", str(inv), "--format", "console", "-v")
    failed = [line for line in verbose.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1025 and "… and" not in verbose.stdout
    # every address, with its latency: a lone literal's line too
    assert re.search(r"^      127\.2\.0\.1: refused \d+\.\d ms$", verbose.stdout, re.MULTILINE)


def test_json_on_stdout_puts_a_summary_on_stderr(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    """`scanner check inv.yaml > events.jsonl` in CI: the log says what failed and why."""
    names = "\n".join(
        f"  - {{name: cache-{i}, host: 127.0.0.1, port: {closed_port}}}" for i in range(5)
    )
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 1, retries: 0}}\ntargets:\n"
        f"  - {{name: web, host: 127.0.0.1, port: {listener.port}}}\n{names}\n",
    )
    for argv in (["check", str(inv)], ["check", str(inv), "--format", "json"]):  # auto: piped
        proc = run_scanner(*argv)
        assert proc.returncode == 1
        parse_events(proc.stdout)  # stdout is the events and nothing else
        lines = proc.stderr.splitlines()
        assert lines[0] == "refused: 5 targets failed"
        assert [line.split()[1] for line in lines if line.startswith("FAIL")] == [
            "cache-0",
            "cache-1",
            "cache-2",
        ]
        assert f"      → a TCP reset came back: nothing listens on port {closed_port}" in (
            proc.stderr
        )
        assert "… and 2 more refused (the JSON events have every one)" in lines
        assert lines[-1].startswith("6 targets: 1 ok, 5 failed, 0 inconclusive in ")
        assert "\x1b" not in proc.stderr  # a pipe: no colour, no progress
    quiet = run_scanner("check", str(inv), "--format", "json", "-q")
    assert quiet.returncode == 1 and quiet.stderr == ""
    passing = write_inventory(
        tmp_path / "ok.yaml", f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n"
    )
    ok = run_scanner("check", str(passing))
    assert ok.returncode == 0
    assert re.fullmatch(r"1 target: 1 ok, 0 failed, 0 inconclusive in \d+\.\d\d s\n", ok.stderr)


def test_the_summary_with_workers(tmp_path: Path, everywhere: Listener) -> None:
    """Workers that send no results (no report asked for): the counts, never a made-up
    failed column; with a report they send them, and the failures are listed."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n"
        f"  - 127.3.0.0/24:{everywhere.port}\n  - 127.4.0.0/24:{_refused_port(everywhere)}\n",
    )
    bare = run_scanner("check", str(inv), "--format", "json", "--workers", "2")
    assert bare.returncode == 1, bare.stderr
    assert bare.stderr.splitlines()[:3] == [
        "category  targets",
        "open          256",
        "refused       256",
    ]
    assert bare.stderr.splitlines()[-1].startswith("512 targets: 256 ok, 256 failed")
    assert "FAIL" not in bare.stderr
    report = tmp_path / "report.json"
    full = run_scanner(
        "check", str(inv), "--format", "json", "--workers", "2", "--report", str(report)
    )
    assert full.returncode == 1
    assert full.stderr.splitlines()[0] == "refused: 256 targets failed"
    assert len([line for line in full.stderr.splitlines() if line.startswith("FAIL")]) == 3


def _slow_inventory(tmp_path: Path, port: int, count: int = 300) -> Path:
    lines = "\n".join(f"  - 127.5.{i // 250}.{i % 250 + 1}:{port}" for i in range(count))
    return write_inventory(
        tmp_path / "slow.yaml",
        f"version: 1\ndefaults: {{timeout: 1, retries: 0}}\ntargets:\n{lines}\n",
    )


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_progress_on_a_terminal_stderr_while_stdout_is_a_file(
    tmp_path: Path, everywhere: Listener, fmt: str
) -> None:
    """SPEC: progress on stderr for long runs; issue 19: also when stdout is a file."""
    inv = _slow_inventory(tmp_path, _refused_port(everywhere))
    out = tmp_path / "out.txt"
    args = ["check", str(inv), "--format", fmt, "--rate", "500"]  # 300 targets: 0.6 s
    code, screen = run_on_tty(args, scanner_env(), stdout=out)
    assert code == 1
    progress = re.findall(r"\r\x1b\[K(\d[\d,]*)/300 targets, (\d[\d,]*) failed \(", screen)
    assert progress, screen
    assert all(int(done) >= int(failed) for done, failed in progress)
    written = out.read_text()
    assert "/300 targets" not in written and "\x1b" not in written
    if fmt == "json":
        parse_events(written)
        assert "300 targets: 0 ok, 300 failed" in screen  # and the summary on the terminal
    # -q: no progress; a stderr that is not a terminal: no progress either
    code, screen = run_on_tty([*args, "-q"], scanner_env(), stdout=out)
    assert code == 1 and "/300 targets" not in screen
    piped = run_scanner(*args)
    assert "/300 targets" not in piped.stderr


def test_term_dumb_gets_no_colour_on_a_terminal(tmp_path: Path, listener: Listener) -> None:
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    port = refused.getsockname()[1]
    refused.close()
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n  - 127.0.0.1:{port}\n",
    )
    env = scanner_env()
    env.pop("NO_COLOR", None)
    code, screen = run_on_tty(["check", str(inv)], env | {"TERM": "xterm"})
    assert code == 1 and "\x1b[31m" in screen  # a terminal that shows colour gets it
    code, screen = run_on_tty(["check", str(inv)], env | {"TERM": "dumb"})
    assert code == 1 and "refused" in screen and "\x1b" not in screen


def test_a_deadline_says_unfinished_targets_in_one_line(tmp_path: Path, full_port: int) -> None:
    """--max-duration printed 2 lines for each unfinished target (3,921 of them in the
    issue); now one line says how many and why."""
    lines = "\n".join(
        f"  - {{name: hang{i}, host: 127.0.0.1, port: {full_port}, timeout: 20}}"
        for i in range(400)
    )
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    proc = run_scanner("check", str(inv), "--format", "console", "--max-duration", "0.5")
    assert proc.returncode == 3, proc.stderr
    out = proc.stdout.splitlines()
    assert "400 targets not finished: the scan was stopped (--max-duration reached)" in out
    assert not [line for line in out if line.startswith("??")]
    assert out[-1].startswith("400 targets: 0 ok, 0 failed, 400 inconclusive in ")
    assert out[-1].endswith("(interrupted: deadline)")
    assert len(out) <= 10


def test_ctrl_c_with_rate_counts_the_queue_in_one_line(
    tmp_path: Path, everywhere: Listener
) -> None:
    """Ctrl-C with --rate listed 1,024 queued targets as inconclusive, one by one."""
    inv = _slow_inventory(tmp_path, _refused_port(everywhere), count=3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inv), "-f", "console", "--rate", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    header = proc.stdout.readline()
    assert header.startswith("scanner: 3,000 targets")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(timeout=30) == 130
    lines = rest.splitlines()
    stopped = [line for line in lines if "the scan was stopped (SIGINT received)" in line]
    assert 1 <= len(stopped) <= 2, rest  # not finished (queued), not started: one line each
    assert not [line for line in lines if line.startswith("??")]
    total = re.match(r"(\d[\d,]*) targets: ", lines[-1])
    assert total and total.group(1) == "3,000", lines[-1]  # footer and header agree
    assert "not started" in lines[-1] or "inconclusive" in lines[-1]
    assert len(lines) < 40
    with contextlib.suppress(OSError):
        proc.kill()
