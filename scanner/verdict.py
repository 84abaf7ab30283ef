"""The one place that decides: a target's verdict, the scan's verdict, the exit code.

Pure functions over results. Every writer (events, console, JSON report, JUnit, Markdown,
baseline, merge, the workers' parent) asks here instead of deriving "failed" or "passed"
itself: when they did, they disagreed on interrupted scans.

A target is *ok* when every address met its expectation, *inconclusive* when it did not
only because of a local shortage (or it was never checked), and *failed* otherwise.
``inconclusive`` is both a category and a verdict; for targets the two coincide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Literal

from .classify import hint_for
from .models import Category, DnsResult, Expect, ProbeResult, ScanSummary, Target, TargetResult

C = Category

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
#: every target was checked, but an artefact asked for (--report, --junit, --markdown)
#: could not be written (a full disk, a vanished directory): the evidence is missing
EXIT_ARTEFACT = 4
#: SPEC §1: interrupted by SIGINT / SIGTERM (the reports are still written)
EXIT_SIGNAL: Mapping[str, int] = {"SIGINT": 130, "SIGTERM": 143}

#: ``scanner wait -- CMD``: CMD exists but cannot be run / was not found (as shells say)
EXIT_CANNOT_RUN, EXIT_NOT_FOUND = 126, 127

FailOn = Literal["any", "new"]


class Verdict(StrEnum):
    """What a target's result means for the gate."""

    OK = "ok"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


#: Outcomes that prove nothing about a port being closed (RESOLVED is a DNS outcome).
_NOT_A_HANDSHAKE_FAILURE = frozenset(
    # a listener that does not accept, or accepts and closes, is there: not closed
    {C.OPEN, C.SLOW, C.INCONCLUSIVE, C.OUT_OF_SCOPE, C.RESOLVED, C.NOT_ACCEPTING, C.CLOSED_BY_PEER}
)


#: a listener answered (or queued) the handshake: what ``expect: closed`` must not meet
_LISTENING = frozenset({C.OPEN, C.SLOW, C.NOT_ACCEPTING, C.CLOSED_BY_PEER})


def meets_expectation(expect: Expect, category: Category) -> bool:
    """Whether one address's outcome satisfies the target's expectation.

    ``closed`` is met by any handshake failure, but never by a DNS failure, a local
    shortage (which proves nothing) or an address we refused to touch.
    """
    if expect == "open":
        return category is C.OPEN
    return category not in _NOT_A_HANDSHAKE_FAILURE and not category.is_dns and not category.is_tls


def roll_up(expect: Expect, categories: Sequence[Category]) -> tuple[bool, Category]:
    """A target's (ok, category) from its addresses' categories, in probe order.

    The category is ``open`` when every address is open, otherwise that of the first
    address that broke the expectation; a local shortage on any address makes the
    target inconclusive rather than failed, because it proves nothing.
    """
    if not categories:
        return False, C.DNS_NO_ADDRESS
    if len(categories) == 1:  # most targets: what follows reduces to this
        return meets_expectation(expect, categories[0]), categories[0]
    broken = [c for c in categories if not meets_expectation(expect, c)]
    if not broken:
        if all(c is C.OPEN for c in categories):
            return True, C.OPEN
        return True, categories[0]
    if C.INCONCLUSIVE in broken and all(
        c is C.INCONCLUSIVE or meets_expectation(expect, c) for c in categories
    ):
        return False, C.INCONCLUSIVE
    decisive = next(c for c in broken if c is not C.INCONCLUSIVE)
    return False, decisive


def target_verdict(
    target: Target,
    dns: DnsResult | None,
    addresses: Sequence[str],
    probes: Sequence[ProbeResult],
    index: int = 0,
) -> TargetResult:
    """Roll a target's DNS outcome and per-address probes up into one result."""
    hint: str | None = None
    if dns is not None and dns.category is not C.RESOLVED:
        hint = hint_for(dns.category, family=target.family, detail=dns.detail)
        return TargetResult(target, False, dns.category, (), hint, dns=dns, index=index)
    ok, category = roll_up(target.expect, [p.category for p in probes])
    if not ok:
        if target.expect == "closed" and (category in _LISTENING or category.is_tls):
            what = (
                "has a listener (its accept queue is full)"
                if category is C.NOT_ACCEPTING
                else "accepts connections"
            )
            hint = (
                f"port {target.port} {what} but must be closed: a service listens there "
                "that should not, or the firewall rule that should block it is missing"
            )
        elif len(probes) == 1:  # most targets: the one address decided
            hint = probes[0].hint
        else:
            hint = next((p.hint for p in probes if p.category is category), None)
    return TargetResult(
        target, ok, category, tuple(addresses), hint, tuple(probes), dns, index=index
    )


