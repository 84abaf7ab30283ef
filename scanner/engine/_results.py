"""From a prober's raw outcome to a :class:`ProbeResult`: classify, then say what to check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..classify import classify_connect, classify_latency, errno_name, hint_for
from ..models import AddressFamily, Category, ConnectOutcome, IcmpDetail, ProbeResult, Target
from ..scope import ScopeGuard


def classify_attempt(
    target: Target, address: str, outcome: ConnectOutcome, local: str | None
) -> Category:
    """The category of one handshake to ``address`` (``local``: the source we used), and of
    its TLS phase when it had one (``slow`` still judges the TCP handshake alone)."""
    category = classify_connect(outcome, (local,) if local else (), address)
    if category is Category.OPEN and outcome.tls is not None and target.tls is not None:
        from ..probers.tls import classify_tls

        category = classify_tls(outcome.tls, target.tls, datetime.now(UTC))[0]
    return classify_latency(category, outcome.latency_ms, target.max_latency_ms)


def attempt_result(
    target: Target,
    address: str,
    family: AddressFamily,
    *,
    category: Category,
    outcome: ConnectOutcome,
    attempts: int,
    dns_ms: float | None = None,
) -> ProbeResult:
    """The :class:`ProbeResult` of an address's final handshake, with its hint."""
    errno = None if outcome.errno == 0 else errno_name(outcome.errno)
    tls = tls_hint = None
    if outcome.tls is not None and target.tls is not None:
        from ..probers.tls import classify_tls, tls_info

        now = datetime.now(UTC)
        tls_hint = classify_tls(outcome.tls, target.tls, now)[1]
        tls = tls_info(outcome.tls, now)
    if category is Category.OPEN:
        hint = None
    elif category.is_tls:
        hint = tls_hint
    elif category is Category.SLOW:
        hint = hint_for(category, latency_ms=outcome.latency_ms, budget_ms=target.max_latency_ms)
    elif category is Category.CLOSED_BY_PEER:
        hint = hint_for(category, peer_closed=outcome.peer_closed, hold_ms=target.hold_ms)
    else:  # the same few sentences over and over: format each once
        # the target's own address only matters to a reject ("the host itself rejects")
        rejected_by = address if category is Category.REJECTED else None
        hint = _probe_hint(category, target, outcome.icmp, errno, rejected_by)
    return ProbeResult(
        target=target,
        address=address,
        family=family,
        category=category,
        latency_ms=outcome.latency_ms,
        attempts=attempts,
        errno=errno,
        icmp=outcome.icmp,
        hint=hint,
        tls=tls,
        tls_ms=outcome.tls.tls_ms if outcome.tls is not None else None,
        dns_ms=dns_ms,
    )


def out_of_scope(
    target: Target, address: str, family: AddressFamily, scope: ScopeGuard
) -> ProbeResult:
    """The result for an address the scope guard keeps us away from: no packet was sent."""
    hint = hint_for(Category.OUT_OF_SCOPE, literal=target.host == address)
    return ProbeResult(
        target=target,
        address=address,
        family=family,
        category=Category.OUT_OF_SCOPE,
        latency_ms=None,
        attempts=0,
        errno=None,
        icmp=None,
        hint=f"{hint} (allowed: {scope})",
    )


_HintKey = tuple[Category, int, float, IcmpDetail | None, str | None, str | None]
_hints: dict[_HintKey, str | None] = {}
_MISSING: Any = object()


def _probe_hint(
    category: Category,
    target: Target,
    icmp: IcmpDetail | None,
    errno: str | None,
    target_address: str | None,
) -> str | None:
    """:func:`hint_for` a failed handshake, each distinct sentence formatted once.

    A big scan says the same few sentences thousands of times. The cache is bounded:
    rejects name the target's address, so a huge scan could otherwise grow it forever.
    """
    port, timeout = target.port, target.timeout
    key = (category, port, timeout, icmp, errno, target_address)
    hint = _hints.get(key, _MISSING)
    if hint is _MISSING:
        if len(_hints) >= 4096:
            _hints.clear()
        hint = _hints[key] = hint_for(
            category,
            port=port,
            timeout=timeout,
            icmp=icmp,
            errno_name=errno,
            target_address=target_address,
        )
    return hint  # type: ignore[no-any-return]
