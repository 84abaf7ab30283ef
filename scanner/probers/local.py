"""Is a timed-out handshake to this host's own listener one that does not accept?

A listener whose accept queue is full (a hung or overloaded service that stopped calling
accept()) makes the kernel drop further SYNs: from outside that is a ``timeout`` like a
firewall's. For this host's own addresses the kernel's socket table says which it was:
the listener's queue is over its backlog (:mod:`scanner.explain.sockets`, sock_diag, no
privileges). Then the address is ``not_accepting``.

Asked only after a timeout to an address of this host, and cached: a wave of a thousand
timeouts to one port reads the table once (0.08 ms a read), not a thousand times.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..explain.sockets import ListenSocket

#: seconds a reading of one port's listeners is reused
_FRESH_S = 0.5
_KEPT = 4096  # addresses remembered as this host's own, or not, at most


class LocalQueues:
    """Whether this host's own listener behind (address, port) has a full accept queue."""

    def __init__(self) -> None:
        self._own: dict[str, bool] = {}
        self._ports: dict[int, tuple[float, list[ListenSocket]]] = {}

    def full(self, address: str, port: int) -> bool:
        """Never raises: without an answer (no descriptor left to ask with), False."""
        try:
            if not self._is_own(address):
                return False
            from ..explain.evidence import accepts

            return any(s.queue_full and accepts(s, address, port) for s in self._listeners(port))
        except OSError:  # EMFILE while importing or asking: say nothing rather than guess
            return False

    def _is_own(self, address: str) -> bool:
        if address.startswith("127.") or address == "::1":  # loopback: always ours
            return True
        own = self._own.get(address)
        if own is None:
            from ..explain.local import is_own_address

            if len(self._own) >= _KEPT:
                self._own.clear()
            own = self._own[address] = is_own_address(address)
        return own

    def _listeners(self, port: int) -> list[ListenSocket]:
        now = time.monotonic()
        cached = self._ports.get(port)
        if cached is not None and now - cached[0] < _FRESH_S:
            return cached[1]
        from ..explain.sockets import listeners

        found = listeners(port=port)
        self._ports[port] = (now, found)
        return found
