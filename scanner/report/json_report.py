"""``--report PATH``: the whole scan as one JSON document (:class:`~.document.ReportDocument`).

The document is the interchange format of the deploy gate: ``--baseline`` compares with
one, ``scanner merge`` joins the documents of several shards, and the JUnit and Markdown
writers render from it, so a merged verdict looks exactly like a single scan's. Its shape
is :mod:`.document`'s, published as ``scanner/data/report.schema.json``.
"""

from __future__ import annotations

from pathlib import Path

from ._files import replace_file
from .document import ReportDocument, iter_report_bytes


def write_report(report: ReportDocument, path: str | Path) -> None:
    """The report as one JSON document, written one target at a time, replacing ``path``
    atomically (a kill mid-write leaves the earlier report whole)."""
    replace_file(path, iter_report_bytes(report))
