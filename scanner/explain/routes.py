"""Where this host would send a packet for an address, and whether that address is its own.

The kernel's own answer, asked without privileges and without sending a packet:

- :func:`route_to` asks NETLINK_ROUTE ``RTM_GETROUTE`` for the address, as ``ip route get``
  does: the route type (``local`` means this host's own address: loopback, an interface address
  or an AnyIP ``local`` route), table, device, gateway and preferred source. Policy rules are
  applied by the kernel in that lookup, so a table other than ``main`` means a rule chose it.
  When the lookup fails (an ``unreachable`` / ``prohibit`` / ``blackhole`` route or rule, or no
  route at all), the errno says which, and the route and rule dumps name the prefix or rule.
- The source address is what a connected UDP socket gets from ``getsockname()`` (``connect``
  on UDP only picks a route and a source; no packet leaves).
- :func:`interface_addresses` lists this namespace's addresses (``RTM_GETADDR``, like
  ``ip -brief addr``), with the tentative IPv6 ones marked: those do not take traffic yet.

What this cannot know: the lookup is made for a packet from this process, without a firewall
mark, so rules matching marks set by nftables, or a cgroup/VRF another program runs in, are not
seen; nftables rules themselves are not readable without CAP_NET_ADMIN.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import struct
from typing import Literal

from msgspec import Struct

from ..models import AddressFamily
from . import _netlink

RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTM_NEWRULE = 32
RTM_GETRULE = 34

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PREFSRC = 7
RTA_TABLE = 15
RTA_VIA = 18

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40

FRA_DST = 1
FRA_SRC = 2
FRA_PRIORITY = 6
FRA_TABLE = 15

RTM_F_LOOKUP_TABLE = 0x1000  # report the table the lookup used (IPv4 says "main" otherwise)

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
_DEFAULT_RULE_PRIORITIES = frozenset({0, 32766, 32767})  # local, main, default

_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RULEHDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res, res, action

RouteKind = Literal[
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "no_route",
    "unknown",
]
#: rtm_type (include/uapi/linux/rtnetlink.h)
_ROUTE_TYPES: dict[int, RouteKind] = {
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
}
#: fib rule actions that end the lookup with an error, as route kinds
_RULE_ACTIONS: dict[int, RouteKind] = {6: "blackhole", 7: "unreachable", 8: "prohibit"}
#: what the kernel's route lookup fails with, by the route type that made it fail
#: (net/ipv4/fib_semantics.c fib_props; IPv6 uses the same errnos for its reject routes)
LOOKUP_ERRORS: dict[int, RouteKind] = {
    errno.ENETUNREACH: "no_route",
    errno.EHOSTUNREACH: "unreachable",
    errno.EACCES: "prohibit",
    errno.EPERM: "prohibit",
    errno.EINVAL: "blackhole",
    errno.EAGAIN: "throw",
}
#: the kinds of route that stop a packet on this host before it leaves
ERROR_KINDS = frozenset({"blackhole", "unreachable", "prohibit", "throw", "no_route"})


class InterfaceAddress(Struct, frozen=True, gc=False):
    """An address configured on an interface of this namespace."""

    address: str
    prefixlen: int
    interface: str
    family: AddressFamily
    tentative: bool = False  #: IPv6 duplicate address detection not done (or failed)


class PolicyRule(Struct, frozen=True, gc=False):
    """A routing policy rule (``ip rule``) other than the three every namespace starts with."""

    priority: int
    table: int | None
    action: str  #: ``lookup``, or the error it ends with: ``blackhole`` / ``unreachable`` ...
    to: str | None = None  #: its destination selector, when it has one
    source: str | None = None  #: its source selector, when it has one


class Route(Struct, frozen=True, gc=False):
    """The kernel's route for one address, and the source address a socket would use."""

    address: str
    kind: RouteKind
    table: int | None = None
    device: str | None = None
    gateway: str | None = None
    preferred_source: str | None = None
    source: str | None = None  #: getsockname() of a UDP socket connected to the address
    error: str | None = None  #: errno of the failed lookup or UDP connect, e.g. ``ENETUNREACH``
    prefix: str | None = None  #: for a failed lookup: the error route that matched, if found
    rule: PolicyRule | None = None  #: the non-default policy rule that decided, if found

    @property
    def own(self) -> bool:
        """The address is this host's own: the kernel delivers it locally."""
        return self.kind == "local"

    @property
    def stops_here(self) -> bool:
        """No packet for this address leaves this host (an error route or no route at all)."""
        return self.kind in ERROR_KINDS


