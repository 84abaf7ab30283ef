"""Atomic file writing for the artefacts: replaced whole, or appended in one write.

A deploy gate's artefacts are evidence: a kill, a signal or a full disk at any moment must
leave the earlier file whole or the new one whole, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


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
