"""Artefacts under faults: kills and signals mid-write, colliding paths, a full filesystem.

Real subprocesses, real signals, a real small tmpfs mounted by the test (root needed; the
tests that mount skip without it, and fail in CI, like the network lab).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Listener, popen_scanner, run_scanner, scanner_env, write_inventory
from .test_report_helpers import assert_valid, schema_validator


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs: what fits is written, the rest fails with ENOSPC."""
    if (reason := _can_mount()) is not None:
        _skip_or_fail(reason)
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> None:
    """Take every free byte of the filesystem."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def _big_inventory(tmp_path: Path, port: int) -> Path:
    # 16,384 refused loopback targets: a report of about 13 MB, long enough to be caught
    return write_inventory(
        tmp_path / "big.yaml",
        f"version: 1\ndefaults: {{timeout: 2, retries: 0}}\ntargets:\n  - 127.7.0.0/18:{port}\n",
    )


def _wait_for_temporary(directory: Path, timeout: float = 60) -> bool:
    """True once a temporary artefact file (about to be renamed) exists in ``directory``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.endswith(".tmp") for p in directory.iterdir()):
            return True
        time.sleep(0.0005)
    return False


_ONE = "version: 1\ndefaults: {{timeout: 1, retries: 0}}\ntargets:\n  - {}\n"
ARTEFACTS = [("--report", "out.json"), ("--junit", "out.xml"), ("--markdown", "out.md")]


