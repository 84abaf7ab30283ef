"""Event shapes (SPEC §3) and the structlog pipeline that writes them as JSON lines.

The shapes are plain functions from result values to dicts, so the JSON report and
tests use exactly what the stream carries. The pipeline is structlog's processor
chain, driven directly: the event, its timestamp and level first → render JSON (orjson) →
write one line per event to stdout.
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog

from .models import (
    Category,
    DnsResult,
    Hop,
    PathTrace,
    ProbeResult,
    ScanSummary,
    Target,
    TargetResult,
)

SCHEMA_VERSION = 1
EventDict = dict[str, Any]


def scan_started(targets: int, inventories: tuple[str, ...], concurrency: int) -> EventDict:
    return {
        "schema_version": SCHEMA_VERSION,
        "targets": targets,
        "inventories": list(inventories),
        "concurrency": concurrency,
    }


def dns_result(result: DnsResult) -> EventDict:
    return {
        "host": result.host,
        "addresses": list(result.addresses),
        "category": result.category.value,
        "latency_ms": round(result.latency_ms, 3),
        "nameserver": result.nameserver,
        "family": result.family,
        "families": {af: category.value for af, category in result.per_family},
        "attempts": result.attempts,
        "detail": result.detail,
        "query_name": result.query_name,
        "sources": dict(result.sources),
        "trail": [
            {
                "name": s.name,
                "families": {af: c.value for af, c in s.per_family},
                "sources": dict(s.sources),
            }
            for s in result.trail
        ],
    }


def probe_result(result: ProbeResult) -> EventDict:
    icmp = result.icmp
    return {
        "target": result.target.name,
        "host": result.target.host,
        "port": result.target.port,
        "address": result.address,
        "family": result.family,
        "category": result.category.value,
        "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 3),
        "attempts": result.attempts,
        "errno": result.errno,
        "icmp_type": icmp.type if icmp else None,
        "icmp_code": icmp.code if icmp else None,
        "icmp_from": icmp.sender if icmp else None,
        "hint": result.hint,
    }


def target_result(result: TargetResult, change: str | None = None) -> EventDict:
    """``change`` is what ``--baseline`` found (new_failure, fixed, ...); null without it."""
    return {
        "target": result.target.name,
        "host": result.target.host,
        "port": result.target.port,
        "expect": result.target.expect,
        "ok": result.ok,
        "category": result.category.value,
        "addresses": list(result.addresses),
        "hint": result.hint,
        "tags": list(result.target.tags),
        "change": change,
        "last_hop": result.last_hop,  # null unless traced (--trace-failures)
        "path_verdict": result.path_verdict,
    }


def path_hop(target: Target, path: PathTrace, hop: Hop) -> EventDict:
    return {
        "target": target.name,
        "address": path.address,
        "ttl": hop.ttl,
        "hop_address": hop.address,
        "rtt_ms": hop.rtt_ms,
        "icmp_type": hop.icmp_type,
        "icmp_code": hop.icmp_code,
        "reached": hop.reached,
    }


def scan_finished(summary: ScanSummary) -> EventDict:
    return {
        "counts": dict(summary.counts),
        "duration_s": round(summary.duration_s, 3),
        "ok": summary.failed == 0 and summary.inconclusive == 0 and not summary.interrupted,
        "interrupted": summary.interrupted,
        "interrupted_by": summary.interrupted_by,
    }


def level_of(category: Category, ok: bool = True) -> str:
    if ok and category in (Category.OPEN, Category.RESOLVED):
        return "info"
    if category is Category.INCONCLUSIVE:
        return "warning"
    return "info" if ok else "error"


def write_all(stream: IO[bytes], data: bytes) -> None:
    """Write every byte of ``data`` to ``stream``, however many calls it takes.

    Under PYTHONUNBUFFERED (``python -u``) ``sys.stdout.buffer`` is a raw FileIO, whose
    ``write`` is one system call and may write only part: a signal that arrives while
    the pipe is full cuts it short, and a non-blocking pipe takes what fits. Without
    this loop the rest of the batch was lost and a line torn in two.
    """
    view = memoryview(data)
    while view:
        try:
            written = stream.write(view)
        except BlockingIOError as exc:  # a buffered writer on a non-blocking pipe
            written = exc.characters_written
        if not written:  # a non-blocking pipe is full: wait until the reader drains it
            select.select([], [stream.fileno()], [])
            continue
        view = view[written:]


class _LineLogger:
    """Collects rendered lines and writes them in batches.

    One write per event costs a system call each, which at tens of thousands of
    events a second is most of the time. Lines are whole when written; the engine
    calls :meth:`flush` every 100 ms, so a reader still sees events as they happen.
    """

    def __init__(self, stream: IO[bytes], batch_bytes: int = 1 << 16) -> None:
        self._stream = stream
        self._buffer: list[bytes] = []
        self._size = 0
        self._batch_bytes = batch_bytes
        self._gone = False  # the reader left (`| head`)

    def msg(self, message: bytes) -> None:
        self._buffer.append(message)
        self._size += len(message)
        if self._size >= self._batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered. A reader that left loses the rest of the stream, but
        the scan goes on: its verdict, exit code and report files do not depend on it."""
        lines, self._buffer, self._size = self._buffer, [], 0
        if self._gone:
            return
        try:
            if lines:
                write_all(self._stream, b"".join(lines))
            self._stream.flush()
        except BrokenPipeError:
            self._gone = True


