"""Numbers and nouns as every writer prints them: ``1 target``, ``5,121 targets``.

One place, so the console, the stderr summary, the Markdown and the CLI's messages never
disagree on a plural or a thousands separator.
"""

from __future__ import annotations

#: nouns whose plural is not the noun plus "s"
_PLURALS = {"address": "addresses", "entry": "entries", "category": "categories"}


def plural(count: int, noun: str) -> str:
    """``noun`` as ``count`` of it needs: ``target`` or ``targets``."""
    if count == 1:
        return noun
    return _PLURALS.get(noun, noun + "s")


def counted(count: int, noun: str) -> str:
    """``1 target``, ``0 targets``, ``5,121 targets`` (thousands separated by commas)."""
    return f"{count:,} {plural(count, noun)}"
