"""The files a check writes besides its stream: ``--report``, ``--junit``, ``--markdown``.

All three are rendered from one :class:`~.document.ReportDocument`, and all three are
evidence a deploy gate keeps, so none may be lost or half-written:

* every path is checked before anything is probed (a directory that does not exist or
  cannot be written to, a path that is a directory, two artefacts on one file, an
  artefact on an inventory): a typo costs nothing;
* each file is written next to its final name, fsynced and renamed over it, so a kill,
  a signal or a full disk at any moment leaves the earlier file whole or the new one
  whole, never a torn one (GitHub's step summary, which is appended to, is written in one
  write and cut back to its old length if that write fails);
* one artefact that cannot be written does not stop the others.
"""

from __future__ import annotations

import os
import tempfile
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
        seen: dict[str, str] = {}
        inputs_at = {_identity(path): path for path in inputs}
        for option, path in self.paths():
            problem = _unwritable(path, append=option == "--markdown" and self.markdown_append)
            if problem is not None:
                found.append(f"{option} {path}: {problem}")
                continue
            identity = _identity(path)
            if identity in seen:
                found.append(
                    f"{option} {path} is the same file as {seen[identity]}: "
                    "each artefact needs a file of its own"
                )
            elif identity in inputs_at:
                found.append(
                    f"{option} {path} is the inventory {inputs_at[identity]}: "
                    "writing it would destroy it"
                )
            seen.setdefault(identity, f"{option} {path}")
        return found

    def write(self, document: ReportDocument) -> list[str]:
        """Write every artefact asked for; a line for each that could not be written.

        A failed one leaves no partial file (and an earlier file of that name as it was).
        """
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
                failed.append(f"cannot write {option} {path}: {exc.strerror or exc}; not written")
        return failed


def _identity(path: str) -> str:
    """The same string for two spellings of one file (it may not exist yet)."""
    return os.path.realpath(path)


def _unwritable(path: str, *, append: bool) -> str | None:
    """Why ``path`` cannot take an artefact, tried for real; None when it can."""
    if os.path.isdir(path):
        return "is a directory"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if append and os.path.exists(path) and not os.access(path, os.W_OK):
        return "cannot be appended to (permission denied)"
    try:  # the real question: may a file be created beside it (and renamed over it)?
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".scanner-check-"):
            pass
    except OSError as exc:
        return f"cannot write in {parent}: {exc.strerror or exc}"
    return None
