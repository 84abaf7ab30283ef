"""Queries on the wire: a few connected UDP sockets per nameserver, TCP when an answer is cut.

glibc's ``res_send`` is the model for *what* happens to one query: every try goes through
the nameservers in order (``rotate``: from a rotating start), each gets its share of the
timeout (:func:`server_timeouts`), SERVFAIL, NOTIMP, REFUSED and lame answers move on to the
next server, a truncated answer (TC) is asked again over TCP from the same server, and an
ICMP port unreachable (nothing listens: ``ECONNREFUSED`` on the connected socket) moves on
at once. What is different is only *how*: one event loop, thousands of queries in flight,
our own ID matching — so a malformed or foreign reply concerns only the query it answers.

Sockets: one connected UDP socket per nameserver to begin with, more when the queries in
flight on one could overflow its receive buffer (replies dropped at our own socket would
look like a slow server). Each reply is matched by ID and question; a stray or late one is
dropped and the query keeps waiting, as glibc does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_module
import random
import socket
import struct
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from ._system import Nameserver
from ._wire import (
    NOTIMP,
    RCODE_NAME,
    REFUSED,
    SERVFAIL,
    Malformed,
    Reply,
    parse_reply,
)

ANSWER, RCODE, TIMEOUT, UNREACHABLE, MALFORMED = (
    "answer",
    "rcode",
    "timeout",
    "unreachable",
    "malformed",
)
_FAILED_RCODES = frozenset({SERVFAIL, NOTIMP, REFUSED})
_RCVBUF = 4 << 20  # asked for; the kernel caps it at net.core.rmem_max
_SKB_COST = 2048  # what one small reply costs in a receive buffer (skb truesize, with slack)
_MIN_PER_SOCKET, _MAX_PER_SOCKET = 32, 2048
_MAX_SOCKETS = 64


class Waiter(Protocol):
    """Who is told a query's :class:`Outcome` (the resolver's per-name collector)."""

    def done(self, tag: int, outcome: Outcome) -> None: ...

    def cancelled(self) -> bool:
        """True when nobody waits any more: the query stops at its next step."""
        ...


class _Finished:
    """The waiter of a query that has ended: later events are ignored."""

    def done(self, tag: int, outcome: Outcome) -> None:
        pass

    def cancelled(self) -> bool:
        return True


class Outcome(NamedTuple):
    """What one query came to after every try it was allowed.

    ``kind``: ANSWER (a usable reply, NOERROR or NXDOMAIN), RCODE (every server failed with
    ``rcode``), TIMEOUT, UNREACHABLE (no server could be reached: closed port, no route),
    MALFORMED. ``server``: who gave ``reply``. ``detail``: what went wrong on the way.
    """

    kind: str
    reply: Reply | None
    server: str | None
    rcode: int | None
    detail: str | None
    sends: int


def server_timeouts(timeout: float, count: int) -> list[float]:
    """Seconds each nameserver (by its index) waits for an answer in one try, like glibc.

    glibc's send_dg gives server 0 ``timeout`` and server ``i > 0`` ``(timeout << i) / n``
    whole seconds, at least 1 (resolv.conf ``timeout:2`` with 3 servers: 2, 1, 2 s). A
    fractional timeout (the inventory's, e.g. 0.5) is shared the same way without rounding,
    never below itself when under a second.
    """
    out: list[float] = []
    for index in range(count):
        if float(timeout).is_integer():
            seconds = int(timeout) << index
            if index > 0:
                seconds //= count
            out.append(float(max(seconds, 1)))
        else:
            share = timeout * (1 << index) / (count if index > 0 else 1)
            out.append(max(share, min(timeout, 1.0)))
    return out


class _Socket:
    __slots__ = ("fd", "pending", "server", "sock")

    def __init__(self, server: _Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.pending: dict[int, _Query] = {}


class _Server:
    __slots__ = (
        "index",
        "inflight",
        "label",
        "ns",
        "per_socket",
        "refused_at",
        "sockaddr",
        "sockets",
        "timeout",
        "timer",
    )

    def __init__(self, index: int, ns: Nameserver, timeout: float) -> None:
        self.index = index
        self.ns = ns
        self.label = ns.label
        self.timeout = timeout
        self.sockets: list[_Socket] = []
        self.per_socket = _MIN_PER_SOCKET
        self.refused_at = -1e9
        #: (deadline, query, its send number) in send order: one timeout per server means
        #: deadlines come in order, so one timer for the oldest replaces one per query
        self.inflight: deque[tuple[float, _Query, int]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        address, _, zone = ns.address.partition("%")
        if ns.family == "ipv6":
            scope = socket.if_nametoindex(zone) if zone else 0
            self.sockaddr: tuple[object, ...] = (address, ns.port, 0, scope)
        else:
            self.sockaddr = (address, ns.port)


class _Query:  # one per query sent: positional arguments, it is the hot path
    __slots__ = (
        "body",
        "failures",
        "last_rcode",
        "qid",
        "qtype",
        "question",
        "schedule",
        "sends",
        "sent_at",
        "seq",
        "socket",
        "step",
        "tag",
        "waiter",
    )

    def __init__(  # noqa: PLR0917 - built once per query, positional is cheaper
        self,
        body: bytes,
        question: bytes,
        qtype: int,
        schedule: list[_Server],
        waiter: Waiter,
        tag: int,
    ) -> None:
        self.body = body
        self.question = question
        self.qtype = qtype
        self.schedule = schedule
        self.waiter = waiter
        self.tag = tag
        self.step = 0
        self.sends = 0
        self.failures: list[tuple[_Server, str, str]] = []  # (server, kind, text)
        self.last_rcode: int | None = None
        self.socket: _Socket | None = None
        self.qid = -1
        self.seq = 0
        self.sent_at = 0.0


class Transport:
    """Sends queries to ``nameservers`` with glibc's schedule; ``query`` is awaited per query."""

    def __init__(
        self,
        nameservers: Sequence[Nameserver],
        *,
        timeout: float,
        attempts: int,
        rotate: bool = False,
        use_vc: bool = False,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        shares = server_timeouts(timeout, len(nameservers))
        self.servers = [_Server(i, ns, shares[i]) for i, ns in enumerate(nameservers)]
        self.attempts = max(1, attempts)
        self.rotate = rotate and len(self.servers) > 1
        self.use_vc = use_vc
        self._offset = random.randrange(len(self.servers)) if self.rotate else 0  # noqa: S311
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def schedule(self) -> list[_Server]:
        """The servers in the order one query asks them, every try (rotate: a new start)."""
        servers = self.servers
        if self.rotate:
            start = self._offset
            self._offset = (start + 1) % len(servers)
            servers = servers[start:] + servers[:start]
        return servers * self.attempts

    def query(  # noqa: PLR0917 - called per query: positional is cheaper
        self,
        body: bytes,
        question: bytes,
        qtype: int,
        schedule: list[_Server],
        waiter: Waiter,
        tag: int,
    ) -> None:
        """Start one query (``body`` without its ID); ``waiter.done(tag, outcome)`` ends it.

        A callback and not a future per query: A and AAAA of one name share one waiter, so
        the coroutine waiting for the name wakes once, not twice.
        """
        self._next(_Query(body, question, qtype, schedule, waiter, tag))

    # -- the schedule -------------------------------------------------------------------------
    def _next(self, query: _Query) -> None:
        """Send ``query`` to the next server of its schedule, or end it when none is left."""
        if query.waiter.cancelled() or self._closed:  # its caller gave up: stop asking
            return
        while query.step < len(query.schedule):
            server = query.schedule[query.step]
            query.step += 1
            if self.use_vc:
                self._start_tcp(query, server)
                return
            if self._send(query, server):
                return
        self._finish_exhausted(query)

    def _send(self, query: _Query, server: _Server) -> bool:
        try:
            sock = self._socket(server)
        except OSError as exc:
            query.failures.append((server, UNREACHABLE, f"cannot send ({_errno(exc)})"))
            return False
        pending = sock.pending
        qid = random.getrandbits(16)
        while qid in pending:
            qid = random.getrandbits(16)
        try:
            sock.sock.send(struct.pack("!H", qid) + query.body)
        except OSError as exc:
            if exc.errno == errno_module.ECONNREFUSED:
                # The ICMP port unreachable of an earlier datagram, reported on this send (on
                # loopback it comes back before send() returns): it concerns the queries
                # waiting on this server too, which will not see it on a recv now.
                query.failures.append((server, UNREACHABLE, _NOTHING_LISTENS_UDP))
                self._refused(server)
            else:
                query.failures.append((server, UNREACHABLE, f"cannot send ({_errno(exc)})"))
            return False
        query.sends += 1
        query.seq += 1
        query.socket = sock
        query.qid = qid
        now = query.sent_at = self.loop.time()
        pending[qid] = query
        inflight = server.inflight
        while inflight:  # answered ones at the head need no timer: drop them now
            head = inflight[0][1]
            if head.seq == inflight[0][2] and head.socket is not None:
                break
            inflight.popleft()
        inflight.append((now + server.timeout, query, query.seq))
        if server.timer is None:
            server.timer = self.loop.call_at(now + server.timeout, self._expire, server)
        return True

    def _expire(self, server: _Server) -> None:
        """The oldest queries on ``server`` whose time is up; then wait for the next one."""
        server.timer = None
        inflight = server.inflight
        now = self.loop.time()
        while inflight:
            deadline, query, seq = inflight[0]
            sock = query.socket
            live = (
                query.seq == seq
                and sock is not None
                and sock.server is server
                and sock.pending.get(query.qid) is query
            )
            if live and deadline > now:
                break
            inflight.popleft()
            if live:
                del sock.pending[query.qid]  # type: ignore[union-attr]
                self._timed_out(query, server)
        if inflight and server.timer is None:
            server.timer = self.loop.call_at(inflight[0][0], self._expire, server)

    def _timed_out(self, query: _Query, server: _Server) -> None:
        if server.refused_at >= query.sent_at - 2 * server.timeout:
            # ICMP port unreachable is rate-limited: a query sent just after one to a closed
            # port may get no ICMP of its own, and its silence means the same thing.
            query.failures.append((server, UNREACHABLE, _NOTHING_LISTENS_UDP))
        else:
            query.failures.append((server, TIMEOUT, f"no answer in {server.timeout:g}s"))
        self._next(query)

    def _finish(self, query: _Query, outcome: Outcome) -> None:
        query.socket = None
        waiter = query.waiter
        query.waiter = _DONE  # at most once, whatever comes late
        waiter.done(query.tag, outcome)

    def _finish_exhausted(self, query: _Query) -> None:
        """Every try failed: the outcome glibc would give (a failed rcode outranks silence)."""
        kinds = {kind for _, kind, _ in query.failures}
        if RCODE in kinds:
            kind = RCODE
        elif TIMEOUT in kinds:
            kind = TIMEOUT
        else:
            kind = UNREACHABLE
        self._finish(
            query,
            Outcome(kind, None, None, query.last_rcode, _failures_text(query), query.sends),
        )

    # -- replies ------------------------------------------------------------------------------
    def _on_readable(self, sock: _Socket) -> None:
        recv = sock.sock.recv
        pending = sock.pending
        while True:
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                self._refused(sock.server)
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            query = pending.get((data[0] << 8) | data[1])
            if query is None:
                continue  # late (its query timed out) or stray
            try:
                reply = parse_reply(data, query.question, query.qtype)
            except Malformed as exc:
                del pending[query.qid]
                server = sock.server
                self._finish(
                    query,
                    Outcome(
                        MALFORMED,
                        None,
                        server.label,
                        None,
                        f"malformed reply from {server.label}: {exc}",
                        query.sends,
                    ),
                )
                continue
            if reply is None:
                continue  # not an answer to this question: keep waiting
            del pending[query.qid]
            self._answered(query, sock.server, reply, tcp=False)

    def _answered(self, query: _Query, server: _Server, reply: Reply, *, tcp: bool) -> None:
        query.socket = None  # no longer waiting: its entry in server.inflight is stale now
        if reply.tc and not tcp:
            self._start_tcp(query, server)
            return
        if reply.rcode in _FAILED_RCODES or reply.lame:
            query.last_rcode = reply.rcode
            text = "a lame answer" if reply.lame else RCODE_NAME.get(reply.rcode, str(reply.rcode))
            query.failures.append((server, RCODE, text))
            self._next(query)
            return
        detail = _failures_text(query) if query.failures else None
        self._finish(query, Outcome(ANSWER, reply, server.label, reply.rcode, detail, query.sends))

    def _refused(self, server: _Server) -> None:
        """ICMP port unreachable from ``server``: every query waiting on it moves on."""
        server.refused_at = self.loop.time()
        waiting = [q for sock in server.sockets for q in sock.pending.values()]
        for sock in server.sockets:
            sock.pending.clear()
        for query in waiting:
            query.socket = None
            query.failures.append((server, UNREACHABLE, _NOTHING_LISTENS_UDP))
            self._next(query)

    # -- TCP ----------------------------------------------------------------------------------
    def _start_tcp(self, query: _Query, server: _Server) -> None:
        task = self.loop.create_task(self._tcp(query, server))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tcp(self, query: _Query, server: _Server) -> None:
        """One query over TCP to ``server`` (after a truncated answer, or ``use-vc``)."""
        sock = socket.socket(
            socket.AF_INET6 if server.ns.family == "ipv6" else socket.AF_INET, socket.SOCK_STREAM
        )
        sock.setblocking(False)
        query.sends += 1
        why = "truncated answer (TC), " if not self.use_vc else ""
        try:
            async with asyncio.timeout(server.timeout):
                await self.loop.sock_connect(sock, server.sockaddr)
                qid = random.getrandbits(16)
                message = struct.pack("!H", qid) + query.body
                await self.loop.sock_sendall(sock, struct.pack("!H", len(message)) + message)
                size = struct.unpack("!H", await _recv_exactly(self.loop, sock, 2))[0]
                data = await _recv_exactly(self.loop, sock, size)
        except ConnectionRefusedError:
            query.failures.append(
                (server, UNREACHABLE, f"{why}TCP refused: nothing listens on tcp/{server.ns.port}")
            )
            self._next(query)
            return
        except TimeoutError:
            query.failures.append((server, TIMEOUT, f"{why}no TCP answer in {server.timeout:g}s"))
            self._next(query)
            return
        except (OSError, EOFError) as exc:
            text = _errno(exc) if isinstance(exc, OSError) else "connection closed"
            query.failures.append((server, UNREACHABLE, f"{why}TCP failed ({text})"))
            self._next(query)
            return
        finally:
            sock.close()
        try:
            reply = parse_reply(data, query.question, query.qtype)
        except Malformed as exc:
            reply = None
            query.failures.append((server, MALFORMED, f"malformed TCP reply: {exc}"))
        if reply is None or data[:2] != struct.pack("!H", qid):
            if not query.failures or query.failures[-1][1] != MALFORMED:
                query.failures.append((server, MALFORMED, "a TCP reply to another question"))
            self._finish(
                query,
                Outcome(MALFORMED, None, server.label, None, _failures_text(query), query.sends),
            )
            return
        self._answered(query, server, reply, tcp=True)

    # -- sockets ------------------------------------------------------------------------------
    def _socket(self, server: _Server) -> _Socket:
        """The least busy UDP socket of ``server``; a new one when all are full."""
        best: _Socket | None = None
        for sock in server.sockets:
            if best is None or len(sock.pending) < len(best.pending):
                best = sock
        if best is not None and (
            len(best.pending) < server.per_socket or len(server.sockets) >= _MAX_SOCKETS
        ):
            return best
        return self._open(server)

    def _open(self, server: _Server) -> _Socket:
        family = socket.AF_INET6 if server.ns.family == "ipv6" else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            server.per_socket = max(_MIN_PER_SOCKET, min(_MAX_PER_SOCKET, rcvbuf // _SKB_COST))
            sock.connect(server.sockaddr)
        except OSError:
            sock.close()
            raise
        entry = _Socket(server, sock)
        server.sockets.append(entry)
        self.loop.add_reader(entry.fd, self._on_readable, entry)
        return entry

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for server in self.servers:
            if server.timer is not None:
                server.timer.cancel()
                server.timer = None
            server.inflight.clear()
            for sock in server.sockets:
                sock.pending.clear()
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(sock.fd)
                sock.sock.close()
            server.sockets.clear()


_DONE = _Finished()
_NOTHING_LISTENS_UDP = "nothing listens on its DNS port (ICMP port unreachable)"


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _errno(exc: OSError) -> str:
    name = errno_module.errorcode.get(exc.errno or 0)
    return name or str(exc)


def _failures_text(query: _Query) -> str:
    """``198.18.53.5: no answer in 1s; 198.18.53.4: nothing listens ...`` (repeats folded)."""
    parts: list[str] = []
    for server, _kind, text in query.failures:
        part = f"{server.label}: {text}"
        if part not in parts:
            parts.append(part)
    return "; ".join(parts)