def _family(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def _ip(family: int, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return socket.inet_ntop(family, raw)
    except (OSError, ValueError):
        return None


def _name(index_raw: bytes | None) -> str | None:
    index = _u32(index_raw)
    if index is None:
        return None
    try:
        return socket.if_indextoname(index)
    except OSError:
        return str(index)


def _u32(raw: bytes | None) -> int | None:
    return struct.unpack("=I", raw[:4])[0] if raw is not None and len(raw) >= 4 else None


def parse_route_message(body: bytes) -> tuple[RouteKind, int | None, dict[int, bytes], int, int]:
    """``(kind, table, attributes, family, dst_len)`` of one RTM_NEWROUTE message."""
    family, dst_len, _src_len, _tos, table, _protocol, _scope, kind, _flags = _RTMSG.unpack_from(
        body
    )
    attrs = _netlink.parse_attrs(body, _RTMSG.size)
    return (
        _ROUTE_TYPES.get(kind, "unknown"),
        _u32(attrs.get(RTA_TABLE)) or table,
        attrs,
        family,
        dst_len,
    )


def lookup(address: str) -> Route:
    """The kernel's route for ``address`` alone (``ip route get``): no source, no dumps."""
    return _lookup(_normal(address), _scope(address))


def _scope(address: str) -> int:
    """The interface index of a scoped IPv6 address (``fe80::1%eth0``), else 0."""
    _, _, scope = address.partition("%")
    if not scope:
        return 0
    try:
        return int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
    except OSError:
        return 0


def _normal(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _lookup(address: ipaddress.IPv4Address | ipaddress.IPv6Address, oif: int = 0) -> Route:
    family = _family(address)
    bits = 32 if address.version == 4 else 128
    body = _RTMSG.pack(family, bits, 0, 0, 0, 0, 0, 0, RTM_F_LOOKUP_TABLE) + _netlink.pack_attr(
        RTA_DST, address.packed
    )
    if oif:
        body += _netlink.pack_attr(RTA_OIF, struct.pack("=I", oif))
    try:
        replies = _netlink.request(_netlink.NETLINK_ROUTE, RTM_GETROUTE, body, dump=False)
    except _netlink.NetlinkError as exc:
        code = exc.errno or 0
        return Route(
            str(address), LOOKUP_ERRORS.get(code, "unknown"), error=errno.errorcode.get(code)
        )
    for kind_code, reply in replies:
        if kind_code != RTM_NEWROUTE:
            continue
        kind, table, attrs, _family_code, _dst_len = parse_route_message(reply)
        gateway = _ip(family, attrs.get(RTA_GATEWAY))
        return Route(
            str(address),
            kind,
            table=table,
            device=_name(attrs.get(RTA_OIF)),
            gateway=gateway,
            preferred_source=_ip(family, attrs.get(RTA_PREFSRC)),
        )
    return Route(str(address), "unknown")


def source_for(address: str, port: int = 9) -> tuple[str | None, str | None]:
    """``(source address, None)`` a socket would use for ``address``, or ``(None, errno name)``.

    A UDP ``connect()`` picks the route and the source address and sends nothing.
    """
    parsed = _normal(address)
    scope = _scope(address)
    where = (str(parsed), port, 0, scope) if scope else (str(parsed), port)
    with socket.socket(_family(parsed), socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(where)
        except OSError as exc:
            return None, errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return str(sock.getsockname()[0]), None


def route_dump(family: int) -> list[tuple[RouteKind, int | None, str, str | None]]:
    """Every route of every table: ``(kind, table, prefix, device)``."""
    found = []
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    for kind_code, reply in _netlink.request(_netlink.NETLINK_ROUTE, RTM_GETROUTE, body, dump=True):
        if kind_code != RTM_NEWROUTE:
            continue
        kind, table, attrs, reply_family, dst_len = parse_route_message(reply)
        if reply_family != family:
            continue
        dst = _ip(family, attrs.get(RTA_DST)) or ("0.0.0.0" if family == socket.AF_INET else "::")
        found.append((kind, table, f"{dst}/{dst_len}", _name(attrs.get(RTA_OIF))))
    return found


def parse_rule_message(body: bytes) -> PolicyRule | None:
    """One RTM_NEWRULE message as a :class:`PolicyRule`, None for a malformed one."""
    if len(body) < _RULEHDR.size:
        return None
    family, dst_len, src_len, _tos, table, _r1, _r2, action, _flags = _RULEHDR.unpack_from(body)
    attrs = _netlink.parse_attrs(body, _RULEHDR.size)
    dst = _ip(family, attrs.get(FRA_DST))
    src = _ip(family, attrs.get(FRA_SRC))
    return PolicyRule(
        priority=_u32(attrs.get(FRA_PRIORITY)) or 0,
        table=_u32(attrs.get(FRA_TABLE)) or table or None,
        action=_RULE_ACTIONS.get(action, "lookup" if action == 1 else f"action {action}"),
        to=f"{dst}/{dst_len}" if dst is not None else None,
        source=f"{src}/{src_len}" if src is not None else None,
    )


def policy_rules(family: int) -> list[PolicyRule]:
    """The namespace's policy rules other than the default ones, by priority."""
    body = _RULEHDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    rules = []
    for kind_code, reply in _netlink.request(_netlink.NETLINK_ROUTE, RTM_GETRULE, body, dump=True):
        rule = parse_rule_message(reply) if kind_code == RTM_NEWRULE else None
        if rule is not None and rule.priority not in _DEFAULT_RULE_PRIORITIES:
            rules.append(rule)
    return sorted(rules, key=lambda rule: rule.priority)


def _covers(prefix: str | None, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if prefix is None:
        return True
    network = ipaddress.ip_network(prefix, strict=False)
    return network.version == address.version and address in network


def matching_rule(
    rules: list[PolicyRule],
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    table: int | None = None,
    action: RouteKind | None = None,
) -> PolicyRule | None:
    """The first rule whose destination covers ``address`` and that leads to ``table`` or
    ends in ``action``. Source and other selectors are not evaluated (a rule with a source
    selector matches only if the source is right, which :func:`route_to` cannot see)."""
    for rule in rules:
        if not _covers(rule.to, address):
            continue
        if (table is not None and rule.action == "lookup" and rule.table == table) or (
            action is not None and rule.action == action
        ):
            return rule
    return None


def matching_route(
    routes: list[tuple[RouteKind, int | None, str, str | None]],
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    kind: RouteKind,
) -> tuple[str, int | None] | None:
    """The longest prefix of a ``kind`` route covering ``address``: ``(prefix, table)``."""
    best: tuple[int, str, int | None] | None = None
    for route_kind, table, prefix, _device in routes:
        if route_kind != kind or not _covers(prefix, address):
            continue
        length = int(prefix.rsplit("/", 1)[1])
        if best is None or length > best[0]:
            best = (length, prefix, table)
    return None if best is None else (best[1], best[2])


def route_to(address: str, port: int = 9) -> Route:
    """The kernel's route for ``address`` with the source address, and for an error route
    (or a policy rule) the prefix or rule responsible. About 0.1 ms; a failed lookup or a
    policy table adds the route and rule dumps (under a millisecond on a small table)."""
    parsed = _normal(address)
    route = _lookup(parsed, _scope(address))
    source, source_error = source_for(address, port)
    family = _family(parsed)
    prefix: str | None = None
    rule: PolicyRule | None = None
    with contextlib.suppress(OSError):  # the dumps only add detail to the lookup's answer
        if route.stops_here:
            rules = policy_rules(family)
            rule = matching_rule(rules, parsed, action=route.kind)
            if rule is None:
                found = matching_route(route_dump(family), parsed, route.kind)
                if found is not None:
                    prefix = found[0]
                    rule = (
                        matching_rule(rules, parsed, table=found[1])
                        if found[1]
                        not in (
                            RT_TABLE_MAIN,
                            RT_TABLE_LOCAL,
                        )
                        else None
                    )
        elif route.table not in (None, RT_TABLE_MAIN, RT_TABLE_LOCAL):
            rule = matching_rule(policy_rules(family), parsed, table=route.table)
    return Route(
        route.address,
        route.kind,
        table=route.table,
        device=route.device,
        gateway=route.gateway,
        preferred_source=route.preferred_source,
        source=source,
        error=route.error or source_error,
        prefix=prefix,
        rule=rule,
    )


def interface_addresses() -> list[InterfaceAddress]:
    """Every address on an interface of this namespace (both families)."""
    found = []
    body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    for kind_code, reply in _netlink.request(_netlink.NETLINK_ROUTE, RTM_GETADDR, body, dump=True):
        if kind_code != RTM_NEWADDR or len(reply) < _IFADDRMSG.size:
            continue
        family, prefixlen, flags8, _scope, index = _IFADDRMSG.unpack_from(reply)
        attrs = _netlink.parse_attrs(reply, _IFADDRMSG.size)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        text = _ip(family, raw)
        if text is None or family not in (socket.AF_INET, socket.AF_INET6):
            continue
        flags = _u32(attrs.get(IFA_FLAGS)) or flags8
        try:
            interface = socket.if_indextoname(index)
        except OSError:
            interface = str(index)
        found.append(
            InterfaceAddress(
                text,
                prefixlen,
                interface,
                "ipv4" if family == socket.AF_INET else "ipv6",
                tentative=bool(flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)),
            )
        )
    return found
