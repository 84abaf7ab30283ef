"""Output: the typed report document and one module per format, each an observer or a writer.

:mod:`.document` (every shape, typed), :mod:`.events` (JSON lines), :mod:`.console`,
:mod:`.json_report`, :mod:`.junit`, :mod:`.markdown`, :mod:`.baseline`, :mod:`.merge`,
:mod:`.artefacts` (which files a check writes, and writing them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import TargetResult
    from ..observers import Observer
    from .console import Verbosity
    from .document import Change


def stream_observer(
    fmt: str,
    *,
    show_ok: bool = False,
    change_of: Callable[[TargetResult], Change | None] | None = None,
    verbosity: Verbosity = "normal",
) -> Observer:
    """The observer that shows a scan on stdout: JSON lines, or the console for a person."""
    if fmt == "json":
        from .events import JsonEventWriter

        return JsonEventWriter(change_of=change_of)
    from ._sink import LineSink, SinkText, raw_stdout
    from .console import ConsoleReport

    out = SinkText(LineSink(raw_stdout(), batch_bytes=1), like=sys.stdout)
    return ConsoleReport(out, sys.stderr, show_ok=show_ok, change_of=change_of, verbosity=verbosity)


#: failures each category lists in the stderr summary beside JSON (``-v``: every one)
SUMMARY_PER_GROUP = 3


def summary_observer(
    *,
    change_of: Callable[[TargetResult], Change | None] | None = None,
    verbosity: Verbosity = "normal",
    progress: bool | None = None,
    counts_only: bool = False,
) -> Observer:
    """With JSON lines on stdout: a short summary for a person on stderr, and progress.

    A CI job that sends the events to a file (``--format json > events.jsonl``) still
    says in its log why it failed: the first failures of each category with their
    hints, then the verdict and the counts. Progress shows only when stderr is a TTY.
    ``counts_only``: no result will come (workers that send none), so the per-category
    counts take the failures' place.
    """
    from ._sink import LineSink, SinkText
    from .console import ConsoleReport

    raw = open(2, "wb", buffering=0, closefd=False)  # noqa: SIM115 - fd 2, kept open
    out = SinkText(LineSink(raw, batch_bytes=1, name="stderr"), like=sys.stderr)
    return ConsoleReport(
        out,
        sys.stderr,
        change_of=change_of,
        verbosity=verbosity,
        progress=progress,
        header=False,
        table=counts_only,
        limit=SUMMARY_PER_GROUP,
        more="the JSON events have every one",
    )
