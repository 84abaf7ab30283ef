"""Listening TCP sockets of this network namespace, who owns them, and the listen counters.

What ``ss -ltnp`` and ``nstat`` show, read without running them and without privileges:

- :func:`listeners` asks the kernel's sock_diag (NETLINK_SOCK_DIAG), as ``ss`` does: address,
  port, accept queue (``queue``), its limit (``backlog``), IPV6_V6ONLY, bound device, inode.
  Without sock_diag it falls back to :func:`read_proc_listeners` (/proc/net/tcp and tcp6),
  which has no backlog and no IPV6_V6ONLY: for a LISTEN socket the ``tx_queue`` column there is
  ``write_seq - snd_una`` (always 0), not the backlog; only ``rx_queue`` is its accept queue.
- :func:`find_owners` maps socket inodes to processes through ``/proc/<pid>/fd``; a process
  whose fd directory /proc does not show us (another user's, without root) stays unknown.
- :func:`listen_counters` reads TcpExt ListenOverflows / ListenDrops from /proc/net/netstat:
  counters of the whole namespace, so a rise during a probe is evidence, not proof, that *our*
  SYN was the one dropped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterable, Mapping
from typing import Literal

from msgspec import Struct

from ..models import AddressFamily
from . import _netlink

TCP_LISTEN = 10  # include/net/tcp_states.h
_PROC_STATE_LISTEN = "0A"

SOCK_DIAG_BY_FAMILY = 20
INET_DIAG_SKV6ONLY = 11
# struct inet_diag_req_v2: family, protocol, ext, pad, states, then struct inet_diag_sockid
# (sport, dport, src[16], dst[16], if, cookie[2]), zero here: no filter but the states.
_DIAG_REQ = struct.Struct("=BBBBI48x")
# struct inet_diag_msg: family, state, timer, retrans, inet_diag_sockid, expires, rqueue,
# wqueue, uid, inode
_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")

Source = Literal["sock_diag", "proc"]


class ListenSocket(Struct, frozen=True, gc=False):
    """One listening TCP socket as the kernel reports it."""

    address: str  #: as bound: ``0.0.0.0``, ``::``, ``127.0.0.1``, ``::ffff:127.0.0.1`` ...
    port: int
    family: AddressFamily  #: the socket's own family (a ``::`` socket may accept IPv4 too)
    queue: int  #: connections completed by the kernel, waiting for accept()
    backlog: int | None  #: the accept queue's limit; None when unknown (/proc)
    v6only: bool | None = None  #: IPV6_V6ONLY of an IPv6 socket; None when unknown
    inode: int = 0
    uid: int = 0
    device: str | None = None  #: SO_BINDTODEVICE, when bound to one interface
    source: Source = "sock_diag"

    @property
    def queue_full(self) -> bool:
        """The kernel drops new SYNs: its test is ``queue > backlog`` (sk_acceptq_is_full)."""
        return self.backlog is not None and self.queue > self.backlog


class Process(Struct, frozen=True, gc=False):
    """A process holding a socket: its pid and its name (``/proc/<pid>/comm``)."""

    pid: int
    name: str


class ListenCounters(Struct, frozen=True, gc=False):
    """TcpExt counters of this network namespace (since it was created)."""

    overflows: int  #: ListenOverflows: SYNs or final ACKs dropped because an accept queue was full
    drops: int  #: ListenDrops: every drop at a listener, overflows included


# -- /proc/net/tcp -------------------------------------------------------------------------------
def _proc_address(text: str, byteorder: Literal["little", "big"]) -> str:
    """A /proc/net/tcp address: 32-bit words printed as hex in the host's byte order."""
    raw = bytes.fromhex(text)
    words = b"".join(
        int.from_bytes(raw[i : i + 4], "big").to_bytes(4, byteorder) for i in range(0, len(raw), 4)
    )
    return socket.inet_ntop(socket.AF_INET6 if len(words) == 16 else socket.AF_INET, words)


