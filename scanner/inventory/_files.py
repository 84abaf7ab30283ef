"""Inventory files → one validated :class:`~scanner.models.Inventory`, or every problem.

Files are read with a size limit before any parsing (a hostile ``/dev/zero`` costs
nothing), each file is read section by section (:mod:`._sections`), and what must hold
across files is checked last: unique names, one resolver setting, the union of scopes.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Iterator

from ..models import Inventory, ResolverConfig, SourceLocation
from ._names import duplicate_names
from ._sections import InventoryFile
from ._values import printable_path
from ._yaml import InventoryError, Problem
from .targets import TargetList, TargetSpec

#: Larger files are refused before reading: even a valid inventory this big would take
#: minutes and gigabytes to check (PyYAML builds a node per value), and a hostile one
#: (a 200 MB scalar, /dev/zero) must cost nothing. Big scans use CIDR hosts and port ranges.
MAX_FILE_BYTES = 64 * 1024 * 1024


def load_inventories(paths: Iterable[str], read: Callable[[str], bytes] | None = None) -> Inventory:
    """Load and merge inventory files; raise :class:`InventoryError` with every problem."""
    with _without_collections():
        return _load(paths, read)


@contextlib.contextmanager
def _without_collections() -> Iterator[None]:
    """No cyclic garbage collection while loading (it resumes after, as it was).

    Loading allocates a dozen container objects per target and keeps nearly all of them:
    the collector's passes over them free nothing. For 20,000 ``host:port`` lines they
    were 250 passes and 60-70 ms, a third of the load.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(paths: Iterable[str], read: Callable[[str], bytes] | None) -> Inventory:
    reader = read or _read_file
    problems: list[Problem] = []
    specs: list[TargetSpec] = []
    names: list[tuple[str, SourceLocation]] = []
    networks: list[tuple[TargetSpec, SourceLocation]] = []
    resolver: ResolverConfig | None = None
    resolver_from = ""
    scope: list[str] | None = None
    real_paths = list(paths)
    path_list = [printable_path(path) for path in real_paths]
    for real_path, path in zip(real_paths, path_list, strict=True):
        loader = InventoryFile(path)
        try:
            data = reader(real_path)
        except OSError as exc:
            problems.append(
                Problem(SourceLocation(path, 1, 1), f"cannot read: {exc.strerror or exc}")
            )
            continue
        except _TooLarge as exc:
            problems.append(Problem(SourceLocation(path, 1, 1), _too_large(exc.size)))
            continue
        if len(data) > MAX_FILE_BYTES:  # from a caller's reader
            problems.append(Problem(SourceLocation(path, 1, 1), _too_large(len(data))))
            continue
        file_specs, file_resolver = loader.load(data)
        problems.extend(loader.problems)
        specs.extend(file_specs)
        names.extend(loader.names)
        networks.extend(loader.networks)
        if loader.scope is not None:  # any file with a scope guards every target
            scope = (scope or []) + [n for n in loader.scope if n not in (scope or [])]
        if file_resolver is not None:
            if resolver is not None and file_resolver != resolver:
                problems.append(
                    Problem(
                        SourceLocation(path, 1, 1),
                        f"resolver settings differ from those in "
                        f"{resolver_from}; give them in one inventory",
                    )
                )
            resolver, resolver_from = file_resolver, path
    problems.extend(duplicate_names(names, networks))
    if problems:
        # file by file in the order given, then top to bottom
        order = {path: index for index, path in enumerate(path_list)}
        problems.sort(
            key=lambda p: (
                order.get(p.location.path, len(order)),
                p.location.line,
                p.location.column,
            )
        )
        raise InventoryError(problems)
    return Inventory(
        paths=tuple(path_list),
        targets=TargetList(specs),
        resolver=resolver or ResolverConfig(),
        scope=tuple(scope) if scope is not None else None,
    )


class _TooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def _too_large(size: int | None) -> str:
    what = f"{size / 1024 / 1024:,.1f} MiB" if size is not None else "more than that"
    return (
        f"file too large for an inventory: {what}, at most "
        f"{MAX_FILE_BYTES // 1024 // 1024} MiB (split it, or use CIDR hosts and port "
        "ranges)"
    )


def _read_file(path: str) -> bytes:
    """The file's bytes; :class:`_TooLarge` before reading anything above the limit."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise _TooLarge(size)
        # in pieces: a pipe or /dev/zero has no size to check, and may never end
        chunks: list[bytes] = []
        total = 0
        while chunk := handle.read(size + 1 if not chunks and size else 1 << 20):
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise _TooLarge(None)
            chunks.append(chunk)
    return b"".join(chunks)
