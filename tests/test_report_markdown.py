"""--markdown: verdict first, escaped tables, GitHub step summary by default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanner.report.markdown import cell

from .conftest import Listener, run_scanner, write_inventory


def _inventory(tmp_path: Path, good: int, bad: int) -> Path:
    return write_inventory(
        tmp_path / "inv.yaml",
        f"""
version: 1
defaults: {{timeout: 1.0, retries: 0}}
targets:
  - {{name: web, host: 127.0.0.1, port: {good}, tags: [prod]}}
  - {{name: "evil | name *bold* <b>x</b>", host: 127.0.0.1, port: {bad}}}
  - {{name: db, host: 127.0.0.1, port: {bad}}}
""",
    )


def _table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    # split on unescaped pipes only: an escaped \| belongs to the cell
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]]


def test_markdown_of_a_failing_scan(tmp_path: Path, listener: Listener, closed_port: int) -> None:
    inv = _inventory(tmp_path, listener.port, closed_port)
    summary = tmp_path / "summary.md"
    proc = run_scanner("check", str(inv), "--format", "json", "--markdown", str(summary))
    assert proc.returncode == 1
    text = summary.read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0].startswith("❌ **2 of 3 targets failed**")  # the verdict comes first
    rows = _table_rows(text, "### Failed targets (2)")
    assert len(rows) == 2 and all(len(row) == 7 for row in rows)  # no cell broke the table
    evil = rows[0]
    assert evil[0] == r"evil \| name \*bold\* &lt;b&gt;x&lt;/b&gt;"
    assert evil[1] == f"127.0.0.1:{closed_port}"  # host:port
    assert evil[2] == "—"  # an IP literal: no DNS name
    assert evil[3] == "refused" and str(closed_port) in evil[4] and evil[5] == "127.0.0.1"
    assert evil[6] == "—"
    counts = dict((row[0], row[1]) for row in _table_rows(text, "### Targets per category"))
    assert counts == {"refused": "2", "open": "1"}
    slowest = _table_rows(text, "### Slowest answering target\n")  # one: no "1 ... targets"
    assert [row[0] for row in slowest] == ["web"]


def test_markdown_all_ok_and_step_summary_is_appended(tmp_path: Path, listener: Listener) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml", f"version: 1\ntargets:\n  - 127.0.0.1:{listener.port}\n"
    )
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    proc = run_scanner(
        "check", str(inv), "--format", "json", extra_env={"GITHUB_STEP_SUMMARY": str(step_summary)}
    )
    assert proc.returncode == 0, proc.stderr
    text = step_summary.read_text()
    assert text.startswith("earlier step\n## scanner\n\n✅ **1 target met its expectation**")
    assert "Failed targets" not in text
    # an explicit --markdown wins over the step summary
    explicit = tmp_path / "explicit.md"
    run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--markdown",
        str(explicit),
        extra_env={"GITHUB_STEP_SUMMARY": str(step_summary)},
    )
    assert explicit.read_text().count("## scanner") == 1
    assert step_summary.read_text() == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a|b", r"a\|b"),
        ("two\nlines\r\nthree", "two<br>lines<br>three"),
        ("bell\x07esc\x1b[31m", r"bell?esc?\[31m"),
        ("<script>&", "&lt;script&gt;&amp;"),
        ("`code` _em_ [link](x)", r"\`code\` \_em\_ \[link\](x)"),
        ("back\\slash", r"back\\slash"),
        (None, "—"),
        ([], "—"),
        (["127.0.0.1", "::1"], "127.0.0.1, ::1"),
    ],
)
def test_cell_escaping(value: object, expected: str) -> None:
    assert cell(value) == expected
