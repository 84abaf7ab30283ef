"""The fast path for the big inventory people write most: a ``targets:`` list of lines.

An inventory of 20,000 ``- 198.18.0.1:443`` lines spent 90 ms in libyaml (the event
check and compose) before validation began, ~4.5 µs a line, to learn what each line
says on its face: one scalar, at a known line and column. When ``targets:`` is the last
top-level key and every line after it is such an item (plain or simply quoted, an
optional comment, the same indent for all), the items are read here and only the part
of the file above them goes through YAML. Anything else (a mapping item, a tab, an
escape, a non-ASCII name, a continuation line) takes the full YAML path, which reports
problems exactly where they are; so does any problem in the part above.

What the full path would make of an item is kept exactly: a plain scalar that YAML 1.1
would read as another type (``1:30`` is the integer 90, ``yes`` a boolean) sends the
whole file down the full path, so its message is the one it always was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import yaml

#: the last top-level ``targets:`` key with nothing after it on its line but a comment
_TARGETS_KEY = re.compile(r"^targets:[ ]*(?:#[^\n]*)?\n", re.MULTILINE)
#: One item: ``- value`` with value plain (no character YAML gives meaning to, not
#: ending in ``:``), double-quoted without escapes, or single-quoted without ``''``.
_ITEM = re.compile(
    r"( *)-( +)(?:([A-Za-z0-9_./][A-Za-z0-9_./:-]*(?<!:))|\"([^\"\\\n]*)\"|'([^'\n]*)')"
    r"(?:[ ]+#.*|[ ]*)"
)
_BLANK = re.compile(r"[ ]*(?:#.*)?")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True, slots=True)
class PlainList:
    """The part of the file YAML still reads, and the items read here."""

    head: str
    #: 0-based line of the ``targets:`` key
    key_line: int
    #: (value, 1-based line, 1-based column of the value or its opening quote)
    items: list[tuple[str, int, int]]

    def slot(self, root: yaml.Node) -> yaml.Node | None:
        """The ``targets`` value node in ``root`` (the composed head) that the items
        fill, if the head reads as this module assumed: a top-level mapping whose
        ``targets`` key, at column 1 of :attr:`key_line`, has no value of its own."""
        if not isinstance(root, yaml.MappingNode):
            return None
        for key, value in root.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "targets"
                and key.start_mark.line == self.key_line
                and key.start_mark.column == 0
            ):
                if (
                    isinstance(value, yaml.ScalarNode)
                    and value.tag == _NULL_TAG
                    and value.value == ""
                ):
                    return value
                return None
        return None


def split_plain_list(text: str, max_items: int) -> PlainList | None:
    """The head and the items, when everything after the last ``targets:`` is items."""
    keys = list(_TARGETS_KEY.finditer(text))
    if not keys:
        return None
    start = keys[-1].end()
    if text.count("\n", start) > max_items:  # more lines than may be items: at once, the
        return None  # full path (a list of millions took 0.8 s longer to refuse otherwise)
    key_line = text.count("\n", 0, keys[-1].start())
    items = _items(text[start:].split("\n"), key_line + 2)
    if not items or len(items) > max_items:  # the last line may be one more than newlines
        return None
    return PlainList(text[:start], key_line, items)


def _items(lines: list[str], first_line: int) -> list[tuple[str, int, int]]:
    """Every line read as an item (blank and comment lines skipped); [] if one is not."""
    items: list[tuple[str, int, int]] = []
    indent: str | None = None
    match_item, match_blank = _ITEM.fullmatch, _BLANK.fullmatch
    resolve = cast("Callable[[type[yaml.Node], str, tuple[bool, bool]], str]", _RESOLVER.resolve)
    for number, line in enumerate(lines, start=first_line):
        item = match_item(line)
        if item is None:
            if match_blank(line) is None:
                return []
            continue
        if indent is None:
            indent = item.group(1)
        elif item.group(1) != indent:
            return []
        plain = item.group(3)
        if plain is not None:
            # Two dots make a plain scalar text in YAML 1.1: no int, float, bool, null or
            # timestamp has more than one. Other plain values ask YAML's own resolver.
            if plain.count(".") < 2 and resolve(yaml.ScalarNode, plain, (True, False)) != (
                _STR_TAG
            ):
                return []
            items.append((plain, number, item.end(2) + 1))
        else:
            quoted = item.group(4)
            items.append((quoted if quoted is not None else item.group(5), number, item.end(2) + 1))
    return items
