"""``--baseline REPORT``: what changed since an earlier ``--report``.

Per target, ``change`` is

* ``new_failure`` — fails now, and did not fail then (it passed, was inconclusive, or is new);
* ``fixed`` — passes now, failed then;
* ``category_changed`` — failed then and fails now, for another reason (e.g. refused → timeout);
* ``None`` — nothing a gate should hear about, including every inconclusive target now:
  an inconclusive result says nothing about the target, so it neither fixes nor breaks it.

Targets that are in the baseline but not in this scan (removed, another shard) are ignored.
"""

from __future__ import annotations

from pathlib import Path

from ..models import Category
from ..verdict import Verdict, verdict_of
from .document import Change, ReportDocument, load_report


class Baseline:
    """The verdicts of an earlier report, by target name."""

    def __init__(self, report: ReportDocument, path: str) -> None:
        self.path = path
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
