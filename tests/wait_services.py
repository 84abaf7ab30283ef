"""Listeners that follow a timeline, as a process of their own (so they can run inside a
network namespace): ``python -m tests.wait_services --listen 127.0.0.1:5432 --listen
[::1]:5432 --plan 2:up,2.6:down,3.4:up``. Times are seconds from the start; the listeners
begin down unless the plan has ``0:up``. Prints ``ready`` once started, and each change as
``up <epoch>`` / ``down <epoch>``; runs until killed (at most ``--lifetime`` seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class Group:
    """Every listen address of one service, up or down together; accepts and closes."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.addresses = addresses
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()

    def up(self) -> None:
        with self.lock:
            if not self.socks:
                self.socks = [_bind(h, p) for h, p in self.addresses]
                for sock in self.socks:
                    threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.socks = []

    @staticmethod
    def _serve(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed: the service went down
            conn.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", type=_address, required=True)
    parser.add_argument("--plan", default="0:up", help="T:up|down,... (seconds from start)")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args(argv)
    group = Group(args.listen)
    steps = sorted(
        (float(when), what) for when, what in (step.split(":") for step in args.plan.split(","))
    )
    start = time.monotonic()
    print("ready", flush=True)
    for when, what in steps:
        time.sleep(max(0.0, start + when - time.monotonic()))
        group.up() if what == "up" else group.down()
        print(f"{what} {time.time():.3f}", flush=True)
    time.sleep(max(0.0, start + args.lifetime - time.monotonic()))
    group.down()


if __name__ == "__main__":
    main(sys.argv[1:])
