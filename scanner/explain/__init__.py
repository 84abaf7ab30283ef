"""The evidence behind a failure, collected on this host without privileges (issue 17).

What a person would go and read by hand (``ss -ltnp``, ``nstat``, ``ip route get``,
``ip rule``, a typo in a name) turned into findings with one sentence each:

- :mod:`.sockets`: listening sockets (sock_diag, /proc/net/tcp{,6}), their processes, the
  namespace's ListenOverflows / ListenDrops.
- :mod:`.routes`: the kernel's route and source address for an address; whether it is this
  host's own; interface addresses; policy rules and error routes in the way.
- :mod:`.evidence`: pure functions from those tables to :class:`Finding` values.
- :mod:`.names`: "did you mean …?" for names that do not resolve.
- :mod:`.local`: one call that reads the live tables for a failed (address, port).

Nothing here sends a packet, starts a process or needs root; everything but the names
(rapidfuzz, imported when a suggestion is asked for) is the standard library plus msgspec.
"""

from __future__ import annotations

from .evidence import (
    Finding,
    Listener,
    accepts,
    refused_evidence,
    route_evidence,
    takes_address,
    timeout_evidence,
)
from .local import (
    LocalState,
    findings_from,
    is_own_address,
    local_findings,
    read_local_state,
)
from .names import Suggestion, did_you_mean, suggest_names
from .routes import (
    InterfaceAddress,
    PolicyRule,
    Route,
    interface_addresses,
    lookup,
    route_to,
)
from .sockets import (
    ListenCounters,
    ListenSocket,
    Process,
    find_owners,
    listen_counters,
    listeners,
    parse_netstat,
    parse_proc_net_tcp,
)

__all__ = [
    "Finding",
    "InterfaceAddress",
    "ListenCounters",
    "ListenSocket",
    "Listener",
    "LocalState",
    "PolicyRule",
    "Process",
    "Route",
    "Suggestion",
    "accepts",
    "did_you_mean",
    "find_owners",
    "findings_from",
    "interface_addresses",
    "is_own_address",
    "listen_counters",
    "listeners",
    "local_findings",
    "lookup",
    "parse_netstat",
    "parse_proc_net_tcp",
    "read_local_state",
    "refused_evidence",
    "route_evidence",
    "route_to",
    "suggest_names",
    "takes_address",
    "timeout_evidence",
]