def unchecked(target: Target, hint: str, index: int = 0) -> TargetResult:
    """The result of a target that was never (or not completely) checked: inconclusive."""
    return TargetResult(target, False, C.INCONCLUSIVE, (), hint, index=index, unfinished=True)


def verdict_of(ok: bool, category: Category | str) -> Verdict:
    """ok / failed / inconclusive from a result's (or a report entry's) ok and category."""
    if ok:
        return Verdict.OK
    return Verdict.INCONCLUSIVE if category == C.INCONCLUSIVE else Verdict.FAILED


def result_verdict(result: TargetResult) -> Verdict:
    return verdict_of(result.ok, result.category)


class Counts:
    """Targets per category and per verdict, added up one target at a time.

    ``scan.finished``'s ``counts`` holds both in one mapping (``inconclusive`` is a
    category and a verdict, and counts the same targets as either). The engine, the
    workers' parent and ``scanner merge`` all count with this, so they agree.
    """

    __slots__ = ("_categories", "_verdicts", "not_started")

    def __init__(self) -> None:
        self._categories: Counter[str] = Counter()
        self._verdicts: Counter[str] = Counter()
        self.not_started = 0  # targets a signal stopped before they were pulled

    def add(self, ok: bool, category: Category | str) -> Verdict:
        verdict = verdict_of(ok, category)
        self._categories[str(category)] += 1
        self._verdicts[str(verdict)] += 1
        return verdict

    def add_all(self, entries: Iterable[tuple[bool, Category | str]]) -> None:
        for ok, category in entries:
            self.add(ok, category)

    def merge(self, counts: Mapping[str, int]) -> None:
        """Add a ``scan.finished`` counts mapping (another process's, a shard's)."""
        for key, value in counts.items():
            if key in ("ok", "failed"):
                self._verdicts[key] += value
            elif key == "not_started":
                self.not_started += value
            elif key == Verdict.INCONCLUSIVE:
                self._categories[key] += value
                self._verdicts[key] += value
            else:
                self._categories[key] += value

    @property
    def accounted(self) -> int:
        """Targets with a verdict, plus those never started."""
        return sum(self._verdicts.values()) + self.not_started

    def as_mapping(self) -> dict[str, int]:
        counts = {**self._categories, **{v.value: self._verdicts[v.value] for v in Verdict}}
        if self.not_started:
            counts["not_started"] = self.not_started
        return counts

    def summary(self, duration_s: float, interrupted_by: str | None) -> ScanSummary:
        return ScanSummary.from_counts(self.as_mapping(), duration_s, interrupted_by)


def scan_passed(summary: ScanSummary) -> bool:
    """The scan's verdict: every target met its expectation and nothing was cut short."""
    return summary.failed == 0 and summary.inconclusive == 0 and not summary.interrupted


def exit_code(
    summary: ScanSummary, *, fail_on: FailOn = "any", new_failures: int = 0, signals: bool = True
) -> int:
    """SPEC §1's exit code for a scan (``signals``: this process was the one interrupted).

    With ``fail_on="new"``, only failures that are new since the baseline fail the gate;
    known failures pass it. Inconclusive targets still mean "not checked" (exit 3).
    ``scanner merge`` passes ``signals=False``: an interrupted shard is not an
    interrupted merge (its unfinished targets are inconclusive in its report).
    """
    signal = summary.interrupted_by
    if signals and signal is not None and signal in EXIT_SIGNAL:
        return EXIT_SIGNAL[signal]
    failed = new_failures if fail_on == "new" else summary.failed
    if failed:
        return EXIT_FAILED
    if summary.inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def with_artefacts(code: int, *, unwritten: bool) -> int:
    """The exit code once the artefacts are written: 4 when one could not be, unless the
    code already says more (failures, 1; an interruption, 130/143)."""
    if unwritten and code in (EXIT_OK, EXIT_INCONCLUSIVE):
        return EXIT_ARTEFACT
    return code


def event_level(ok: bool, category: Category | str) -> str:
    """The ``level`` of a result event: info, warning (inconclusive) or error (failed)."""
    verdict = verdict_of(ok, category)
    if verdict is Verdict.INCONCLUSIVE:
        return "warning"
    return "info" if verdict is Verdict.OK else "error"


def scan_level(summary: ScanSummary) -> str:
    """The ``level`` of ``scan.finished``: info only when the scan passed."""
    return "info" if scan_passed(summary) else "error"


def wait_exit_code(summary: ScanSummary, *, ready: bool) -> int:
    """``scanner wait``'s exit code: 0 every target ready, 1 not by the deadline, 130/143
    interrupted. Not 3 for a target whose last round was inconclusive: the question a wait
    answers is "ready or not", and a target that never proved ready is not."""
    signal = summary.interrupted_by
    if signal is not None and signal in EXIT_SIGNAL:
        return EXIT_SIGNAL[signal]
    return EXIT_OK if ready else EXIT_FAILED
