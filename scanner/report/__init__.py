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
    from .document import Change


def stream_observer(
    fmt: str,
    *,
    show_ok: bool = False,
    change_of: Callable[[TargetResult], Change | None] | None = None,
) -> Observer:
    """The observer that shows a scan on stdout: JSON lines, or the console for a person."""
    if fmt == "json":
        from .events import JsonEventWriter

        return JsonEventWriter(change_of=change_of)
    from ._sink import LineSink, SinkText, raw_stdout
    from .console import ConsoleReport

    out = SinkText(LineSink(raw_stdout(), batch_bytes=1), like=sys.stdout)
    return ConsoleReport(out, sys.stderr, show_ok=show_ok, change_of=change_of)
