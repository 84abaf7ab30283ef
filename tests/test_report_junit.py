"""--junit: XML that a real JUnit parser reads and the XSD accepts, from real scans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml

from scanner.report.junit import classname, xml_safe

from .conftest import Listener, run_scanner, write_inventory
from .test_report_helpers import assert_valid_junit


def _cases(xml: JUnitXml) -> dict[str, Any]:
    return {case.name: case for suite in xml for case in suite}


def test_junit_of_a_real_scan(
    tmp_path: Path, listener: Listener, closed_port: int, full_port: int
) -> None:
    prod = write_inventory(
        tmp_path / "prod.yaml",
        f"""
version: 1
defaults: {{timeout: 1.0, retries: 0}}
targets:
  - {{name: web, host: 127.0.0.1, port: {listener.port}, tags: [edge, prod]}}
  - {{name: "db <primary> & \\"x\\"", host: 127.0.0.1, port: {closed_port}, tags: [db]}}
""",
    )
    other = write_inventory(
        tmp_path / "other.yaml",
        f"""
version: 1
targets:
  - {{name: hangs, host: 127.0.0.1, port: {full_port}, timeout: 20}}
  - "[::1]:{listener.port}"
""",
    )
    junit = tmp_path / "junit.xml"
    proc = run_scanner(
        "check",
        str(prod),
        str(other),
        "--format",
        "json",
        "--max-duration",
        "1.5",
        "--junit",
        str(junit),
    )
    assert proc.returncode == 1, proc.stderr
    assert_valid_junit(junit)

    xml = JUnitXml.fromfile(str(junit))
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == [str(prod), str(other)]  # one suite per inventory file, in order
    assert (suites[str(prod)].tests, suites[str(prod)].failures, suites[str(prod)].errors) == (
        2,
        1,
        0,
    )
    assert (suites[str(other)].tests, suites[str(other)].failures, suites[str(other)].errors) == (
        2,
        0,
        1,
    )
    assert (xml.tests, xml.failures, xml.errors) == (4, 1, 1)

    cases = _cases(xml)
    web = cases["web"]
    assert web.classname == "prod.edge" and web.is_passed and web.time >= 0
    db = cases['db <primary> & "x"']
    assert db.classname == "prod.db"
    (failure,) = db.result
    assert isinstance(failure, Failure)
    assert failure.type == "refused"
    assert str(closed_port) in failure.message  # the hint
    assert "127.0.0.1 (ipv4): refused errno=ECONNREFUSED" in failure.text
    hangs = cases["hangs"]
    (error,) = hangs.result
    assert isinstance(error, Error) and error.type == "inconclusive"
    assert "stopped" in error.message
    assert cases[f"[::1]:{listener.port}"].classname == "other"


def test_junit_from_a_baseline_names_the_change(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    before = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: api, host: 127.0.0.1, port: {listener.port}}}\n",
    )
    baseline = tmp_path / "baseline.json"
    assert run_scanner("check", str(before), "--report", str(baseline)).returncode == 0
    after = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: api, host: 127.0.0.1, port: {closed_port}}}\n",
    )
    junit = tmp_path / "junit.xml"
    proc = run_scanner("check", str(after), "--baseline", str(baseline), "--junit", str(junit))
    assert proc.returncode == 1
    assert_valid_junit(junit)
    (failure,) = _cases(JUnitXml.fromfile(str(junit)))["api"].result
    assert failure.message.startswith("[new_failure] ")
    assert f"change: new_failure since {baseline}" in failure.text


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"inventory": "/etc/scanner/prod.yaml", "tags": ["edge", "x"]}, "prod.edge"),
        ({"inventory": "inv/db.yml", "tags": []}, "db"),
        ({"inventory": None, "tags": ["t"]}, "scanner.t"),
    ],
)
def test_classname(entry: dict[str, object], expected: str) -> None:
    from scanner.models import Category
    from scanner.report.document import TargetEntry

    typed = TargetEntry(
        target="t",
        host="h",
        port=1,
        expect="open",
        ok=True,
        category=Category.OPEN,
        addresses=(),
        hint=None,
        tags=tuple(entry["tags"]),  # type: ignore[arg-type]
        inventory=entry["inventory"],  # type: ignore[arg-type]
    )
    assert classname(typed) == expected


def test_xml_safe_drops_what_xml_cannot_carry() -> None:
    assert xml_safe("a\x00b\x1bc\td\ne") == "a?b?c\td\ne"
    assert xml_safe("ok ü 名") == "ok ü 名"
