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

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from .json_report import Report, is_failed, is_inconclusive

#: characters XML 1.0 forbids even as references (C0 controls but tab/LF/CR, surrogates, ...)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: testsuite name for targets that came from no file (e.g. built in code)
NO_FILE = "scanner"


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("?", text)


def classname(entry: Mapping[str, Any]) -> str:
    inventory = entry.get("inventory")
    stem = PurePath(inventory).stem if inventory else NO_FILE
    tags = entry.get("tags") or []
    return f"{stem}.{tags[0]}" if tags else stem


def seconds(entry: Mapping[str, Any]) -> float:
    """Time spent on the target: its DNS lookup plus every handshake (with retries)."""
    total = sum(p["latency_ms"] or 0.0 for p in entry.get("probes") or [])
    dns = entry.get("dns")
    if dns and dns.get("latency_ms"):
        total += dns["latency_ms"]
    return float(total) / 1000.0


def failure_message(entry: Mapping[str, Any]) -> str:
    message = entry.get("hint") or entry["category"]
    change = entry.get("change")
    return f"[{change}] {message}" if change else str(message)


def detail(entry: Mapping[str, Any], baseline: str | None = None) -> str:
    """The failure body: what was probed, and what each address did."""
    host = entry["host"]
    where = f"[{host}]:{entry['port']}" if ":" in host else f"{host}:{entry['port']}"
    lines = [f"{entry['target']} ({where}, expect {entry['expect']}): {entry['category']}"]
    if entry.get("hint"):
        lines.append(f"hint: {entry['hint']}")
    if entry.get("change"):
        since = f" since {baseline}" if baseline else ""
        lines.append(f"change: {entry['change']}{since}")
    if entry.get("source"):
        lines.append(f"defined at: {entry['source']}")
    dns = entry.get("dns")
    if dns:
        answer = ", ".join(dns["addresses"]) or "no address"
        via = f" via {dns['nameserver']}" if dns.get("nameserver") else ""
        lines.append(f"dns: {dns['host']} -> {dns['category']} ({answer}){via}"
                     + (f": {dns['detail']}" if dns.get("detail") else ""))
    for probe in entry.get("probes") or []:
        facts = [f"{probe['address']} ({probe['family']}): {probe['category']}"]
        for key in ("errno", "icmp_type", "icmp_code", "icmp_from"):
            if probe.get(key) is not None:
                facts.append(f"{key}={probe[key]}")
        if probe.get("latency_ms") is not None:
            facts.append(f"latency={probe['latency_ms']:.1f}ms")
        facts.append(f"attempts={probe['attempts']}")
        lines.append("  " + " ".join(facts))
        if probe.get("hint") and probe["category"] != entry["category"]:
            lines.append(f"    {probe['hint']}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, entry: Mapping[str, Any], baseline: str | None) -> None:
    case = ET.SubElement(suite, "testcase", {
        "classname": xml_safe(classname(entry)), "name": xml_safe(str(entry["target"])),
        "time": f"{seconds(entry):.3f}"})
    if is_failed(entry) or is_inconclusive(entry):
        tag = "failure" if is_failed(entry) else "error"
        outcome = ET.SubElement(case, tag, {"type": str(entry["category"]),
                                            "message": xml_safe(failure_message(entry))})
        outcome.text = xml_safe(detail(entry, baseline))
    elif entry.get("change"):  # fixed since the baseline: passing, but worth a line
        ET.SubElement(case, "system-out").text = xml_safe(detail(entry, baseline))


def _suite_stats(element: ET.Element, cases: Sequence[Mapping[str, Any]]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for e in cases if is_failed(e))))
    element.set("errors", str(sum(1 for e in cases if is_inconclusive(e))))
    element.set("skipped", "0")
    element.set("time", f"{sum(seconds(e) for e in cases):.3f}")


def render(report: Report) -> ET.ElementTree:
    by_file: dict[str, list[Mapping[str, Any]]] = {p: [] for p in report["inventories"]}
    for entry in report["targets"]:
        by_file.setdefault(entry.get("inventory") or NO_FILE, []).append(entry)
    root = ET.Element("testsuites", {"name": "scanner"})
    # the entries as collected above: a report's targets may be made as they are read
    _suite_stats(root, [entry for cases in by_file.values() for entry in cases])
    baseline = report.get("baseline")
    for path, cases in by_file.items():
        suite = ET.SubElement(root, "testsuite", {"name": xml_safe(path)})
        _suite_stats(suite, cases)
        suite.set("timestamp", str(report["started"]).removesuffix("Z"))
        properties = ET.SubElement(suite, "properties")
        for key in ("scanner_version", "shard", "baseline"):
            if report.get(key):
                ET.SubElement(properties, "property",
                              {"name": key, "value": xml_safe(str(report[key]))})
        for entry in cases:
            _testcase(suite, entry, baseline)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(report: Report, path: str | Path) -> None:
    render(report).write(path, encoding="utf-8", xml_declaration=True)
