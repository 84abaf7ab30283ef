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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report.json_report import Report, is_failed, load_report

NEW_FAILURE, FIXED, CATEGORY_CHANGED = "new_failure", "fixed", "category_changed"


@dataclass(frozen=True, slots=True)
class Earlier:
    """What the baseline said about one target."""

    ok: bool
    failed: bool
    category: str


class Baseline:
    """The verdicts of an earlier report, by target name."""

    def __init__(self, report: Report, path: str) -> None:
        self.path = path
        self.targets: dict[str, Earlier] = {
            e["target"]: Earlier(ok=bool(e["ok"]), failed=is_failed(e), category=str(e["category"]))
            for e in report["targets"]
        }

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a ``--report`` document; raises ``ReportError`` with a clear message."""
        return cls(load_report(path), str(path))

    def change(self, name: str, ok: bool, category: str) -> str | None:
        inconclusive = not ok and category == "inconclusive"
        if inconclusive:
            return None
        earlier = self.targets.get(name)
        failed = not ok
        if earlier is None or not earlier.failed:
            return NEW_FAILURE if failed else None
        if not failed:
            return FIXED
        return CATEGORY_CHANGED if category != earlier.category else None

    def change_of_entry(self, entry: Mapping[str, Any]) -> str | None:
        return self.change(str(entry["target"]), bool(entry["ok"]), str(entry["category"]))
