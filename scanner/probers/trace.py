"""Path trace: TCP handshakes with rising hop limits name the hop where a path ends.

traceroute's idea with the scanner's own probe: the same TCP SYN to the same address
and port as the failed check, once per hop limit (``IP_TTL`` / ``IPV6_UNICAST_HOPS``).
Each router on the way that sees the limit run out answers with ICMP time exceeded,
which the kernel queues on the socket's error queue (``IP_RECVERR`` /
``IPV6_RECVERR``) together with the router's address — no raw socket, no capability.
The last router that answers is the last hop the packets certainly passed; a reject
names the hop that rejects; an answer from the target itself means the path works.

Two layers, as in the rest of the scanner: :func:`hop_of` and :func:`build_path` are
pure (outcomes in, :class:`~scanner.models.Hop` and a verdict out, table-tested), and
:func:`trace_path` / :class:`PathTracer` own the deadlines and concurrency. Every
handshake goes through the scan's own :class:`~.tcp.Dialer`, with a hook that sets the
hop limit: the same socket code, error queue and linger as every other probe.

Hop limits are probed in waves (all limits of a wave at once, each with its own
deadline), so a trace costs about one ``hop_timeout`` per wave that has silent hops,
not one per hop.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio
from msgspec import Struct
from msgspec.structs import replace

from ..classify import (
    ACCEPTED_THEN_CLOSED,
    ICMP4_TIME_EXCEEDED,
    ICMP6_TIME_EXCEEDED,
    classify_icmp,
    errno_name,
    icmp_name,
    same_address,
)
from ..models import (
    AddressFamily,
    Category,
    ConnectOutcome,
    Hop,
    IcmpDetail,
    PathTrace,
    ProbeResult,
    Target,
    TargetResult,
)
from .tcp import Dialer

#: Failures a trace can say something about. A reset comes from the target's address
#: whoever forged it, a local block never leaves this machine, a shortage is ours.
TRACEABLE = frozenset(
    {Category.TIMEOUT, Category.REJECTED, Category.HOST_UNREACHABLE, Category.NETWORK_UNREACHABLE}
)
#: Categories whose addresses are never traced, even by ``scanner trace``: no packet
#: was sent (out of scope) or this machine could not send one (a shortage).
UNTRACEABLE = frozenset({Category.OUT_OF_SCOPE, Category.INCONCLUSIVE})

_LOCAL_BLOCK = frozenset({"EACCES", "EPERM"})
_NO_ROUTE = frozenset({"ENETUNREACH", "EHOSTUNREACH"})

Pace = Callable[[], Awaitable[None]]
HopCallback = Callable[[Target, PathTrace, Hop], None]


class TraceConfig(Struct, frozen=True):
    """How far and how long to trace.

    ``wave`` hop limits are probed at once; the next wave starts only while the path
    still answers near the end of the current one (see :func:`needs_next_wave`).
    """

    max_hops: int = 30
    hop_timeout: float = 2.0
    wave: int = 8
    #: trace addresses that met their expectation too (``scanner trace``)
    include_ok: bool = False


# --- pure: what one TTL-limited handshake means -----------------------------------------


def is_time_exceeded(icmp: IcmpDetail) -> bool:
    exceeded = ICMP4_TIME_EXCEEDED if icmp.family == "ipv4" else ICMP6_TIME_EXCEEDED
    return icmp.type == exceeded


def hop_of(ttl: int, outcome: ConnectOutcome, target: str) -> Hop:
    """One handshake with hop limit ``ttl`` towards ``target`` → :class:`Hop`.

    ``reached`` when the target itself answered: the handshake completed, a reset came
    back (no ICMP), or an ICMP error was sent from the target's address.
    """
    symbolic = None if outcome.errno == 0 else errno_name(outcome.errno)
    icmp = outcome.icmp
    rtt = None if outcome.timed_out else round(outcome.latency_ms, 3)
    if icmp is not None:
        return Hop(
            ttl=ttl,
            address=icmp.sender,
            rtt_ms=rtt,
            icmp_type=icmp.type,
            icmp_code=icmp.code,
            reached=same_address(icmp.sender, target),
            errno=symbolic,
        )
    if outcome.timed_out:
        return Hop(
            ttl=ttl,
            address=None,
            rtt_ms=None,
            icmp_type=None,
            icmp_code=None,
            reached=False,
            errno=symbolic,
        )
    reached = outcome.errno in (0, errno.ECONNREFUSED) or outcome.errno in ACCEPTED_THEN_CLOSED
    return Hop(
        ttl=ttl,
        address=target if reached else None,
        rtt_ms=rtt,
        icmp_type=None,
        icmp_code=None,
        reached=reached,
        errno=symbolic,
    )


def _icmp(hop: Hop, family: AddressFamily) -> IcmpDetail | None:
    if hop.icmp_type is None or hop.icmp_code is None:
        return None
    return IcmpDetail(hop.icmp_type, hop.icmp_code, hop.address, family)


def is_terminal(hop: Hop, family: AddressFamily) -> bool:
    """Higher hop limits cannot say more: the target answered, a hop refused to forward,
    or the handshake failed on this machine before anything was sent."""
    if hop.reached:
        return True
    icmp = _icmp(hop, family)
    if icmp is not None:
        return not is_time_exceeded(icmp)
    return hop.errno is not None and hop.errno != "ETIMEDOUT"


def needs_next_wave(
    hops: Iterable[Hop], family: AddressFamily, last_ttl: int, tail: int = 3
) -> bool:
    """Go on after a wave only while the path still answers near its end.

    No terminal hop, and a router answered one of the wave's last ``tail`` hop limits
    (a single silent router does not end the trace; a silent tail does).
    """
    seen = list(hops)
    if any(is_terminal(h, family) for h in seen):
        return False
    return any(h.address is not None and h.ttl > last_ttl - tail for h in seen)


def build_path(
    address: str,
    port: int,
    family: AddressFamily,
    hops: Iterable[Hop],
    *,
    probed: int,
    local_addresses: Sequence[str] = (),
) -> PathTrace:
    """The trace as reported: hops up to the first terminal one, a verdict, the last hop.

    Without a terminal hop, silent hops after the last answer fold into one (``probed``
    keeps how far the trace looked: the terminal hop, else the last hop limit tried).
    ``local_addresses`` are this machine's source
    addresses: an ICMP from one of them is this machine's own firewall.
    """
    ordered = sorted({h.ttl: h for h in hops}.values(), key=lambda h: h.ttl)
    terminal = next((h for h in ordered if is_terminal(h, family)), None)
    if terminal is not None:
        shown = [h for h in ordered if h.ttl <= terminal.ttl]
        probed = min(probed, terminal.ttl)
    else:
        answered = [h.ttl for h in ordered if h.address is not None]
        end = (answered[-1] if answered else 0) + 1
        shown = [h for h in ordered if h.ttl <= end]
    last = next((h for h in reversed(shown) if h.address is not None), None)
    verdict = _verdict(terminal, last, family, probed=probed, local_addresses=local_addresses)
    return PathTrace(
        address=address,
        port=port,
        family=family,
        hops=tuple(shown),
        probed=probed,
        last_hop=last.address if last else None,
        verdict=verdict,
    )


def _verdict(
    terminal: Hop | None,
    last: Hop | None,
    family: AddressFamily,
    *,
    probed: int,
    local_addresses: Sequence[str],
) -> str:
    if terminal is not None:
        return _terminal_verdict(terminal, family, local_addresses)
    if last is None:
        return (
            f"no hop answered (hop limits 1–{probed}): dropped on this machine or at "
            "the first hop, or ICMP is filtered or rate-limited"
        )
    if last.ttl == probed:
        return f"target not reached within {probed} hops (last: hop {last.ttl}, {last.address})"
    return f"dropped after hop {last.ttl} ({last.address})"


def _terminal_verdict(  # noqa: PLR0911 - a table of sentences, one return each
    hop: Hop, family: AddressFamily, local_addresses: Sequence[str]
) -> str:
    n = hop.ttl
    icmp = _icmp(hop, family)
    if hop.reached:
        if icmp is not None:
            return f"reached host at hop {n}, which rejects the port (ICMP {icmp_name(icmp)})"
        if hop.errno is None or hop.errno in ("ECONNRESET", "EPIPE"):  # accepted, then closed
            return f"reached host at hop {n}, port open"
        return f"reached host at hop {n}, port refused there (TCP reset)"
    if icmp is not None:
        if any(same_address(icmp.sender, a) for a in local_addresses):
            return f"blocked by this machine's own firewall ({icmp.sender})"
        where = f"hop {n} ({icmp.sender or 'unknown address'})"
        category = classify_icmp(icmp)
        if category is Category.HOST_UNREACHABLE:
            return f"host unreachable, reported by {where}"
        if category is Category.NETWORK_UNREACHABLE:
            return f"no route, reported by {where}"
        return f"rejected by {where}"
    if hop.errno in _LOCAL_BLOCK:
        return f"blocked on this machine ({hop.errno}): nothing was sent"
    if hop.errno in _NO_ROUTE:
        return f"no route on this machine ({hop.errno}): nothing was sent"
    return f"trace failed on this machine ({hop.errno})"


# --- sockets ------------------------------------------------------------------------------


def hop_limit(family: AddressFamily, ttl: int) -> Callable[[_socket.socket], None]:
    """The :class:`~.tcp.Dialer` hook that sends a socket's SYN with hop limit ``ttl``."""
    if family == "ipv4":
        level, option = socket.IPPROTO_IP, socket.IP_TTL
    else:
        level, option = socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS

    def setup(sock: _socket.socket) -> None:
        sock.setsockopt(level, option, ttl)

    return setup


