"""Which targets of a loaded inventory a scan checks: ``--tags``, ``--shard``, a worker's slice.

Nothing here expands a target list: tags and overrides act on the inventory's entries,
and slices are lazy views.

``--shard I/N``: a target belongs to shard ``I`` of ``N`` when the first 64 bits of the
SHA-256 of its name, modulo ``N``, equal ``I - 1``. SHA-256 (not ``hash()``, which is
salted per process) makes the split identical across machines, Python versions and runs,
and independent of the order of the inventory, so every target lands in exactly one shard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from msgspec import Struct
from msgspec.structs import replace

from ..models import Inventory
from .targets import FilteredTargets, TargetList

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class Shard(Struct, frozen=True):
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
    import hashlib  # here: OpenSSL's hashes cost every check 3 ms of start-up, most never shard

    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return int(digest[:16], 16) % count + 1


def select(
    inventory: Inventory,
    *,
    tags: Iterable[str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    dns_timeout: float | None = None,
    dns_tries: int | None = None,
) -> Inventory:
    """The targets carrying one of ``tags``, with ``--timeout``/``--retries`` applied, and the
    resolver with ``--dns-timeout``/``--dns-tries`` (over the inventory's and resolv.conf's)."""
    targets = inventory.targets
    if not isinstance(targets, TargetList):
        raise TypeError("select needs the TargetList of a loaded inventory")
    wanted = set(tags) if tags is not None else None
    resolver = inventory.resolver
    if dns_timeout is not None:
        resolver = replace(resolver, timeout=dns_timeout)
    if dns_tries is not None:
        resolver = replace(resolver, tries=dns_tries)
    return replace(
        inventory,
        targets=targets.select(tags=wanted, timeout=timeout, retries=retries),
        resolver=resolver,
    )


def shard(inventory: Inventory, part: Shard) -> Inventory:
    """Only the targets of ``part``; an empty shard is fine (a small inventory, many shards)."""
    return replace(
        inventory, targets=FilteredTargets(inventory.targets, lambda t: part.holds(t.name))
    )
