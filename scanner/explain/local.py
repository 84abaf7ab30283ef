"""The live side: read this namespace's tables and turn them into findings in one call.

How the engine would use it, per failed (address, port) whose category is ``refused`` or
``timeout``:

1. Before the probe, when an address may be local: ``before = listen_counters()`` (one read
   of /proc/net/netstat, about 0.1 ms). Cheap enough to take for every probe; or only on the
   retry of a timeout, which is when it matters.
2. After it failed: ``local_findings(address, port, category, before=before)``. It asks the
   kernel whether the address is this host's own (one route lookup) and, only if so, reads the
   listening sockets (sock_diag), their owners (a /proc walk limited to the sockets that
   matter) and the counters again.
"""

from __future__ import annotations

from collections.abc import Sequence

from .evidence import Finding, accepts, refused_evidence, takes_address, timeout_evidence
from .routes import route_to
from .sockets import ListenCounters, ListenSocket, find_owners, listen_counters, listeners

_ABORT_ON_OVERFLOW = "/proc/sys/net/ipv4/tcp_abort_on_overflow"


def is_own_address(address: str) -> bool:
    """Is ``address`` this host's own (loopback, an interface's, an AnyIP ``local`` route)?"""
    try:
        return route_to(address).own
    except (OSError, ValueError):
        return False


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


def local_findings(
    address: str,
    port: int,
    category: str,
    *,
    before: ListenCounters | None = None,
) -> list[Finding]:
    """Local evidence for a ``refused`` or ``timeout`` to ``address``: none when the address is
    not this host's own (nothing local to read) or for another category."""
    if category not in ("refused", "timeout") or not is_own_address(address):
        return []
    sockets = relevant(listeners(), address, port)
    owners = find_owners(sock.inode for sock in sockets)
    if category == "refused":
        taking = any(accepts(sock, address, port) for sock in sockets)
        return refused_evidence(
            address, port, sockets, owners, abort_on_overflow=taking and abort_on_overflow()
        )
    return timeout_evidence(address, port, sockets, owners, before=before, after=listen_counters())