@pytest.mark.parametrize(("option", "name"), ARTEFACTS)
def test_a_kill_mid_write_leaves_the_earlier_artefact_whole(
    tmp_path: Path, closed_port: int, option: str, name: str
) -> None:
    """SIGKILL while the new file is being written: the old one is untouched."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / name
    target.write_text("the earlier artefact\n")
    inv = _big_inventory(tmp_path, closed_port)
    proc = popen_scanner(
        ["check", str(inv), "--format", "json", option, str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for_temporary(out_dir), "the artefact was never being written"
        proc.kill()
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "the earlier artefact\n"


@pytest.mark.parametrize(
    ("option", "name", "signum", "code"),
    [(option, name, signal.SIGTERM, 143) for option, name in ARTEFACTS]
    + [("--report", "out.json", signal.SIGINT, 130)],
)
def test_a_signal_mid_write_still_writes_the_artefact_whole(
    tmp_path: Path, closed_port: int, option: str, name: str, signum: int, code: int
) -> None:
    """SIGTERM/SIGINT while writing: the file is finished, then the exit says the signal."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / name
    inv = _big_inventory(tmp_path, closed_port)
    proc = popen_scanner(
        ["check", str(inv), "--format", "json", option, str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for_temporary(out_dir), "the artefact was never being written"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code, stderr
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr
    assert sorted(p.name for p in out_dir.iterdir()) == [name]  # no temporary left
    text = target.read_text()
    if option == "--report":
        document = json.loads(text)
        assert len(document["targets"]) == 16_384
        assert_valid(schema_validator("report"), document)
    elif option == "--junit":
        assert text.rstrip().endswith("</testsuites>") and text.count("<testcase") == 16_384
    else:
        assert text.startswith("## scanner") and "<sub>scanner" in text


def test_colliding_artefacts_are_refused_before_probing(tmp_path: Path) -> None:
    server = Listener()
    try:
        inv = write_inventory(
            tmp_path / "inv.yaml", f"version: 1\ntargets:\n  - 127.0.0.1:{server.port}\n"
        )
        before = inv.read_text()
        cases = [
            (["--report", "x.json", "--junit", "x.json"], "is the same file as --report"),
            (["--report", "x.json", "--markdown", "./x.json"], "is the same file as --report"),
            (["--report", str(inv)], "is the inventory"),
            (["--junit", str(tmp_path)], "is a directory"),
            (["--markdown", str(tmp_path / "nowhere" / "m.md")], "does not exist"),
        ]
        for args, message in cases:
            proc = subprocess.run(
                [sys.executable, "-m", "scanner", "check", str(inv), "--format", "json", *args],
                capture_output=True,
                text=True,
                env=scanner_env(),
                cwd=tmp_path,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 2, (args, proc.stderr)
            assert message in proc.stderr, (args, proc.stderr)
            assert proc.stdout == ""
        assert server.accepted == []  # nothing was probed
        assert inv.read_text() == before
    finally:
        server.close()


def test_a_read_only_directory_is_refused_before_probing(small_fs: Path, tmp_path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:1\n")
    proc = run_scanner("check", str(inv), "--format", "json", "--report", str(small_fs / "r.json"))
    assert proc.returncode == 2
    assert "cannot write in" in proc.stderr and "Read-only file system" in proc.stderr
    assert proc.stdout == ""


def test_a_full_filesystem_loses_only_that_artefact(
    small_fs: Path, tmp_path: Path, closed_port: int
) -> None:
    """--report on a full disk: no partial file, the earlier one intact, the path named,
    the JUnit beside it still written, and exit 4 (the scan itself passed)."""
    earlier = small_fs / "report.json"
    earlier.write_text('{"earlier": true}\n')
    _fill(small_fs)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n"
        + "".join(
            f"  - {{host: 127.0.0.1, port: {closed_port}, expect: closed, name: t{i}}}\n"
            for i in range(300)
        ),
    )
    junit = tmp_path / "junit.xml"
    proc = run_scanner(
        "check", str(inv), "--format", "json", "--report", str(earlier), "--junit", str(junit)
    )
    assert proc.returncode == 4, proc.stderr
    assert f"cannot write --report {earlier}: No space left on device" in proc.stderr
    assert "None" not in proc.stderr and "Traceback" not in proc.stderr
    assert earlier.read_text() == '{"earlier": true}\n'
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler", "report.json"]
    assert junit.read_text().count("<testcase") == 300


def test_a_failing_scan_keeps_exit_1_when_an_artefact_is_lost(
    small_fs: Path, tmp_path: Path, closed_port: int
) -> None:
    _fill(small_fs)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        _ONE.format(f"127.0.0.1:{closed_port}"),
    )
    proc = run_scanner("check", str(inv), "--format", "json", "--report", str(small_fs / "r.json"))
    assert proc.returncode == 1  # the failure says more than the missing file
    assert "cannot write --report" in proc.stderr


def test_workers_need_no_temporary_files(small_fs: Path, tmp_path: Path, closed_port: int) -> None:
    """--workers 2 with --report and TMPDIR on a full filesystem: nothing goes through
    TMPDIR (the workers send their results down a pipe), so the scan and report are whole."""
    _fill(small_fs)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        _ONE.format(f"127.8.0.0/24:{closed_port}"),
    )
    report = tmp_path / "report.json"
    proc = run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--workers",
        "2",
        "--report",
        str(report),
        "--quiet",  # no summary on stderr: it must stay empty
        extra_env={"TMPDIR": str(small_fs)},
    )
    assert proc.returncode == 1, proc.stderr
    assert "without finishing" not in proc.stderr and proc.stderr == ""
    assert len(json.loads(report.read_text())["targets"]) == 256
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler"]


def test_github_step_summary_is_appended_whole_or_not_at_all(
    small_fs: Path, tmp_path: Path, closed_port: int
) -> None:
    summary = small_fs / "summary.md"
    earlier = "## an earlier step\n" + "x" * (4096 - 20) + "\n"  # one whole tmpfs page
    summary.write_text(earlier)
    _fill(small_fs)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        _ONE.format(f"127.0.0.1:{closed_port}"),
    )
    proc = run_scanner(
        "check", str(inv), "--format", "json", extra_env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert proc.returncode == 1
    assert "cannot write --markdown" in proc.stderr
    assert summary.read_text() == earlier  # cut back, not half a table
