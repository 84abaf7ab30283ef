"""scanner merge: one verdict and one set of artefacts from the reports of real shard scans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from .conftest import Listener, run_scanner, write_inventory
from .test_report_helpers import assert_valid, assert_valid_junit, schema_validator


def _shard_reports(tmp_path: Path, inv: Path, count: int, *extra: str) -> list[Path]:
    paths = []
    for index in range(1, count + 1):
        path = tmp_path / f"shard-{index}.json"
        proc = run_scanner(
            "check",
            str(inv),
            "--format",
            "json",
            "--shard",
            f"{index}/{count}",
            "--report",
            str(path),
            *extra,
        )
        assert proc.returncode in (0, 1, 3), proc.stderr
        paths.append(path)
    return paths


@pytest.fixture
def inventory(tmp_path: Path, listener: Listener, closed_port: int) -> Path:
    lines = [
        f"  - {{name: ok-{i}, host: 127.0.0.1, port: {listener.port}, tags: [web]}}"
        for i in range(12)
    ]
    lines += [f"  - {{name: bad-{i}, host: 127.0.0.1, port: {closed_port}}}" for i in range(3)]
    return write_inventory(
        tmp_path / "prod.yaml",
        "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n" + "\n".join(lines) + "\n",
    )


def test_merge_shards_into_one_verdict(tmp_path: Path, inventory: Path) -> None:
    reports = _shard_reports(tmp_path, inventory, 3)
    merged, junit, markdown = tmp_path / "m.json", tmp_path / "m.xml", tmp_path / "m.md"
    proc = run_scanner(
        "merge",
        *map(str, reports),
        "--report",
        str(merged),
        "--junit",
        str(junit),
        "--markdown",
        str(markdown),
    )
    assert proc.returncode == 1, proc.stderr
    assert "15 targets, 12 ok, 3 failed" in proc.stderr
    report = json.loads(merged.read_text())
    assert_valid(schema_validator("report"), report)
    assert sorted(t["target"] for t in report["targets"]) == sorted(
        [f"ok-{i}" for i in range(12)] + [f"bad-{i}" for i in range(3)]
    )
    assert report["summary"]["counts"] == {
        "failed": 3,
        "inconclusive": 0,
        "ok": 12,
        "open": 12,
        "refused": 3,
    }
    assert report["summary"]["ok"] is False and report["shard"] is None
    assert report["inventories"] == [str(inventory)]
    # the same answer as one unsharded scan
    single = tmp_path / "single.json"
    run_scanner("check", str(inventory), "--report", str(single))
    assert json.loads(single.read_text())["summary"]["counts"] == report["summary"]["counts"]
    assert_valid_junit(junit)
    xml = JUnitXml.fromfile(str(junit))
    assert (xml.tests, xml.failures) == (15, 3)
    assert markdown.read_text().splitlines()[2].startswith("❌ **3 of 15 targets failed**")


def test_merge_exit_codes_follow_check(tmp_path: Path, listener: Listener, full_port: int) -> None:
    good = write_inventory(
        tmp_path / "good.yaml", f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n"
    )
    good_report = tmp_path / "good.json"
    assert run_scanner("check", str(good), "--report", str(good_report)).returncode == 0
    assert run_scanner("merge", str(good_report)).returncode == 0
    stuck = write_inventory(
        tmp_path / "stuck.yaml",
        f"version: 1\ntargets:\n  - {{name: hangs, host: 127.0.0.1, "
        f"port: {full_port}, timeout: 20}}\n",
    )
    stuck_report = tmp_path / "stuck.json"
    proc = run_scanner("check", str(stuck), "--report", str(stuck_report), "--max-duration", "0.3")
    assert proc.returncode == 3
    assert run_scanner("merge", str(good_report), str(stuck_report)).returncode == 3


def test_merge_with_baseline_and_fail_on_new(tmp_path: Path, inventory: Path) -> None:
    baseline = tmp_path / "baseline.json"
    run_scanner("check", str(inventory), "--report", str(baseline))
    reports = _shard_reports(tmp_path, inventory, 2, "--baseline", str(baseline))
    assert run_scanner("merge", *map(str, reports)).returncode == 1
    merged = tmp_path / "m.json"
    proc = run_scanner(
        "merge",
        *map(str, reports),
        "--baseline",
        str(baseline),
        "--fail-on",
        "new",
        "--report",
        str(merged),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(merged.read_text())
    assert report["baseline"] == str(baseline)
    assert all(t["change"] is None for t in report["targets"])


def test_merge_refuses_what_would_hide_unchecked_targets(tmp_path: Path, inventory: Path) -> None:
    one, two, three = _shard_reports(tmp_path, inventory, 3)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": "world"}))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(one.read_text()[:200])
    (tmp_path / "halves").mkdir()
    half = _shard_reports(tmp_path / "halves", inventory, 2)
    for args, message in (
        ((one, two), "missing shard 3/3"),
        ((one, one, two, three), "is in both"),
        ((one, two, half[0]), "different splits"),
        ((garbage,), "not JSON"),
        ((truncated,), "not JSON"),
        ((other,), "schema_version"),
        ((tmp_path / "nope.json",), "cannot read"),
    ):
        proc = run_scanner("merge", *map(str, args))
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, proc.stderr
        assert proc.stderr.startswith("scanner: merge: ")
