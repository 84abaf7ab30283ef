"""Target names are inventory data: no name the loader accepts may break an output.

A real scan on loopback with hostile names (pipes, quotes, markup, ``]]>``, very long) and
a hostile inventory file name, through all four outputs: every JSON line parses, the
console gets no control character, the JUnit XML parses and the names round-trip, every
Markdown table row stays one row. Names the loader refuses (controls, bidi overrides, line
separators) are refused with exit 2, and the writers mask them anyway. Invalid host names
never reach the DNS server.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from scanner.models import Category, ScanSummary, Target, TargetResult
from scanner.report import junit, markdown
from scanner.report.console import ConsoleReport, clean
from scanner.report.document import build_report

from .conftest import DnsServer, Listener, parse_events, run_scanner, write_inventory
from .test_report_helpers import assert_valid_junit

LONG = "long-" + "x" * 20_000
#: names the loader lets through, each a trap for one of the outputs
NAMES = [
    "pipe | in | cell",
    "quote \" and ' both",
    "<script>alert(1)</script>",
    "amp & &amp; &#27; &#x1b;",
    "cdata ]]> end",
    "back\\slash\\",
    "\\x1b[31m (literal)",
    "md *b* _i_ `c` [l](http://x) # h ~~s~~ ! <br>",
    "<!-- comment -->",
    "{{ template }}",
    "ünïcödé 😀 e\u0301 ﷽",
    "👨\u200d👩\u200d👧 family",
    "  spaced  ",
    "%s %n {0} $(id)",
    "- list item",
    "trailing backslash\\",
    "\ue000 private use",
    "tab-free\u00a0nbsp",
    "$ne:{}",
    LONG,
]
HOSTILE_FILE = "inv \udcff\x1b[2J\n<&>|.yaml"  # \udcff: the byte 0xff, as Python keeps it
#: what no terminal may receive raw: controls (but newline), separators, bidi, surrogates
_RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


@pytest.fixture
def hostile_inventory(tmp_path: Path, listener: Listener, closed_port: int) -> Path:
    """Every name twice: once open (listener), once failing (closed port)."""
    lines = ["version: 1", "defaults: {timeout: 2, retries: 0}", "targets:"]
    for index, name in enumerate(NAMES):
        for suffix, port in (("", listener.port), (" (down)", closed_port)):
            tag = yaml_string(name[:30].strip().replace(",", ";"))
            lines.append(
                f"  - {{name: {yaml_string(name + suffix)}, host: 127.0.0.1, "
                f"port: {port}, tags: [{tag}, t{index}]}}"
            )
    # a file name with an undecodable byte, an ESC, a newline, markup and a pipe
    return write_inventory(tmp_path / HOSTILE_FILE, "\n".join(lines) + "\n")


def expected_names() -> set[str]:
    return {name + suffix for name in NAMES for suffix in ("", " (down)")}


def assert_no_raw_controls(text: str, where: str) -> None:
    found = _RAW.search(text)
    assert found is None, f"{where}: raw {found.group()!r} at {found.start()}"


def test_json_lines_survive_hostile_names(hostile_inventory: Path) -> None:
    proc = run_scanner("check", str(hostile_inventory), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    # one event per "\n"-line, and no other character any reader takes for a line break
    assert proc.stdout.split("\n")[:-1] == proc.stdout.splitlines()
    events = parse_events(proc.stdout)
    results = [e for e in events if e["event"] == "target.result"]
    assert {e["target"] for e in results} == expected_names()
    assert sum(1 for e in results if not e["ok"]) == len(NAMES)
    assert events[0]["inventories"] == [f"{hostile_inventory.parent}/inv \\xff\\x1b[2J\\n<&>|.yaml"]
    assert all(e["tags"][0] for e in results)


def test_console_junit_markdown_report_survive_hostile_names(
    hostile_inventory: Path, tmp_path: Path
) -> None:
    junit_path, md_path, report_path = (
        tmp_path / "junit.xml",
        tmp_path / "summary.md",
        tmp_path / "report.json",
    )
    proc = run_scanner(
        "check",
        str(hostile_inventory),
        "--format",
        "console",
        "--verbose",  # every failed target: a group lists the first ten otherwise
        "--junit",
        str(junit_path),
        "--markdown",
        str(md_path),
        "--report",
        str(report_path),
        extra_env={"NO_COLOR": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr

    # console: every failed name shown, nothing raw, one line per failure heading
    assert_no_raw_controls(proc.stdout, "console stdout")
    assert_no_raw_controls(proc.stderr, "console stderr")
    failure_lines = [line for line in proc.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(failure_lines) == len(NAMES)
    for name in NAMES:
        assert any(line.startswith(f"FAIL {name} (down)  refused  ") for line in failure_lines), (
            name
        )

    # JUnit: a real XML parser (two), the XSD, and every name back exactly
    assert_valid_junit(junit_path)
    tree = ET.parse(junit_path)
    cases = {case.get("name"): case for case in tree.iter("testcase")}
    assert set(cases) == expected_names()
    for name in NAMES:
        failure = cases[f"{name} (down)"].find("failure")
        assert failure is not None and failure.text is not None
        assert failure.text.startswith(f"{name} (down) (127.0.0.1:")
        assert cases[name].find("failure") is None
    raw = junit_path.read_bytes()
    assert b"<script>" not in raw and b"]]>" not in raw.replace(b"]]&gt;", b"")
    suite = tree.find("testsuite")
    assert suite is not None and "\\x1b" in (suite.get("name") or "")

    # Markdown: one row per failed target, each row with exactly its columns
    text = md_path.read_text(encoding="utf-8")
    assert_no_raw_controls(text.replace("\n", ""), "markdown")
    section = text.split("### Failed targets")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(NAMES)
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 8, row  # 7 cells
        assert "<script" not in row and "<!--" not in row
        assert len(row) < markdown.MAX_CELL * 8
    shown = "\n".join(rows)
    for name in NAMES:
        assert markdown.cell(f"{name} (down)") in shown
    assert "long-xxxx" in shown and "(20,012 characters)" in shown

    # the JSON report: valid JSON with every name
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {t["target"] for t in report["targets"]} == expected_names()


REFUSED_NAMES = [
    pytest.param("evil\x1b[2Jname", "U+001B", id="esc"),
    pytest.param("evil\x9b2Jname", "U+009B", id="c1-csi"),
    pytest.param("two\nlines", "U+000A", id="newline"),
    pytest.param("carriage\rreturn", "U+000D", id="cr"),
    pytest.param("line\u2028separator", "U+2028", id="line-separator"),
    pytest.param("para\u2029separator", "U+2029", id="paragraph-separator"),
    pytest.param("next\x85line", "U+0085", id="nel"),
    pytest.param("bidi\u202egnp.exe", "U+202E", id="bidi-override"),
    pytest.param("isolate\u2066x\u2069", "U+2066", id="bidi-isolate"),
    pytest.param("\ufeffbom", "U+FEFF", id="bom"),
    pytest.param("zero\u200bwidth", "U+200B", id="zero-width-space"),
    pytest.param("bell\x07", "U+0007", id="bell"),
    pytest.param("del\x7f", "U+007F", id="del"),
    pytest.param("tab\there", "U+0009", id="tab"),
]


@pytest.mark.parametrize(("name", "code"), REFUSED_NAMES)
def test_names_that_could_drive_a_terminal_are_refused(
    tmp_path: Path, name: str, code: str
) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: {json.dumps(name)}, host: 127.0.0.1, port: 9}}\n",
    )
    proc = run_scanner("check", str(inv), "--format", "json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{inv}:3:12: name must not contain control characters" in proc.stderr
    assert f"({code}" in proc.stderr
    assert_no_raw_controls(proc.stderr, "stderr")


# --- the writers, with names the loader would refuse: defence in depth ---------------------

HOSTILE = "a\x1b[2J\x9b31m\u2028\u202e\ud800\x00|<&>]]>\r\nb"


def hostile_result(ok: bool) -> TargetResult:
    target = Target(name=HOSTILE, host="127.0.0.1", port=9, tags=(HOSTILE,))
    return TargetResult(
        target=target,
        ok=ok,
        category=Category.OPEN if ok else Category.REFUSED,
        addresses=("127.0.0.1",),
        hint=None if ok else f"hint {HOSTILE}",
    )


def test_console_masks_what_the_loader_would_refuse() -> None:
    report = ConsoleReport(io.StringIO(), io.StringIO(), colour=False, progress=False)
    text = report.format_target(hostile_result(ok=False))
    assert_no_raw_controls(text, "console")
    text.encode("utf-8")
    assert clean(HOSTILE).encode("utf-8")  # writable, no lone surrogate left
    assert_no_raw_controls(clean(HOSTILE), "clean")


def test_junit_and_markdown_mask_what_the_loader_would_refuse() -> None:
    summary = ScanSummary(
        total=2,
        ok=1,
        failed=1,
        inconclusive=0,
        counts=(("open", 1), ("refused", 1), ("ok", 1), ("failed", 1)),
        duration_s=0.1,
        interrupted=False,
    )
    report = build_report(
        [hostile_result(ok=True), hostile_result(ok=False)],
        summary,
        inventories=["inv.yaml"],
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:00:01Z",
    )
    xml = ET.tostring(junit.render(report).getroot(), encoding="unicode")
    root = ET.fromstring(xml.encode("utf-8"))  # parses, and is UTF-8 clean
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == [junit.xml_safe(HOSTILE)] * 2
    text = markdown.render(report)
    text.encode("utf-8")
    assert_no_raw_controls(text.replace("\n", ""), "markdown")
    rows = [line for line in text.splitlines() if line.startswith("| a")]
    assert len(rows) == 1 and len(re.findall(r"(?<!\\)\|", rows[0])) == 8, rows


def test_markdown_cell_caps_a_long_value() -> None:
    cell = markdown.cell("|" * 100_000)
    assert cell.startswith("\\|" * markdown.MAX_CELL)
    assert cell.endswith("… (100,000 characters)")


def test_every_character_class_through_the_writers() -> None:
    """Each code point below U+10000 (but surrogates), through console, Markdown and XML."""
    everything = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000)
    shown = clean(everything)
    bad = [ch for ch in shown if unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch != "\t"]
    assert not bad
    assert "\n" not in markdown.cell(everything[: markdown.MAX_CELL])
    element = ET.Element("x", {"a": junit.xml_safe(everything)})
    element.text = junit.xml_safe(everything)
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert parsed.get("a") == junit.xml_safe(everything)
    # XML text cannot carry a raw CR (parsers read it as LF); names never have one
    assert parsed.text == junit.xml_safe(everything).replace("\r", "\n")


# --- host names are checked before any DNS query -------------------------------------------

INVALID_HOSTS = [
    "a" * 64 + ".test",
    ".".join(["abcdefghi"] * 26) + ".test",
    "a..b.test",
    "-a.test",
    "a-.test",
    "exa mple.test",
    "a_b!.test",
    "ü" * 70 + ".test",
    "1.2.3.4.5",
    "999.1.1.1",
    "a.test/x",
    "[ok.test]",
    "ok.test:80",
    "*.test",
    "ok.test\u3000x",
    "x" * 100_000 + ".test",
]


def test_invalid_host_names_never_reach_the_dns_server(
    tmp_path: Path, dns_server: DnsServer, hosts_file: Path
) -> None:
    targets = "\n".join(f"  - {{host: {yaml_string(host)}, port: 80}}" for host in INVALID_HOSTS)
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""\
version: 1
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 0.5, tries: 1}}
targets:
  - {{host: ok.test, port: 80}}
{targets}
""",
    )
    before = Counter(dns_server.queries())
    proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts_file)
    after = Counter(dns_server.queries())
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert after == before  # not even ok.test: nothing is probed from an invalid inventory
    problems = [line for line in proc.stderr.splitlines() if line.startswith(f"scanner: {inv}:")]
    assert len(problems) == len(INVALID_HOSTS), proc.stderr
    assert [int(line.split(":")[2]) for line in problems] == list(range(5, 5 + len(INVALID_HOSTS)))
    assert all(len(line) < 300 for line in problems)