#: a silent hop limit is given up once this many times the longest round trip seen on the
#: path has passed (or :data:`MIN_PATIENCE_S`, whichever is longer), never later than the
#: hop timeout: an answer that much later than every other is not coming
PATIENCE_FACTOR = 4.0
MIN_PATIENCE_S = 0.3


class _Patience:
    """How long the silent hop limits of a path are still worth waiting for.

    Learned from the hops that answered: in the two-router lab a wave whose last hops are
    dropped waited the whole 2 s hop timeout, with answers from the first hops after
    0.1 ms. Until something answers, the hop timeout is the wait.
    """

    __slots__ = ("adaptive", "cap", "longest")

    def __init__(self, cap: float, *, adaptive: bool = True) -> None:
        self.cap = cap
        self.adaptive = adaptive
        self.longest: float | None = None

    def saw(self, rtt_ms: float | None) -> None:
        if rtt_ms is not None:
            seconds = rtt_ms / 1000.0
            self.longest = seconds if self.longest is None else max(self.longest, seconds)

    @property
    def wait(self) -> float:
        if self.longest is None or not self.adaptive:
            return self.cap
        return min(self.cap, max(MIN_PATIENCE_S, PATIENCE_FACTOR * self.longest))


async def _wave(
    address: str,
    port: int,
    family: AddressFamily,
    ttls: range,
    *,
    dialer: Dialer,
    patience: _Patience,
    hops: dict[int, Hop],
    local: set[str],
    pace: Pace | None,
) -> None:
    """Probe every hop limit of ``ttls`` at once; a terminal answer cancels higher ones, and
    silent ones are given up once an answer would be implausibly late (:class:`_Patience`)."""
    scopes: dict[int, anyio.CancelScope] = {ttl: anyio.CancelScope() for ttl in ttls}
    pending = set(ttls)
    started = anyio.current_time()

    async def one(ttl: int) -> None:
        with scopes[ttl]:
            if pace is not None:
                await pace()
            setup = hop_limit(family, ttl)
            outcome, source = await dialer.dial(address, port, family, patience.cap, setup=setup)
            hop = hop_of(ttl, outcome, address)
            hops[ttl] = hop
            pending.discard(ttl)
            patience.saw(hop.rtt_ms if hop.address is not None else None)
            if source:
                local.add(source)
            if is_terminal(hop, family):
                for higher, scope in scopes.items():
                    if higher > ttl:
                        pending.discard(higher)
                        scope.cancel()

    async def give_up() -> None:
        while pending:
            left = started + patience.wait - anyio.current_time()
            if left <= 0:
                for ttl in sorted(pending):  # silent: as a timeout would have said
                    hops[ttl] = Hop(ttl, None, None, None, None, False, "ETIMEDOUT")
                    scopes[ttl].cancel()
                pending.clear()
                return
            await anyio.sleep(min(left, 0.05))

    async with anyio.create_task_group() as group:
        for ttl in ttls:
            group.start_soon(one, ttl)
        group.start_soon(give_up)


