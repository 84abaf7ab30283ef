"""``--junit PATH``: JUnit XML, the format every CI test view reads (GitLab, Jenkins, GitHub).

One ``<testsuite>`` per inventory file, one ``<testcase>`` per target: ``classname`` is the
inventory's file stem plus the target's first tag (``prod.edge``), ``name`` the target
name, ``time`` the DNS lookup plus every handshake of the target. A failed target gets
``<failure type="CATEGORY" message="hint">`` whose body lists each address with its
category, errno and ICMP detail (``icmp_from`` tells the target from a firewall).

Inconclusive targets are ``<error>``, not ``<skipped>``: JUnit's error means "the test
could not do its job", which is exactly what a local shortage is. GitLab, Jenkins and the
GitHub reporters (mikepenz/action-junit-report, dorny/test-reporter) all show errors as red
and count them against the run, while skipped tests are grey and read as "fine, not
applicable" — a deploy gate must not let an unchecked endpoint look like a pass.

Rendered from the ``--report`` document, so ``scanner merge`` writes the same XML as a
single scan. Only the standard library is used (``xml.etree``); it escapes attributes and
text, and :func:`xml_safe` drops the characters XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import TextIO

from ..inventory.targets import display
from ..verdict import Verdict, verdict_of
from .document import ReportDocument, TargetEntry, WaitingEntry

#: characters XML 1.0 forbids even as references (C0 controls but tab/LF/CR, surrogates, ...)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: testsuite name for targets that came from no file (e.g. built in code)
NO_FILE = "scanner"


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("?", text)


def classname(entry: TargetEntry) -> str:
    stem = PurePath(entry.inventory).stem if entry.inventory else NO_FILE
    return f"{stem}.{entry.tags[0]}" if entry.tags else stem


def seconds(entry: TargetEntry) -> float:
    """Time spent on the target: its DNS lookup plus every handshake (with retries)."""
    total = sum(p.latency_ms or 0.0 for p in entry.probes)
    if entry.dns is not None and entry.dns.latency_ms:
        total += entry.dns.latency_ms
    return total / 1000.0


def failure_message(entry: TargetEntry) -> str:
    message = entry.hint or entry.category.value
    return f"[{entry.change}] {message}" if entry.change else message


def detail(entry: TargetEntry, baseline: str | None = None) -> str:
    """The failure body: what was probed, and what each address did."""
    where = display(entry.host, entry.port)
    lines = [f"{entry.target} ({where}, expect {entry.expect}): {entry.category}"]
    if entry.hint:
        lines.append(f"hint: {entry.hint}")
    if entry.change:
        since = f" since {baseline}" if baseline else ""
        lines.append(f"change: {entry.change}{since}")
    if entry.source:
        lines.append(f"defined at: {entry.source}")
    dns = entry.dns
    if dns is not None:
        answer = ", ".join(dns.addresses) or "no address"
        via = f" via {dns.nameserver}" if dns.nameserver else ""
        lines.append(
            f"dns: {dns.host} -> {dns.category} ({answer}){via}"
            + (f": {dns.detail}" if dns.detail else "")
        )
    for probe in entry.probes:
        facts = [f"{probe.address} ({probe.family}): {probe.category}"]
        for key, value in (
            ("errno", probe.errno),
            ("icmp_type", probe.icmp_type),
            ("icmp_code", probe.icmp_code),
            ("icmp_from", probe.icmp_from),
        ):
            if value is not None:
                facts.append(f"{key}={value}")
        if probe.latency_ms is not None:
            facts.append(f"latency={probe.latency_ms:.1f}ms")
        facts.append(f"attempts={probe.attempts}")
        lines.append("  " + " ".join(facts))
        if probe.hint and probe.category is not entry.category:
            lines.append(f"    {probe.hint}")
    return "\n".join(lines)


def not_ready(waiting: WaitingEntry) -> str:
    """``scanner wait``: ``not ready: refused for 58.0 s (12 rounds)``."""
    text = f"not ready: {waiting.category} for {waiting.for_s:.1f} s ({waiting.rounds} rounds)"
    if waiting.ok:
        text += f", {waiting.good_rounds} of {waiting.stable} good rounds in a row"
    return text


def _testcase(
    entry: TargetEntry, baseline: str | None, waiting: WaitingEntry | None = None
) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": xml_safe(classname(entry)),
            "name": xml_safe(entry.target),
            "time": f"{seconds(entry):.3f}",
        },
    )
    verdict = verdict_of(entry.ok, entry.category)
    body = detail(entry, baseline)
    if waiting is not None:
        body += "\n" + not_ready(waiting)
    if verdict is not Verdict.OK:
        tag = "failure" if verdict is Verdict.FAILED else "error"
        attributes = {"type": entry.category.value, "message": xml_safe(failure_message(entry))}
        ET.SubElement(case, tag, attributes).text = xml_safe(body)
    elif waiting is not None:  # good, but not yet --stable rounds in a row: not ready
        attributes = {"type": "not_ready", "message": xml_safe(not_ready(waiting))}
        ET.SubElement(case, "failure", attributes).text = xml_safe(body)
    elif entry.change:  # fixed since the baseline: passing, but worth a line
        ET.SubElement(case, "system-out").text = xml_safe(detail(entry, baseline))
    return case


class _Stats:
    """tests / failures / errors / time of a suite, added up one entry at a time."""

    __slots__ = ("errors", "failures", "seconds", "tests")

    def __init__(self) -> None:
        self.tests = self.failures = self.errors = 0
        self.seconds = 0.0

    def add(self, entry: TargetEntry, unready: bool = False) -> None:
        verdict = verdict_of(entry.ok, entry.category)
        self.tests += 1
        self.failures += verdict is Verdict.FAILED or (unready and verdict is Verdict.OK)
        self.errors += verdict is Verdict.INCONCLUSIVE
        self.seconds += seconds(entry)

    def apply(self, element: ET.Element) -> None:
        element.set("tests", str(self.tests))
        element.set("failures", str(self.failures))
        element.set("errors", str(self.errors))
        element.set("skipped", "0")
        element.set("time", f"{self.seconds:.3f}")


def _start_tag(element: ET.Element) -> str:
    """``<tag attr="…">`` of an element, escaped as ElementTree escapes it."""
    closed = ET.tostring(element, encoding="unicode", short_empty_elements=False)
    return closed.removesuffix(f"</{element.tag}>")


def _indented(element: ET.Element, level: int) -> str:
    ET.indent(element, level=level)
    return "  " * level + ET.tostring(element, encoding="unicode") + "\n"


def xml_pieces(report: ReportDocument) -> Iterator[str]:
    """The JUnit document, one testcase at a time.

    The counts go first, in the start tags, so the targets are read once for them and
    once per inventory file for the testcases; no tree is built: a tree of a million
    testcases took gigabytes.
    """
    per_file = {path: _Stats() for path in report.inventories}
    total = _Stats()
    waiting = {w.target: w for w in report.summary.waiting or ()}  # scanner wait
    for entry in report.targets:
        unready = entry.target in waiting
        per_file.setdefault(entry.inventory or NO_FILE, _Stats()).add(entry, unready)
        total.add(entry, unready)
    baseline = report.baseline
    root = ET.Element("testsuites", {"name": "scanner"})
    total.apply(root)
    yield "<?xml version='1.0' encoding='utf-8'?>\n" + _start_tag(root) + "\n"
    for path, stats in per_file.items():
        suite = ET.Element("testsuite", {"name": xml_safe(path)})
        stats.apply(suite)
        suite.set("timestamp", report.started.removesuffix("Z"))
        yield "  " + _start_tag(suite) + "\n"
        properties = ET.Element("properties")
        for key, value in (
            ("scanner_version", report.scanner_version),
            ("shard", report.shard),
            ("baseline", report.baseline),
        ):
            if value:
                ET.SubElement(properties, "property", {"name": key, "value": xml_safe(value)})
        yield _indented(properties, 2)
        for entry in report.targets:
            if (entry.inventory or NO_FILE) == path:
                yield _indented(_testcase(entry, baseline, waiting.get(entry.target)), 2)
        yield "  </testsuite>\n"
    yield "</testsuites>\n"


def write_xml(report: ReportDocument, out: TextIO) -> None:
    for piece in xml_pieces(report):
        out.write(piece)


def render(report: ReportDocument) -> ET.ElementTree:
    """The document as a tree (tests and small reports): parsed from :func:`write_xml`."""
    buffer = io.StringIO()
    write_xml(report, buffer)
    return ET.ElementTree(ET.fromstring(buffer.getvalue().split("\n", 1)[1]))  # noqa: S314 - ours


def write_junit(report: ReportDocument, path: str | Path) -> None:
    """Replace ``path`` atomically (a kill mid-write leaves the earlier file whole)."""
    from ._files import replace_file

    replace_file(path, (piece.encode("utf-8") for piece in xml_pieces(report)))
