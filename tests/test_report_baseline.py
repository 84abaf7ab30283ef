"""--baseline and --fail-on: what changed since an earlier --report, from real scans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.report.baseline import Baseline

from .conftest import Listener, parse_events, run_scanner, write_inventory
from .test_report_helpers import assert_valid, schema_validator


def _inv(path: Path, ports: dict[str, int], timeout: float = 1.0) -> Path:
    lines = "\n".join(
        f"  - {{name: {name}, host: 127.0.0.1, port: {port}}}" for name, port in ports.items()
    )
    return write_inventory(
        path, f"version: 1\ndefaults: {{timeout: {timeout}, retries: 0}}\ntargets:\n{lines}\n"
    )


@pytest.fixture
def baseline(tmp_path: Path, listener: Listener, closed_port: int) -> Path:
    """Then: breaks and moves failed (refused), stays-ok and gets-fixed... see names."""
    inv = _inv(
        tmp_path / "before.yaml",
        {
            "breaks": listener.port,
            "gets-fixed": closed_port,
            "moves": closed_port,
            "still-broken": closed_port,
            "still-ok": listener.port,
        },
    )
    path = tmp_path / "baseline.json"
    proc = run_scanner("check", str(inv), "--format", "json", "--report", str(path))
    assert proc.returncode == 1, proc.stderr
    return path


def test_changes_in_events_report_markdown(
    tmp_path: Path, baseline: Path, listener: Listener, closed_port: int, full_port: int
) -> None:
    inv = _inv(
        tmp_path / "after.yaml",
        {
            "breaks": closed_port,
            "gets-fixed": listener.port,
            "moves": full_port,
            "still-broken": closed_port,
            "still-ok": listener.port,
            "brand-new": closed_port,
        },
        timeout=0.3,
    )
    report_path, markdown = tmp_path / "after.json", tmp_path / "summary.md"
    proc = run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--baseline",
        str(baseline),
        "--report",
        str(report_path),
        "--markdown",
        str(markdown),
    )
    assert proc.returncode == 1, proc.stderr
    expected = {
        "breaks": "new_failure",
        "gets-fixed": "fixed",
        "moves": "category_changed",
        "still-broken": None,
        "still-ok": None,
        "brand-new": "new_failure",
    }
    events = parse_events(proc.stdout)
    validator = schema_validator("events")
    for event in events:
        assert_valid(validator, event)
    assert {e["target"]: e["change"] for e in events if e["event"] == "target.result"} == expected
    report = json.loads(report_path.read_text())
    assert_valid(schema_validator("report"), report)
    assert report["baseline"] == str(baseline)
    assert {t["target"]: t["change"] for t in report["targets"]} == expected
    text = markdown.read_text()
    new = text.split("### New failures (2)", 1)[1].split("###", 1)[0]
    where = f"127.0.0.1:{closed_port}"
    # old -> new where the baseline had the target; only the category for a new one
    assert f"| breaks | {where} | open → refused |" in new
    assert f"| brand-new | {where} | refused |" in new
    fixed = text.split("### Fixed (1)", 1)[1].split("###", 1)[0]
    assert f"| gets-fixed | 127.0.0.1:{listener.port} | refused → open |" in fixed
    changed = text.split("### Changed category (1)", 1)[1].split("###", 1)[0]
    assert f"| moves | 127.0.0.1:{full_port} | refused → not\\_accepting |" in changed
    assert "### Removed since the baseline (0)" in text
    then = {t["target"]: t["baseline_category"] for t in report["targets"]}
    assert then == {
        "breaks": "open",
        "gets-fixed": "refused",
        "moves": "refused",
        "still-broken": None,  # unchanged: nothing to say
        "still-ok": None,
        "brand-new": None,  # not in the baseline
    }
    assert report["removed"] == []


def test_fail_on_new_passes_known_failures(
    tmp_path: Path, baseline: Path, listener: Listener, closed_port: int
) -> None:
    same = _inv(
        tmp_path / "same.yaml",
        {"breaks": listener.port, "gets-fixed": closed_port, "still-ok": listener.port},
    )
    common = ("check", str(same), "--format", "json", "--baseline", str(baseline))
    assert run_scanner(*common).returncode == 1  # default --fail-on any
    assert run_scanner(*common, "--fail-on", "new").returncode == 0
    worse = _inv(tmp_path / "worse.yaml", {"still-ok": closed_port})
    proc = run_scanner(
        "check", str(worse), "--format", "json", "--baseline", str(baseline), "--fail-on", "new"
    )
    assert proc.returncode == 1


def test_baseline_usage_errors_probe_nothing(tmp_path: Path, closed_port: int) -> None:
    inv = _inv(tmp_path / "inv.yaml", {"a": closed_port})
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema_version": 1, "targets": "nope"}))
    for args, message in (
        (("--fail-on", "new"), "--fail-on new needs --baseline"),
        (("--baseline", str(tmp_path / "missing.json")), "cannot read"),
        (("--baseline", str(garbage)), "not JSON"),
        (("--baseline", str(wrong)), "targets: expected `array`, got `str`"),
    ):
        proc = run_scanner("check", str(inv), "--format", "json", *args)
        assert proc.returncode == 2, args
        assert proc.stdout == ""
        assert message in proc.stderr


@pytest.mark.parametrize(
    ("then", "now", "change"),
    [
        (None, ("refused", False), "new_failure"),
        (None, ("open", True), None),
        (("open", True), ("refused", False), "new_failure"),
        (("inconclusive", False), ("refused", False), "new_failure"),
        (("refused", False), ("open", True), "fixed"),
        (("refused", False), ("timeout", False), "category_changed"),
        (("refused", False), ("refused", False), None),
        (("refused", False), ("inconclusive", False), None),
        (("open", True), ("inconclusive", False), None),
        (("refused", True), ("timeout", True), None),  # expect: closed, still closed
        (("open", False), ("open", True), "fixed"),
    ],
)
def test_change_table(
    then: tuple[str, bool] | None, now: tuple[str, bool], change: str | None
) -> None:
    from scanner.models import Category
    from scanner.report.document import ReportDocument, SummaryEntry, TargetEntry

    targets = (
        []
        if then is None
        else [
            TargetEntry(
                target="t",
                host="h",
                port=1,
                expect="open" if then[0] == "open" else "closed",
                ok=then[1],
                category=Category(then[0]),
                addresses=(),
                hint=None,
                tags=(),
            )
        ]
    )
    document = ReportDocument(
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:00:01Z",
        inventories=(),
        targets=targets,
        summary=SummaryEntry(counts={}, duration_s=0.0, ok=True, interrupted=False),
    )
    baseline = Baseline(document, "b.json")
    assert baseline.change("t", now[1], Category(now[0])) == change


def test_console_marks_what_changed(
    tmp_path: Path, baseline: Path, listener: Listener, closed_port: int, full_port: int
) -> None:
    """--format console with --baseline: each failed line says whether it is new, fixed
    targets are listed though ok, and the verdict line counts the changes."""
    inv = _inv(
        tmp_path / "after.yaml",
        {
            "breaks": closed_port,
            "gets-fixed": listener.port,
            "moves": full_port,
            "still-broken": closed_port,
            "still-ok": listener.port,
            "brand-new": closed_port,
        },
        timeout=0.3,
    )
    proc = run_scanner(
        "check",
        str(inv),
        "--format",
        "console",
        "--baseline",
        str(baseline),
        extra_env={"NO_COLOR": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    lines = {
        line.split()[1]: line
        for line in proc.stdout.splitlines()
        if line.startswith(("FAIL", "ok  ", "??  "))
    }
    assert lines["breaks"].endswith("[new failure]")
    assert lines["brand-new"].endswith("[new failure]")
    assert lines["moves"].endswith("[category changed]")
    assert lines["gets-fixed"].startswith("ok") and lines["gets-fixed"].endswith("[fixed]")
    assert not lines["still-broken"].endswith("]")
    assert "still-ok" not in lines  # unchanged and ok: not listed without --show-ok
    assert "against the baseline: new failures 2, changed category 1, fixed 1" in proc.stdout
