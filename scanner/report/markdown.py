"""``--markdown PATH``: a summary for a person reading the CI run (e.g. GitHub's step summary).

Verdict first, then what changed since the baseline (a changed category as old → new,
and the targets the inventory lost), the failed targets (with host:port and the DNS name
that answered), the counts per category and the slowest answering targets. Every cell
is escaped: a target name is inventory data, and a ``|``, a newline or markup in it must
not break or restyle the table.
Large scans are capped per table (GitHub accepts 1 MiB of step summary); the JSON report
always has everything.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..inventory.targets import display
from ..models import Category
from ..verdict import Verdict, verdict_of
from ._text import counted
from .document import RemovedEntry, ReportDocument, TargetEntry, summary_of

#: rows per table at most; the rest is counted in a line under the table
MAX_ROWS = 200
SLOWEST = 10

#: characters of a value a cell shows at most (names have no length limit)
MAX_CELL = 300

#: controls, and the invisible characters that reorder a line (bidi) or cannot be UTF-8
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NEWLINE = re.compile("\r\n|[\r\n\u2028\u2029]")
#: backslash-escaped: table pipes and the inline markup GitHub would interpret
_MARKUP = re.compile(r"([\\`*_\[\]|~#!])")


def cell(value: object) -> str:
    """One table cell: no control characters, no line breaks, no markup, no HTML."""
    if value is None or value in ("", [], ()):
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
        lines.append(f"… and {total - shown:,} more (see the JSON report).")
    return lines


def icmp_senders(entry: TargetEntry) -> list[str]:
    senders: list[str] = []
    for probe in entry.probes:
        if probe.icmp_from and probe.icmp_from not in senders:
            senders.append(probe.icmp_from)
    return senders


def verdict_line(report: ReportDocument) -> str:
    summary = summary_of(report.summary)
    total = len(report.targets)
    failed, inconclusive = summary.failed, summary.inconclusive
    where = ", ".join(report.inventories) or "no inventory"
    shard = f" (shard {report.shard})" if report.shard else ""
    of_total = f"of {counted(total, 'target')}"
    if failed:
        head = f"❌ **{failed:,} {of_total} failed**"
    elif inconclusive:
        head = f"⚠️ **no failures, {inconclusive:,} {of_total} inconclusive**"
    elif total == 1:
        head = "✅ **1 target met its expectation**"
    else:
        head = f"✅ **all {counted(total, 'target')} met their expectation**"
    parts = [f"{summary.ok:,} ok", f"{failed:,} failed", f"{inconclusive:,} inconclusive"]
    if summary.interrupted:
        parts.append(f"interrupted ({summary.interrupted_by or 'stopped'})")
    return f"{head} — {', '.join(parts)} · {cell(where)}{shard}"


def endpoint(entry: TargetEntry) -> str:
    """``host:port`` as written (``[v6]:port`` for an IPv6 literal)."""
    return display(entry.host, entry.port)


def dns_name(entry: TargetEntry) -> str | None:
    """The name whose DNS answer counted (after the search list), None for an IP literal."""
    if entry.dns is None:
        return None
    return (entry.dns.query_name or entry.dns.host).rstrip(".") or None


def _failure_rows(entries: Sequence[TargetEntry]) -> Iterable[list[object]]:
    for e in entries:
        yield [
            e.target,
            endpoint(e),
            dns_name(e),
            e.category,
            e.hint,
            e.addresses,
            icmp_senders(e),
        ]


def category_change(entry: TargetEntry) -> str:
    """``refused → timeout``: the category in the baseline, then now (now alone if unknown)."""
    if entry.baseline_category is None or entry.baseline_category == entry.category:
        return str(entry.category)
    return f"{entry.baseline_category} → {entry.category}"


def _slowest_answer(entry: TargetEntry) -> tuple[float, str] | None:
    """A target's slowest *completed* handshake: (ms, address), None if none completed.

    Handshakes that never completed (timeouts) last as long as the timeout and are in
    the failure table already; what a deploy wants to see here is who answers slowly.
    """
    answered = [
        (p.latency_ms, p.address)
        for p in entry.probes
        if p.category in (Category.OPEN, Category.SLOW) and p.latency_ms is not None
    ]
    if not answered:
        return None
    return max(answered, key=lambda item: item[0])


class _Table:
    """The first :data:`MAX_ROWS` entries of one table, and how many there are in all."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: list[TargetEntry] = []
        self.total = 0

    def add(self, entry: TargetEntry) -> None:
        self.total += 1
        if len(self.entries) < MAX_ROWS:
            self.entries.append(entry)


_CHANGE_TITLES = (
    ("new_failure", "New failures"),
    ("fixed", "Fixed"),
    ("category_changed", "Changed category"),
)