async def trace_path(
    address: str,
    port: int,
    family: AddressFamily,
    config: TraceConfig = TraceConfig(),
    pace: Pace | None = None,
    *,
    dialer: Dialer | None = None,
    silent: bool = False,
) -> PathTrace:
    """Trace the path to ``address:port`` in waves of hop limits, up to ``max_hops``.

    ``pace`` is awaited before each handshake (the scan's ``--rate``); ``dialer`` is the
    scan's (a trace of its own makes one for itself). ``silent``: the handshake itself got
    no answer at all (a timeout), so a silent hop limit past the last answering hop is
    given up early (:class:`_Patience`); after an ICMP error some router *will* answer,
    perhaps late (an ARP or NDP failure takes seconds), and every hop waits its timeout.
    """
    own = dialer is None
    if dialer is None:
        dialer = Dialer(asyncio.get_running_loop())
    hops: dict[int, Hop] = {}
    local: set[str] = set()
    patience = _Patience(config.hop_timeout, adaptive=silent)
    first, probed = 1, 0
    try:
        while first <= config.max_hops:
            last = min(config.max_hops, first + max(1, config.wave) - 1)
            await _wave(
                address,
                port,
                family,
                range(first, last + 1),
                dialer=dialer,
                patience=patience,
                hops=hops,
                local=local,
                pace=pace,
            )
            probed = last
            if not needs_next_wave(hops.values(), family, last):
                break
            first = last + 1
    finally:
        if own:
            dialer.close()
    return build_path(
        address, port, family, hops.values(), probed=probed, local_addresses=sorted(local)
    )


