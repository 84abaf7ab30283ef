"""Pure functions from what the kernel reported to the sentences a person would conclude.

Each takes the tables read by :mod:`.sockets` and :mod:`.routes` (or built by a test) and
returns :class:`Finding` values: a stable ``code`` for machines, one ``sentence`` for people,
``suggests`` when the evidence argues for another category than the probe's own (today only
``not_accepting``), and the listening sockets the finding is about, with their owners.

Which listener takes a connection to (address, port), as the kernel decides it
(:func:`accepts`): an IPv4 socket bound to that address or to 0.0.0.0; an IPv6 socket bound to
that address or to ``::`` (the latter also takes IPv4, unless IPV6_V6ONLY); an IPv6 socket
bound to a v4-mapped address (``::ffff:127.0.0.1``) takes that IPv4 address only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from msgspec import Struct

from ..inventory.targets import display
from .routes import RT_TABLE_LOCAL, RT_TABLE_MAIN, InterfaceAddress, Route
from .sockets import ListenCounters, ListenSocket, Process

FindingCode = Literal[
    "wrong_port",  # nothing on that port, other ports of that address listen
    "nothing_listens",  # no listener takes that address at all
    "other_address",  # that port listens, on other addresses of the same family only
    "other_family",  # that port listens, on the other address family only
    "listening_now",  # a listener takes (address, port) now, though the probe was refused
    "accept_queue_full",  # its accept queue is at the limit: the kernel drops new SYNs
    "listen_overflows",  # the namespace's ListenOverflows rose during the probe
    "queue_has_room",  # a listener takes it and has room: something else dropped the SYN
    "own_address",  # the address is this host's own
    "route",  # the route and source address this host uses
    "policy_route",  # a policy rule chose the table
    "stopped_by_route",  # an unreachable / prohibit / blackhole route or rule, or no route
]

#: How many other listening ports a ``wrong_port`` sentence names.
NEAREST_PORTS = 3
_NEAR_PORT_DIFFERENCE = 10
_TABLE_NAMES = {RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local", 253: "default"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Listener(Struct, frozen=True, gc=False):
    """A listening socket and the processes holding it (empty: /proc did not show them)."""

    socket: ListenSocket
    processes: tuple[Process, ...] = ()


class Finding(Struct, frozen=True, gc=False):
    """One piece of evidence: what was seen, said in one sentence."""

    code: FindingCode
    sentence: str
    suggests: str | None = None  #: a category this evidence argues for, e.g. ``not_accepting``
    listeners: tuple[Listener, ...] = ()
    ports: tuple[int, ...] = ()  #: for ``wrong_port``: every port that takes the address


def _normal(address: str) -> IPAddress:
    """The address a connection really goes to: a v4-mapped IPv6 address is IPv4."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def takes_address(sock: ListenSocket, address: str) -> bool:
    """Would this socket's bind address take a connection to ``address`` (any port)?"""
    probed = _normal(address)
    bound = ipaddress.ip_address(sock.address)
    if sock.family == "ipv4":
        return probed.version == 4 and (bound.is_unspecified or bound == probed)
    mapped = bound.ipv4_mapped if isinstance(bound, ipaddress.IPv6Address) else None
    if probed.version == 4:
        if mapped is not None:
            return mapped.is_unspecified or mapped == probed
        return bound.is_unspecified and sock.v6only is not True
    return mapped is None and (bound.is_unspecified or bound == probed)


def accepts(sock: ListenSocket, address: str, port: int) -> bool:
    """Would the kernel hand a connection to (address, port) to this socket?"""
    return sock.port == port and takes_address(sock, address)


def _family_of(sock: ListenSocket) -> int:
    """The IP version of the connections the socket's bind address is about."""
    bound = ipaddress.ip_address(sock.address)
    if isinstance(bound, ipaddress.IPv6Address) and bound.ipv4_mapped is not None:
        return 4
    return bound.version


