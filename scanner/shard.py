"""``--shard I/N``: a deterministic slice of the targets, the same on every machine.

A target belongs to shard ``I`` of ``N`` when the first 64 bits of the SHA-256 of its
name, modulo ``N``, equal ``I - 1``. SHA-256 (not ``hash()``, which is salted per
process) makes the split identical across machines, Python versions and runs, and
independent of the order of the inventory, so every target lands in exactly one shard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """Parse ``I/N`` with 1 <= I <= N; raise ValueError with a message for a person."""
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not I/N (for example 2/4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"{text!r}: N must be at least 1")
    if not 1 <= index <= count:
        raise ValueError(f"{text!r}: I must be between 1 and N ({count})")
    return Shard(index, count)


def shard_of(name: str, count: int) -> int:
    """The 1-based shard that ``name`` belongs to when the targets are split ``count`` ways."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return int(digest[:16], 16) % count + 1


def select(items: Iterable[T], shard: Shard, name: str = "name") -> Iterator[T]:
    """The items whose attribute ``name`` falls into ``shard``."""
    for item in items:
        if shard.holds(getattr(item, name)):
            yield item
