"""The TLS prober run inside the lab's client namespace: one JSON list of results on stdout.

::

    echo '[{"address": "198.18.3.10", "port": 9443, "server_name": "good.test",
            "ca_file": "root.crt", "timeout": 1.0}]' |
        ip netns exec <client> python tests/lab/tlsprobe.py

Each job connects a non-blocking socket itself (as the Dialer hands one over), runs
``scanner.probers.tls.handshake`` on it and prints the category, the hint and a few raw facts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sys
from typing import Any

from scanner.probers.tls import TlsSettings, classify_tls, handshake, tls_info


async def one(job: dict[str, Any]) -> dict[str, Any]:
    family = socket.AF_INET6 if ":" in job["address"] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    settings = TlsSettings(ca_file=job.get("ca_file"))
    try:
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (job["address"], job["port"])), 5
        )
        outcome = await handshake(sock, settings, job["server_name"], job["timeout"])
    finally:
        sock.close()
    now = dt.datetime.now(dt.UTC)
    category, hint = classify_tls(outcome, settings, now)
    info = tls_info(outcome, now)
    return {
        "category": str(category),
        "hint": hint,
        "version": outcome.version,
        "subject": info.subject if info else None,
        "sans": list(info.sans) if info else [],
        "errno": outcome.errno,
        "timed_out": outcome.timed_out,
        "received": outcome.received,
        "tls_ms": outcome.tls_ms,
    }


async def main() -> None:
    jobs = json.loads(sys.stdin.read())
    print(json.dumps(await asyncio.gather(*(one(job) for job in jobs))))


if __name__ == "__main__":
    asyncio.run(main())
