"""Streams and signals under faults: slow and stopped readers, closed and full streams,
early signals, killed parents. Every case is a real subprocess with real pipes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT, Listener, parse_events, popen_scanner, scanner_env, write_inventory


def _refused_inventory(tmp_path: Path, port: int, block: str = "127.9.0.0/18") -> Path:
    return write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 2, retries: 0}}\ntargets:\n  - {block}:{port}\n",
    )


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_reader_that_stops_reading_cannot_keep_a_signal_out(
    tmp_path: Path, closed_port: int, workers: str, signum: int, code: int
) -> None:
    """stdout is a pipe nobody reads: the scan still ends within a second of a signal,
    drops the rest of the stream, writes its report and exits 130/143."""
    # 32,768 targets: about 28 MB of events, more than the 16 MiB the scan lets wait for a
    # reader, so the scan itself is still running (paused) when the signal comes
    inv = _refused_inventory(tmp_path, closed_port, "127.9.0.0/17")
    report = tmp_path / "report.json"
    read_end, write_end = os.pipe()
    proc = popen_scanner(
        ["check", str(inv), "--format", "json", "--workers", workers, "--report", str(report)],
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        # the pipe fills up (64 KiB), then nobody reads: wait until the scan is stuck on it
        time.sleep(1.5)
        proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
        os.close(read_end)
    assert proc.returncode == code, stderr
    # it ends (it used to ignore the signal for good): the scan within a second, then the
    # report of 32,768 targets is written
    assert took < 5.0, f"{took:.2f} s after the signal"
    assert b"Traceback" not in stderr
    document = json.loads(report.read_text())
    assert document["summary"]["interrupted_by"] == signal.Signals(signum).name


def test_slow_reader_never_makes_a_fast_service_slow(tmp_path: Path) -> None:
    """1,500 open targets with max_latency_ms 150 and a stdout read at 100 KB/s: the
    output waits for the reader, the handshakes' clocks do not (none ends `slow`)."""
    server = Listener("0.0.0.0")  # every 127.x reaches it; nothing off-host does
    try:
        inv = write_inventory(
            tmp_path / "inv.yaml",
            "version: 1\ndefaults: {timeout: 3, retries: 0, max_latency_ms: 150}\n"
            f"targets:\n  - {{name: web, host: 127.10.0.0/22, ports: [{server.port}]}}\n",
        )
        proc = popen_scanner(
            ["check", str(inv), "--format", "json", "--workers", "1", "--concurrency", "100"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        received = bytearray()
        while chunk := proc.stdout.read(5000):  # 5 KB each 50 ms: 100 KB/s
            received += chunk
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        server.close()
    events = parse_events(received.decode())
    results = [e for e in events if e["event"] == "target.result"]
    assert len(results) == 1024
    assert {r["category"] for r in results} == {"open"}
    assert max(e["latency_ms"] for e in events if e["event"] == "probe.result") < 150


def test_console_into_head_finishes_the_scan_and_the_report(
    tmp_path: Path, closed_port: int
) -> None:
    inv = _refused_inventory(tmp_path, closed_port, "127.11.0.0/24")
    report = tmp_path / "report.json"
    proc = subprocess.run(
        f"{sys.executable} -m scanner check {inv} --format console --report {report} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.stdout.startswith("scanner: 256 targets")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert len(json.loads(report.read_text())["targets"]) == 256


@pytest.mark.parametrize(
    ("redirect", "message"),
    [
        (">/dev/full", "No space left on device"),  # the stream fails, the scan does not
        (">&-", None),  # a closed stdout
        ("2>&-", None),  # a closed stderr
        ("| true", None),  # a reader that left at once
    ],
)
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_every_stream_failure_ends_that_stream_only(
    tmp_path: Path, closed_port: int, redirect: str, message: str | None, fmt: str
) -> None:
    """The verdict's exit code (1: one refused target), the report whole, no traceback."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 1, retries: 0}}\ntargets:\n"
        f"  - 127.0.0.1:{closed_port}\n  - {{host: 127.0.0.1, port: {closed_port}, "
        "expect: closed, name: closed}\n",
    )
    report = tmp_path / "report.json"
    status = tmp_path / "status"
    command = (
        f"{sys.executable} -m scanner check {inv} --format {fmt} --report {report} "
        f"{redirect}; echo $? > {status}"
    )
    if "|" in redirect:
        command = (
            f"{sys.executable} -m scanner check {inv} --format {fmt} --report {report} "
            f"{redirect}; echo ${{PIPESTATUS[0]}} > {status}"
        )
    proc = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert status.read_text().strip() == "1", proc.stderr
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr.replace("errors", "")
    if message is not None and fmt == "json":
        assert message in proc.stderr
    assert len(json.loads(report.read_text())["targets"]) == 2


@pytest.mark.parametrize("command", [["demo"], ["validate", "configs/example.yaml"]])
def test_demo_and_validate_into_a_closed_pipe(command: list[str]) -> None:
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f"{sys.executable} -m scanner {' '.join(command)} | true; echo ${{PIPESTATUS[0]}}",
        ],
        capture_output=True,
        text=True,
        env=scanner_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip() == "0", proc.stderr
    assert "Traceback" not in proc.stderr


def _caught_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM yet (its SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_start_is_quiet(tmp_path: Path, signum: int) -> None:
    """Python has no SIGTERM handler of its own: once one is there, scanner's quiet
    handlers are in place. A signal from that moment, while the imports still run, is
    recorded (no KeyboardInterrupt traceback) and the scan ends at once as interrupted."""
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:1\n")
    proc = popen_scanner(
        ["check", str(inv), "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 10
    while not _caught_sigterm(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.0002)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr
    assert proc.returncode == 128 + signum
    events = parse_events(stdout.decode())
    assert events[-1]["event"] == "scan.finished" and events[-1]["interrupted"] is True


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return not any(line.startswith("State:") and "Z" in line for line in status)
    except OSError:
        return False


def test_workers_die_with_their_parent(tmp_path: Path, full_port: int) -> None:
    """SIGKILL the parent: its workers go too (PR_SET_PDEATHSIG), and leave nothing
    in TMPDIR (they never write there)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 30}}\ntargets:\n  - 127.12.0.0/28:{full_port}\n",
    )
    env = {**scanner_env(), "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "check", str(inv), "--format", "json", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # scan.started: both workers run
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(_alive(w) for w in workers)
    assert list(tmpdir.iterdir()) == []


def test_a_sigterm_while_forking_reaches_every_worker(tmp_path: Path, full_port: int) -> None:
    """SIGTERM the moment the first worker exists: the parent's handler is already in
    place, every worker stops, none is left running, and the exit is 143."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ndefaults: {{timeout: 30}}\ntargets:\n  - 127.13.0.0/28:{full_port}\n",
    )
    proc = popen_scanner(
        ["check", str(inv), "--format", "json", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    workers: set[int] = set()
    while not workers and time.monotonic() < deadline:
        workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert b"Traceback" not in stderr
    assert parse_events(stdout.decode())[-1]["interrupted_by"] == "SIGTERM"
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(_alive(w) for w in workers)


def test_the_writer_thread_leaves_the_loop_free(tmp_path: Path) -> None:
    """In process: a sink whose reader stops never blocks its caller."""
    from scanner.report._sink import LineSink

    read_end, write_end = os.pipe()
    sink = LineSink(os.fdopen(write_end, "wb", buffering=0), batch_bytes=1)
    for _ in range(1000):  # blocked, this would never return (the test's timeout)
        sink.write(b"x" * 1000 + b"\n")  # 1 MB into a 64 KiB pipe nobody reads
    assert sink.backlogged is False  # 1 MB is under the 16 MiB backlog
    interrupted = threading.Event()
    interrupted.set()
    sink.drain(interrupted=interrupted.is_set)  # gives up after its grace period
    assert sink.gone
    assert select.select([read_end], [], [], 0)[0]  # some of it did reach the pipe
    os.close(read_end)
