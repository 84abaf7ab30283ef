"""The README says what the code does: every category, `scanner trace`'s options and output,
and the reference inventory's defaults. The trace example is run on loopback and compared
line by line; only the timings and the port differ."""

from __future__ import annotations

import re

from scanner.inventory._sections import _Defaults
from scanner.models import Category

from .conftest import ROOT, parse_events, run_scanner

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _first_column(table_text: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", table_text, re.MULTILINE)


def test_categories_table_lists_every_category() -> None:
    listed = _first_column(_section("Categories"))
    expected = [c.value for c in Category if c is not Category.RESOLVED]
    assert sorted(listed) == sorted(expected)
    assert len(listed) == len(set(listed))


def test_trace_options_table_matches_trace_help() -> None:
    proc = run_scanner("trace", "--help")
    assert proc.returncode == 0
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", proc.stdout)) - {"--help"}
    table = _section("Path trace").split("| `scanner trace` option |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)", table, re.MULTILINE))
    assert documented == options
    assert "-f" in table and "`HOST:PORT`" in table


def _normalised(text: str, port: int) -> list[str]:
    text = re.sub(rf"(?<=:){port}\b|(?<=port ){port}\b", "PORT", text)
    text = re.sub(r" +\d+\.\d+ ms", " N ms", text)
    text = re.sub(r"in \d+\.\d+ s", "in N s", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_trace_loopback_example_is_the_real_output(closed_port: int) -> None:
    """Console on a pipe prints what a terminal shows, without colour."""
    block = _section("Path trace").split("```console\n$ scanner trace 127.0.0.1:9\n", 1)[1]
    documented = block.split("```", 1)[0]
    proc = run_scanner("trace", f"127.0.0.1:{closed_port}", "--format", "console")
    assert proc.returncode == 1, proc.stderr
    assert _normalised(proc.stdout, closed_port) == _normalised(documented, 9)


def test_trace_json_events_are_the_documented_ones(closed_port: int) -> None:
    proc = run_scanner("trace", f"127.0.0.1:{closed_port}", "--format", "json")
    assert proc.returncode == 1
    events = parse_events(proc.stdout)
    names = [e["event"] for e in events]
    assert names == ["scan.started", "probe.result", "path.hop", "target.result", "scan.finished"]
    text = _section("Path trace")
    for name in names:
        assert f"`{name}`" in text
    hop = events[2]
    for key in ("ttl", "hop_address", "rtt_ms", "icmp_type", "icmp_code", "reached"):
        assert key in hop and f"`{key}`" in text
    assert events[3]["path_verdict"] == "reached host at hop 1, port refused there (TCP reset)"


def test_reference_inventory_says_max_latency_ms_has_no_default() -> None:
    assert _Defaults().max_latency_ms is None
    lines = (ROOT / "configs" / "reference.yaml").read_text().splitlines()
    line = next(n for n in lines if n.strip().startswith("max_latency_ms:"))  # in defaults
    assert "no default" in line
    for name, value in (("timeout", 3.0), ("retries", 1), ("expect", "open"), ("family", "any")):
        assert getattr(_Defaults(), name) == value
        assert any(re.match(rf"\s+{name}: {value}\s", n) for n in lines), name
