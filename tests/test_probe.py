"""Probing with real sockets: open, refused, drops, and our own fd shortage."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from scanner.classify import classify_connect
from scanner.engine import effective_concurrency, probe_address, raise_fd_limit
from scanner.models import Category, Target

from .conftest import ROOT, Listener


async def test_open_and_refused_on_both_families(listener: Listener, closed_port: int) -> None:
    for address, family in (("127.0.0.1", "ipv4"), ("::1", "ipv6")):
        target = Target(name="t", host=address, port=listener.port, timeout=2, retries=0)
        opened = await probe_address(target, address, family)  # type: ignore[arg-type]
        assert opened.category is Category.OPEN and opened.errno is None
        assert opened.latency_ms is not None and opened.latency_ms >= 0
        closed = Target(name="c", host=address, port=closed_port, timeout=2, retries=0)
        refused = await probe_address(closed, address, family)  # type: ignore[arg-type]
        assert refused.category is Category.REFUSED
        assert refused.errno == "ECONNREFUSED" and refused.icmp is None
        assert refused.attempts == 1


async def test_silent_drop_is_retried_then_timeout(full_port: int) -> None:
    target = Target(name="d", host="127.0.0.1", port=full_port, timeout=0.2, retries=2)
    result = await probe_address(target, "127.0.0.1", "ipv4")
    assert result.category is Category.TIMEOUT
    assert result.attempts == 3
    assert result.errno == "ETIMEDOUT"


async def test_refused_is_not_retried(closed_port: int) -> None:
    target = Target(name="r", host="127.0.0.1", port=closed_port, timeout=1, retries=3)
    result = await probe_address(target, "127.0.0.1", "ipv4")
    assert result.attempts == 1


def test_out_of_descriptors_is_inconclusive(listener: Listener) -> None:
    """Exhaust our own fd table for real: the probe must blame us, not the target."""
    script = textwrap.dedent(f"""
        import anyio, resource, socket
        from scanner.engine import probe_address
        from scanner.models import Target

        async def main():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
            hog = []
            try:
                while True:
                    hog.append(socket.socket())
            except OSError:
                pass
            target = Target(name="t", host="127.0.0.1", port={listener.port}, retries=0)
            result = await probe_address(target, "127.0.0.1", "ipv4")
            for sock in hog:
                sock.close()
            print(result.category.value, result.errno)

        anyio.run(main)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["inconclusive", "EMFILE"]


@pytest.mark.parametrize(
    ("requested", "limit", "expected"),
    [
        (None, 100000, 1024),
        (None, 200, 150),
        (5000, 100000, 5000),
        (5000, 1024, 960),
        (10, 40, 10),
        (None, 64, 48),
        (None, 16, 8),
        (None, 4, 1),
    ],
)
def test_concurrency_is_capped_by_the_fd_limit(
    requested: int | None, limit: int, expected: int
) -> None:
    assert effective_concurrency(requested, limit) == expected


def test_fd_limit_is_raised_to_the_hard_limit() -> None:
    import resource

    soft = raise_fd_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_classify_connect_uses_the_error_queue_first() -> None:
    from scanner.models import ConnectOutcome, IcmpDetail

    rst = ConnectOutcome(111, False, 1.0)
    port_unreachable = ConnectOutcome(111, False, 1.0, IcmpDetail(3, 3, "198.18.2.1", "ipv4"))
    assert classify_connect(rst) is Category.REFUSED
    assert classify_connect(port_unreachable) is Category.REJECTED


async def test_rate_limit_is_seen_at_the_listener() -> None:
    """--rate 50: the listener's accept times, not our own clock, show the spacing."""
    import anyio

    from scanner.engine import Gate

    from .conftest import wait_for

    server = Listener("127.0.0.1")
    gate = Gate(rate=50, per_address=None)
    target = Target(name="r", host="127.0.0.1", port=server.port, timeout=1, retries=0)
    try:
        async with anyio.create_task_group() as group:
            for _ in range(25):
                group.start_soon(probe_address, target, "127.0.0.1", "ipv4", gate)
        wait_for(lambda: len(server.accepted) >= 25, timeout=2)
    finally:
        server.close()
    accepted = server.accepted
    assert len(accepted) == 25
    # 25 handshakes at 50/s: 24 gaps of 20 ms (accept adds jitter, allow 10 %)
    assert accepted[-1] - accepted[0] >= 24 * 0.02 * 0.9


async def test_per_address_cap_bounds_connections_in_flight() -> None:
    """The gate never lets more than 3 handshakes to one address be in flight at once."""
    import socket

    import anyio

    from scanner.engine import Gate

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(100)
    port = server.getsockname()[1]
    gate = Gate(rate=None, per_address=3)
    target = Target(name="p", host="127.0.0.1", port=port, timeout=1, retries=0)
    in_flight = 0
    peak = 0
    original = gate.admit

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def counting(address: str):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        async with original(address):
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                yield
            finally:
                in_flight -= 1

    gate.admit = counting  # type: ignore[method-assign]
    try:
        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(probe_address, target, "127.0.0.1", "ipv4", gate)
    finally:
        server.close()
    assert peak == 3
