"""Names to addresses with aiodns (c-ares), one timed phase before any connect.

Why per family: a single AF_UNSPEC lookup folds two answers into one status, so a
SERVFAIL for AAAA would hide behind a NODATA for A. We ask A and AAAA separately and
concurrently, keep both outcomes, and let :func:`scanner.classify.combine_dns` decide.

/etc/hosts and resolv.conf are honoured as the system resolver would: c-ares reads
resolv.conf itself and getaddrinfo() looks in the hosts file first. ``CARES_HOSTS``
(c-ares' own variable) points at another hosts file, which tests use.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Mapping
from typing import Any

import anyio

from .classify import classify_ares, combine_dns
from .models import TRANSIENT, AddressFamily, Category, DnsResult, Family, ResolverConfig

_ARES_AI_ENVHOSTS = 1 << 8  # ares.h: read the hosts file named by $CARES_HOSTS
_ARES_ETIMEOUT = 12
_FAMILIES: Mapping[Family, tuple[AddressFamily, ...]] = {
    "any": ("ipv6", "ipv4"),  # the order RFC 6724 (and getaddrinfo) usually gives
    "ipv4": ("ipv4",),
    "ipv6": ("ipv6",),
}
_AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
#: names looked up at once (each asks A and AAAA): enough to keep a resolver busy
RESOLVER_CONCURRENCY = 256


def hosts_file_path() -> str:
    return os.environ.get("CARES_HOSTS") or "/etc/hosts"


def hosts_file_names(path: str) -> frozenset[str]:
    """Names listed in a hosts file, to say *where* an answer came from.

    c-ares does the lookup itself; this only labels ``dns.result.nameserver``,
    because a stale hosts entry is a classic cause of "it resolves to the wrong box".
    """
    names: set[str] = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                names.update(name.lower() for name in fields[1:])
    except OSError:
        pass
    return frozenset(names)


class Resolver:
    """Resolves each distinct (name, family) once, concurrently and under our deadline.

    c-ares retries on its own schedule; we still put a deadline around every lookup
    so one silent nameserver can never stall the scan.
    """

    def __init__(self, config: ResolverConfig, *, concurrency: int = RESOLVER_CONCURRENCY) -> None:
        import aiodns  # here, not at the top: a scan of addresses never needs c-ares

        self._config = config
        self._dns_error = aiodns.error.DNSError
        options: dict[str, object] = {"timeout": config.timeout, "tries": config.tries}
        self._dns = aiodns.DNSResolver(
            nameservers=list(config.nameservers) or None,
            loop=asyncio.get_running_loop(),
            **options,
        )
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._flags = _ARES_AI_ENVHOSTS if os.environ.get("CARES_HOSTS") else 0
        self._hosts_path = hosts_file_path()
        self._hosts_names = hosts_file_names(self._hosts_path)
        self._deadline = config.timeout * config.tries + 0.5
        servers = [s for s in self._dns._channel.servers]
        self.nameservers: tuple[str, ...] = tuple(str(s) for s in servers)

    async def aclose(self) -> None:
        await self._dns.close()

    async def resolve(self, host: str, family: Family, retries: int = 0) -> DnsResult:
        """Resolve ``host`` for ``family``, retrying transient failures ``retries`` times.

        The engine calls this once per distinct (name, family), however many targets
        share the name.
        """
        attempt = 0
        while True:
            attempt += 1
            result = await self._resolve_once(host, family, attempt)
            if result.category not in TRANSIENT or attempt > retries:
                return result
            await anyio.sleep(backoff_delay(attempt))

    async def _resolve_once(self, host: str, family: Family, attempt: int) -> DnsResult:
        started = time.perf_counter()
        families = _FAMILIES[family]
        outcomes: dict[AddressFamily, tuple[Category, list[str], str | None]] = {}
        async with self._limiter:
            # Both families are asked at once, a future each: a task per query cost more
            # than the query. Our deadline covers both; an unanswered one is a timeout.
            futures = [
                self._dns.getaddrinfo(host, family=_AF[af], flags=self._flags) for af in families
            ]
            with anyio.move_on_after(self._deadline):
                for af, future in zip(families, futures, strict=True):
                    outcomes[af] = await self._answer(af, future)
            for af, future in zip(families, futures, strict=True):
                if af not in outcomes:
                    future.cancel()
                    outcomes[af] = (
                        classify_ares(_ARES_ETIMEOUT),
                        [],
                        f"{af}: no answer within {self._deadline:g}s",
                    )
        latency_ms = (time.perf_counter() - started) * 1000.0
        per_family = tuple((af, outcomes[af][0]) for af in families)
        addresses: list[str] = []
        for af in families:
            for address in outcomes[af][1]:
                if address not in addresses:
                    addresses.append(address)
        category = combine_dns(per_family)
        details = [d for af in families if (d := outcomes[af][2])]
        source = (
            self._hosts_path
            if host.lower() in self._hosts_names
            else ",".join(self.nameservers) or None
        )
        return DnsResult(
            host=host,
            family=family,
            category=category,
            addresses=tuple(addresses),
            latency_ms=latency_ms,
            nameserver=source,
            per_family=per_family,
            detail="; ".join(details) or None,
            attempts=attempt,
        )

    async def _answer(
        self, af: AddressFamily, future: asyncio.Future[Any]
    ) -> tuple[Category, list[str], str | None]:
        """One family's outcome: its category, its addresses, c-ares' message if it failed."""
        try:
            answer = await future
        except self._dns_error as exc:
            status = int(exc.args[0]) if exc.args else -1
            message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            return classify_ares(status), [], f"{af}: {message}"
        addresses = []
        for node in answer.nodes:
            raw = node.addr[0]
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            return Category.DNS_NO_ADDRESS, [], None
        return Category.RESOLVED, addresses, None


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Exponential backoff with equal jitter before attempt ``attempt + 1``.

    Half the delay is fixed so retries really back off; the random half keeps many
    retrying probes from marching in step.
    """
    delay = min(cap, base * (2 ** (attempt - 1)))
    return float(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 - jitter, not crypto