def owners_text(processes: Sequence[Process], uid: int | None = None) -> str:
    """``python3, pid 4242`` / ``nginx, pids 10, 11`` / ``unknown process`` (uid when known)."""
    if not processes:
        return "unknown process" if uid is None else f"unknown process, uid {uid}"
    by_name: dict[str, list[int]] = {}
    for process in processes:
        by_name.setdefault(process.name, []).append(process.pid)
    parts = []
    for name, pids in by_name.items():
        label = "pid" if len(pids) == 1 else "pids"
        parts.append(f"{name}, {label} {', '.join(map(str, pids))}")
    return "; ".join(parts)


def _bound(sock: ListenSocket) -> str:
    text = display(sock.address, sock.port)
    if sock.family == "ipv6" and sock.v6only and ipaddress.ip_address(sock.address).is_unspecified:
        text += " (IPv6 only)"
    return text + (f" on device {sock.device}" if sock.device else "")


def _listeners(
    sockets: Iterable[ListenSocket], owners: Mapping[int, tuple[Process, ...]]
) -> tuple[Listener, ...]:
    return tuple(Listener(sock, owners.get(sock.inode, ())) for sock in sockets)


def _who(listeners: Sequence[Listener]) -> str:
    seen: dict[Process, None] = {}
    for listener in listeners:
        seen.update(dict.fromkeys(listener.processes))
    uids = {listener.socket.uid for listener in listeners}
    return owners_text(list(seen), uids.pop() if len(uids) == 1 else None)


def near_port(probed: int, other: int) -> bool:
    """Could ``other`` be the port meant? Within 10, one digit off (a swap of two counts as
    one), or one of at least two digits inside the other (8081/8080, 5423/5432, 80/8080,
    443/8443, 22/2222)."""
    from rapidfuzz.distance import OSA

    a, b = str(probed), str(other)
    short, long = sorted((a, b), key=len)
    return (
        abs(probed - other) <= _NEAR_PORT_DIFFERENCE
        or OSA.distance(a, b, score_cutoff=1) <= 1
        or (len(short) >= 2 and short != long and (long.startswith(short) or long.endswith(short)))
    )


def _port_list(ports: Sequence[tuple[int, tuple[Listener, ...]]]) -> str:
    return ", ".join(f"{port} ({_who(group)})" for port, group in ports)


def refused_evidence(
    address: str,
    port: int,
    sockets: Sequence[ListenSocket],
    owners: Mapping[int, tuple[Process, ...]],
    *,
    abort_on_overflow: bool = False,
) -> list[Finding]:
    """Why this host's own ``address`` refused ``port``, from its listening sockets.

    ``abort_on_overflow`` is ``net.ipv4.tcp_abort_on_overflow``: when set, a full accept queue
    answers with a reset instead of dropping, so a refusal can come from a listener.
    """
    taking = [sock for sock in sockets if accepts(sock, address, port)]
    if taking:
        listeners = _listeners(taking, owners)
        full = [listener for listener in listeners if listener.socket.queue_full]
        if full and abort_on_overflow:
            return [
                Finding(
                    "accept_queue_full",
                    f"{_bound(full[0].socket)} listens ({_who(full)}) but does not accept: its "
                    f"accept queue is full ({_queue(full[0].socket)}) and "
                    "net.ipv4.tcp_abort_on_overflow=1 answers new connections with a reset",
                    suggests="not_accepting",
                    listeners=tuple(full),
                )
            ]
        return [
            Finding(
                "listening_now",
                f"{_bound(taking[0])} listens now ({_who(listeners)}): it started after the "
                "probe, or a local firewall rule answers with a reset (nftables rules are not "
                "readable without root)",
                listeners=listeners,
            )
        ]
    findings: list[Finding] = []
    same_port = [sock for sock in sockets if sock.port == port]
    if same_port:
        findings.append(_elsewhere(address, port, same_port, owners))
    by_port: dict[int, list[ListenSocket]] = {}
    for sock in sockets:
        if sock.port != port and takes_address(sock, address):
            by_port.setdefault(sock.port, []).append(sock)
    if by_port:
        ranked = sorted(by_port, key=lambda other: (abs(other - port), other))
        shown = [(other, _listeners(by_port[other], owners)) for other in ranked[:NEAREST_PORTS]]
        nearest_port, nearest = shown[0]
        if near_port(port, nearest_port):
            sentence = (
                f"nothing listens on {port}; {nearest_port} does ({_who(nearest)}): wrong port?"
            )
        elif findings:  # the port listens elsewhere: that is the news, far ports are noise
            return findings
        else:
            more = len(ranked) - len(shown)
            sentence = (
                f"nothing listens on {port}; on {address} "
                f"{'this port listens' if len(ranked) == 1 else 'these ports listen'}: "
                f"{_port_list(shown)}{f' and {more} more' if more else ''}"
            )
        findings.append(
            Finding(
                "wrong_port",
                sentence,
                listeners=tuple(listener for _, group in shown for listener in group),
                ports=tuple(sorted(by_port)),
            )
        )
    elif not same_port:
        findings.append(
            Finding(
                "nothing_listens",
                f"nothing listens on {address} at all: the service is not running, or not on "
                "this host",
            )
        )
    return findings


