"""--report: one JSON document of a real scan, valid against the schema the package ships;
and every event line valid against the events schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import DnsServer, Listener, parse_events, run_scanner, write_inventory
from .test_report_helpers import assert_valid, schema_validator


@pytest.fixture
def mixed_inventory(
    tmp_path: Path, listener: Listener, closed_port: int, dns_server: DnsServer
) -> Path:
    return write_inventory(
        tmp_path / "mixed.yaml",
        f"""
version: 1
defaults: {{timeout: 1.0, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 0.3, tries: 1}}
targets:
  - {{name: web, host: ok.test, port: {listener.port}, tags: [prod, edge]}}
  - {{name: db, host: 127.0.0.1, port: {closed_port}, tags: [prod]}}
  - nope.test:80
  - {{name: closed-ok, host: 127.0.0.1, port: {closed_port}, expect: closed}}
""",
    )


def test_report_document_of_a_real_scan(
    tmp_path: Path, mixed_inventory: Path, hosts_file: Path
) -> None:
    report_path = tmp_path / "out" / "report.json"
    report_path.parent.mkdir()
    proc = run_scanner(
        "check",
        str(mixed_inventory),
        "--format",
        "json",
        "--report",
        str(report_path),
        hosts=hosts_file,
    )
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    report = json.loads(report_path.read_text())
    assert_valid(schema_validator("report"), report)

    assert report["schema_version"] == 1
    assert report["inventories"] == [str(mixed_inventory)]
    assert report["started"] <= report["finished"]
    assert report["shard"] is None and report["baseline"] is None
    finished = events[-1]
    assert report["summary"] == {
        k: v for k, v in finished.items() if k not in ("event", "timestamp", "level")
    }
    targets = {t["target"]: t for t in report["targets"]}
    # every target carries exactly its target.result event, plus detail
    for event in (e for e in events if e["event"] == "target.result"):
        entry = targets[event["target"]]
        for key, value in event.items():
            if key not in ("event", "timestamp", "level"):
                assert entry[key] == value, key
    probes = [e for e in events if e["event"] == "probe.result"]
    for probe in probes:
        stripped = {k: v for k, v in probe.items() if k not in ("event", "timestamp", "level")}
        assert stripped in targets[probe["target"]]["probes"]
    assert {p["family"] for p in targets["web"]["probes"]} == {"ipv4", "ipv6"}
    assert targets["web"]["dns"]["category"] == "resolved"
    assert targets["nope.test:80"]["dns"]["category"] == "dns_nxdomain"
    assert targets["nope.test:80"]["probes"] == []
    assert targets["db"]["dns"] is None
    assert targets["db"]["probes"][0]["errno"] == "ECONNREFUSED"
    assert targets["db"]["source"] == f"{mixed_inventory}:7:5"
    assert targets["db"]["change"] is None


def test_every_event_line_matches_the_events_schema(
    mixed_inventory: Path, hosts_file: Path
) -> None:
    proc = run_scanner("check", str(mixed_inventory), "--format", "json", hosts=hosts_file)
    validator = schema_validator("events")
    events = parse_events(proc.stdout)
    assert {e["event"] for e in events} == {
        "scan.started",
        "dns.result",
        "probe.result",
        "target.result",
        "scan.finished",
    }
    for event in events:
        assert_valid(validator, event)
    assert all(e["change"] is None for e in events if e["event"] == "target.result")


def test_schemas_reject_what_the_contract_forbids() -> None:
    events = schema_validator("events")
    good = {
        "event": "target.result",
        "timestamp": "2024-01-01T00:00:00Z",
        "level": "error",
        "target": "a",
        "host": "h",
        "port": 1,
        "expect": "open",
        "ok": False,
        "category": "refused",
        "addresses": [],
        "hint": None,
        "tags": [],
        "change": None,
    }
    assert_valid(events, good)
    for broken in (
        {**good, "category": "nope"},
        {**good, "port": 0},
        {**good, "change": "worse"},
        {k: v for k, v in good.items() if k != "hint"},
        {**good, "event": "scan.other"},
        {**good, "timestamp": "yesterday"},
    ):
        assert not events.is_valid(broken), broken
    report = schema_validator("report")
    assert not report.is_valid({"schema_version": 2})


def test_interrupted_scan_still_writes_its_report(tmp_path: Path, full_port: int) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: hangs, host: 127.0.0.1, "
        f"port: {full_port}, timeout: 20}}\n",
    )
    report_path = tmp_path / "r.json"
    proc = run_scanner(
        "check", str(inv), "--format", "json", "--max-duration", "0.5", "--report", str(report_path)
    )
    assert proc.returncode == 3
    report = json.loads(report_path.read_text())
    assert_valid(schema_validator("report"), report)
    assert report["summary"]["interrupted_by"] == "deadline"
    assert report["targets"][0]["category"] == "inconclusive"


def test_unwritable_artefact_path_is_a_usage_error(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:9\n")
    for option in ("--report", "--junit", "--markdown"):
        proc = run_scanner(
            "check", str(inv), "--format", "json", option, str(tmp_path / "missing-dir" / "x")
        )
        assert proc.returncode == 2
        assert proc.stdout == ""  # nothing was probed
        assert "does not exist" in proc.stderr


async def test_streamed_report_is_byte_for_byte_the_whole_document(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    """The report is written one target at a time; the file must be exactly what
    serialising the whole document at once gives."""
    import msgspec

    from scanner.engine import ScanOptions, run_scan
    from scanner.models import Inventory, Target
    from scanner.observers import Collector
    from scanner.report.document import build_report
    from scanner.report.json_report import write_report

    targets = [
        Target(
            f"t{i}",
            "127.0.0.1",
            listener.port if i % 3 else closed_port,
            timeout=1,
            retries=0,
            tags=("prod",) if i % 2 else (),
        )
        for i in range(25)
    ]
    seen = Collector()
    summary = await run_scan(Inventory(paths=("inv.yaml",), targets=targets), seen, ScanOptions())
    results = seen.results
    changes = {"t0": "new_failure", "t4": "fixed"}
    report = build_report(
        results,
        summary,
        inventories=["inv.yaml"],
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:00:01Z",
        baseline="before.json",
        changes=changes,
    )
    assert len(report.targets) == 25
    assert [e.change for e in report.targets[:5]] == ["new_failure", None, None, None, "fixed"]
    path = tmp_path / "report.json"
    write_report(report, path)
    assert path.read_bytes() == msgspec.json.encode(report) + b"\n"
    document = json.loads(path.read_text())
    assert_valid(schema_validator("report"), document)
    assert [t["target"] for t in document["targets"]] == [f"t{i}" for i in range(25)]
    assert document["targets"][0]["change"] == "new_failure"
    assert report.targets[4].change == "fixed"
    assert [e.target for e in report.targets[3:5]] == ["t3", "t4"]