def parse_proc_net_tcp(
    text: str,
    *,
    byteorder: Literal["little", "big"] = sys.byteorder,
    v6only: bool | None = None,
) -> list[ListenSocket]:
    """The LISTEN sockets of one /proc/net/tcp or /proc/net/tcp6 text.

    ``v6only`` is what to record for IPv6 sockets, since the file does not say (the caller may
    pass the namespace's ``net.ipv6.bindv6only``, the default of programs that never set it).
    Lines that do not parse are skipped: the file is the kernel's, a bad line is no reason to
    lose the others.
    """
    found: list[ListenSocket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _PROC_STATE_LISTEN:
            continue
        try:
            local, port_hex = fields[1].split(":")
            _tx, rx = fields[4].split(":")
            address = _proc_address(local, byteorder)
            found.append(
                ListenSocket(
                    address=address,
                    port=int(port_hex, 16),
                    family="ipv6" if len(local) == 32 else "ipv4",
                    queue=int(rx, 16),
                    backlog=None,
                    v6only=v6only if len(local) == 32 else None,
                    inode=int(fields[9]),
                    uid=int(fields[7]),
                    source="proc",
                )
            )
        except ValueError:
            continue
    return found


def read_proc_listeners(proc: str = "/proc") -> list[ListenSocket]:
    """LISTEN sockets from ``<proc>/net/tcp`` and ``tcp6`` (a file that is missing: none)."""
    v6only = _read_text(f"{proc}/sys/net/ipv6/bindv6only").strip() == "1"
    found: list[ListenSocket] = []
    for name in ("tcp", "tcp6"):
        found.extend(parse_proc_net_tcp(_read_text(f"{proc}/net/{name}"), v6only=v6only))
    return found


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


# -- sock_diag -----------------------------------------------------------------------------------
def parse_diag_message(body: bytes) -> ListenSocket | None:
    """One sock_diag reply (``struct inet_diag_msg`` and its attributes) as a ListenSocket."""
    if len(body) < _DIAG_MSG.size:
        return None
    (family, state, _timer, _retrans, sport, _dport, src, _dst, ifindex, _cookie, _expires) = (
        fields := _DIAG_MSG.unpack_from(body)
    )[:11]
    rqueue, wqueue, uid, inode = fields[11:]
    if state != TCP_LISTEN or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    attrs = _netlink.parse_attrs(body, _DIAG_MSG.size)
    v6only = attrs.get(INET_DIAG_SKV6ONLY)
    ipv6 = family == socket.AF_INET6
    return ListenSocket(
        address=socket.inet_ntop(family, src if ipv6 else src[:4]),
        port=int.from_bytes(sport, "big"),
        family="ipv6" if ipv6 else "ipv4",
        queue=rqueue,
        backlog=wqueue,
        v6only=bool(v6only[0]) if ipv6 and v6only else None,
        inode=inode,
        uid=uid,
        device=_interface_name(ifindex),
    )


def _interface_name(index: int) -> str | None:
    if index == 0:
        return None
    try:
        return socket.if_indextoname(index)
    except OSError:
        return str(index)


def _bound_addresses(address: str) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The raw IPv4 and IPv6 bind addresses of sockets that may take a connection to
    ``address``: the address itself, its v4-mapped form, and the wildcards."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.version == 4:
        mapped = b"\0" * 10 + b"\xff\xff"
        return (
            frozenset({parsed.packed, bytes(4)}),
            frozenset({bytes(16), mapped + parsed.packed, mapped + bytes(4)}),
        )
    return frozenset(), frozenset({parsed.packed, bytes(16)})


def diag_listeners(port: int | None = None, address: str | None = None) -> list[ListenSocket]:
    """LISTEN sockets of both families from sock_diag; :class:`OSError` when unavailable.

    With ``port`` and/or ``address``: only the sockets on that port or that may take that
    address (bound to it, its v4-mapped form or a wildcard), picked from the raw replies before
    they are decoded: a host with thousands of listeners costs a millisecond, not twenty.
    """
    wanted_port = port.to_bytes(2, "big") if port is not None else None
    raw4, raw6 = _bound_addresses(address) if address is not None else (None, None)
    everything = port is None and address is None
    found: list[ListenSocket] = []
    for family, wanted, size in ((socket.AF_INET, raw4, 4), (socket.AF_INET6, raw6, 16)):
        body = _DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
        replies = _netlink.request(_netlink.NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, body, dump=True)
        for _kind, reply in replies:
            if not everything and not (
                reply[4:6] == wanted_port or (wanted is not None and reply[8 : 8 + size] in wanted)
            ):
                continue
            entry = parse_diag_message(reply)
            if entry is not None:
                found.append(entry)
    return found


def listeners(port: int | None = None, address: str | None = None) -> list[ListenSocket]:
    """The listening TCP sockets of this namespace (sock_diag, else /proc/net/tcp{,6});
    with ``port`` / ``address``, only those on that port or that may take that address."""
    try:
        return diag_listeners(port, address)
    except OSError:
        found = read_proc_listeners()
    if port is None and address is None:
        return found
    raw4, raw6 = _bound_addresses(address) if address is not None else (frozenset(), frozenset())
    return [
        sock
        for sock in found
        if sock.port == port
        or ipaddress.ip_address(sock.address).packed in (raw4 if sock.family == "ipv4" else raw6)
    ]


# -- owners --------------------------------------------------------------------------------------
def find_owners(
    inodes: Iterable[int], proc: str = "/proc", uids: Iterable[int] = ()
) -> dict[int, tuple[Process, ...]]:
    """The processes holding each socket inode, found through ``<proc>/<pid>/fd``.

    Only the inodes asked for are looked up, and the walk stops once each has an owner:
    ``ss -p`` reads every fd of every process, which costs milliseconds per thousand fds.
    Processes running as one of ``uids`` (the sockets' owners) are looked at first.
    (So a socket shared by several processes, like a pre-forked server's, may list only the
    first ones met.) Inodes whose owner /proc does not show us are absent from the result.
    """
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode}
    owners: dict[int, list[Process]] = {}
    if not wanted:
        return {}
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return {}
    first = set(uids)
    pids.sort(key=lambda pid: (_uid_of(f"{proc}/{pid}") not in first, int(pid)))
    for pid in pids:
        held = _held(f"{proc}/{pid}/fd", wanted)
        if held:
            process = Process(int(pid), _read_text(f"{proc}/{pid}/comm").strip() or "?")
            for inode in dict.fromkeys(held):
                owners.setdefault(inode, []).append(process)
            if len(owners) == len(wanted):
                break
    return {inode: tuple(found) for inode, found in owners.items()}


