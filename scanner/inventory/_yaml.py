"""The YAML layer of an inventory file: safe parsing, marks, scalars, mappings.

Why not a schema library: every message must point at the exact line and column of
the offending key or value, and all problems must be reported at once. PyYAML's node
tree (built by the C loader when present) carries those marks, so the inventory is
validated on the nodes directly. Aliases are refused before any node is built, which
also makes "billion laughs" inputs harmless; so are absurd nesting and node counts.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..models import SourceLocation
from ._plain import split_plain_list

if TYPE_CHECKING:  # the C parser's marks are their own class
    from yaml._yaml import Mark as _CMark

try:  # the C loader is several times faster; fall back silently when absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: An inventory is 4 levels deep; far deeper input is hostile (libyaml's composer
#: recurses and crashes the interpreter at around 100,000 levels).
MAX_DEPTH = 64
#: What YAML forbids in a stream (PyYAML's Reader.NON_PRINTABLE); found before parsing so
#: the message can say where.
#: PyYAML compiles it on import already; compiling it again cost 8 ms of start-up.
_NON_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE
_STANDARD_TAG = "tag:yaml.org,2002:"
_STR_TAG = _STANDARD_TAG + "str"
#: Values (scalars and collections) one file may hold, counted while parsing and before
#: any node is built: ~100,000 written-out targets. Dense input within MAX_FILE_BYTES
#: (``[0,0,0,...]``) would otherwise build tens of millions of nodes.
MAX_NODES = 1_000_000
#: How much of an offending value a message quotes.
_SHOWN = 60


#: Where a value was written: its node, or its location when it was read without one.
Where = yaml.Node | SourceLocation


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an inventory, and where."""

    location: SourceLocation
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InventoryError(Exception):
    """Raised with every problem found; nothing may be probed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


@dataclass
class YamlFile:
    """One inventory file's YAML, and the problems found in it so far."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    #: scalar nodes already reported as unreadable; no second problem for them
    _unreadable: set[int] = field(default_factory=set)
    _constructor: yaml.constructor.SafeConstructor = field(
        default_factory=yaml.constructor.SafeConstructor
    )
    #: the ``targets`` node whose items were read without YAML (see :mod:`._plain`),
    #: and those items with where each was written
    plain_items: tuple[yaml.Node, list[tuple[str, SourceLocation]]] | None = None

    def where(self, node: Where | yaml.Mark | _CMark | None) -> SourceLocation:
        if isinstance(node, SourceLocation):
            return node
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        if mark is None:
            return SourceLocation(self.path, 1, 1)
        return SourceLocation(self.path, mark.line + 1, mark.column + 1)

    def problem(self, node: Where | yaml.Mark | _CMark | None, message: str) -> None:
        if isinstance(node, yaml.Node) and id(node) in self._unreadable:
            return
        self.problems.append(Problem(self.where(node), message))

    def problem_at(self, text: str, offset: int, message: str) -> None:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        self.problems.append(Problem(SourceLocation(self.path, line, column), message))

    def parse(self, data: bytes) -> yaml.Node | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problems.append(
                Problem(SourceLocation(self.path, line, column), "not valid UTF-8")
            )
            return None
        bad = _NON_PRINTABLE.search(text)
        if bad is not None:
            char = bad.group()
            self.problem_at(
                text,
                bad.start(),
                "NUL byte in inventory"
                if char == "\x00"
                else f"control character U+{ord(char):04X} is not allowed in YAML",
            )
            return None
        plain = split_plain_list(text, MAX_NODES)
        if plain is not None:
            found = len(self.problems)
            # the items count towards MAX_NODES: past it, the full path says where
            head = self._compose(plain.head, counted=len(plain.items))
            slot = plain.slot(head) if head is not None else None
            if slot is not None and len(self.problems) == found:
                path = self.path
                self.plain_items = (
                    slot,
                    [
                        (value, SourceLocation(path, line, column))
                        for value, line, column in plain.items
                    ],
                )
                return head
            del self.problems[found:]  # the whole file says it better
        return self._compose(text)

    def _compose(self, text: str, counted: int = 0) -> yaml.Node | None:
        try:
            if not self.events_are_safe(text, counted):
                return None
            node = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            self.problem(exc.problem_mark or exc.context_mark, _syntax_message(exc))
            return None
        except yaml.reader.ReaderError as exc:
            # libyaml counts in UTF-8 bytes; turn that into a character offset
            offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
            self.problem_at(text, offset, f"YAML error: {exc.reason}")
            return None
        except yaml.YAMLError as exc:
            self.problem(None, f"YAML error: {exc}")
            return None
        if node is None:
            self.problem(None, "the inventory is empty")
        return node

    def events_are_safe(self, text: str, counted: int = 0) -> bool:
        """Refuse aliases and absurd nesting from the event stream, before any node exists
        (``counted``: values of the file already read another way).

        Aliases are refused rather than expanded, so "billion laughs" costs nothing.
        """
        safe = True
        depth, nodes = 0, counted
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    self.problem(
                        event.start_mark,
                        f"more than {MAX_NODES:,} values in one "
                        "inventory: split it into several files, or use CIDR hosts "
                        "and port ranges",
                    )
                    return False
            if isinstance(event, yaml.AliasEvent):
                self.problem(
                    event.start_mark,
                    f"YAML alias *{event.anchor} is not allowed: write the value out",
                )
                safe = False
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    self.problem(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return safe

    def scalar(self, node: yaml.Node) -> Any:
        """The Python value of a scalar node; a non-scalar node is returned as is.

        A value its tag cannot describe (``!!int x``, ``!custom 80``) is reported here,
        once, and comes back as :data:`_UNREADABLE`; callers then stay quiet about it.
        """
        if not isinstance(node, yaml.ScalarNode):
            return node  # callers treat non-scalars as a type error
        if node.tag == _STR_TAG:  # most values: the text itself (the constructor: 8 µs each)
            return node.value
        if node.tag.endswith(":timestamp") or node.tag.endswith(":binary"):
            return node.value  # keep as text; no key of ours wants these types
        if id(node) in self._unreadable:
            return _UNREADABLE
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, KeyError, TypeError, OverflowError) as exc:
            tag = (
                f"!!{node.tag[len(_STANDARD_TAG) :]}"
                if node.tag.startswith(_STANDARD_TAG)
                else node.tag
            )
            if isinstance(exc, yaml.constructor.ConstructorError):  # no such tag for us
                message = f"YAML tag {_shown(tag)} is not supported"
            else:
                message = f"{_shown(node.value)} cannot be read as {tag}"
            self.problem(node, message)
            self._unreadable.add(id(node))
            return _UNREADABLE
        finally:
            self._constructor.constructed_objects.clear()

    def mapping(
        self, node: yaml.Node, what: str, allowed: Sequence[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node, checking for unknown and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping, not {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{what} keys must be plain names")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                foreign = next((ch for ch in key if not ch.isascii()), None)
                if close and foreign is not None:  # a look-alike: say what differs
                    suggestion = (
                        f" (did you mean '{close[0]}'? it has U+{ord(foreign):04X} "
                        f"{unicodedata.name(foreign, 'a non-ASCII character')})"
                    )
                self.problem(
                    key_node,
                    f"unknown key {_shown(key)} in {what}{suggestion}; "
                    f"allowed: {', '.join(allowed)}",
                )
                continue
            if key in out:
                first = self.where(out[key][0])
                self.problem(
                    key_node, f"duplicate key {_shown(key)} in {what} (first at line {first.line})"
                )
                continue
            out[key] = (key_node, value_node)
        return out


_UNREADABLE: Any = type("_Unreadable", (), {"__repr__": lambda self: "<unreadable>"})()


def _shown(value: object) -> str:
    """``repr(value)`` for a message, cut short: a 1 MB host name needs no 1 MB message."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[: _SHOWN - 10]}…{text[-8:]} ({size:,} characters)"


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem, with its context ("while parsing a flow sequence") and where that began.

    The problem mark alone often points at the end of the file; the context mark says
    where the unfinished construct started.
    """
    problem = (exc.problem or exc.context or "invalid YAML").removeprefix("but ")
    message = f"YAML syntax error: {problem}"
    context, mark = exc.context, exc.context_mark
    if exc.problem and context and mark is not None:
        message += f" ({context}, from line {mark.line + 1} column {mark.column + 1})"
    return message


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    names = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "null": "nothing (null)",
    }
    return f"{names.get(tag, tag)} ({_shown(node.value)})" if tag != "null" else names["null"]