def test_the_query_log_does_see_a_valid_name(
    tmp_path: Path, dns_server: DnsServer, hosts_file: Path, closed_port: int
) -> None:
    """The control for the test above: a valid name is queried (A and AAAA)."""
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"""\
version: 1
defaults: {{timeout: 1, retries: 0}}
resolver: {{nameservers: ["{dns_server.nameserver}"], timeout: 0.5, tries: 1}}
targets:
  - {{host: bücher-ok.test, port: {closed_port}}}
  - {{host: v4only.test, port: {closed_port}}}
""",
    )
    before = Counter(dns_server.queries())
    proc = run_scanner("check", str(inv), "--format", "json", hosts=hosts_file)
    after = Counter(dns_server.queries())
    assert proc.returncode == 1, proc.stderr
    assert after["v4only.test A"] > before["v4only.test A"]
    # the IDNA name goes out in its A-label form, never as raw UTF-8
    assert after["xn--bcher-ok-65a.test A"] > before["xn--bcher-ok-65a.test A"]
    assert all(query.isascii() for query in after)


def test_undecodable_baseline_path_is_reported_printably(tmp_path: Path) -> None:
    """A --baseline file whose name is not UTF-8 must not crash the JSON report."""
    import os

    inv = tmp_path / "inv.yaml"
    inv.write_text("version: 1\ntargets:\n  - 127.0.0.1:1\n")
    base = tmp_path / "base.json"
    first = run_scanner("check", str(inv), "--format", "json", "--report", str(base))
    assert first.returncode == 1, first.stderr
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/b\xff.json")
    os.rename(base, odd)
    second = run_scanner(
        "check",
        str(inv),
        "--format",
        "json",
        "--baseline",
        odd,
        "--report",
        str(tmp_path / "r2.json"),
    )
    assert second.returncode == 1, second.stderr
    report = json.loads((tmp_path / "r2.json").read_text())
    assert report["baseline"].endswith("b\\xff.json")
