"""``scanner merge``: one report from the reports of several shards (or scans of other targets).

A target reported twice, shards of different splits or of different inventories, or a
missing shard of a split are errors: each would make the merged verdict claim something
that was not checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import __version__
from ..verdict import Counts
from .document import RemovedEntry, ReportDocument, ReportError, TargetEntry, summary_entry


def merge_reports(reports: Sequence[tuple[str, ReportDocument]]) -> ReportDocument:
    """One document from ``(path, document)`` pairs; :class:`ReportError` when they don't fit."""
    if not reports:
        raise ReportError("no reports to merge")
    _check_shards(reports)
    seen: dict[str, str] = {}
    targets: list[TargetEntry] = []
    inventories: list[str] = []
    counts = Counts()
    for path, report in reports:
        for entry in report.targets:
            if entry.target in seen:
                raise ReportError(
                    f"target {entry.target!r} is in both {seen[entry.target]} and {path}: "
                    "merge each shard's report once"
                )
            seen[entry.target] = path
            targets.append(entry)
            counts.add(entry.ok, entry.category)
        inventories.extend(p for p in report.inventories if p not in inventories)
    # each shard lists the baseline's targets the inventory lost: once, and only if no
    # other shard reported them
    removed: dict[str, RemovedEntry] = {}
    for _, report in reports:
        for gone in report.removed:
            if gone.target not in seen:
                removed.setdefault(gone.target, gone)
    summaries = [r.summary for _, r in reports]
    interrupted_by = next((s.interrupted_by for s in summaries if s.interrupted_by), None)
    baselines = {r.baseline for _, r in reports if r.baseline}
    # shards run side by side: the merged scan took as long as the slowest one
    merged = counts.summary(max(s.duration_s for s in summaries), interrupted_by)
    return ReportDocument(
        scanner_version=__version__,
        started=min(r.started for _, r in reports),
        finished=max(r.finished for _, r in reports),
        inventories=tuple(inventories),
        shard=None,
        baseline=baselines.pop() if len(baselines) == 1 else None,
        targets=targets,
        summary=summary_entry(merged),
        removed=tuple(removed.values()),
    )


def _check_shards(reports: Sequence[tuple[str, ReportDocument]]) -> None:
    shards = [(path, r.shard) for path, r in reports if r.shard]
    if not shards:
        return
    if len(shards) != len(reports):
        raise ReportError(
            "some reports come from --shard runs and some do not: merge the shards of one split"
        )
    splits = {str(s).split("/")[1] for _, s in shards}
    if len(splits) != 1:
        raise ReportError(
            f"the reports come from different splits ({', '.join(sorted(splits))} "
            "shards): merge the shards of one split"
        )
    inventories = {r.inventories for _, r in reports}
    if len(inventories) != 1:
        shown = "; ".join(", ".join(i) for i in sorted(inventories))
        raise ReportError(
            f"the shards come from different inventories ({shown}): merge the shards of one scan"
        )
    total = int(splits.pop())
    have: dict[int, str] = {}
    for path, shard in shards:
        index = int(str(shard).split("/")[0])
        if index in have:
            raise ReportError(f"shard {shard} is in both {have[index]} and {path}")
        have[index] = path
    missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in have]
    if missing:
        raise ReportError(
            f"missing shard{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: those targets were not checked"
        )
