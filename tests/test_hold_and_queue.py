"""Listening but not accepting, and accepting but closing: real servers on loopback.

* ``not_accepting``: a listener that never calls accept(), its queue full — on this host's
  own address the kernel's socket table tells it from a firewall's drop;
* ``closed_by_peer`` (``hold_ms``): servers that accept and close, accept and reset, and a
  real haproxy whose only backend is down; and what stays ``open`` under a hold: a service
  that speaks first, one that stays silent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import scanner
from scanner.models import Category, Inventory, Target

from .conftest import free_port


def check(*targets: Target) -> scanner.CheckResult:
    return scanner.check(Inventory(paths=("test",), targets=list(targets)))


class Server:
    """Accepts connections in a thread and does ``behaviour`` with each."""

    def __init__(self, behaviour: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.kept: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif self.behaviour == "close":
                conn.close()
            elif self.behaviour == "banner":
                conn.sendall(b"220 mail.example ESMTP ready\r\n")
                self.kept.append(conn)
            else:  # silent: accepts and keeps it
                self.kept.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        for conn in self.kept:
            conn.close()
        self.sock.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    running = Server(request.param)
    try:
        yield running
    finally:
        running.close()


def test_a_listener_that_does_not_accept_is_not_accepting(full_port: int) -> None:
    result = check(Target("queue", "127.0.0.1", full_port, timeout=0.3, retries=1))
    (target,) = result.targets
    assert target.category is Category.NOT_ACCEPTING
    assert target.probes[0].attempts == 2  # retried like any timeout
    assert target.hint is not None and "does not accept" in target.hint
    assert str(full_port) in target.hint


def test_not_accepting_is_not_closed(full_port: int) -> None:
    """``expect: closed`` is not met by a port that listens, accepting or not."""
    result = check(Target("x", "127.0.0.1", full_port, expect="closed", timeout=0.3, retries=0))
    assert not result.targets[0].ok and result.targets[0].category is Category.NOT_ACCEPTING


def test_a_silent_drop_without_a_listener_stays_a_timeout(tmp_path: Path) -> None:
    """No listener, but no reset either (an nft drop in a namespace): a plain timeout."""
    if os.geteuid() != 0 or shutil.which("nft") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run this: root and nft")
        pytest.skip("needs root and nft")
    from .lab.netns import Netns

    ns = Netns(f"scl{os.getpid()}-drop")
    try:
        ns.ip("link set lo up")
        ns.nft(
            "table inet t {\n  chain out {\n    type filter hook output priority 0;\n"
            "    tcp dport 9 drop\n  }\n}\n"
        )
        proc = ns.run([*_python(), "-c", _ONE_CHECK.format(port=9)])
        assert proc.stdout.strip() == "timeout", proc.stderr
    finally:
        ns.delete()


def _python() -> list[str]:
    import sys

    return [sys.executable]


_ONE_CHECK = (
    "import scanner; from scanner.models import Inventory, Target;"
    "r = scanner.check(Inventory(paths=('x',), targets=[Target('t', '127.0.0.1', {port},"
    " timeout=0.3, retries=0)])); print(r.targets[0].category)"
)


@pytest.mark.parametrize(
    ("server", "closed", "how"),
    [("close", Category.CLOSED_BY_PEER, "a FIN"), ("reset", Category.CLOSED_BY_PEER, "a reset")],
    indirect=["server"],
)
def test_accepting_then_closing_is_closed_by_peer_when_held(
    server: Server, closed: Category, how: str
) -> None:
    held = check(Target("lb", "127.0.0.1", server.port, timeout=1, hold_ms=300))
    (target,) = held.targets
    assert target.category is closed and not target.ok
    assert target.hint is not None and f"({how} within 300 ms)" in target.hint
    assert "no healthy backend" in target.hint
    plain = check(Target("lb", "127.0.0.1", server.port, timeout=1))
    assert plain.targets[0].category is Category.OPEN  # without hold_ms: the handshake


@pytest.mark.parametrize("server", ["banner", "silent"], indirect=True)
def test_a_service_that_speaks_or_waits_is_open_when_held(server: Server) -> None:
    started = time.monotonic()
    result = check(Target("smtp", "127.0.0.1", server.port, timeout=1, hold_ms=200))
    assert result.targets[0].category is Category.OPEN
    if server.behaviour == "silent":  # held to the end of its hold
        assert time.monotonic() - started >= 0.2
    assert result.targets[0].probes[0].latency_ms is not None
    assert result.targets[0].probes[0].latency_ms < 200  # the handshake's, not the hold's


def test_a_real_haproxy_with_no_backend_is_closed_by_peer(tmp_path: Path) -> None:
    """haproxy in TCP mode whose only server is down: it accepts, finds no server, and
    closes — what a load balancer in front of a dead service does."""
    if shutil.which("haproxy") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run this: haproxy is not installed")
        pytest.skip("haproxy is not installed")
    front, dead = free_port(), free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n  maxconn 100\n"
        "defaults\n  mode tcp\n  timeout connect 200ms\n  timeout client 5s\n"
        "  timeout server 5s\n  retries 0\n"
        f"frontend in\n  bind 127.0.0.1:{front}\n  default_backend app\n"
        f"backend app\n  server down 127.0.0.1:{dead}\n"
    )
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", front)) == 0:
                    break
            time.sleep(0.05)
        held = check(Target("lb", "127.0.0.1", front, timeout=1, hold_ms=2000))
        plain = check(Target("lb", "127.0.0.1", front, timeout=1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert held.targets[0].category is Category.CLOSED_BY_PEER, held.targets[0]
    assert plain.targets[0].category is Category.OPEN


@pytest.mark.parametrize(
    ("err", "closed", "category"),
    [
        (errno.ECONNRESET, "RST", Category.CLOSED_BY_PEER),  # reset before the first look
        (errno.EPIPE, "FIN", Category.CLOSED_BY_PEER),
        (errno.ECONNREFUSED, None, Category.REFUSED),  # never accepted: not a hold's finding
        (errno.ETIMEDOUT, None, Category.TIMEOUT),
    ],
)
def test_a_reset_that_beats_the_hold_is_still_closed_by_peer(
    err: int, closed: str | None, category: Category
) -> None:
    """A server that accepts and resets at once can be quicker than the first SO_ERROR
    read: the handshake then ends with ECONNRESET, never reaching the hold. Under a hold
    that is ``closed_by_peer``, as a reset during the hold is."""
    from scanner.classify import classify_connect
    from scanner.models import ConnectOutcome
    from scanner.probers.hold import _Hold

    seen: list[ConnectOutcome] = []
    loop = asyncio.new_event_loop()
    try:
        hold = _Hold(loop, 0.3, lambda outcome, _local: seen.append(outcome))
        hold.unkept(ConnectOutcome(err, err == errno.ETIMEDOUT, 0.1), None)
    finally:
        loop.close()
    (outcome,) = seen
    assert outcome.peer_closed == closed
    assert classify_connect(outcome) is category
