"""Numbers and nouns as every writer prints them: ``1 target``, ``5,121 targets``.

One place, so the console, the stderr summary, the Markdown and the CLI's messages never
disagree on a plural or a thousands separator.
"""

from __future__ import annotations

from typing import Protocol

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


class _Timed(Protocol):
    @property
    def dns_ms(self) -> float | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def tls_ms(self) -> float | None: ...


def phases(probe: _Timed) -> list[tuple[str, float]]:
    """Where one address's time went, in order: ``[("dns", 1.2), ("connect", 0.3), ...]``
    (the phases it had; the console and the Markdown each print them their way)."""
    timed = (("dns", probe.dns_ms), ("connect", probe.latency_ms), ("tls", probe.tls_ms))
    return [(label, value) for label, value in timed if value is not None]
