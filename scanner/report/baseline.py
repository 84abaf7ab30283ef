"""``--baseline REPORT``: what changed since an earlier ``--report``.

Per target, ``change`` is

* ``new_failure`` — fails now, and did not fail then (it passed, was inconclusive, or is new);
* ``fixed`` — passes now, failed then;
* ``category_changed`` — failed then and fails now, for another reason (e.g. refused → timeout);
* ``None`` — nothing a gate should hear about, including every inconclusive target now:
  an inconclusive result says nothing about the target, so it neither fixes nor breaks it.

A target that changed keeps its category then (``baseline_category``: refused -> timeout).
Targets of the baseline that the inventory no longer has are *removed*: listed and
counted, because a failure that vanished with its target is not a fix. Those that are
only outside this scan (another ``--shard``, not selected by ``--tags``) are not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

from msgspec.structs import replace

from ..models import Category
from ..verdict import Verdict, verdict_of
from .document import Change, RemovedEntry, ReportDocument, TargetEntry, load_report


class Baseline:
    """The verdicts of an earlier report, by target name."""

    def __init__(self, report: ReportDocument, path: str) -> None:
        self.path = path
        #: the inventory files the baseline's scan read
        self.inventories: tuple[str, ...] = tuple(report.inventories)
        self.targets: dict[str, tuple[Verdict, Category]] = {
            e.target: (verdict_of(e.ok, e.category), e.category) for e in report.targets
        }

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a ``--report`` document; raises ``ReportError`` with a clear message."""
        return cls(load_report(path), str(path))

    def change(self, name: str, ok: bool, category: Category) -> Change | None:
        verdict = verdict_of(ok, category)
        if verdict is Verdict.INCONCLUSIVE:
            return None
        earlier = self.targets.get(name)
        if earlier is None or earlier[0] is not Verdict.FAILED:
            return "new_failure" if verdict is Verdict.FAILED else None
        if verdict is Verdict.OK:
            return "fixed"
        return "category_changed" if category != earlier[1] else None

    def category(self, name: str) -> Category | None:
        """A target's category in the baseline; None when it was not there."""
        earlier = self.targets.get(name)
        return earlier[1] if earlier is not None else None

    def annotate(self, entry: TargetEntry) -> TargetEntry:
        """A report entry with its ``change`` (and, if it changed, its category then)."""
        change = self.change(entry.target, entry.ok, entry.category)
        then = self.category(entry.target) if change is not None else None
        return replace(entry, change=change, baseline_category=then)

    def removed(self, present: Callable[[str], bool]) -> list[RemovedEntry]:
        """The baseline's targets for which ``present(name)`` is false, in its order."""
        return [
            RemovedEntry(target=name, ok=verdict is Verdict.OK, category=category)
            for name, (verdict, category) in self.targets.items()
            if not present(name)
        ]


def same_inventories(then: Sequence[str], now: Sequence[str]) -> bool:
    """Whether two scans read the same inventory files, wherever they ran from.

    Paths are compared from their end: ``configs/prod.yaml`` and
    ``/builds/x/configs/prod.yaml`` are the same file checked out elsewhere;
    ``prod.yaml`` and ``staging.yaml`` are not, nor are two sets of different size.
    """
    if len(then) != len(now):
        return False
    return all(
        _same_path(a, b)
        for a, b in zip(sorted(then, key=_tail), sorted(now, key=_tail), strict=True)
    )


def _tail(path: str) -> str:
    return PurePath(path).name


def _same_path(a: str, b: str) -> bool:
    left, right = PurePath(a).parts, PurePath(b).parts
    shorter = min(len(left), len(right))
    strip = ("/", ".")
    return [p for p in left[-shorter:] if p not in strip] == [
        p for p in right[-shorter:] if p not in strip
    ]
