"""Targets named on the command line: files, ``-`` (stdin) and ``HOST:PORT`` in one inventory.

``scanner check db:5432 cache:6379`` and ``scanner wait inv.yaml api:443`` need no file of
their own. Each argument is, in this order: ``-`` (an inventory read from stdin), an
existing file, or ``HOST:PORT`` / ``[v6]:PORT``. The ``HOST:PORT`` arguments become one
generated inventory, loaded by the same loader as any file: every check the loader makes
(a host that is no name, ``0.0.0.0``, a family that cannot fit, duplicate names) holds for
them too, and every other option works on them. A problem in the generated text is said
about the argument it came from (``argument 'bad host:80': ...``), not about a line nobody
wrote.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from ..models import Inventory, SourceLocation
from ._files import MAX_FILE_BYTES, _read_file, load_inventories
from ._values import split_host_port
from ._yaml import InventoryError, Problem

#: the inventory the ``HOST:PORT`` arguments become, as reports and messages name it
ARGUMENTS = "<command line>"
#: an inventory read from standard input (the argument ``-``)
STDIN = "<stdin>"
_FIRST_LINE = 4  # the generated text's first target line (after version, defaults, targets)
_LOCATION = re.compile(re.escape(ARGUMENTS) + r":(\d+):\d+")


@dataclass(frozen=True)
class AdhocDefaults:
    """The ``defaults`` of the generated inventory: what ``--expect`` / ``--family`` set."""

    expect: str | None = None
    family: str | None = None

    def yaml(self) -> str:
        import json  # here: only HOST:PORT arguments need it (2 ms of every start-up)

        settings = {k: v for k, v in (("expect", self.expect), ("family", self.family)) if v}
        return json.dumps(settings)  # JSON is YAML: quoting done right, whatever the value


@dataclass
class Arguments:
    """The arguments sorted out: files in order, ``HOST:PORT`` targets, what is neither."""

    paths: list[str] = field(default_factory=list)  # files, STDIN and ARGUMENTS, in order
    endpoints: list[str] = field(default_factory=list)  # HOST:PORT arguments, without repeats
    problems: list[str] = field(default_factory=list)

    @property
    def has_files(self) -> bool:
        return any(path != ARGUMENTS for path in self.paths)


def is_endpoint(text: str) -> bool:
    """``HOST:PORT`` or ``[v6]:PORT`` with a port of 1 to 65535."""
    parsed = split_host_port(text)
    return parsed is not None and bool(parsed[0]) and 1 <= parsed[1] <= 65535


def looks_like_path(text: str) -> bool:
    """A path, never a target: a ``/`` (no host name has one) or a YAML file's suffix."""
    return "/" in text or text.lower().endswith((".yaml", ".yml"))


def sort_arguments(
    arguments: Sequence[str], exists: Callable[[str], bool] = os.path.exists
) -> Arguments:
    """Which argument is a file, stdin or a target (a file wins: ``./db:5432`` is a path)."""
    sorted_out = Arguments()
    for argument in arguments:
        if argument == "-":
            if STDIN in sorted_out.paths:
                sorted_out.problems.append("'-' (stdin) given twice: stdin can be read once")
            else:
                sorted_out.paths.append(STDIN)
        elif exists(argument):
            sorted_out.paths.append(argument)
        elif looks_like_path(argument):  # said as the loader says a file it cannot read
            sorted_out.problems.append(f"{argument}:1:1: cannot read: {os.strerror(errno.ENOENT)}")
        elif is_endpoint(argument):
            if ARGUMENTS not in sorted_out.paths:
                sorted_out.paths.append(ARGUMENTS)
            if argument not in sorted_out.endpoints:
                sorted_out.endpoints.append(argument)
        else:
            sorted_out.problems.append(
                f"{argument!r} is neither a file (no such file) nor HOST:PORT ([v6]:PORT for IPv6)"
            )
    return sorted_out


def adhoc_text(endpoints: Sequence[str], defaults: AdhocDefaults = AdhocDefaults()) -> bytes:
    """The inventory the ``HOST:PORT`` arguments stand for: one target line each."""
    import json

    lines = ["version: 1", f"defaults: {defaults.yaml()}", "targets:"]
    lines.extend(f"  - {json.dumps(endpoint)}" for endpoint in endpoints)
    return ("\n".join(lines) + "\n").encode("utf-8")


def read_stdin(stream: BinaryIO | None = None) -> bytes:
    """Standard input, at most :data:`MAX_FILE_BYTES` (one byte more says it is too large)."""
    source = stream if stream is not None else sys.stdin.buffer
    return source.read(MAX_FILE_BYTES + 1)


def load_arguments(
    arguments: Arguments,
    defaults: AdhocDefaults = AdhocDefaults(),
    stdin: Callable[[], bytes] = read_stdin,
) -> Inventory:
    """One inventory from files, stdin and ``HOST:PORT`` arguments; :class:`InventoryError`
    with every problem, those of the generated text said about their argument."""
    generated = adhoc_text(arguments.endpoints, defaults) if arguments.endpoints else b""

    def read(path: str) -> bytes:
        if path == ARGUMENTS:
            return generated
        if path == STDIN:
            return stdin()
        return _read_file(path)

    try:
        return load_inventories(arguments.paths, read=read)
    except InventoryError as exc:
        raise InventoryError(
            [_about_argument(p, arguments.endpoints) for p in exc.problems]
        ) from exc


def _about_argument(problem: Problem, endpoints: Sequence[str]) -> Problem:
    """A problem of the generated text (or one that points into it) named by its argument."""

    def argument(line: int) -> str:
        index = line - _FIRST_LINE
        return repr(endpoints[index]) if 0 <= index < len(endpoints) else ARGUMENTS

    message = _LOCATION.sub(lambda m: f"argument {argument(int(m.group(1)))}", problem.message)
    location = problem.location
    if location.path == ARGUMENTS:
        # the location is the argument itself: column 1 of it
        location = SourceLocation(f"argument {argument(location.line)}", 1, 1)
    return Problem(location, message)


def describe(problem: Problem) -> str:
    """A problem as the command line says it: ``argument 'x:1': ...`` or ``file:line:col: ...``."""
    if problem.location.path.startswith("argument "):
        return f"{problem.location.path}: {problem.message}"
    return str(problem)


__all__: Sequence[str] = (
    "ARGUMENTS",
    "STDIN",
    "AdhocDefaults",
    "Arguments",
    "adhoc_text",
    "describe",
    "is_endpoint",
    "load_arguments",
    "read_stdin",
    "sort_arguments",
)
