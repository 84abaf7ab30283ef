"""Real surroundings for the tests: a DNS server process on loopback, TCP listeners, the CLI.

Nothing here fakes the network. Every name a test resolves is answered by
``scanner.testing.dns_server`` running as its own process on 127.0.0.1, and every
hosts-file lookup reads a test file named by ``CARES_HOSTS`` (never /etc/hosts).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .tls_servers import Nginx, Pki

ROOT = Path(__file__).resolve().parent.parent

ZONE: dict[str, Any] = {
    "ok.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "v4only.test": {"A": ["127.0.0.1"]},
    "v6only.test": {"AAAA": ["::1"]},
    "multi.test": {"A": ["127.0.0.1", "127.0.0.2"]},
    "alias.test": {"CNAME": "alias2.test"},
    "alias2.test": {"CNAME": "alias3.test"},
    "alias3.test": {"CNAME": "ok.test"},
    "dangling.test": {"CNAME": "nothere.test"},
    "txtonly.test": {"TXT": ["x"]},
    "broken.test": {"rcode": "SERVFAIL"},
    "refused.test": {"rcode": "REFUSED"},
    "silent.test": {"rcode": "DROP"},
    "half.test": {"A": ["127.0.0.1"], "AAAA": "SERVFAIL"},
    "halfnx.test": {"A": "SERVFAIL", "AAAA": []},
    "shared.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "hostsonly.test": {"A": ["127.0.0.200"]},  # the hosts file must win over this
    # resolver behaviour under load and misbehaviour (tests/test_resolve.py)
    **{f"fast{i}.test": {"A": ["127.0.0.1"]} for i in range(1000)},
    **{f"slow{i}.test": {"A": ["127.0.0.3"], "delay_ms": 600} for i in range(5)},
    **{f"healthy{i}.test": {"A": ["127.0.0.4"]} for i in range(30)},
    "garbled.test": {"rcode": "MALFORMED"},
    "foreign.test": {"A": ["127.0.0.5"], "extra": ["evil.test. 5 A 127.0.0.66"]},
    "sink.test": {"A": ["0.0.0.0"], "AAAA": ["::"]},
}

HOSTS_FILE = "127.0.0.9 hostsonly.test\n::1 v6hosts.test\n"

EVENT_KEYS: dict[str, set[str]] = {
    "scan.started": {"schema_version", "targets", "inventories", "concurrency"},
    "dns.result": {"host", "addresses", "category", "latency_ms", "nameserver"},
    "probe.result": {
        "target",
        "host",
        "port",
        "address",
        "family",
        "category",
        "latency_ms",
        "attempts",
        "errno",
        "icmp_type",
        "icmp_code",
        "icmp_from",
        "hint",
    },
    "target.result": {
        "target",
        "host",
        "port",
        "expect",
        "ok",
        "category",
        "addresses",
        "hint",
        "tags",
        "change",
        "last_hop",
        "path_verdict",
    },
    "path.hop": {
        "target",
        "address",
        "ttl",
        "hop_address",
        "rtt_ms",
        "icmp_type",
        "icmp_code",
        "reached",
    },
    "scan.finished": {"counts", "duration_s", "ok", "interrupted"},
}
# scanner wait: a target after one round (the target.result fields, then the wait's)
EVENT_KEYS["target.waiting"] = EVENT_KEYS["target.result"] | {
    "round",
    "good_rounds",
    "stable",
    "since",
    "for_s",
    "waited_s",
    "next_in_s",
}
EVENT_KEYS["target.ready"] = EVENT_KEYS["target.waiting"]


@dataclass
class DnsServer:
    host: str
    port: int
    log: Path

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def queries(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """The zone above, served on the wire by a separate process."""
    workdir = tmp_path_factory.mktemp("dns")
    zone_file = workdir / "zone.json"
    zone_file.write_text(json.dumps(ZONE))
    log = workdir / "queries.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner.testing.dns_server",
            "--zone",
            str(zone_file),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--query-log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:1] == ["listening"], f"DNS server did not start: {line}"
    try:
        yield DnsServer(line[1], int(line[2]), log)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def hosts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hosts") / "hosts"
    path.write_text(HOSTS_FILE)
    return path


class Listener:
    """A TCP listener that accepts and closes connections in a thread, like a live service."""

    def __init__(
        self, host: str = "127.0.0.1", family: int = socket.AF_INET, port: int = 0
    ) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(4096)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[float] = []  # monotonic time of each accepted connection
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(time.monotonic())
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Listens on 127.0.0.1 and, on the same port, ::1."""
    v4 = Listener("127.0.0.1")
    v6 = Listener("::1", socket.AF_INET6, v4.port)
    try:
        yield v4
    finally:
        v4.close()
        v6.close()


