"""``--markdown PATH``: a summary for a person reading the CI run (e.g. GitHub's step summary).

Verdict first, then what changed since the baseline, the failed targets, the counts per
category and the slowest answering targets. Every cell is escaped: a target name is
inventory data, and a ``|``, a newline or markup in it must not break or restyle the table.
Large scans are capped per table (GitHub accepts 1 MiB of step summary); the JSON report
always has everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .json_report import Report, is_failed, is_inconclusive

#: rows per table at most; the rest is counted in a line under the table
MAX_ROWS = 200
SLOWEST = 10

#: characters of a value a cell shows at most (names have no length limit)
MAX_CELL = 300

#: controls, and the invisible characters that reorder a line (bidi) or cannot be UTF-8
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                      "\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NEWLINE = re.compile("\r\n|[\r\n\u2028\u2029]")
#: backslash-escaped: table pipes and the inline markup GitHub would interpret
_MARKUP = re.compile(r"([\\`*_\[\]|~#!])")


def cell(value: object) -> str:
    """One table cell: no control characters, no line breaks, no markup, no HTML."""
    if value is None or value in ("", []):
        return "—"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    if len(text) > MAX_CELL:
        text = f"{text[:MAX_CELL]}… ({len(text):,} characters)"
    text = _CONTROL.sub("?", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKUP.sub(r"\\\1", text)
    return _NEWLINE.sub("<br>", text)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], total: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    shown = 0
    for row in rows:
        if shown == MAX_ROWS:
            break
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
        shown += 1
    if total > shown:
        lines.append("")
        lines.append(f"… and {total - shown} more (see the JSON report).")
    return lines


def icmp_senders(entry: Mapping[str, Any]) -> list[str]:
    senders: list[str] = []
    for probe in entry.get("probes") or []:
        sender = probe.get("icmp_from")
        if sender and sender not in senders:
            senders.append(sender)
    return senders


def verdict(report: Report) -> str:
    counts = report["summary"]["counts"]
    total = len(report["targets"])
    failed, inconclusive = counts.get("failed", 0), counts.get("inconclusive", 0)
    where = ", ".join(report["inventories"]) or "no inventory"
    shard = f" (shard {report['shard']})" if report.get("shard") else ""
    if failed:
        head = f"❌ **{failed} of {total} targets failed**"
    elif inconclusive:
        head = f"⚠️ **no failures, {inconclusive} of {total} targets inconclusive**"
    else:
        head = f"✅ **all {total} targets met their expectation**"
    parts = [f"{counts.get('ok', 0)} ok", f"{failed} failed", f"{inconclusive} inconclusive"]
    if report["summary"].get("interrupted"):
        parts.append(f"interrupted ({report['summary'].get('interrupted_by') or 'stopped'})")
    return f"{head} — {', '.join(parts)} · {cell(where)}{shard}"


def _failure_rows(entries: Sequence[Mapping[str, Any]]) -> Iterable[list[object]]:
    for e in entries:
        yield [e["target"], e["category"], e["hint"], e["addresses"], icmp_senders(e)]


def _slowest(report: Report) -> list[tuple[float, Mapping[str, Any], str]]:
    """Targets by their slowest *completed* handshake.

    Handshakes that never completed (timeouts) last as long as the timeout and are in
    the failure table already; what a deploy wants to see here is who answers slowly.
    """
    ranked = []
    for entry in report["targets"]:
        answered = [p for p in entry.get("probes") or []
                    if p["category"] in ("open", "slow") and p.get("latency_ms") is not None]
        if answered:
            worst = max(answered, key=lambda p: p["latency_ms"])
            ranked.append((float(worst["latency_ms"]), entry, str(worst["address"])))
    ranked.sort(key=lambda item: -item[0])
    return ranked[:SLOWEST]


def render(report: Report) -> str:
    targets = report["targets"]
    lines = ["## scanner", "", verdict(report), ""]
    if report.get("baseline"):
        lines += [f"Compared with the baseline `{cell(report['baseline'])}`.", ""]
        for change, title in (("new_failure", "New failures"), ("fixed", "Fixed"),
                              ("category_changed", "Changed category")):
            changed = [e for e in targets if e.get("change") == change]
            lines.append(f"### {title} ({len(changed)})")
            lines.append("")
            if changed:
                lines += table(["target", "category", "hint"],
                               ([e["target"], e["category"], e["hint"]] for e in changed),
                               len(changed))
            else:
                lines.append("None.")
            lines.append("")
    failed = [e for e in targets if is_failed(e)]
    if failed:
        lines += [f"### Failed targets ({len(failed)})", ""]
        lines += table(["target", "category", "hint", "addresses", "icmp_from"],
                       _failure_rows(failed), len(failed))
        lines.append("")
    inconclusive = [e for e in targets if is_inconclusive(e)]
    if inconclusive:
        lines += [f"### Inconclusive targets ({len(inconclusive)})",
                  "", "A problem on the scanning machine, not the target's fault.", ""]
        lines += table(["target", "category", "hint", "addresses", "icmp_from"],
                       _failure_rows(inconclusive), len(inconclusive))
        lines.append("")
    counts = report["summary"]["counts"]
    # counts mixes categories with the ok/failed verdicts ("inconclusive" is both)
    per_category = sorted(((k, v) for k, v in counts.items()
                           if v and k not in ("ok", "failed")),
                          key=lambda kv: (-kv[1], kv[0]))
    lines += ["### Targets per category", ""]
    lines += table(["category", "targets"], per_category, len(per_category))
    lines.append("")
    slowest = _slowest(report)
    if slowest:
        lines += [f"### Slowest {len(slowest)} answering targets", ""]
        lines += table(["target", "slowest handshake (ms)", "address", "category"],
                       ([e["target"], f"{ms:.1f}", address, e["category"]]
                        for ms, e, address in slowest), len(slowest))
        lines.append("")
    duration = report["summary"].get("duration_s")
    lines.append(f"<sub>scanner {cell(report['scanner_version'])} · started "
                 f"{cell(report['started'])} · {duration} s</sub>")
    return "\n".join(lines) + "\n"


def write_markdown(report: Report, path: str | Path, append: bool = False) -> None:
    with open(path, "a" if append else "w", encoding="utf-8") as out:
        out.write(render(report))
