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
from collections.abc import Iterable, Sequence
from pathlib import Path

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


def replace_file(path: str | Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to a file of its own beside ``path``, fsync it, rename it over ``path``.

    A kill at any moment leaves ``path`` as it was or whole: never torn.
    """
    target = Path(path)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed or removed below
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(handle.name, _mode(target))
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _sync_directory(target.parent)


def _mode(target: Path) -> int:
    """An existing file keeps its mode; a new one gets what open() would have given it."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def append_file(path: str | Path, data: bytes) -> None:
    """Append ``data`` in one write; if it fails, cut the file back to what it was."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """The rename itself survives a crash once the directory is synced."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
