"""``--report PATH``: the whole scan as one JSON document, and reading such documents back.

The document is the interchange format of the deploy gate: ``--baseline`` compares with
one, ``scanner merge`` joins the documents of several shards, and the JUnit and Markdown
writers render from it, so a merged verdict looks exactly like a single scan's. Every
target carries the fields of its ``target.result`` event plus its ``probe.result`` and
``dns.result`` detail; ``summary`` is the ``scan.finished`` event. The shape is published
as ``scanner/data/report.schema.json``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import orjson

from .. import __version__
from ..events import SCHEMA_VERSION, dns_result, probe_result, scan_finished, target_result
from ..models import ScanSummary, TargetResult

Report = dict[str, Any]
TargetEntry = dict[str, Any]

#: what a target's ``change`` may be (SPEC §1, ``--baseline``)
CHANGES = ("new_failure", "fixed", "category_changed")


class ReportError(Exception):
    """A report that cannot be read or is not a scanner report; the message says why."""


def utc_now() -> str:
    """ISO-8601 UTC with a ``Z``, like the event timestamps."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def target_entry(result: TargetResult, change: str | None = None) -> TargetEntry:
    entry = target_result(result, change)
    source = result.target.source
    entry["inventory"] = source.path if source else None
    entry["source"] = str(source) if source else None
    entry["dns"] = dns_result(result.dns) if result.dns is not None else None
    entry["probes"] = [probe_result(p) for p in result.probes]
    return entry


class TargetEntries(Sequence[TargetEntry]):
    """A report's ``targets``, each entry made from its result when it is read.

    Entries are not held: for a big scan they took more memory than the results they
    come from (262,144 targets: 300 MB of entries beside 200 MB of results). Each writer
    (JSON, JUnit, Markdown) reads them once, in order.
    """

    def __init__(self, results: Sequence[TargetResult], changes: Mapping[str, str | None]) -> None:
        self._results = results
        self._changes = changes

    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, index: int) -> TargetEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[TargetEntry]: ...

    def __getitem__(self, index: int | slice) -> TargetEntry | list[TargetEntry]:
        if isinstance(index, slice):
            return [self._entry(r) for r in self._results[index]]
        return self._entry(self._results[index])

    def __iter__(self) -> Iterator[TargetEntry]:
        return map(self._entry, self._results)

    def _entry(self, result: TargetResult) -> TargetEntry:
        return target_entry(result, self._changes.get(result.target.name))


def build_report(
    results: Sequence[TargetResult],
    summary: ScanSummary,
    *,
    inventories: Sequence[str],
    started: str,
    finished: str,
    shard: str | None = None,
    baseline: str | None = None,
    changes: Mapping[str, str | None] | None = None,
) -> Report:
    return {
        "schema_version": SCHEMA_VERSION,
        "scanner_version": __version__,
        "started": started,
        "finished": finished,
        "inventories": list(inventories),
        "shard": shard,
        "baseline": baseline,
        "targets": TargetEntries(results, changes or {}),
        "summary": scan_finished(summary),
    }


def write_report(report: Report, path: str | Path) -> None:
    """The report as one JSON document, the same bytes as ``orjson.dumps`` would give,
    written one target at a time: the whole document is never in memory at once."""
    with open(path, "wb") as out:
        out.write(b"{")
        for n, (key, value) in enumerate(report.items()):
            out.write((b"," if n else b"") + orjson.dumps(key) + b":")
            if key != "targets":
                out.write(orjson.dumps(value))
                continue
            out.write(b"[")
            for i, entry in enumerate(value):
                out.write((b"," if i else b"") + orjson.dumps(entry))
            out.write(b"]")
        out.write(b"}\n")


def is_inconclusive(entry: Mapping[str, Any]) -> bool:
    return not entry["ok"] and entry["category"] == "inconclusive"


def is_failed(entry: Mapping[str, Any]) -> bool:
    return not entry["ok"] and entry["category"] != "inconclusive"


