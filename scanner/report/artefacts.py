"""The files a check writes besides its stream: ``--report``, ``--junit``, ``--markdown``.

All three are rendered from one :class:`~.document.ReportDocument`. Their paths are
checked before anything is probed, so a typo costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from msgspec import Struct

from .document import ReportDocument


class Artefacts(Struct, frozen=True, kw_only=True):
    """Where each artefact goes (None: not asked for)."""

    report: str | None = None
    junit: str | None = None
    markdown: str | None = None
    #: append the Markdown (GitHub's step summary) instead of replacing the file
    markdown_append: bool = False

    @property
    def wanted(self) -> bool:
        return bool(self.report or self.junit or self.markdown)

    def paths(self) -> list[tuple[str, str]]:
        """``(option, path)`` for each artefact asked for."""
        return [
            (option, path)
            for option, path in (
                ("--report", self.report),
                ("--junit", self.junit),
                ("--markdown", self.markdown),
            )
            if path
        ]

    def problems(self, inputs: Sequence[str] = ()) -> list[str]:
        """What is wrong with the paths, found before anything is probed."""
        found = []
        for option, path in self.paths():
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                found.append(f"{option} {path}: directory {parent} does not exist")
        return found

    def write(self, document: ReportDocument) -> list[str]:
        """Write every artefact asked for; a line for each that could not be written."""
        failed = []
        for option, path in self.paths():
            try:
                if option == "--report":
                    from .json_report import write_report

                    write_report(document, path)
                elif option == "--junit":
                    from .junit import write_junit

                    write_junit(document, path)
                else:
                    from .markdown import write_markdown

                    write_markdown(document, path, append=self.markdown_append)
            except OSError as exc:
                failed.append(f"cannot write {option} {path}: {exc.strerror or exc}")
        return failed
