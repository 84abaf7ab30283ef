"""Console rendering for a person: the header, failures grouped by category, counts, verdict.

A scan of thousands of targets must not flood a terminal or a CI log: failures are
grouped by category, each group lists its first targets in inventory order (ten, or
every one with ``-v``) and counts the rest in one line; targets a stopped scan never
finished, and those it never started, are one line each. ``-q`` keeps only the counts
and the verdict. The same renderer writes the short summary that goes to stderr while
JSON lines go to stdout.

Colour only when the stream is a TTY, ``NO_COLOR`` is unset (https://no-color.org) and
``TERM`` is not ``dumb``. Progress goes to stderr, and only when stderr is a TTY, so
piping or redirecting the output stays clean.
"""

from __future__ import annotations

import heapq
import itertools
import os
import time
from collections.abc import Callable
from typing import Literal, Protocol

from .. import signals
from ..classify import icmp_name
from ..inventory.targets import display
from ..models import (
    AddressFamily,
    Hop,
    IcmpDetail,
    PathTrace,
    ProbeResult,
    ScanStart,
    ScanSummary,
    TargetResult,
)
from ..observers import BaseObserver
from ..verdict import Verdict, meets_expectation, result_verdict, scan_passed
from ._text import counted, phases
from .document import ExplainEntry

_RESET = "\x1b[0m"
_STYLE = {
    "ok": "\x1b[32m",
    "fail": "\x1b[31m",
    "warn": "\x1b[33m",
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
}
#: C0 (but tab), DEL and C1 controls (U+009B is an 8-bit CSI), line and paragraph
#: separators, bidi overrides (they reorder what follows on the line) and lone surrogates
#: (which cannot even be written as UTF-8)
_CONTROL = {
    c: "?"
    for c in [
        *range(32),
        *range(127, 160),
        0x061C,
        0x200E,
        0x200F,
        *range(0x2028, 0x202F),
        *range(0x2066, 0x206A),
        *range(0xD800, 0xE000),
    ]
    if c != 9
}