# --- scans: which results to trace, bounded concurrency ------------------------------------


def traced_probes(result: TargetResult, include_ok: bool = False) -> list[ProbeResult]:
    """The addresses of ``result`` worth a trace, the one that decided the verdict first."""
    if include_ok:
        chosen = [p for p in result.probes if p.category not in UNTRACEABLE]
    elif result.ok:
        return []
    else:
        chosen = [p for p in result.probes if p.category in TRACEABLE]
    chosen.sort(key=lambda p: p.category is not result.category)  # stable: decisive first
    return chosen


class PathTracer:
    """Traces the failed addresses of finished targets, ``slots`` addresses at a time.

    Each address costs up to ``config.wave`` sockets for up to ``hop_timeout`` seconds
    per wave, so ``slots`` bounds the descriptors tracing takes beside the probes.
    """

    def __init__(
        self,
        config: TraceConfig = TraceConfig(),
        slots: int = 16,
        pace: Pace | None = None,
        dialer: Dialer | None = None,
    ) -> None:
        self.config = config
        self._slots = anyio.Semaphore(max(1, slots))
        self._pace = pace
        self._dialer = dialer

    def wants(self, result: TargetResult) -> bool:
        return bool(traced_probes(result, self.config.include_ok))

    async def _trace_one(self, probe: ProbeResult) -> PathTrace:
        async with self._slots:
            return await trace_path(
                probe.address,
                probe.target.port,
                probe.family,
                self.config,
                self._pace,
                dialer=self._dialer,
                silent=probe.category is Category.TIMEOUT,
            )

    async def trace(self, result: TargetResult, on_hop: HopCallback | None = None) -> TargetResult:
        """``result`` with its ``paths``; every hop goes to ``on_hop`` (TTL order)."""
        probes = traced_probes(result, self.config.include_ok)
        paths: list[PathTrace | None] = [None] * len(probes)

        async def run(slot: int, probe: ProbeResult) -> None:
            paths[slot] = await self._trace_one(probe)

        async with anyio.create_task_group() as group:
            for slot, probe in enumerate(probes):
                group.start_soon(run, slot, probe)
        done = tuple(p for p in paths if p is not None)
        if on_hop is not None:
            for path in done:
                for hop in path.hops:
                    on_hop(result.target, path, hop)
        return replace(result, paths=done)


def tracer_slots(concurrency: int, config: TraceConfig) -> int:
    """Addresses traced at once: the probes' share of descriptors, at most 64."""
    return max(1, min(64, concurrency // max(1, config.wave)))
