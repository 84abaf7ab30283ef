"""scanner.explain against the real kernel on loopback: our own listeners, real refusals, a
listener that never calls accept(). No root needed; nothing leaves 127.0.0.0/8 and ::1.

Other tests (and other people's) run listeners on this host at the same time, so every case
picks an address of 127.0.0.0/8 and a port that nothing else is near, and asserts only on the
listeners this test made.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from scanner.explain import (
    accepts,
    find_owners,
    findings_from,
    is_own_address,
    listen_counters,
    listeners,
    local_findings,
    read_local_state,
    route_to,
)
from scanner.explain.sockets import diag_listeners, read_proc_listeners

with open(f"/proc/{os.getpid()}/comm", encoding="ascii") as _comm:
    OUR_NAME = _comm.read().strip()
OURS = f"{OUR_NAME}, pid {os.getpid()}"


def _listen(
    family: int, address: str, port: int = 0, backlog: int = 16, **opts: int
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    if "v6only" in opts:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, opts["v6only"])
    sock.bind((address, port))
    sock.listen(backlog)
    return sock


def _random_loopback() -> str:
    a, b, c = secrets.randbelow(250) + 2, secrets.randbelow(254) + 1, secrets.randbelow(254) + 1
    return f"127.{a}.{b}.{c}"


def _quiet_around(address: str, port: int, spread: int = 3) -> bool:
    """No listener but ours takes ``address`` on a port within ``spread`` of ``port``."""
    return not any(
        accepts(sock, address, other)
        for sock in listeners()
        for other in range(port - spread, port + spread + 1)
        if other != port
    )


def _refused(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            return True
    return False


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    try:
        yield made
    finally:
        for sock in made:
            sock.close()


def test_our_listener_is_seen_with_its_queue_backlog_and_process(
    sockets: list[socket.socket],
) -> None:
    address = _random_loopback()
    server = _listen(socket.AF_INET, address, backlog=7)
    sockets.append(server)
    port = server.getsockname()[1]
    for _ in range(3):
        client = socket.create_connection((address, port), timeout=2)
        sockets.append(client)
    inode = os.fstat(server.fileno()).st_ino
    (diag,) = [s for s in diag_listeners() if (s.address, s.port) == (address, port)]
    assert (diag.family, diag.queue, diag.backlog, diag.inode) == ("ipv4", 3, 7, inode)
    assert diag.uid == os.getuid() and not diag.queue_full
    (proc,) = [s for s in read_proc_listeners() if (s.address, s.port) == (address, port)]
    assert (proc.queue, proc.inode, proc.backlog) == (3, inode, None)  # /proc has no backlog
    owners = find_owners([inode])
    assert [(p.pid, p.name) for p in owners[inode]] == [(os.getpid(), OUR_NAME)]


def test_ipv6_wildcards_and_v4_mapped_as_the_kernel_reports_them(
    sockets: list[socket.socket],
) -> None:
    dual = _listen(socket.AF_INET6, "::", v6only=0)
    only6 = _listen(socket.AF_INET6, "::", v6only=1)
    mapped = _listen(socket.AF_INET6, "::ffff:127.0.0.1", v6only=0)
    sockets.extend([dual, only6, mapped])
    seen = {(s.port, s.source): s for s in [*diag_listeners(), *read_proc_listeners()]}
    dual_seen = seen[(dual.getsockname()[1], "sock_diag")]
    assert (dual_seen.address, dual_seen.v6only) == ("::", False)
    assert seen[(only6.getsockname()[1], "sock_diag")].v6only is True
    for source in ("sock_diag", "proc"):
        assert seen[(mapped.getsockname()[1], source)].address == "::ffff:127.0.0.1"
    # the dual-stack one really takes IPv4, the v6only one really does not
    assert accepts(dual_seen, "127.0.0.1", dual.getsockname()[1])
    socket.create_connection(("127.0.0.1", dual.getsockname()[1]), timeout=2).close()
    assert _refused("127.0.0.1", only6.getsockname()[1])


def test_wrong_port_names_our_listener(sockets: list[socket.socket]) -> None:
    for _ in range(10):
        address = _random_loopback()
        server = _listen(socket.AF_INET, address)
        sockets.append(server)
        port = server.getsockname()[1]
        if port < 65535 and _quiet_around(address, port) and _refused(address, port + 1):
            break
    else:
        pytest.fail("no quiet port found on loopback in 10 tries")
    (finding,) = local_findings(address, port + 1, "refused")
    assert finding.code == "wrong_port"
    assert finding.sentence == f"nothing listens on {port + 1}; {port} does ({OURS}): wrong port?"
    assert port in finding.ports


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_listener_counts_for_every_address(
    sockets: list[socket.socket], wildcard: str
) -> None:
    family = socket.AF_INET if wildcard == "0.0.0.0" else socket.AF_INET6
    for _ in range(10):
        server = _listen(family, wildcard, **({} if family == socket.AF_INET else {"v6only": 0}))
        sockets.append(server)
        port = server.getsockname()[1]
        address = _random_loopback()
        if port < 65535 and _quiet_around(address, port) and _refused(address, port + 1):
            break
    else:
        pytest.fail("no quiet port found in 10 tries")
    (finding,) = local_findings(address, port + 1, "refused")
    assert finding.code == "wrong_port"
    assert f"; {port} does ({OURS}): wrong port?" in finding.sentence


def test_listening_on_127_0_0_1_not_on_ipv6_loopback(sockets: list[socket.socket]) -> None:
    for _ in range(10):
        server = _listen(socket.AF_INET, "127.0.0.1")
        sockets.append(server)
        port = server.getsockname()[1]
        if _refused("::1", port):
            break
    else:
        pytest.fail("no port free on ::1 in 10 tries")
    findings = local_findings("::1", port, "refused")
    assert findings[0].code == "other_family"
    assert findings[0].sentence == f"listens on 127.0.0.1:{port}, not on ::1 ({OURS})"


def test_listening_on_another_loopback_address(sockets: list[socket.socket]) -> None:
    address, probed = _random_loopback(), _random_loopback()
    server = _listen(socket.AF_INET, address)
    sockets.append(server)
    port = server.getsockname()[1]
    assert _refused(probed, port)
    findings = local_findings(probed, port, "refused")
    assert findings[0].code == "other_address"
    # both are loopback: not "bound to localhost", just another address
    assert findings[0].sentence == (
        f"listens on {address}:{port} only ({OURS}); you probed {probed}"
    )


def test_a_listener_that_never_accepts_fills_its_queue(sockets: list[socket.socket]) -> None:
    """listen(0) holds one connection; the next SYN is dropped and ListenOverflows rises."""
    address = _random_loopback()
    server = _listen(socket.AF_INET, address, backlog=0)
    sockets.append(server)
    port = server.getsockname()[1]
    sockets.append(socket.create_connection((address, port), timeout=2))  # fills the queue
    before = listen_counters()
    assert before is not None
    probe = socket.socket()
    sockets.append(probe)
    probe.settimeout(1.2)  # the first SYN and its retransmission after 1 s
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        probe.connect((address, port))
    assert time.monotonic() - started >= 1.1
    (finding,) = local_findings(address, port, "timeout", before=before)
    assert finding.code == "accept_queue_full" and finding.suggests == "not_accepting"
    assert finding.sentence.startswith(
        "the service listens but does not accept: hung, deadlocked or overloaded "
        f"({OURS} on {address}:{port}: accept queue full: 1 waiting to be accepted, backlog 0)"
    )
    after = listen_counters()
    assert after is not None and after.overflows >= before.overflows + 1
    assert after.drops >= after.overflows - before.overflows + before.drops  # drops include them
    assert "ListenOverflows rose by" in finding.sentence


def test_loopback_is_our_own_and_its_source_is_itself() -> None:
    for address in ("127.0.0.1", "127.0.0.5", "::1", "::ffff:127.0.0.1"):
        route = route_to(address)
        assert route.own and route.kind == "local", route
        assert is_own_address(address)
    assert route_to("127.0.0.5").source == "127.0.0.1"  # the kernel's preferred source on lo
    assert route_to("::1").source == "::1"


def test_other_categories_and_foreign_addresses_get_no_local_findings() -> None:
    assert local_findings("127.0.0.1", 1, "open") == []
    assert local_findings("127.0.0.1", 1, "rejected") == []


def test_the_cost_of_one_refused_explanation(sockets: list[socket.socket]) -> None:
    """Measured, loosely bounded: the engine may call this for every local refusal."""
    server = _listen(socket.AF_INET, "127.0.0.1")
    sockets.append(server)
    port = server.getsockname()[1]
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        local_findings("127.0.0.1", port + 1, "refused")
        timings.append(time.perf_counter() - started)
    timings.sort()
    with contextlib.suppress(Exception):
        print(f"local_findings refused: median {timings[10] * 1e3:.2f} ms")
    assert timings[10] < 0.5


def test_one_state_for_a_whole_scan_says_the_same(sockets: list[socket.socket]) -> None:
    """read_local_state once, findings_from per target: the sentences of local_findings."""
    for _ in range(10):
        address, elsewhere = _random_loopback(), _random_loopback()
        server = _listen(socket.AF_INET, address)
        sockets.append(server)
        port = server.getsockname()[1]
        if port < 65535 and _quiet_around(address, port) and _refused(address, port + 1):
            break
    else:
        pytest.fail("no quiet port found on loopback in 10 tries")
    assert _refused(elsewhere, port)
    state = read_local_state()
    inode = os.fstat(server.fileno()).st_ino
    assert [p.pid for p in state.owners[inode]] == [os.getpid()]
    for probed, probed_port, code in (
        (address, port + 1, "wrong_port"),
        (elsewhere, port, "other_address"),
    ):
        fresh = local_findings(probed, probed_port, "refused")
        assert fresh[0].code == code
        assert findings_from(state, probed, probed_port, "refused")[0] == fresh[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: the other tests show it")
def test_everything_works_without_privileges(sockets: list[socket.socket]) -> None:
    """Drop to nobody in a forked child (the modules are loaded already) and explain there."""
    server = _listen(socket.AF_INET, "127.0.0.1")
    sockets.append(server)
    port = server.getsockname()[1]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            server.close()  # only root's copy (the parent's) holds the socket now
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            found = {
                "uid": os.getuid(),
                "ours": any(s.port == port for s in diag_listeners()),
                "own": is_own_address("127.0.0.1"),
                "counters": listen_counters() is not None,
                "refused": [f.sentence for f in local_findings("127.0.0.1", port, "refused")],
            }
            os.write(write_end, json.dumps(found).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    found = json.loads(text)
    assert found["uid"] == 65534 and found["ours"] and found["own"] and found["counters"]
    # root's fds are not nobody's to read: the owner is unknown, its uid is known
    assert found["refused"] == [
        f"127.0.0.1:{port} listens now (unknown process, uid 0): it started after the probe, "
        "or a local firewall rule answers with a reset (nftables rules are not readable "
        "without root)"
    ]