def _elsewhere(
    address: str,
    port: int,
    same_port: Sequence[ListenSocket],
    owners: Mapping[int, tuple[Process, ...]],
) -> Finding:
    """The port listens, but not on the probed address: bound to localhost, or one family."""
    probed = _normal(address)
    listeners = _listeners(same_port, owners)
    where = " and ".join(dict.fromkeys(_bound(sock) for sock in same_port))
    who = _who(listeners)
    if all(_family_of(sock) != probed.version for sock in same_port):
        return Finding(
            "other_family",
            f"listens on {where}, not on {address} ({who})",
            listeners=listeners,
        )
    loopback_only = all(ipaddress.ip_address(sock.address).is_loopback for sock in same_port)
    why = ": bound to localhost" if loopback_only and not probed.is_loopback else ""
    return Finding(
        "other_address",
        f"listens on {where} only ({who}); you probed {probed}{why}",
        listeners=listeners,
    )


def _queue(sock: ListenSocket) -> str:
    if sock.backlog is None:
        return f"{sock.queue} waiting to be accepted, backlog unknown"
    full = "accept queue full: " if sock.queue_full else ""
    return f"{full}{sock.queue} waiting to be accepted, backlog {sock.backlog}"


def overflow_rise(before: ListenCounters | None, after: ListenCounters | None) -> int | None:
    """How much ListenOverflows rose between two readings (None when either is missing)."""
    if before is None or after is None:
        return None
    return max(after.overflows - before.overflows, 0)