def free_port() -> int:
    """A port on loopback where nothing listens (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def full_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel silently drops further SYNs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    for _ in range(2):
        filler = socket.socket()
        filler.settimeout(0.3)
        with contextlib.suppress(OSError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def scanner_env(hosts: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CARES_HOSTS")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if hosts is not None:
        env["CARES_HOSTS"] = str(hosts)
    return env


def scanner_on_path(tmp_path: Path, **extra: str) -> dict[str, str]:
    """:func:`scanner_env` with a ``scanner`` command on PATH that runs the code under test
    (``python -m scanner``), for commands written as a person or a CI system types them."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    script = shim / "scanner"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scanner "$@"\n')
    script.chmod(0o755)
    env = scanner_env()
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def popen_scanner(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``python -m scanner ARGS`` as users do, in the background (bytes on its pipes)."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        [sys.executable, "-m", "scanner", *args], env=scanner_env(), cwd=ROOT, **kwargs
    )
    return proc


def run_scanner(
    *args: str,
    hosts: Path | None = None,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scanner`` as users do, in a subprocess."""
    env = scanner_env(hosts)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON event with the SPEC §3 keys of its type."""
    events = []
    for number, line in enumerate(stdout.splitlines(), 1):
        event = json.loads(line)  # raises on anything that is not JSON
        assert isinstance(event, dict), f"line {number} is not an object"
        name = event.get("event")
        assert name in EVENT_KEYS, f"line {number}: unknown event {name!r}"
        missing = (EVENT_KEYS[name] | {"timestamp", "level"}) - event.keys()
        assert not missing, f"line {number} ({name}) lacks {sorted(missing)}"
        assert event["timestamp"].endswith("Z") or event["timestamp"].endswith("+00:00")
        events.append(event)
    return events


def write_inventory(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# --- the TLS tests' certificates and nginx (tests/tls_servers.py), once a session -------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Every certificate case of ``tls_certificates``, by label."""
    from .tls_servers import tls_certificates

    return tls_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def nginx(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """One nginx on 127.0.0.1 and ::1: a port per case of NGINX_CASES and NGINX_SPLIT."""
    from .tls_servers import NGINX_CASES, NGINX_SPLIT, nginx_available, require, start_nginx

    require(nginx_available(), "no nginx")
    server = start_nginx(pki, tmp_path_factory.mktemp("nginx"), list(NGINX_CASES), NGINX_SPLIT)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def openssl() -> None:
    """The ``openssl`` command, the reference the TLS verdicts are held to."""
    from .tls_servers import require

    require(shutil.which("openssl") is not None, "no openssl command")


def run_on_tty(
    args: list[str], env: dict[str, str], *, stdout: Path | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run the CLI with stderr (and stdout, unless a file is given) on a pseudo-terminal, as
    a person would see it: (exit code, everything the terminal showed)."""
    import pty

    leader, follower = pty.openpty()
    out = open(stdout, "wb") if stdout is not None else None  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner", *args],
            stdout=out if out is not None else follower,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
    finally:
        if out is not None:
            out.close()
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")
