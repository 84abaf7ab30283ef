"""The live side: read this namespace's tables and turn them into findings.

Two ways to call it:

- :func:`local_findings` for one failed (address, port), as ``scanner explain`` will: it asks
  the kernel whether the address is this host's own (one route lookup, about 0.1 ms) and only
  then reads the listeners on that port or address (sock_diag, filtered before decoding), the
  owners of the few a sentence names (a /proc walk: about 2 µs per open fd on the host, so
  1 ms with 400 fds, 30 ms with 4,600) and the counters.
- :func:`read_local_state` once, then :func:`findings_from` per target, as a scan with many
  local failures should: one sock_diag dump and one /proc walk for the whole scan, then pure
  functions (microseconds a target).

For a ``timeout``, take ``before = listen_counters()`` (one read of /proc/net/netstat, about
0.1 ms) before the probe, or before its last retry: the rise during the probe is the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from .evidence import (
    NEAREST_PORTS,
    Finding,
    accepts,
    refused_evidence,
    takes_address,
    timeout_evidence,
)
from .routes import lookup
from .sockets import (
    ListenCounters,
    ListenSocket,
    Process,
    find_owners,
    listen_counters,
    listeners,
)

_ABORT_ON_OVERFLOW = "/proc/sys/net/ipv4/tcp_abort_on_overflow"


class LocalState(Struct, frozen=True, gc=False):
    """This namespace's listeners with their owners and counters, read at one moment."""

    listeners: tuple[ListenSocket, ...]
    owners: dict[int, tuple[Process, ...]]
    counters: ListenCounters | None
    abort_on_overflow: bool


def is_own_address(address: str) -> bool:
    """Is ``address`` this host's own (loopback, an interface's, an AnyIP ``local`` route)?"""
    try:
        return lookup(address).own
    except (OSError, ValueError):
        return False


def read_local_state() -> LocalState:
    """Every listener, every listener's owner, the counters: one read for a whole scan."""
    sockets = tuple(listeners())
    owners = find_owners((sock.inode for sock in sockets), uids={sock.uid for sock in sockets})
    return LocalState(sockets, owners, listen_counters(), abort_on_overflow())


def abort_on_overflow() -> bool:
    """``net.ipv4.tcp_abort_on_overflow`` of this namespace: a full queue answers with RST."""
    try:
        with open(_ABORT_ON_OVERFLOW, encoding="ascii") as handle:
            return handle.read().strip() not in ("", "0")
    except OSError:
        return False


def relevant(sockets: Sequence[ListenSocket], address: str, port: int) -> list[ListenSocket]:
    """The sockets a finding about (address, port) can name: that port, or that address."""
    return [sock for sock in sockets if sock.port == port or takes_address(sock, address)]


def named(sockets: Sequence[ListenSocket], address: str, port: int) -> list[ListenSocket]:
    """The sockets whose owners a finding may name: those on ``port``, and those that take
    ``address`` on the :data:`.evidence.NEAREST_PORTS` nearest other ports."""
    ports = sorted(
        {sock.port for sock in sockets if sock.port != port and takes_address(sock, address)},
        key=lambda other: (abs(other - port), other),
    )[:NEAREST_PORTS]
    return [sock for sock in sockets if sock.port == port or sock.port in ports]


def findings_from(
    state: LocalState,
    address: str,
    port: int,
    category: str,
    *,
    before: ListenCounters | None = None,
) -> list[Finding]:
    """Local evidence for a ``refused`` or ``timeout`` to this host's own ``address``, from a
    :class:`LocalState` (pure: the caller has checked :func:`is_own_address`)."""
    if category not in ("refused", "timeout"):
        return []
    sockets = relevant(state.listeners, address, port)
    if category == "refused":
        return refused_evidence(
            address, port, sockets, state.owners, abort_on_overflow=state.abort_on_overflow
        )
    return timeout_evidence(
        address, port, sockets, state.owners, before=before, after=state.counters
    )


def local_findings(
    address: str,
    port: int,
    category: str,
    *,
    before: ListenCounters | None = None,
) -> list[Finding]:
    """Local evidence for a ``refused`` or ``timeout`` to ``address``, read now: none when the
    address is not this host's own (nothing local to read) or for another category."""
    if category not in ("refused", "timeout") or not is_own_address(address):
        return []
    sockets = relevant(listeners(port, address), address, port)
    wanted = named(sockets, address, port)
    owners = find_owners((sock.inode for sock in wanted), uids={sock.uid for sock in wanted})
    state = LocalState(
        tuple(sockets),
        owners,
        listen_counters() if category == "timeout" else None,
        category == "refused"
        and any(accepts(s, address, port) for s in sockets)
        and abort_on_overflow(),
    )
    return findings_from(state, address, port, category, before=before)
