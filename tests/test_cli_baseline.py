"""--baseline, as a reviewer of a CI run reads it: old -> new categories, the targets the
inventory lost (listed and counted, never silently gone), a baseline of another inventory
(a warning). Real scans on loopback, the CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.report.baseline import same_inventories

from .conftest import Listener, parse_events, run_scanner, write_inventory
from .test_report_helpers import assert_valid, schema_validator


def _inv(path: Path, ports: dict[str, int], tags: dict[str, str] | None = None) -> Path:
    tag = tags or {}
    lines = "\n".join(
        f"  - {{name: {name}, host: 127.0.0.1, port: {port}, tags: [{tag.get(name, 'x')}]}}"
        for name, port in ports.items()
    )
    return write_inventory(
        path, f"version: 1\ndefaults: {{timeout: 1, retries: 0}}\ntargets:\n{lines}\n"
    )


@pytest.fixture
def before(tmp_path: Path, listener: Listener, closed_port: int) -> tuple[Path, Path]:
    """inv.yaml then: five targets, two of them failing; its --report."""
    inv = _inv(
        tmp_path / "inv.yaml",
        {
            "kept": listener.port,
            "gone-ok": listener.port,
            "gone-broken": closed_port,
            "gone-too": closed_port,
            "moves": closed_port,
        },
    )
    report = tmp_path / "before.json"
    proc = run_scanner("check", str(inv), "--format", "json", "--report", str(report))
    assert proc.returncode == 1, proc.stderr
    return inv, report


def test_removed_targets_are_listed_and_counted(
    tmp_path: Path, before: tuple[Path, Path], listener: Listener, full_port: int
) -> None:
    inv, baseline = before
    # the same file, edited: three targets removed, one moves to another failure
    _inv(inv, {"kept": listener.port, "moves": full_port})
    report, markdown = tmp_path / "after.json", tmp_path / "after.md"
    proc = run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--baseline",
        str(baseline),
        "--report",
        str(report),
        "--markdown",
        str(markdown),
    )
    assert proc.returncode == 1, proc.stderr
    parse_events(proc.stdout)
    assert "warning" not in proc.stderr  # the same inventory
    assert (
        "scanner: removed since the baseline: 3 targets (2 failing then): "
        "'gone-ok', 'gone-broken', 'gone-too'"
    ) in proc.stderr
    document = json.loads(report.read_text())
    assert_valid(schema_validator("report"), document)
    assert document["removed"] == [
        {"target": "gone-ok", "ok": True, "category": "open"},
        {"target": "gone-broken", "ok": False, "category": "refused"},
        {"target": "gone-too", "ok": False, "category": "refused"},
    ]
    moves = next(t for t in document["targets"] if t["target"] == "moves")
    assert moves["change"] == "category_changed" and moves["baseline_category"] == "refused"
    text = markdown.read_text()
    removed = text.split("### Removed since the baseline (3)", 1)[1].split("###", 1)[0]
    assert "3 targets of the baseline are no longer in the inventory (2 failing then)" in removed
    assert "| gone-broken | refused | failed |" in removed
    assert "| gone-ok | open | ok |" in removed
    changed = text.split("### Changed category (1)", 1)[1].split("###", 1)[0]
    assert f"| moves | 127.0.0.1:{full_port} | refused → not\\_accepting |" in changed
    # -q: nothing on stderr; the report still lists them
    quiet = run_scanner(
        "check", str(inv), "-f", "json", "-q", "--baseline", str(baseline), "--report", str(report)
    )
    assert quiet.stderr == "" and len(json.loads(report.read_text())["removed"]) == 3


def test_targets_outside_this_scan_are_not_removed(
    tmp_path: Path, before: tuple[Path, Path], listener: Listener, closed_port: int
) -> None:
    """--tags and --shard leave targets out of a scan; they are still in the inventory."""
    inv, baseline = before
    _inv(
        inv,
        {
            "kept": listener.port,
            "gone-ok": listener.port,
            "gone-broken": closed_port,
            "moves": closed_port,
        },
        tags={"kept": "web"},
    )
    report = tmp_path / "after.json"
    for selection in (["--tags", "web"], ["--shard", "1/3"], ["--shard", "2/3"]):
        proc = run_scanner(
            "check", str(inv), "-f", "json", "--baseline", str(baseline), "--report", str(report),
            *selection,
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
        removed = json.loads(report.read_text())["removed"]
        assert removed == [{"target": "gone-too", "ok": False, "category": "refused"}], selection


def test_removed_without_a_report_on_the_console(
    before: tuple[Path, Path], listener: Listener
) -> None:
    inv, baseline = before
    _inv(inv, {"kept": listener.port})
    proc = run_scanner("check", str(inv), "--format", "console", "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stderr
    assert "removed since the baseline: 4 targets (3 failing then)" in proc.stderr


def test_a_baseline_of_another_inventory_is_a_warning(
    tmp_path: Path, before: tuple[Path, Path], listener: Listener
) -> None:
    _, baseline = before
    other = _inv(tmp_path / "staging.yaml", {"kept": listener.port})
    proc = run_scanner("check", str(other), "-f", "json", "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"scanner: warning: --baseline {baseline} was written for {tmp_path / 'inv.yaml'}, "
        f"this scan reads {other}: new, fixed and removed compare different inventories"
    ) in proc.stderr


@pytest.mark.parametrize(
    ("then", "now", "same"),
    [
        (["inv.yaml"], ["inv.yaml"], True),
        (["inv.yaml"], ["./inv.yaml"], True),
        (["configs/prod.yaml"], ["/builds/x/configs/prod.yaml"], True),  # another checkout
        (["a.yaml", "b.yaml"], ["b.yaml", "a.yaml"], True),
        (["prod.yaml"], ["staging.yaml"], False),
        (["prod/inv.yaml"], ["staging/inv.yaml"], False),
        (["a.yaml"], ["a.yaml", "b.yaml"], False),
        ([], ["a.yaml"], False),
    ],
)
def test_same_inventories(then: list[str], now: list[str], same: bool) -> None:
    assert same_inventories(then, now) is same


def test_merge_lists_removed_once(
    tmp_path: Path, before: tuple[Path, Path], listener: Listener
) -> None:
    """Each shard's report lists the baseline's targets the inventory lost; the merge
    lists them once, and with --baseline computes them from every shard's targets."""
    inv, baseline = before
    _inv(inv, {"kept": listener.port, "moves": listener.port})
    shards = []
    for index in (1, 2):
        path = tmp_path / f"shard-{index}.json"
        proc = run_scanner(
            "check", str(inv), "-f", "json", "-q", "--shard", f"{index}/2",
            "--baseline", str(baseline), "--report", str(path),
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
        assert len(json.loads(path.read_text())["removed"]) == 3
        shards.append(str(path))
    merged = tmp_path / "merged.json"
    proc = run_scanner("merge", *shards, "--report", str(merged))
    assert proc.returncode == 0, proc.stderr
    assert [r["target"] for r in json.loads(merged.read_text())["removed"]] == [
        "gone-ok",
        "gone-broken",
        "gone-too",
    ]
    again = run_scanner("merge", *shards, "--report", str(merged), "--baseline", str(baseline))
    assert again.returncode == 0, again.stderr
    assert "2 targets, 2 ok, 0 failed, 0 inconclusive, 3 removed since the baseline" in (
        again.stderr
    )
    document = json.loads(merged.read_text())
    assert len(document["removed"]) == 3
    fixed = next(t for t in document["targets"] if t["target"] == "moves")
    assert fixed["change"] == "fixed" and fixed["baseline_category"] == "refused"
