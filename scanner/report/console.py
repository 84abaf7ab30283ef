"""Console rendering for a person: one line per failed target, a summary table, progress.

Colour only when the stream is a TTY and ``NO_COLOR`` is unset (https://no-color.org).
Progress goes to stderr, and only on a TTY, so piping the output stays clean.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

from .. import signals
from ..classify import icmp_name
from ..inventory.targets import display
from ..models import (
    AddressFamily,
    Category,
    Hop,
    IcmpDetail,
    PathTrace,
    ProbeResult,
    ScanStart,
    ScanSummary,
    TargetResult,
)
from ..observers import BaseObserver
from ..verdict import Verdict, result_verdict, scan_passed
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
    return stream.isatty() and "NO_COLOR" not in os.environ


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
    phases = [
        f"{label} {value:.1f} ms"
        for label, value in (
            ("dns", probe.dns_ms),
            ("connect", probe.latency_ms),
            ("tls", probe.tls_ms),
        )
        if value is not None
    ]
    return " · ".join([*parts, " + ".join(phases)])


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


class ConsoleReport(BaseObserver):
    """Observer that prints failed targets as they are decided, then a summary."""

    def __init__(
        self,
        out: TextOut,
        err: TextOut,
        *,
        colour: bool | None = None,
        progress: bool | None = None,
        show_ok: bool = False,
        change_of: Callable[[TargetResult], str | None] | None = None,
    ) -> None:
        self.out, self.err = out, err
        #: with --baseline: what changed for a target (new_failure, fixed, category_changed)
        self.change_of = change_of
        self.changes: dict[str, int] = {}
        self.colour = use_colour(out) if colour is None else colour
        self.progress = err.isatty() if progress is None else progress
        self.show_ok = show_ok
        self.total = 0
        self.done = 0
        self.failed_by_category: dict[str, int] = {}
        self._last_progress = 0.0
        self._started = time.monotonic()

    def backlogged(self) -> bool:
        sink = getattr(self.out, "sink", None)
        return bool(sink is not None and sink.backlogged)

    def _paint(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.colour else text

    def on_start(self, start: ScanStart) -> None:
        self.total = start.targets
        names = ", ".join(clean(p) for p in start.inventories)
        self.out.write(
            self._paint(
                "bold",
                f"scanner: {start.targets} targets from {names}, "
                f"{start.concurrency} probes in flight at most",
            )
            + "\n"
        )
        self.out.flush()

    def on_target(self, result: TargetResult) -> None:
        self.done += 1
        if not result.ok:
            key = result.category.value
            self.failed_by_category[key] = self.failed_by_category.get(key, 0) + 1
        change = self.change_of(result) if self.change_of is not None else None
        if change is not None:
            self.changes[change] = self.changes.get(change, 0) + 1
        if not result.ok or self.show_ok or change == "fixed":  # a fix is news too
            self._clear_progress()
            self.out.write(self.format_target(result, change) + "\n")
            self.out.flush()
        self._show_progress()

    def format_target(self, result: TargetResult, change: str | None = None) -> str:
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
        details = []
        for probe in result.probes:
            if probe.category is not Category.OPEN or not result.ok:
                extra = (
                    f" icmp from {probe.icmp.sender}" if probe.icmp and probe.icmp.sender else ""
                )
                tries = f", {probe.attempts} attempts" if probe.attempts > 1 else ""
                details.append(f"{probe.address}: {probe.category.value}{extra}{tries}")
        if details and not result.ok:
            line += "\n      " + self._paint("dim", "; ".join(details))
        if result.hint and not result.ok:
            line += "\n      → " + clean(result.hint)
        for probe in result.probes:
            if probe.tls is not None or probe.tls_ms is not None:
                line += "\n      " + self._paint("dim", clean(tls_line(probe)))
        for path in result.paths:
            line += "".join("\n" + text for text in self.format_path(path))
        return line

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
        if self.progress and self._last_progress:
            self.err.write("\r\x1b[K")

    def _show_progress(self) -> None:
        now = time.monotonic()
        if not self.progress or now - self._last_progress < 0.2 or self.total < 50:
            return
        self._last_progress = now
        rate = self.done / max(now - self._started, 1e-6)
        self.err.write(f"\r\x1b[K{self.done}/{self.total} targets ({rate:.0f}/s)")
        self.err.flush()

    def on_finish(self, summary: ScanSummary) -> None:
        self._clear_progress()
        counts = dict(summary.counts)
        rows = [(k, v) for k, v in counts.items() if v and k not in ("ok", "failed")]
        if rows:
            width = max(len("category"), *(len(k) for k, _ in rows))
            self.out.write(
                "\n" + self._paint("bold", f"{'category':<{width}}  targets  failed") + "\n"
            )
            for key, value in sorted(rows, key=lambda kv: (-kv[1], kv[0])):
                failed = self.failed_by_category.get(key, 0)
                style = "warn" if key == "inconclusive" else "fail" if failed else "ok"
                self.out.write(
                    f"{self._paint(style, f'{key:<{width}}')}  {value:>7}  {failed:>6}\n"
                )
        verdict_style = "ok" if scan_passed(summary) else "fail" if summary.failed else "warn"
        verdict = (
            f"{summary.total} targets: {summary.ok} ok, {summary.failed} failed, "
            f"{summary.inconclusive} inconclusive in {summary.duration_s:.2f} s"
        )
        if summary.interrupted:
            verdict += f" (interrupted: {summary.interrupted_by})"
        if self.change_of is not None:
            verdict += "; against the baseline: " + ", ".join(
                f"{label} {self.changes.get(change, 0)}" for change, label in _CHANGE_COUNT.items()
            )
        self.out.write("\n" + self._paint(verdict_style, verdict) + "\n")
        self.out.flush()
        sink = getattr(self.out, "sink", None)
        if sink is not None:  # everything shown before the process ends, unless interrupted
            sink.drain(interrupted=lambda: signals.received() is not None)


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