class _Tables:
    """One pass over the targets, keeping only what the capped tables show."""

    def __init__(self) -> None:
        self.changed = {change: _Table() for change, _ in _CHANGE_TITLES}
        self.failed, self.inconclusive = _Table(), _Table()
        self._slowest: list[tuple[float, int, str, TargetEntry]] = []  # a min-heap, the top few

    def add(self, index: int, entry: TargetEntry) -> None:
        if entry.change in self.changed:
            self.changed[entry.change].add(entry)
        verdict = verdict_of(entry.ok, entry.category)
        if verdict is Verdict.FAILED:
            self.failed.add(entry)
        elif verdict is Verdict.INCONCLUSIVE:
            self.inconclusive.add(entry)
        answer = _slowest_answer(entry)
        if answer is None:
            return
        # ties: the earlier target ranks higher, as a stable sort would have it
        item = (answer[0], -index, answer[1], entry)
        if len(self._slowest) < SLOWEST:
            heapq.heappush(self._slowest, item)
        elif item[:2] > self._slowest[0][:2]:
            heapq.heapreplace(self._slowest, item)

    def slowest(self) -> list[tuple[float, int, str, TargetEntry]]:
        return sorted(self._slowest, key=lambda item: (-item[0], -item[1]))


_COLUMNS = ["target", "host:port", "DNS name", "category", "hint", "addresses", "icmp_from"]


def _changes(baseline: str, tables: _Tables, removed: Sequence[RemovedEntry]) -> list[str]:
    lines = [f"Compared with the baseline `{cell(baseline)}`.", ""]
    for change, title in _CHANGE_TITLES:
        rows = tables.changed[change]
        lines += [f"### {title} ({rows.total:,})", ""]
        if rows.total:
            lines += table(
                ["target", "host:port", "category (baseline → now)", "hint"],
                ([e.target, endpoint(e), category_change(e), e.hint] for e in rows.entries),
                rows.total,
            )
        else:
            lines.append("None.")
        lines.append("")
    lines += _removed(removed)
    return lines


def _removed(removed: Sequence[RemovedEntry]) -> list[str]:
    lines = [f"### Removed since the baseline ({len(removed):,})", ""]
    if not removed:
        return [*lines, "None.", ""]
    failing = sum(1 for entry in removed if not entry.ok)
    lines += [
        f"{counted(len(removed), 'target')} of the baseline {'is' if len(removed) == 1 else 'are'} "
        f"no longer in the inventory ({failing:,} failing then): gone, not fixed.",
        "",
    ]
    lines += table(
        ["target", "category then", "verdict then"],
        ([e.target, e.category, verdict_of(e.ok, e.category)] for e in removed),
        len(removed),
    )
    return [*lines, ""]


def _failures(tables: _Tables) -> list[str]:
    lines = []
    failed, inconclusive = tables.failed, tables.inconclusive
    if failed.total:
        lines += [f"### Failed targets ({failed.total:,})", ""]
        lines += table(_COLUMNS, _failure_rows(failed.entries), failed.total)
        lines.append("")
    if inconclusive.total:
        lines += [
            f"### Inconclusive targets ({inconclusive.total:,})",
            "",
            "A problem on the scanning machine, not the target's fault.",
            "",
        ]
        lines += table(_COLUMNS, _failure_rows(inconclusive.entries), inconclusive.total)
        lines.append("")
    return lines


def _per_category(counts: dict[str, int]) -> list[str]:
    # counts mixes categories with the ok/failed verdicts ("inconclusive" is both)
    rows = sorted(
        ((k, v) for k, v in counts.items() if v and k not in ("ok", "failed")),
        key=lambda kv: (-kv[1], kv[0]),
    )
    shown = [(k, f"{v:,}") for k, v in rows]
    return ["### Targets per category", "", *table(["category", "targets"], shown, len(rows)), ""]


def _slowest(tables: _Tables) -> list[str]:
    ranked = tables.slowest()
    if not ranked:
        return []
    return [
        "### Slowest answering target"
        if len(ranked) == 1
        else f"### Slowest {len(ranked)} answering targets",
        "",
        *table(
            ["target", "slowest handshake (ms)", "address", "category"],
            ([e.target, f"{ms:.1f}", address, e.category] for ms, _index, address, e in ranked),
            len(ranked),
        ),
        "",
    ]


def render(report: ReportDocument) -> str:
    tables = _Tables()
    for index, entry in enumerate(report.targets):
        tables.add(index, entry)
    lines = ["## scanner", "", verdict_line(report), ""]
    if report.baseline:
        lines += _changes(report.baseline, tables, report.removed)
    lines += _failures(tables)
    lines += _per_category(report.summary.counts)
    lines += _slowest(tables)
    lines.append(
        f"<sub>scanner {cell(report.scanner_version)} · started "
        f"{cell(report.started)} · {report.summary.duration_s} s</sub>"
    )
    return "\n".join(lines) + "\n"


def write_markdown(report: ReportDocument, path: str | Path, append: bool = False) -> None:
    """Replace ``path`` atomically, or (GitHub's step summary) append in one write."""
    from .artefacts import append_file, replace_file

    data = render(report).encode("utf-8")
    if append:
        append_file(path, data)
    else:
        replace_file(path, [data])