def counts_of(entries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Per category, and ok/failed/inconclusive, exactly as ``scan.finished`` counts them."""
    counts: Counter[str] = Counter(str(e["category"]) for e in entries)
    ok = sum(1 for e in entries if e["ok"])
    inconclusive = sum(1 for e in entries if is_inconclusive(e))
    counts.update({"ok": ok, "failed": len(entries) - ok - inconclusive})
    counts["inconclusive"] = inconclusive
    return dict(sorted(counts.items()))


# --- reading ------------------------------------------------------------------------

_SHARD = re.compile(r"[1-9][0-9]*/[1-9][0-9]*")

_TOP: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "scanner_version": str,
    "started": str,
    "finished": str,
    "inventories": list,
    "targets": list,
    "summary": dict,
}
_TARGET: dict[str, type | tuple[type, ...]] = {
    "target": str,
    "host": str,
    "port": int,
    "expect": str,
    "ok": bool,
    "category": str,
    "addresses": list,
    "hint": (str, type(None)),
    "tags": list,
    "probes": list,
}


def load_report(path: str | Path) -> Report:
    """Read a ``--report`` document; :class:`ReportError` names the file and the problem.

    The check covers what the gate relies on (the schema in ``scanner/data`` is the full
    contract), so a truncated upload or a wrong file fails loudly instead of passing.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a scanner report (expected a JSON object)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(
            f"{path}: not a scanner report with schema_version "
            f"{SCHEMA_VERSION} (got {data.get('schema_version')!r})"
        )
    _check_fields(path, "report", data, _TOP)
    for number, entry in enumerate(data["targets"]):
        where = f"targets[{number}]"
        if not isinstance(entry, dict):
            raise ReportError(f"{path}: {where} is not an object")
        _check_fields(path, where, entry, _TARGET)
        entry.setdefault("change", None)
        entry.setdefault("inventory", None)
        entry.setdefault("dns", None)
        change = entry["change"]
        if change is not None and change not in CHANGES:
            raise ReportError(f"{path}: {where}.change is {change!r}")
    data.setdefault("shard", None)
    data.setdefault("baseline", None)
    shard = data["shard"]
    if shard is not None and not (isinstance(shard, str) and _SHARD.fullmatch(shard)):
        raise ReportError(f"{path}: shard is {shard!r}, expected I/N")
    return data


def _check_fields(
    path: str | Path,
    where: str,
    value: Mapping[str, Any],
    fields: Mapping[str, type | tuple[type, ...]],
) -> None:
    for key, kind in fields.items():
        if key not in value:
            raise ReportError(f"{path}: {where} lacks {key!r}")
        if not isinstance(value[key], kind) or (kind is int and isinstance(value[key], bool)):
            raise ReportError(
                f"{path}: {where}.{key} has the wrong type ({type(value[key]).__name__})"
            )


# --- merging shards -------------------------------------------------------------------


def merge_reports(reports: Sequence[tuple[str, Report]]) -> Report:
    """One report from the reports of several shards (or several scans of other targets).

    A target reported twice, shards of different splits, or a missing shard of a split are
    errors: each would make the merged verdict claim something that was not checked.
    """
    if not reports:
        raise ReportError("no reports to merge")
    _check_shards(reports)
    seen: dict[str, str] = {}
    targets: list[TargetEntry] = []
    inventories: list[str] = []
    for path, report in reports:
        for entry in report["targets"]:
            name = entry["target"]
            if name in seen:
                raise ReportError(
                    f"target {name!r} is in both {seen[name]} and {path}: "
                    "merge each shard's report once"
                )
            seen[name] = path
            targets.append(entry)
        inventories.extend(p for p in report["inventories"] if p not in inventories)
    summaries = [r["summary"] for _, r in reports]
    interrupted_by = next(
        (s.get("interrupted_by") for s in summaries if s.get("interrupted_by")), None
    )
    counts = counts_of(targets)
    baselines = {r["baseline"] for _, r in reports if r.get("baseline")}
    return {
        "schema_version": SCHEMA_VERSION,
        "scanner_version": __version__,
        "started": min(r["started"] for _, r in reports),
        "finished": max(r["finished"] for _, r in reports),
        "inventories": inventories,
        "shard": None,
        "baseline": baselines.pop() if len(baselines) == 1 else None,
        "targets": targets,
        "summary": {
            "counts": counts,
            # shards run side by side: the merged scan took as long as the slowest one
            "duration_s": max(float(s.get("duration_s", 0.0)) for s in summaries),
            "ok": counts["failed"] == 0
            and counts["inconclusive"] == 0
            and not any(s.get("interrupted") for s in summaries),
            "interrupted": any(bool(s.get("interrupted")) for s in summaries),
            "interrupted_by": interrupted_by,
        },
    }


def _check_shards(reports: Sequence[tuple[str, Report]]) -> None:
    shards = [(path, r["shard"]) for path, r in reports if r.get("shard")]
    if not shards:
        return
    if len(shards) != len(reports):
        raise ReportError(
            "some reports come from --shard runs and some do not: merge the shards of one split"
        )
    counts = {str(s).split("/")[1] for _, s in shards}
    if len(counts) != 1:
        raise ReportError(
            f"the reports come from different splits ({', '.join(sorted(counts))} "
            "shards): merge the shards of one split"
        )
    total = int(counts.pop())
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
