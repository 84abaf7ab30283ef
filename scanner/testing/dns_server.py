"""A small authoritative DNS server on UDP, scripted per name, for tests and the demo.

Why our own and not dnsmasq: every DNS failure the scanner must tell apart (NXDOMAIN,
NODATA, SERVFAIL, REFUSED, silence) and the cases where A and AAAA answer differently
need a server that misbehaves on purpose, per name and per record type. Packets are
parsed and built with dnslib, so what goes over the wire is real DNS.

A zone maps a lower-case name (no trailing dot) to a behaviour::

    {"ok.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
     "v6only.test": {"AAAA": ["::1"]},              # A query -> NOERROR, no data
     "alias.test": {"CNAME": "ok.test"},            # chain resolved inside the zone
     "broken.test": {"rcode": "SERVFAIL"},          # every type
     "half.test": {"A": ["127.0.0.1"], "AAAA": "SERVFAIL"},  # per-type rcode
     "silent.test": {"rcode": "DROP"}}               # never answers

Misbehaviour for the resolver's answer checks, per name (``rcode`` or per type)::

     {"foreign.test": {"A": ["127.0.0.1"],
                       "extra": ["evil.test. 60 A 198.18.99.9"]},  # appended to every answer
      "garbled.test": {"rcode": "MALFORMED"},   # header and question fine, answer cut short
      "big.test": {"rcode": "TC"},              # truncated: TC bit, no answer (ask over TCP)
      "slow.test": {"A": ["127.0.0.1"], "delay_ms": 600}}  # answered late

``extra`` records are zone-file lines (owner, TTL, type, data) and go into the answer section
as they are: a record for another name, or of another type than asked. A list applies to
every question type; a mapping gives them per type (``{"AAAA": ["x.test. 60 A 192.0.2.1"]}``).
Names not in the zone get NXDOMAIN. Run as a process::

    python -m scanner.testing.dns_server --zone zone.json --host 127.0.0.1 --port 0

It prints ``listening HOST PORT`` on stdout once the socket is bound. With ``--reload`` the
zone file is read again whenever it changes (looked at, at most every 50 ms, when a query
comes): a test changes the answers while the server runs by replacing the file (write a
file beside it, then rename it over the zone, so a query never sees half a zone). A file
that does not parse leaves the zone as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, cast

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A, DNSRecord

Zone = Mapping[str, Mapping[str, Any]]

_MAX_CNAME_CHAIN = 16


def _rcode(name: str) -> int:
    return int(getattr(RCODE, name))


#: a reply whose header and question are fine but whose answer section ends mid-record
MALFORMED = "MALFORMED"
#: a reply with the TC (truncated) bit set and no answer: the client must retry over TCP
TRUNCATED = "TC"


def answer_bytes(query: DNSRecord, zone: Zone, ttl: int = 5) -> bytes | None:
    """The reply to one query on the wire, or None to stay silent (also for misbehaviour)."""
    entry = zone.get(str(query.q.qname).rstrip(".").lower(), {})
    qtype = QTYPE[query.q.qtype]
    rcode = entry.get(qtype) if isinstance(entry.get(qtype), str) else entry.get("rcode")
    if rcode == MALFORMED:
        reply = query.reply()
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=ttl))
        return bytes(reply.pack()[:-3])  # ancount says 1; the record's rdata is cut short
    if rcode == TRUNCATED:
        reply = query.reply()
        reply.header.tc = 1
        return bytes(reply.pack())
    built = answer(query, zone, ttl)
    return None if built is None else bytes(built.pack())


def answer(query: DNSRecord, zone: Zone, ttl: int = 5) -> DNSRecord | None:
    """Build the reply to one query, or None to stay silent."""
    reply = query.reply()
    extra = zone.get(str(query.q.qname).rstrip(".").lower(), {}).get("extra", ())
    if isinstance(extra, Mapping):  # per question type: {"AAAA": ["name. 60 A 192.0.2.1"]}
        extra = extra.get(QTYPE[query.q.qtype], ())
    for line in extra:
        reply.add_answer(*RR.fromZone(line))
    qname = str(query.q.qname).rstrip(".").lower()
    qtype = QTYPE[query.q.qtype]
    name = qname
    for _ in range(_MAX_CNAME_CHAIN):
        entry = zone.get(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        rcode = entry.get("rcode")
        per_type = entry.get(qtype)
        if isinstance(per_type, str):
            rcode = per_type
        if rcode == "DROP":
            return None
        if rcode is not None:
            reply.header.rcode = _rcode(rcode)
            return reply
        target = entry.get("CNAME")
        if target is not None and qtype != "CNAME":
            reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(target + "."), ttl=ttl))
            name = str(target).rstrip(".").lower()
            continue
        for value in per_type or ():
            rdata = A(value) if qtype == "A" else AAAA(value) if qtype == "AAAA" else None
            if rdata is not None:
                reply.add_answer(RR(name + ".", query.q.qtype, rdata=rdata, ttl=ttl))
        return reply
    reply.header.rcode = RCODE.SERVFAIL
    return reply


def _normalised(zone: Zone) -> dict[str, Mapping[str, Any]]:
    return {k.lower().rstrip("."): v for k, v in zone.items()}


class ZoneFile:
    """A zone read from a JSON file, and read again when the file changes."""

    #: seconds between looks at the file
    LOOK_EVERY = 0.05

    def __init__(self, path: str) -> None:
        self.path = path
        self.zone: Zone = {}
        self._seen: tuple[int, int, int] | None = None
        self._looked = 0.0
        self.reload()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def reload(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                zone = _normalised(json.load(handle))
        except (OSError, ValueError):
            return  # half written or broken: keep answering from the zone as it was
        self.zone, self._seen = zone, stamp

    def current(self) -> Zone:
        now = time.monotonic()
        if now - self._looked >= self.LOOK_EVERY:
            self._looked = now
            self.reload()
        return self.zone


class _Protocol(asyncio.DatagramProtocol):
    def __init__(
        self, zone: Zone, log: IO[str] | None = None, source: ZoneFile | None = None
    ) -> None:
        self._zone = zone
        self.source = source
        self.log = log
        self.transport: asyncio.DatagramTransport | None = None

    @property
    def zone(self) -> Zone:
        return self.source.current() if self.source is not None else self._zone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - garbage on the wire is dropped, as a server would
            return
        if self.log is not None:  # one line per query: tests count lookups with it
            self.log.write(f"{str(query.q.qname).rstrip('.').lower()} {QTYPE[query.q.qtype]}\n")
            self.log.flush()
        zone = self.zone
        entry = zone.get(str(query.q.qname).rstrip(".").lower(), {})
        delay = entry.get("delay_ms")
        reply = answer_bytes(query, zone)
        if reply is None or self.transport is None:
            return
        if delay:
            asyncio.get_running_loop().call_later(delay / 1000, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)


async def start_server(
    zone: Zone,
    host: str = "127.0.0.1",
    port: int = 0,
    log: IO[str] | None = None,
    source: ZoneFile | None = None,
) -> tuple[asyncio.DatagramTransport, int]:
    """Serve ``zone`` (or ``source``'s zone as it changes) in the running event loop;
    returns the transport and the bound port."""
    loop = asyncio.get_running_loop()
    normalised = _normalised(zone)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(normalised, log, source), local_addr=(host, port)
    )
    # A burst of queries must not overflow the default buffer (~200 KiB): a loss here would
    # look like the resolver's timeout. The kernel caps this at net.core.rmem_max.
    with contextlib.suppress(OSError):
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return transport, int(transport.get_extra_info("sockname")[1])


async def serve(
    zone: Zone, host: str, port: int, log: IO[str] | None = None, source: ZoneFile | None = None
) -> None:
    transport, _port = await start_server(zone, host, port, log, source)
    sockname = transport.get_extra_info("sockname")
    print(f"listening {sockname[0]} {sockname[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--zone", required=True, help="JSON file with the zone, or - for stdin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--query-log", default=None, help="append 'name TYPE' per query here")
    parser.add_argument(
        "--reload", action="store_true", help="read the zone file again whenever it changes"
    )
    args = parser.parse_args(argv)
    source = None
    if args.zone == "-":
        text = sys.stdin.read()
    else:
        with open(args.zone, encoding="utf-8") as handle:
            text = handle.read()
        if args.reload:
            source = ZoneFile(args.zone)
    zone = _normalised(json.loads(text))
    with contextlib.ExitStack() as stack:
        log = (
            stack.enter_context(open(args.query_log, "a", encoding="utf-8"))
            if args.query_log
            else None
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(zone, args.host, args.port, log, source))


if __name__ == "__main__":
    main()
