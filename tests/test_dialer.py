"""The Dialer: one epoll set and one timer for many handshakes, on real loopback sockets."""

from __future__ import annotations

import asyncio
import errno

from scanner.models import ConnectOutcome
from scanner.probers.tcp import Dialer

from .conftest import Listener

Ended = list[tuple[str, ConnectOutcome]]


def recorder(ended: Ended, label: str):  # type: ignore[no-untyped-def]
    return lambda outcome, _local: ended.append((label, outcome))


async def settle(ended: Ended, count: int, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(ended) < count and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_deadlines_of_different_lengths_end_in_deadline_order(full_port: int) -> None:
    """Three timeout values, started longest first: each ends at its own deadline."""
    dialer = Dialer(asyncio.get_running_loop())
    ended: Ended = []
    try:
        for timeout in (0.45, 0.15, 0.3):
            dialer.connect("127.0.0.1", full_port, "ipv4", timeout, recorder(ended, f"{timeout}"))
        await settle(ended, 3)
    finally:
        dialer.close()
    assert [label for label, _ in ended] == ["0.15", "0.3", "0.45"]
    for label, outcome in ended:
        assert outcome.timed_out and outcome.errno == errno.ETIMEDOUT
        assert outcome.latency_ms >= float(label) * 1000 - 1


async def test_mixed_outcomes_share_one_dialer(
    listener: Listener, closed_port: int, full_port: int
) -> None:
    dialer = Dialer(asyncio.get_running_loop())
    ended: Ended = []
    try:
        dialer.connect("127.0.0.1", full_port, "ipv4", 0.2, recorder(ended, "dropped"))
        dialer.connect("127.0.0.1", listener.port, "ipv4", 2, recorder(ended, "open"))
        dialer.connect("::1", closed_port, "ipv6", 2, recorder(ended, "refused"))
        await settle(ended, 3)
    finally:
        dialer.close()
    outcomes = dict(ended)
    assert set(outcomes) == {"dropped", "open", "refused"}
    assert outcomes["open"].errno == 0 and not outcomes["open"].timed_out
    assert outcomes["refused"].errno == errno.ECONNREFUSED
    assert outcomes["dropped"].timed_out
    assert [label for label, _ in ended][-1] == "dropped"  # the only one that waited


async def test_abandoned_and_closed_handshakes_never_report(full_port: int) -> None:
    dialer = Dialer(asyncio.get_running_loop())
    ended: Ended = []
    abandon = dialer.connect("127.0.0.1", full_port, "ipv4", 0.1, recorder(ended, "a"))
    dialer.connect("127.0.0.1", full_port, "ipv4", 0.1, recorder(ended, "b"))
    kept = dialer.connect("127.0.0.1", full_port, "ipv4", 0.1, recorder(ended, "c"))
    assert len(dialer.waiting) == 3
    abandon()
    abandon()  # twice is harmless
    assert len(dialer.waiting) == 2
    await settle(ended, 2, timeout=1.0)
    assert [label for label, _ in ended] == ["b", "c"]
    kept()  # after it ended: nothing to do
    late = dialer.connect("127.0.0.1", full_port, "ipv4", 0.1, recorder(ended, "late"))
    dialer.close()
    await asyncio.sleep(0.3)
    assert [label for label, _ in ended] == ["b", "c"] and not dialer.waiting
    late()


async def test_overdue_while_a_deadline_has_passed_unhandled(full_port: int) -> None:
    """``overdue`` is what lets the engine replace timed-out handshakes before reporting
    them: true from a deadline until the timer has ended those handshakes."""
    import time

    dialer = Dialer(asyncio.get_running_loop())
    ended: Ended = []
    try:
        assert not dialer.overdue()  # nothing waits
        dialer.connect("127.0.0.1", full_port, "ipv4", 0.05, recorder(ended, "silent"))
        assert not dialer.overdue()
        time.sleep(0.1)  # the loop is busy: the deadline passes, the timer cannot run
        assert dialer.overdue() and not ended
        await settle(ended, 1)
        assert [label for label, _ in ended] == ["silent"]
        assert not dialer.overdue()
    finally:
        dialer.close()
    assert not dialer.overdue()


async def test_an_answer_a_busy_loop_has_not_seen_is_not_a_timeout() -> None:
    """At the deadline the socket is asked before the handshake is called timed out.

    libuv (uvloop) runs due timers before it polls, so after a long busy stretch the timer
    comes first even when the answer came long ago. Staged for real: the SYN meets a full
    accept queue and is dropped; the queue is drained; the kernel's retransmission after
    1 s connects while the loop is blocked; then the timer runs first, as under libuv.
    """
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # the queue is full
    dialer = Dialer(asyncio.get_running_loop())
    ended: Ended = []
    try:
        dialer.connect("127.0.0.1", port, "ipv4", 1.3, recorder(ended, "late"))
        time.sleep(0.1)
        assert dialer.waiting  # the SYN was dropped: still connecting
        server.settimeout(1)
        server.accept()[0].close()  # room in the queue for the retransmitted SYN
        time.sleep(1.5)  # the loop is busy: the handshake completes, the deadline passes
        assert dialer.overdue() and not ended
        dialer._on_timer()  # timers before polling, as libuv does
        assert [label for label, _ in ended] == ["late"]
        outcome = ended[0][1]
        assert outcome.errno == 0 and not outcome.timed_out  # connected: open, not timeout
        assert outcome.latency_ms >= 1300
    finally:
        dialer.close()
        filler.close()
        server.close()