class UtcTimestamp:
    """structlog processor: ``timestamp`` as ISO-8601 UTC with milliseconds.

    Formatted once per millisecond: at tens of thousands of events a second most
    events share one, and formatting a datetime costs more than rendering the JSON.
    """

    __slots__ = ("_ms", "_text")

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        # the key is already in place (see JsonEventWriter._emit): assigning keeps its order
        ms = int(time.time() * 1000)
        if ms != self._ms:
            self._ms = ms
            moment = datetime.fromtimestamp(ms / 1000, UTC)
            self._text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        event_dict["timestamp"] = self._text
        return event_dict


Processor = Callable[[Any, str, Any], Any]


def json_processors() -> list[Processor]:
    """The event pipeline: add timestamp → render JSON (orjson)."""
    # orjson itself as the serializer: a Python wrapper around it cost as much as it
    return [
        UtcTimestamp(),
        structlog.processors.JSONRenderer(
            serializer=orjson.dumps, option=orjson.OPT_APPEND_NEWLINE
        ),
    ]


class JsonEventWriter:
    """Observer that streams every scan event as a JSON line (``--format json``)."""

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        change_of: Callable[[TargetResult], str | None] | None = None,
    ) -> None:
        # structlog's processor chain, driven directly: its BoundLogger layer costs more
        # than the rendering itself at tens of thousands of events per second.
        self._stamp, self._render = json_processors()
        self._sink = _LineLogger(stream if stream is not None else sys.stdout.buffer)
        self._change_of = change_of

    def _emit(self, name: str, level: str, fields: EventDict) -> None:
        # Key order ``event, timestamp, level, ...`` so a person can scan the stream:
        # built in that order here rather than reordered by a processor for every event.
        event = {"event": name, "timestamp": None, "level": level, **fields}
        self._sink.msg(self._render(None, level, self._stamp(None, level, event)))

    def flush(self) -> None:
        self._sink.flush()

    def on_start(self, targets: int, inventories: tuple[str, ...], concurrency: int) -> None:
        self._emit("scan.started", "info", scan_started(targets, inventories, concurrency))
        self.flush()

    def on_dns(self, result: DnsResult) -> None:
        self._emit(
            "dns.result",
            "info" if result.category is Category.RESOLVED else "warning",
            dns_result(result),
        )

    def on_probe(self, result: ProbeResult) -> None:
        self._emit(
            "probe.result",
            "info" if result.category is Category.OPEN else "warning",
            probe_result(result),
        )

    def on_target(self, result: TargetResult) -> None:
        change = self._change_of(result) if self._change_of is not None else None
        self._emit(
            "target.result", level_of(result.category, result.ok), target_result(result, change)
        )

    def on_hop(self, target: Target, path: PathTrace, hop: Hop) -> None:
        self._emit("path.hop", "info", path_hop(target, path, hop))

    def on_finish(self, summary: ScanSummary) -> None:
        level = "info" if summary.failed == 0 and summary.inconclusive == 0 else "error"
        self._emit("scan.finished", level, scan_finished(summary))
        self.flush()
