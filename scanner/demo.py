"""``scanner demo``: every category loopback can produce, with no setup and no network.

It starts what a real estate would have: listeners on 127.0.0.1 and ::1, a port
nobody listens on, a listener whose accept queue is full (the kernel then drops SYNs
silently, as a filtering firewall would: on this host's own address the kernel's socket
table tells the two apart), a service that accepts and closes at once (a load balancer
with no backend), and a DNS server on loopback that answers NXDOMAIN, no data, SERVFAIL,
REFUSED or nothing at all. Then it scans an
ordinary inventory against them and checks that each target got the category it was
built for, so the demo doubles as a smoke test (exit 0 only if it did).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .models import Category
from .observers import Collector, FanOut

if TYPE_CHECKING:
    from .report.console import Verbosity

DEMO_INVENTORY = """\
version: 1
defaults:
  timeout: 0.5
  retries: 1
resolver:
  nameservers: ["127.0.0.1:{dns_port}"]
  timeout: 0.3
  tries: 1
targets:
  - name: web                      # a name with A and AAAA: both addresses are probed
    host: web.demo.test
    port: {open_port}
    tags: [demo]
  - name: web-alias                # CNAME chain alias -> alias2 -> web
    host: alias.demo.test
    port: {open_port}
  - name: api-half-dns             # A answers, AAAA gets SERVFAIL: IPv4 still works
    host: half.demo.test
    port: {open_port}
  - name: cache                    # nothing listens there: TCP reset
    host: 127.0.0.1
    port: {closed_port}
  - name: queue                    # listens, accept queue full: SYNs silently dropped
    host: 127.0.0.1
    port: {full_port}
  - name: lb-no-backend            # accepts, then closes at once: held for 300 ms
    host: 127.0.0.1
    port: {closing_port}
    hold_ms: 300
  - name: admin-must-be-closed     # expect closed, and it is
    host: 127.0.0.1
    port: {closed_port}
    expect: closed
  - name: debug-must-be-closed     # expect closed, but it accepts connections
    host: "::1"
    port: {open_port}
    expect: closed
  - db.demo.tset:5432              # a typo: the name does not exist
  - name: mail
    host: txt-only.demo.test       # the name exists, with no A or AAAA record
    port: 25
  - name: ldap
    host: broken.demo.test         # the DNS server fails (SERVFAIL)
    port: 389
  - name: vault
    host: private.demo.test        # the DNS server refuses this client
    port: 8200
  - name: search
    host: silent.demo.test         # the DNS server never answers
    port: 9200
"""

DEMO_ZONE: dict[str, Any] = {
    "web.demo.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "alias.demo.test": {"CNAME": "alias2.demo.test"},
    "alias2.demo.test": {"CNAME": "web.demo.test"},
    "half.demo.test": {"A": ["127.0.0.1"], "AAAA": "SERVFAIL"},
    "txt-only.demo.test": {"TXT": ["v=spf1 -all"]},
    "broken.demo.test": {"rcode": "SERVFAIL"},
    "private.demo.test": {"rcode": "REFUSED"},
    "silent.demo.test": {"rcode": "DROP"},
}

#: what each demo target is built to show
EXPECTED: dict[str, tuple[Category, bool]] = {
    "web": (Category.OPEN, True),
    "web-alias": (Category.OPEN, True),
    "api-half-dns": (Category.OPEN, True),
    "cache": (Category.REFUSED, False),
    "queue": (Category.NOT_ACCEPTING, False),
    "lb-no-backend": (Category.CLOSED_BY_PEER, False),
    "admin-must-be-closed": (Category.REFUSED, True),
    "debug-must-be-closed": (Category.OPEN, False),
    "db.demo.tset:5432": (Category.DNS_NXDOMAIN, False),
    "mail": (Category.DNS_NO_ADDRESS, False),
    "ldap": (Category.DNS_SERVFAIL, False),
    "vault": (Category.DNS_REFUSED, False),
    "search": (Category.DNS_TIMEOUT, False),
}


@contextlib.contextmanager
def loopback_fixtures() -> Iterator[dict[str, int]]:
    """Listeners for the demo; yields the ports, closes everything on exit."""
    sockets: list[socket.socket] = []
    try:
        open_v4 = socket.create_server(("127.0.0.1", 0))
        port = open_v4.getsockname()[1]
        sockets.append(open_v4)
        with contextlib.suppress(OSError):  # no IPv6 on this host: web probes v4 only
            sockets.append(socket.create_server(("::1", port), family=socket.AF_INET6))
        probe = socket.create_server(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
        probe.close()  # now nothing listens there
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        sockets.append(full)
        full_port = full.getsockname()[1]
        for _ in range(2):  # fill the accept queue; later SYNs are dropped
            filler = socket.socket()
            filler.settimeout(0.2)
            with contextlib.suppress(OSError):
                filler.connect(("127.0.0.1", full_port))
            sockets.append(filler)
        yield {"open_port": port, "closed_port": closed_port, "full_port": full_port}
    finally:
        for sock in sockets:
            sock.close()


async def _close_at_once(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def run_demo(fmt: str, verbosity: Verbosity = "normal") -> int:
    import anyio

    from .engine import ScanOptions, backend_options, run_scan
    from .inventory import load_inventories
    from .report import stream_observer
    from .testing.dns_server import start_server

    check = Collector()
    observer = FanOut(check, stream_observer(fmt, show_ok=True, verbosity=verbosity))

    async def scan(ports: dict[str, int]) -> None:
        transport, dns_port = await start_server(DEMO_ZONE)
        closing = await asyncio.start_server(_close_at_once, "127.0.0.1", 0)
        try:
            closing_port = closing.sockets[0].getsockname()[1]
            text = DEMO_INVENTORY.format(dns_port=dns_port, closing_port=closing_port, **ports)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "demo-inventory.yaml")
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
                inventory = load_inventories([path])
                await run_scan(inventory, observer, ScanOptions(handle_signals=True))
        finally:
            closing.close()
            transport.close()

    print(
        "scanner demo: listeners and a DNS server now run on loopback; each of the "
        f"{len(EXPECTED)} targets below is built to show one category, failures included.",
        file=sys.stderr,
        flush=True,
    )
    with loopback_fixtures() as ports:
        anyio.run(scan, ports, backend_options=backend_options())
    wrong = []
    results = check.by_name()
    for name, (category, ok) in EXPECTED.items():
        got = results.get(name)
        if got is None or got.category is not category or got.ok is not ok:
            seen = f"{got.category.value} (ok={got.ok})" if got else "nothing"
            wrong.append(f"{name}: got {seen}, built for {category.value} (ok={ok})")
    stream = sys.stderr
    if wrong:
        print("scanner demo: some targets did not behave as built:", file=stream)
        for line in wrong:
            print(f"  {line}", file=stream)
        return 1
    print(
        f"scanner demo: all {len(EXPECTED)} targets got the category they were built for "
        "(failures above are on purpose).",
        file=stream,
    )
    return 0
