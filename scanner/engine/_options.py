"""How to run a scan, besides what the inventory says: the engine's typed input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import Struct

if TYPE_CHECKING:
    from ..probers.trace import TraceConfig


class ScanOptions(Struct, frozen=True, kw_only=True):
    """Everything ``check`` can set that is not a target's own setting."""

    #: probes in flight; None: DEFAULT_CONCURRENCY, always capped by the fd limit
    concurrency: int | None = None
    #: the whole scan's deadline in seconds; unfinished targets end inconclusive
    max_duration: float | None = None
    #: SIGINT/SIGTERM end the scan (interrupted, 130/143) instead of the process; the
    #: command line turns it on, an embedding program keeps its own handlers by default
    handle_signals: bool = False
    #: handshake attempts per second, overall
    rate: float | None = None
    #: handshakes in flight to one address at most
    per_address: int | None = None
    #: ``--allow`` CIDRs, added to the inventory's scope.allow
    allow: tuple[str, ...] = ()
    #: trace the path of failed addresses (:mod:`scanner.probers.trace`)
    trace_failures: bool = False
    #: hop limits and deadlines of the traces; None: the defaults
    trace: TraceConfig | None = None