class TextOut(Protocol):
    """Where the console writes: a text stream, or one that goes through a LineSink."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


def use_colour(stream: TextOut) -> bool:
    """Colour on a terminal that can show it, unless the user said no (NO_COLOR)."""
    return stream.isatty() and "NO_COLOR" not in os.environ and not dumb_terminal()


def dumb_terminal() -> bool:
    """``TERM=dumb`` (Emacs shells, some CI runners): no escape sequences at all."""
    return os.environ.get("TERM") == "dumb"


def clean(text: str) -> str:
    """Strip control characters so a hostile name cannot drive the terminal."""
    return text.translate(_CONTROL)


def hop_label(hop: Hop, family: AddressFamily) -> str:
    """What a hop answered, in a few words (``time-exceeded 11/0``, ``TCP reset``)."""
    if hop.icmp_type is not None and hop.icmp_code is not None:
        label = icmp_name(IcmpDetail(hop.icmp_type, hop.icmp_code, hop.address, family))
        return f"{label} (target)" if hop.reached else label
    if hop.reached:
        if hop.errno in (None, "ECONNRESET", "EPIPE"):
            return "handshake completed" if hop.errno is None else "handshake completed, then reset"
        return "TCP reset"
    return hop.errno or "no answer"


def tls_line(probe: ProbeResult) -> str:
    """A TLS probe in one line: what it showed, and where its time went."""
    parts = [f"tls {probe.address}"]
    tls = probe.tls
    if tls is not None:
        parts.append(" ".join(p for p in (tls.version, tls.cipher) if p) or "no handshake")
        if tls.subject:
            parts.append(tls.subject)
        if tls.not_after and tls.days_left is not None:
            parts.append(f"expires {tls.not_after[:10]} ({tls.days_left} days)")
    timing = " + ".join(f"{label} {value:.1f} ms" for label, value in phases(probe))
    return " · ".join([*parts, timing])


Verbosity = Literal["quiet", "normal", "verbose"]

#: targets each group lists at most (``-v``: every one)
PER_GROUP = 10

_MARKS = {
    Verdict.OK: ("ok  ", "ok"),
    Verdict.INCONCLUSIVE: ("??  ", "warn"),
    Verdict.FAILED: ("FAIL", "fail"),
}
_CHANGE_LABEL = {
    "new_failure": "new failure",
    "category_changed": "category changed",
    "fixed": "fixed",
}
_CHANGE_COUNT = {
    "new_failure": "new failures",
    "category_changed": "changed category",
    "fixed": "fixed",
}


class _Group:
    """One group's listed targets: the first ``limit`` in inventory order, and the count.

    Held as a bounded heap, so a group of a million targets keeps ten lines: the
    listing is the same whatever order the results arrive in (workers, concurrency).
    """

    __slots__ = ("_heap", "_order", "limit", "total")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.total = 0
        self._heap: list[tuple[int, int, TargetResult, str | None]] = []
        self._order = itertools.count()

    def add(self, result: TargetResult, change: str | None) -> None:
        self.total += 1
        item = (-result.index, -next(self._order), result, change)
        if self.limit is None or len(self._heap) < self.limit:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:  # earlier in the inventory than the last kept
            heapq.heapreplace(self._heap, item)

    def listed(self) -> list[tuple[TargetResult, str | None]]:
        ordered = sorted(self._heap, key=lambda item: (-item[0], -item[1]))
        return [(result, change) for _, _, result, change in ordered]


class ConsoleReport(BaseObserver):
    """Observer that keeps the first targets of each group and prints them at the end.

    ``verbosity``: ``quiet`` (the counts and the verdict), ``normal``, ``verbose``
    (every listed target, each with every address). ``header`` and ``table``: the
    ``scanner: N targets from ...`` line and the per-category table (the stderr
    summary beside JSON leaves both out). ``limit``: targets listed per group unless
    verbose; ``more``: where the rest are, said in each group's "and K more" line.
    """

    def __init__(
        self,
        out: TextOut,
        err: TextOut,
        *,
        colour: bool | None = None,
        progress: bool | None = None,
        show_ok: bool = False,
        change_of: Callable[[TargetResult], str | None] | None = None,
        verbosity: Verbosity = "normal",
        header: bool = True,
        table: bool = True,
        limit: int = PER_GROUP,
        more: str = "-v lists every one",
    ) -> None:
        self.out, self.err = out, err
        #: with --baseline: what changed for a target (new_failure, fixed, category_changed)
        self.change_of = change_of
        self.changes: dict[str, int] = {}
        self.colour = use_colour(out) if colour is None else colour
        quiet = verbosity == "quiet"
        self.progress = (err.isatty() and not quiet) if progress is None else progress
        self._dumb = dumb_terminal()
        self.show_ok = show_ok
        self.verbosity: Verbosity = verbosity
        self.header, self.table = header, table
        self.more = more
        self._limit = None if verbosity == "verbose" else limit
        self.total = 0
        self.done = 0
        self.failed = 0
        self.failed_by_category: dict[str, int] = {}
        #: (kind, category) -> listed targets; kind: ok, fixed, failed, inconclusive
        self.groups: dict[tuple[str, str], _Group] = {}
        #: hint -> targets the scan stopped before their verdict (one line per hint)
        self.unfinished: dict[str, int] = {}
        self._progress_width = 0
        self._wrote_header = False
        self._last_progress = 0.0
        self._started = time.monotonic()

    def backlogged(self) -> bool:
        sink = getattr(self.out, "sink", None)
        return bool(sink is not None and sink.backlogged)

    def _paint(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.colour else text

    def on_start(self, start: ScanStart) -> None:
        self.total = start.targets
        if not self.header or self.verbosity == "quiet":
            return
        self._wrote_header = True
        names = ", ".join(clean(p) for p in start.inventories)
        self.out.write(
            self._paint(
                "bold",
                f"scanner: {counted(start.targets, 'target')} from {names}, "
                f"{start.concurrency:,} probes in flight at most",
            )
            + "\n"
        )
        self.out.flush()

    def on_target(self, result: TargetResult) -> None:
        self.done += 1
        verdict = result_verdict(result)
        if verdict is Verdict.FAILED:
            self.failed += 1
            key = result.category.value
            self.failed_by_category[key] = self.failed_by_category.get(key, 0) + 1
        change = self.change_of(result) if self.change_of is not None else None
        if change is not None:
            self.changes[change] = self.changes.get(change, 0) + 1
        self._keep(result, verdict, change)
        self._show_progress()

    def _keep(self, result: TargetResult, verdict: Verdict, change: str | None) -> None:
        if self.verbosity == "quiet":
            return
        if result.unfinished:
            hint = result.hint or "not finished"
            self.unfinished[hint] = self.unfinished.get(hint, 0) + 1
            return
        if verdict is Verdict.FAILED:
            key = ("failed", result.category.value)
        elif verdict is Verdict.INCONCLUSIVE:
            key = ("inconclusive", result.category.value)
        elif self.show_ok:
            key = ("ok", "")
        elif change == "fixed":  # a fix is news too
            key = ("fixed", "")
        else:
            return
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(self._limit)
        group.add(result, change)

    def format_target(self, result: TargetResult, change: str | None = None) -> str:
        """A target's line, its addresses (when they add something) and its hint."""
        return "\n".join(self._target_lines(result, change, previous_hint=None))

    def _target_lines(
        self, result: TargetResult, change: str | None, previous_hint: str | None
    ) -> list[str]:
        mark, style = _MARKS[result_verdict(result)]
        target = result.target
        where = display(target.host, target.port)
        line = (
            f"{self._paint(style, mark)} {clean(target.name)}  "
            f"{self._paint(style, result.category.value)}  {clean(where)}"
        )
        if target.expect == "closed":
            line += self._paint("dim", " (expect closed)")
        if change is not None:
            line += "  " + self._paint(
                "ok" if change == "fixed" else "bold", f"[{_CHANGE_LABEL.get(change, change)}]"
            )
        lines = [line]
        details = self._details(result)
        if details:
            lines.append("      " + self._paint("dim", details))
        if result.hint and not result.ok and result.hint != previous_hint:
            lines.append("      → " + clean(result.hint))
        for probe in result.probes:
            if probe.tls is not None or probe.tls_ms is not None:
                lines.append("      " + self._paint("dim", clean(tls_line(probe))))
        for path in result.paths:
            lines.extend(self.format_path(path))
        return lines

    def _details(self, result: TargetResult) -> str:
        """The addresses of a target, when they say more than its line does.

        Normal: the addresses that broke the expectation, with the ICMP sender and the
        attempts (left out for a lone IP literal that says nothing new); verbose: every
        address, with its latency.
        """
        if result.ok and self.verbosity != "verbose":
            return ""
        verbose = self.verbosity == "verbose"
        target = result.target
        shown, passed = [], 0
        for probe in result.probes:
            if not verbose and meets_expectation(target.expect, probe.category):
                passed += 1
                continue
            text = f"{clean(probe.address)}: {probe.category.value}"
            if verbose and probe.latency_ms is not None:
                text += f" {probe.latency_ms:.1f} ms"
            if probe.icmp and probe.icmp.sender:
                text += f" icmp from {clean(probe.icmp.sender)}"
            if probe.attempts > 1:
                text += f", {probe.attempts} attempts"
            shown.append(text)
        if passed:
            shown.append(f"{counted(passed, 'other address')} met the expectation")
        if verbose and result.dns is not None and result.dns.detail:
            shown.append(f"dns: {clean(result.dns.detail)}")
        lone = (
            len(result.probes) == 1
            and result.probes[0].address == target.host
            and shown == [f"{clean(target.host)}: {result.probes[0].category.value}"]
        )
        if lone and not verbose:
            return ""
        return "; ".join(shown)

    def format_path(self, path: PathTrace) -> list[str]:
        """The trace like traceroute prints it: one line per hop limit, silence folded."""
        where = display(path.address, path.port)
        lines = [f"      path to {where}: " + self._paint("bold", clean(path.verdict))]
        width = max([len(h.address) for h in path.hops if h.address] + [15])
        for hop in path.hops:
            if hop.address is None and hop.rtt_ms is None:
                last = path.probed if hop is path.hops[-1] else hop.ttl
                span = f" (hop limits {hop.ttl}–{last})" if last > hop.ttl else ""
                lines.append(
                    f"      {hop.ttl:>3}  {'*':<{width}}  {'':>10}  "
                    + self._paint("dim", f"no answer{span}")
                )
                continue
            rtt = f"{hop.rtt_ms:.2f} ms" if hop.rtt_ms is not None else ""
            lines.append(
                f"      {hop.ttl:>3}  {clean(hop.address or '-'):<{width}}  "
                f"{rtt:>10}  {self._paint('dim', hop_label(hop, path.family))}"
            )
        return lines

    def _clear_progress(self) -> None:
        if not (self.progress and self._last_progress):
            return
        if self._dumb:  # no escape sequences: overwrite with blanks
            self.err.write("\r" + " " * self._progress_width + "\r")
        else:
            self.err.write("\r\x1b[K")
        self.err.flush()

    def _show_progress(self) -> None:
        now = time.monotonic()
        if not self.progress or now - self._last_progress < 0.2 or self.total < 50:
            return
        self._last_progress = now
        rate = self.done / max(now - self._started, 1e-6)
        text = f"{self.done:,}/{self.total:,} targets, {self.failed:,} failed ({rate:,.0f}/s)"
        self._clear_progress()
        self._progress_width = len(text)
        self.err.write(("\r" if self._dumb else "\r\x1b[K") + text)
        self.err.flush()

    def on_finish(self, summary: ScanSummary) -> None:
        self._clear_progress()
        self._last_progress = 0.0
        lines: list[str] = []
        if self.verbosity != "quiet":
            lines += self._group_lines()
            lines += self._unfinished_lines(summary)
        if self.table:
            lines += self._table_lines(summary)
        lines += ["", self._verdict_line(summary)]
        if not self._wrote_header:  # nothing above to part from
            lines = lines[1:]
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        sink = getattr(self.out, "sink", None)
        if sink is not None:  # everything shown before the process ends, unless interrupted
            sink.drain(interrupted=lambda: signals.received() is not None)

    def _ordered_groups(self) -> list[tuple[tuple[str, str], _Group]]:
        rank = {"ok": 0, "fixed": 1, "failed": 2, "inconclusive": 3}
        return sorted(self.groups.items(), key=lambda kv: (rank[kv[0][0]], -kv[1].total, kv[0][1]))

    def _group_lines(self) -> list[str]:
        """Each group's listed targets; under a heading each when they are many.

        A handful of targets (no more than one group may list) reads best as one list,
        ordered by group; more get a heading per group and an "and K more" line.
        """
        groups = self._ordered_groups()
        listed = [(key, group, group.listed()) for key, group in groups]
        headed = sum(len(items) for _, _, items in listed) > (self._limit or PER_GROUP) or any(
            group.total > len(items) for _, group, items in listed
        )
        lines: list[str] = [""] if listed and not headed else []
        for (kind, category), group, items in listed:
            if headed:
                lines += ["", self._heading(kind, category, group.total)]
            previous: str | None = None
            for result, change in items:
                lines += self._target_lines(result, change, previous)
                previous = result.hint if self.verbosity != "verbose" else None
            rest = group.total - len(items)
            if rest:
                what = category or ("passed" if kind == "ok" else "fixed")
                lines.append(self._paint("dim", f"… and {rest:,} more {what} ({self.more})"))
        return lines

    def _heading(self, kind: str, category: str, total: int) -> str:
        targets = counted(total, "target")
        if kind == "failed":
            return self._paint("fail", f"{category}: {targets} failed")
        if kind == "inconclusive":
            return self._paint(
                "warn", f"inconclusive: {targets} (a problem on this machine, not the targets)"
            )
        if kind == "fixed":
            return self._paint("ok", f"fixed since the baseline: {targets}")
        return self._paint("ok", f"passed: {targets}")

    def _unfinished_lines(self, summary: ScanSummary) -> list[str]:
        lines = [
            self._paint("warn", f"{counted(count, 'target')} {clean(hint)}")
            for hint, count in sorted(self.unfinished.items(), key=lambda kv: -kv[1])
        ]
        not_started = dict(summary.counts).get("not_started", 0)
        if not_started:
            why = f" ({summary.interrupted_by} received)" if summary.interrupted_by else ""
            lines.append(
                self._paint(
                    "warn",
                    f"{counted(not_started, 'target')} not started: the scan was stopped{why}",
                )
            )
        return ["", *lines] if lines else []

    def _table_lines(self, summary: ScanSummary) -> list[str]:
        counts = dict(summary.counts)
        rows = [(k, v) for k, v in counts.items() if v and k not in ("ok", "failed", "not_started")]
        if not rows:
            return []
        width = max(len("category"), *(len(k) for k, _ in rows))
        # no result seen (workers that send none): the failed column would be made up
        seen = self.done > 0
        head = f"{'category':<{width}}  targets" + ("  failed" if seen else "")
        lines = ["", self._paint("bold", head)]
        for key, value in sorted(rows, key=lambda kv: (-kv[1], kv[0])):
            failed = self.failed_by_category.get(key, 0)
            style = "warn" if key == "inconclusive" else "fail" if failed or not seen else "ok"
            line = f"{self._paint(style, f'{key:<{width}}')}  {value:>7,}"
            lines.append(line + (f"  {failed:>6,}" if seen else ""))
        return lines

    def _verdict_line(self, summary: ScanSummary) -> str:
        style = "ok" if scan_passed(summary) else "fail" if summary.failed else "warn"
        not_started = dict(summary.counts).get("not_started", 0)
        verdict = (
            f"{counted(summary.total + not_started, 'target')}: {summary.ok:,} ok, "
            f"{summary.failed:,} failed, {summary.inconclusive:,} inconclusive"
        )
        if not_started:
            verdict += f", {not_started:,} not started"
        verdict += f" in {summary.duration_s:.2f} s"
        if summary.interrupted:
            verdict += f" (interrupted: {summary.interrupted_by})"
        if self.change_of is not None:
            verdict += "; against the baseline: " + ", ".join(
                f"{label} {self.changes.get(change, 0):,}"
                for change, label in _CHANGE_COUNT.items()
            )
        return self._paint(style, verdict)


