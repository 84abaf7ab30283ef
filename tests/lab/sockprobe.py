"""Plain-socket TCP probes with the ICMP origin read from the socket error queue.

Stdlib only and runnable as a script, because the lab runs it *inside* the client namespace::

    echo '[{"address": "198.18.3.10", "port": 80, "timeout": 1.5}]' |
        ip netns exec <client> python tests/lab/sockprobe.py

prints one JSON list with, per probe: ``errno`` (symbolic; null when the handshake completed,
``"timeout"`` when nothing happened within the timeout), ``elapsed_s`` and ``errqueue`` (every
``sock_extended_err`` the kernel queued: origin, ICMP type/code, sender address).

This is deliberately independent of the scanner: it is the lab's own ground truth.
"""

from __future__ import annotations

import errno as errno_mod
import json
import select
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

IP_RECVERR = 11  # <linux/in.h>; not exported by the socket module
IPV6_RECVERR = 25  # <linux/in6.h>
MSG_ERRQUEUE = 0x2000
ORIGINS = {0: "none", 1: "local", 2: "icmp", 3: "icmp6"}


def _offender(data: bytes) -> str | None:
    """The SO_EE_OFFENDER sockaddr that follows the 16-byte sock_extended_err."""
    raw = data[16:]
    if len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


def read_errqueue(sock: socket.socket) -> list[dict[str, Any]]:
    """Drain the socket's error queue (recvmsg MSG_ERRQUEUE) into plain dicts."""
    entries = []
    for _ in range(16):
        try:
            _, ancdata, _, _ = sock.recvmsg(512, 512, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        for level, kind, data in ancdata:
            if (level, kind) not in (
                (socket.IPPROTO_IP, IP_RECVERR),
                (socket.IPPROTO_IPV6, IPV6_RECVERR),
            ):
                continue
            ee_errno, origin, icmp_type, icmp_code, _pad, info, _data = struct.unpack_from(
                "=IBBBBII", data
            )
            entries.append(
                {
                    "errno": errno_mod.errorcode.get(ee_errno, str(ee_errno)),
                    "origin": ORIGINS.get(origin, str(origin)),
                    "icmp_type": icmp_type,
                    "icmp_code": icmp_code,
                    "info": info,
                    "from": _offender(data),
                }
            )
    return entries


def probe(address: str, port: int, timeout: float, ttl: int | None = None) -> dict[str, Any]:
    """One non-blocking TCP connect with IP(V6)_RECVERR on; never raises for network errors.

    ``ttl`` limits the SYN's TTL / hop limit, so a router on the path answers with ICMP
    time-exceeded instead (how traceroute-style path checks work).
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            if ttl is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            if ttl is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        sock.setblocking(False)
        start = time.monotonic()
        err = sock.connect_ex((address, port))
        if err == errno_mod.EINPROGRESS:
            poller = select.poll()
            poller.register(sock, select.POLLOUT | select.POLLERR)
            if poller.poll(timeout * 1000):
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            else:
                err = -1
        elapsed = time.monotonic() - start
        name = None if err == 0 else "timeout" if err == -1 else errno_mod.errorcode.get(err)
        return {
            "address": address,
            "port": port,
            "errno": name,
            "elapsed_s": round(elapsed, 4),
            "errqueue": read_errqueue(sock),
        }
    finally:
        sock.close()


def probe_many(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run all probes at once (timeouts overlap, so the batch takes about one timeout)."""
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(jobs)))) as pool:
        futures = [
            pool.submit(
                probe, j["address"], int(j["port"]), float(j.get("timeout", 1.5)), j.get("ttl")
            )
            for j in jobs
        ]
        return [f.result() for f in futures]


def main() -> None:
    json.dump(probe_many(json.load(sys.stdin)), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
