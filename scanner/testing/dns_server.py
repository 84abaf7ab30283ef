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
as they are, whatever the question: a record for another name, or of another type than asked.
Names not in the zone get NXDOMAIN. Run as a process::

    python -m scanner.testing.dns_server --zone zone.json --host 127.0.0.1 --port 0

It prints ``listening HOST PORT`` on stdout once the socket is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
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
    for line in zone.get(str(query.q.qname).rstrip(".").lower(), {}).get("extra", ()):
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


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone, log: IO[str] | None = None) -> None:
        self.zone = zone
        self.log = log
        self.transport: asyncio.DatagramTransport | None = None

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
        entry = self.zone.get(str(query.q.qname).rstrip(".").lower(), {})
        delay = entry.get("delay_ms")
        reply = answer_bytes(query, self.zone)
        if reply is None or self.transport is None:
            return
        if delay:
            asyncio.get_running_loop().call_later(delay / 1000, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)


async def start_server(
    zone: Zone, host: str = "127.0.0.1", port: int = 0, log: IO[str] | None = None
) -> tuple[asyncio.DatagramTransport, int]:
    """Serve ``zone`` in the running event loop; returns the transport and the bound port."""
    loop = asyncio.get_running_loop()
    normalised = {k.lower().rstrip("."): v for k, v in zone.items()}
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(normalised, log), local_addr=(host, port)
    )
    return transport, int(transport.get_extra_info("sockname")[1])


async def serve(zone: Zone, host: str, port: int, log: IO[str] | None = None) -> None:
    transport, _port = await start_server(zone, host, port, log)
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
    args = parser.parse_args(argv)
    if args.zone == "-":
        text = sys.stdin.read()
    else:
        with open(args.zone, encoding="utf-8") as handle:
            text = handle.read()
    zone = {k.lower().rstrip("."): v for k, v in json.loads(text).items()}
    with contextlib.ExitStack() as stack:
        log = (
            stack.enter_context(open(args.query_log, "a", encoding="utf-8"))
            if args.query_log
            else None
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(zone, args.host, args.port, log))


if __name__ == "__main__":
    main()