def timeout_evidence(
    address: str,
    port: int,
    sockets: Sequence[ListenSocket],
    owners: Mapping[int, tuple[Process, ...]],
    *,
    before: ListenCounters | None = None,
    after: ListenCounters | None = None,
) -> list[Finding]:
    """Why a handshake to this host's own ``address`` timed out: a listener not accepting?

    ``before`` and ``after`` are :func:`.sockets.listen_counters` readings around the probe.
    The verdict ``not_accepting`` needs the listener's queue full now (queue > backlog), or,
    where the backlog is unknown (/proc), a rise of ListenOverflows with connections waiting.
    """
    rise = overflow_rise(before, after)
    rose = f"; ListenOverflows rose by {rise} during the probe" if rise else ""
    taking = [sock for sock in sockets if accepts(sock, address, port)]
    if not taking:
        return [
            Finding(
                "nothing_listens",
                f"nothing listens on {display(address, port)}, yet no reset came: a local "
                f"firewall rule drops the SYN (nftables rules are not readable without root){rose}",
            )
        ]
    listeners = _listeners(taking, owners)
    full = [listener for listener in listeners if listener.socket.queue_full]
    unknown = [
        listener
        for listener in listeners
        if listener.socket.backlog is None and listener.socket.queue > 0 and rise
    ]
    if full or unknown:
        chosen = full or unknown
        return [
            Finding(
                "accept_queue_full",
                f"the service listens but does not accept: hung, deadlocked or overloaded "
                f"({_who(chosen)} on {_bound(chosen[0].socket)}: {_queue(chosen[0].socket)}){rose}",
                suggests="not_accepting",
                listeners=tuple(chosen),
            )
        ]
    if rise:
        return [
            Finding(
                "listen_overflows",
                f"ListenOverflows rose by {rise} during the probe, but the accept queue of "
                f"{_bound(taking[0])} has room now ({_queue(taking[0])}): it was full for a "
                "while (a burst, or a service that accepts slowly)",
                listeners=listeners,
            )
        ]
    return [
        Finding(
            "queue_has_room",
            f"{_bound(taking[0])} listens ({_who(listeners)}) with room in its accept queue "
            f"({_queue(taking[0])}) and no SYN was dropped for a full queue: a local firewall "
            "rule drops the SYN (nftables rules are not readable without root)",
            listeners=listeners,
        )
    ]


def _table(table: int | None) -> str:
    return "?" if table is None else _TABLE_NAMES.get(table, str(table))


def route_evidence(route: Route, addresses: Sequence[InterfaceAddress] = ()) -> list[Finding]:
    """What the kernel's route for an address says: own address, policy route, error route."""
    if route.own:
        on = [entry.interface for entry in addresses if _same(entry.address, route.address)]
        where = f" (on {on[0]})" if on else ""
        return [Finding("own_address", f"{route.address} is this host's own address{where}")]
    if route.stops_here:
        return [Finding("stopped_by_route", _stopped(route))]
    via = f" via {route.gateway}" if route.gateway else " (directly connected)"
    dev = f" dev {route.device}" if route.device else ""
    src = f" from {route.source}" if route.source else ""
    if route.rule is not None or route.table not in (None, RT_TABLE_MAIN, RT_TABLE_LOCAL):
        rule = f"rule {route.rule.priority} ({_rule_text(route)}) " if route.rule else "a rule "
        return [
            Finding(
                "policy_route",
                f"{route.address} is routed by policy: {rule}chose table "
                f"{_table(route.table)}, {via.strip()}{dev}{src}",
            )
        ]
    return [Finding("route", f"{route.address} is routed{via}{dev}{src}")]


def _rule_text(route: Route) -> str:
    rule = route.rule
    if rule is None:
        return ""
    parts = [f"from {rule.source}" if rule.source else "", f"to {rule.to}" if rule.to else ""]
    target = f"lookup {_table(rule.table)}" if rule.action == "lookup" else rule.action
    return " ".join(part for part in [*parts, target] if part)


def _stopped(route: Route) -> str:
    if route.kind == "no_route":
        return f"this host has no route to {route.address} ({route.error}): no packet leaves"
    if route.rule is not None and route.rule.action == route.kind:
        return (
            f"policy rule {route.rule.priority} ({_rule_text(route)}) stops packets to "
            f"{route.address} on this host ({route.error})"
        )
    prefix = f" {route.prefix}" if route.prefix else ""
    rule = (
        f", table chosen by rule {route.rule.priority} ({_rule_text(route)})" if route.rule else ""
    )
    article = "an" if route.kind[0] in "aeiou" else "a"
    return (
        f"{article} {route.kind} route{prefix} stops packets to {route.address} on this host "
        f"({route.error}{rule})"
    )


def _same(a: str, b: str) -> bool:
    try:
        return _normal(a) == _normal(b)
    except ValueError:
        return False
