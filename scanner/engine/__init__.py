"""The engine: run a scan from typed inputs (inventory, options) to typed results.

Every front end drives this: ``check``, ``trace``, ``demo``, the workers and the Python
API. The engine owns timing, limits, retries and deadlines (as blackbox_exporter's
handler does); :mod:`scanner.probers` only probe, :mod:`scanner.classify` only
interprets and :mod:`scanner.verdict` only decides. Results flow to an
:class:`~scanner.observers.Observer` as they happen, so output streams.

Inside: :mod:`._admission` (targets → jobs, names looked up once), :mod:`._pump`
(probes in flight), :mod:`._tally` (per-address results → target verdicts),
:mod:`._limits` (descriptors, rate, per-host cap), :mod:`._retry`, :mod:`._results`
(outcome → classified result) and :mod:`._run` (signals, deadline, summary).
"""

from ._limits import FD_RESERVE, Gate, effective_concurrency, raise_fd_limit
from ._loop import backend_options, run_scan_sync
from ._options import ScanOptions
from ._retry import LOCAL_RETRIES, Tries
from ._run import FLUSH_INTERVAL, run_scan

__all__ = [
    "FD_RESERVE",
    "FLUSH_INTERVAL",
    "LOCAL_RETRIES",
    "Gate",
    "ScanOptions",
    "Tries",
    "backend_options",
    "effective_concurrency",
    "raise_fd_limit",
    "run_scan",
    "run_scan_sync",
]
