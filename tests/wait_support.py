"""What the ``scanner wait`` tests stage: services that come up late, go down, flap, and a DNS
server whose answers change while the wait runs. All of it real: sockets on loopback and the
project's DNS server as its own process, its zone file replaced under it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .conftest import ROOT, Listener, scanner_env


class ZoneServer:
    """``scanner.testing.dns_server --reload`` on a zone file this object rewrites.

    ``prefix`` runs the server through another command (``ip netns exec NAME``), so the same
    server can answer inside a network namespace.
    """

    def __init__(
        self,
        workdir: Path,
        zone: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: Sequence[str] = (),
    ) -> None:
        self.zone_file = workdir / "zone.json"
        self.log = workdir / "queries.log"
        self.set(zone)
        self.proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "scanner.testing.dns_server",
                "--zone",
                str(self.zone_file),
                "--host",
                host,
                "--port",
                str(port),
                "--query-log",
                str(self.log),
                "--reload",
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=scanner_env(),
            # a process group of its own: a namespace's teardown kills it by its group
            # (without one, that kill missed it and the server outlived the test)
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["listening"], f"DNS server did not start: {line}"
        self.host, self.port = line[1], int(line[2])

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def set(self, zone: dict[str, Any]) -> None:
        """Replace the zone whole (written beside it, renamed over it)."""
        part = self.zone_file.with_suffix(".part")
        part.write_text(json.dumps(zone))
        os.replace(part, self.zone_file)

    def set_later(self, delay: float, zone: dict[str, Any]) -> threading.Timer:
        timer = threading.Timer(delay, self.set, args=(zone,))
        timer.daemon = True
        timer.start()
        return timer

    def queries(self, name: str | None = None) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [q for q in lines if name is None or q.split()[0] == name]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@dataclass
class Service:
    """A listener that is up or down on a fixed port, on one or both loopback families."""

    port: int
    hosts: tuple[tuple[str, int], ...] = (("127.0.0.1", socket.AF_INET),)
    listeners: list[Listener] = field(default_factory=list)
    #: wall-clock times (time.time()) at which it went up / down
    ups: list[float] = field(default_factory=list)
    downs: list[float] = field(default_factory=list)

    def up(self) -> None:
        if not self.listeners:
            self.listeners = [Listener(h, f, self.port) for h, f in self.hosts]
            self.ups.append(time.time())

    def down(self) -> None:
        for listener in self.listeners:
            listener.close()
        if self.listeners:
            self.downs.append(time.time())
        self.listeners = []

    @property
    def accepted(self) -> int:
        return sum(len(listener.accepted) for listener in self.listeners)


def free_port_both() -> int:
    """A port free on 127.0.0.1 and on ::1 alike (bound on both, then released)."""
    for _ in range(50):
        with socket.socket() as v4:
            v4.bind(("127.0.0.1", 0))
            port = int(v4.getsockname()[1])
            with socket.socket(socket.AF_INET6) as v6:
                try:
                    v6.bind(("::1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free on both loopbacks")


@contextlib.contextmanager
def schedule(*steps: tuple[float, Callable[[], None]]) -> Iterator[None]:
    """Run each ``(delay, action)`` that many seconds from now, in a thread; the actions
    still pending when the block ends are cancelled."""
    timers = [threading.Timer(delay, action) for delay, action in steps]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        for timer in timers:
            timer.cancel()


def wall(timestamp: str) -> float:
    """An event's ISO-8601 UTC ``timestamp`` as seconds since the epoch."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def start_scanner(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m scanner ARGS`` in the background (signals, a wait watched as it runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "scanner", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env or scanner_env(),
        cwd=ROOT,
    )


def read_until(
    proc: subprocess.Popen[str], predicate: Callable[[str], bool], timeout: float
) -> list[str]:
    """Lines of ``proc``'s stdout up to the first that ``predicate`` accepts (in a thread,
    so a silent process cannot hang the test)."""
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if predicate(line):
                found.set()
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert found.wait(timeout), f"no such line within {timeout} s: {lines[-5:]}"
    return lines