def format_explanation(entry: ExplainEntry, paint: Callable[[str, str], str]) -> str:
    """``scanner explain`` for a person: the checklist's answers for one target."""
    style = "ok" if entry.ok else "fail"
    lines = [
        paint("bold", f"{clean(entry.target)} ({clean(display(entry.host, entry.port))})")
        + "  "
        + paint(style, entry.category.value)
    ]
    dns = entry.dns
    if dns is not None:
        via = ", ".join(f"{af} from {clean(src)}" for af, src in dns.sources.items()) or (
            clean(dns.nameserver or "no source")
        )
        lines.append(
            f"  name:  {clean(dns.host)} → {', '.join(dns.addresses) or 'no address'}"
            f" ({dns.category}; {via})"
        )
        for step in dns.trail:
            asked = ", ".join(f"{af} {cat}" for af, cat in step.families.items())
            lines.append(paint("dim", f"         asked {clean(step.name)}: {asked}"))
    for address in entry.addresses:
        probe = address.probe
        facts = [probe.category.value]
        if probe.errno:
            facts.append(probe.errno)
        if probe.icmp_type is not None:
            facts.append(f"ICMP {probe.icmp_type}/{probe.icmp_code} from {probe.icmp_from}")
        if probe.latency_ms is not None:
            facts.append(f"{probe.latency_ms:.1f} ms")
        lines.append(f"  {probe.address} ({probe.family}): " + ", ".join(facts))
        if address.route is not None and address.route.sentence:
            lines.append(paint("dim", f"      route: {clean(address.route.sentence)}"))
        if address.path_verdict:
            lines.append(paint("dim", f"      path:  {clean(address.path_verdict)}"))
        for sentence in address.local:
            lines.append(paint("dim", f"      here:  {clean(sentence)}"))
    if entry.suggestions:
        lines.append(f"  near:  {', '.join(clean(s) for s in entry.suggestions)}")
    lines.append("  " + paint("bold", "cause: ") + clean(entry.cause))
    lines.append("  " + paint("bold", "next:  ") + clean(entry.next_step))
    return "\n".join(lines)