def _held(fd_dir: str, wanted: Mapping[str, int]) -> list[int]:
    """The wanted inodes among one process's fds (none when /proc does not show them)."""
    try:
        dir_fd = os.open(fd_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # gone, or not ours to see
        return []
    held = []
    try:
        for fd in os.listdir(dir_fd):
            try:
                link = os.readlink(fd, dir_fd=dir_fd)
            except OSError:  # closed meanwhile
                continue
            if link in wanted:
                held.append(wanted[link])
    except OSError:
        return []
    finally:
        os.close(dir_fd)
    return held


def _uid_of(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


# -- counters ------------------------------------------------------------------------------------
def parse_netstat(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/netstat (or /proc/net/snmp): ``{"TcpExt": {"ListenOverflows": 3, ...}, ...}``.

    The file pairs lines: a header line of names, then a line of values, same prefix.
    """
    tables: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        head, _, keys = names.partition(":")
        value_head, _, numbers = values.partition(":")
        if head != value_head:
            continue
        with contextlib.suppress(ValueError):
            tables[head] = dict(zip(keys.split(), map(int, numbers.split()), strict=True))
    return tables


def listen_counters(proc: str = "/proc") -> ListenCounters | None:
    """ListenOverflows and ListenDrops of this namespace; None when /proc does not have them."""
    tcp_ext: Mapping[str, int] = parse_netstat(_read_text(f"{proc}/net/netstat")).get("TcpExt", {})
    if "ListenOverflows" not in tcp_ext or "ListenDrops" not in tcp_ext:
        return None
    return ListenCounters(tcp_ext["ListenOverflows"], tcp_ext["ListenDrops"])
