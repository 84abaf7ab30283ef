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
from ._text import counted, phases
from .document import ProbeEntry, RemovedEntry, ReportDocument, TargetEntry, summary_of

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
    waiting = report.summary.waiting
    if waiting:  # scanner wait, not ready at its end
        head = f"❌ **{len(waiting):,} {of_total} not ready**"
    elif waiting is not None and not summary.interrupted:
        head = (
            f"✅ **all {counted(total, 'target')} ready**"
            if total != 1
            else "✅ **1 target ready**"
        )
    elif failed:
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


def _slowest_answer(entry: TargetEntry) -> tuple[float, str, str] | None:
    """A target's slowest *completed* handshake: (ms, address, where its time went), None
    if none completed.

    Handshakes that never completed (timeouts) last as long as the timeout and are in
    the failure table already; what a deploy wants to see here is who answers slowly.
    """
    answered = [
        (p.latency_ms, p.address, _phases(p))
        for p in entry.probes
        if p.category in (Category.OPEN, Category.SLOW) and p.latency_ms is not None
    ]
    if not answered:
        return None
    return max(answered, key=lambda item: item[0])


def _phases(probe: ProbeEntry) -> str:
    """``dns 1.2 + connect 0.3 + tls 5.0``: the phases of one address, in milliseconds."""
    return " + ".join(f"{label} {value:.1f}" for label, value in phases(probe))


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
        self._slowest: list[tuple[float, int, str, str, TargetEntry]] = []  # a min-heap
        #: certificates that expire first: (days left, -index, address, probe, entry), a heap
        self._certificates: list[tuple[int, int, str, ProbeEntry, TargetEntry]] = []

    def add(self, index: int, entry: TargetEntry) -> None:
        if entry.change in self.changed:
            self.changed[entry.change].add(entry)
        verdict = verdict_of(entry.ok, entry.category)
        if verdict is Verdict.FAILED:
            self.failed.add(entry)
        elif verdict is Verdict.INCONCLUSIVE:
            self.inconclusive.add(entry)
        self._add_certificates(index, entry)
        answer = _slowest_answer(entry)
        if answer is None:
            return
        # ties: the earlier target ranks higher, as a stable sort would have it
        item = (answer[0], -index, answer[1], answer[2], entry)
        if len(self._slowest) < SLOWEST:
            heapq.heappush(self._slowest, item)
        elif item[:2] > self._slowest[0][:2]:
            heapq.heapreplace(self._slowest, item)

    def _add_certificates(self, index: int, entry: TargetEntry) -> None:
        for probe in entry.probes:
            if probe.tls is None or probe.tls.days_left is None:
                continue
            # kept: the SLOWEST with the fewest days left (a max-heap on days, by negation)
            item = (-probe.tls.days_left, -index, probe.address, probe, entry)
            if len(self._certificates) < SLOWEST:
                heapq.heappush(self._certificates, item)
            elif item[:2] > self._certificates[0][:2]:
                heapq.heapreplace(self._certificates, item)

    def slowest(self) -> list[tuple[float, int, str, str, TargetEntry]]:
        return sorted(self._slowest, key=lambda item: (-item[0], -item[1]))

    def certificates(self) -> list[tuple[ProbeEntry, TargetEntry]]:
        ranked = sorted(self._certificates, key=lambda item: (-item[0], -item[1]))
        return [(probe, entry) for _days, _index, _address, probe, entry in ranked]


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


def _not_ready(report: ReportDocument) -> list[str]:
    """``scanner wait``: each target not ready at its end, its last state and for how long."""
    waiting = report.summary.waiting or ()
    if not waiting:
        return []
    rows = (
        [
            w.target,
            f"{w.category} for {w.for_s:.1f} s",
            f"{w.good_rounds} of {w.stable}",
            w.rounds,
            w.hint,
        ]
        for w in waiting
    )
    return [
        f"### Not ready ({len(waiting)})",
        "",
        *table(
            ["target", "last state", "good rounds in a row", "rounds", "hint"], rows, len(waiting)
        ),
        "",
    ]


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
            ["target", "slowest handshake (ms)", "address", "category", "where the time went (ms)"],
            (
                [e.target, f"{ms:.1f}", address, e.category, timing]
                for ms, _index, address, timing, e in ranked
            ),
            len(ranked),
        ),
        "",
    ]


def _certificates(tables: _Tables) -> list[str]:
    ranked = tables.certificates()
    if not ranked:
        return []
    return [
        f"### Certificates that expire first ({len(ranked)})",
        "",
        *table(
            ["target", "address", "category", "subject", "expires", "days left", "TLS"],
            (
                [
                    e.target,
                    p.address,
                    p.category,
                    p.tls.subject,
                    p.tls.not_after,
                    p.tls.days_left,
                    p.tls.version,
                ]
                for p, e in ranked
                if p.tls is not None
            ),
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
    lines += _not_ready(report)
    lines += _failures(tables)
    lines += _per_category(report.summary.counts)
    lines += _slowest(tables)
    lines += _certificates(tables)
    lines.append(
        f"<sub>scanner {cell(report.scanner_version)} · started "
        f"{cell(report.started)} · {report.summary.duration_s} s</sub>"
    )
    return "\n".join(lines) + "\n"


def write_markdown(report: ReportDocument, path: str | Path, append: bool = False) -> None:
    """Replace ``path`` atomically, or (GitHub's step summary) append in one write."""
    from ._files import append_file, replace_file

    data = render(report).encode("utf-8")
    if append:
        append_file(path, data)
    else:
        replace_file(path, [data])
