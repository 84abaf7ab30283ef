"""DNS messages on the wire: one query out, one reply in, and the checks an answer must pass.

Only what a stub resolver needs (RFC 1035 §4): a query with RD set for one name and type
(A or AAAA), and from a reply its header, its question (which must be ours), and the
address records of the answer section. Authority and additional sections are not read.

Why a parser of our own: it is the hot path of a name inventory (two replies per name), and
it is small. Measured per reply of one A record (``python benchmarks/resolver.py --parse``):
this parser ~3 µs, dnspython's ``dns.message.from_wire`` ~40 µs, dnslib's
``DNSRecord.parse`` ~60 µs (see the package docstring for the numbers of this machine).

The answer checks are glibc's (2.36 as Debian ships it, ``resolv/nss_dns``): records of
another class are skipped; a CNAME is followed only from the asked name or a name already
on its chain; an address record counts only if it has the asked type, an owner on the chain
and the right length. Everything else — a record for another name, an A record in the
answer to AAAA — is rejected and said in :attr:`Reply.rejected`, never probed. The
unspecified addresses (0.0.0.0, ::), a DNS sinkhole's answer, are counted in
:attr:`Reply.sinkholed` and never returned as addresses.
"""

from __future__ import annotations

import socket
import struct

QTYPE_A, QTYPE_AAAA, QTYPE_CNAME = 1, 28, 5
QTYPE_NAME = {QTYPE_A: "A", QTYPE_AAAA: "AAAA", QTYPE_CNAME: "CNAME"}
CLASS_IN = 1
RCODE_NAME = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
}
NOERROR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 2, 3, 4, 5
EDNS_PAYLOAD = 1200  # glibc's RESOLV_EDNS_BUFFER_SIZE with ``options edns0``
_UNSPECIFIED = ("0.0.0.0", "::")

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_RDLEN = {QTYPE_A: 4, QTYPE_AAAA: 16}
_AF = {QTYPE_A: socket.AF_INET, QTYPE_AAAA: socket.AF_INET6}
_MAX_POINTERS = 64
_FLAG_QR, _FLAG_AA, _FLAG_TC, _FLAG_RD, _FLAG_RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080


class Malformed(ValueError):
    """A reply to our question whose body cannot be read."""


def encode_name(name: str) -> bytes:
    """An ASCII name (``db.corp.test.`` or without the dot) in wire format.

    Raises ValueError for an empty label, a label over 63 octets or a name over 255.
    """
    stripped = name[:-1] if name.endswith(".") else name
    if not stripped:
        return b"\x00"
    labels = stripped.encode("ascii").split(b".")
    for label in labels:
        if not label:
            raise ValueError(f"{name!r} has an empty label")
        if len(label) > 63:
            raise ValueError(f"{name!r} has a label longer than 63 characters")
    wire = b"".join([bytes((len(label),)) + label for label in labels]) + b"\x00"
    if len(wire) > 255:
        raise ValueError(f"{name!r} is longer than 255 octets")
    return wire


def query_body(qname: bytes, qtype: int, *, edns: bool = False) -> bytes:
    """A query without its first two bytes (the ID): flags RD, one question, maybe EDNS0."""
    body = _HEADER.pack(0, _FLAG_RD, 1, 0, 0, 1 if edns else 0)[2:]
    body += qname + struct.pack("!HH", qtype, CLASS_IN)
    if edns:  # OPT RR: root owner, type 41, class = UDP payload size, no flags
        body += b"\x00" + _RR.pack(41, EDNS_PAYLOAD, 0, 0)
    return body


def name_text(wire: bytes) -> str:
    """Wire-format name to text (``db.corp.test.``), for messages."""
    labels = []
    i = 0
    while i < len(wire) and wire[i]:
        n = wire[i]
        labels.append(wire[i + 1 : i + 1 + n].decode("ascii", "backslashreplace"))
        i += 1 + n
    return ".".join(labels) + "."


def read_name(data: bytes, offset: int) -> tuple[bytes, int]:
    """The (lower-case, uncompressed) wire name at ``offset`` and the offset after it."""
    out = bytearray()
    end = -1
    hops = 0
    n = len(data)
    while True:
        if offset >= n:
            raise Malformed("a name runs past the end of the reply")
        length = data[offset]
        if length == 0:
            out.append(0)
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            if offset + 1 >= n:
                raise Malformed("a compression pointer runs past the end")
            hops += 1
            if hops > _MAX_POINTERS:
                raise Malformed("a compression pointer loop")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length > 63:
            raise Malformed(f"a label length of {length}")
        if offset + 1 + length > n:
            raise Malformed("a label runs past the end of the reply")
        out += data[offset : offset + 1 + length]
        offset += 1 + length
        if len(out) > 255:
            raise Malformed("a name longer than 255 octets")
    return bytes(out).lower(), (end if end >= 0 else offset)


class Reply:
    """What one reply says about the question it answers."""

    __slots__ = (
        "aa",
        "addresses",
        "ancount",
        "arcount",
        "chain",
        "ra",
        "rcode",
        "rejected",
        "sinkholed",
        "tc",
    )

    def __init__(
        self,
        *,
        rcode: int,
        tc: bool,
        aa: bool,
        ra: bool,
        ancount: int,
        arcount: int,
        addresses: list[str],
        chain: list[bytes],
        rejected: list[str],
        sinkholed: int,
    ) -> None:
        self.rcode = rcode
        self.tc = tc
        self.aa = aa
        self.ra = ra
        self.ancount = ancount
        self.arcount = arcount
        self.addresses = addresses
        self.chain = chain
        self.rejected = rejected
        self.sinkholed = sinkholed

    @property
    def lame(self) -> bool:
        """glibc's referral check: NOERROR, nothing in it, neither authoritative nor recursive."""
        return (
            self.rcode == NOERROR
            and self.ancount == 0
            and not self.aa
            and not self.ra
            and self.arcount == 0
        )

    def __repr__(self) -> str:
        return (
            f"Reply(rcode={RCODE_NAME.get(self.rcode, self.rcode)}, tc={self.tc}, "
            f"an={self.ancount}, addresses={self.addresses}, rejected={self.rejected}, "
            f"sinkholed={self.sinkholed})"
        )


def parse_reply(  # noqa: PLR0912 - the hot path: one loop over the records, no call per record
    data: bytes, question: bytes, qtype: int
) -> Reply | None:
    """Read a reply to ``question`` (lower-case wire name + type + class, as sent).

    Returns None when ``data`` is not a reply to that question (a late or stray datagram:
    the caller keeps waiting, as glibc does); raises :class:`Malformed` when it is one but
    its answer section cannot be read.
    """
    n = len(data)
    if n < 12:
        return None
    _qid, flags, qdcount, ancount, _nscount, arcount = _HEADER.unpack_from(data)
    if not flags & _FLAG_QR or flags & 0x7800 or qdcount != 1:  # a reply, opcode QUERY
        return None
    qlen = len(question)
    end_q = 12 + qlen
    if data[12:end_q].lower() != question and not _same_question(data, question):
        return None
    rcode = flags & 0x000F
    qname = question[:-4]
    addresses: list[str] = []
    rejected: list[str] = []
    chain = [qname]
    sinkholed = 0
    offset = end_q
    want = qtype
    rdlen_want = _RDLEN.get(qtype, -1)
    af = _AF.get(qtype, socket.AF_INET)
    for _ in range(ancount):
        if offset + 2 <= n and data[offset] == 0xC0 and data[offset + 1] == 12:
            owner, offset = qname, offset + 2  # the common case: a pointer to the question
        else:
            owner, offset = read_name(data, offset)
        if offset + 10 > n:
            raise Malformed("a record header runs past the end of the reply")
        rtype, rclass, _ttl, rdlen = _RR.unpack_from(data, offset)
        offset += 10
        end = offset + rdlen
        if end > n:
            raise Malformed("a record's data runs past the end of the reply")
        if rclass != CLASS_IN:
            offset = end
            continue
        if rtype == want and rdlen == rdlen_want and owner in chain:
            address = socket.inet_ntop(af, data[offset:end])
            if address in _UNSPECIFIED:
                sinkholed += 1
            elif address not in addresses:
                addresses.append(address)
        elif rtype == QTYPE_CNAME and owner in chain:
            target, after = read_name(data, offset)
            if after > end:
                raise Malformed("a CNAME target runs past its record")
            if target not in chain:
                chain.append(target)
        elif rtype in _RDLEN or rtype == QTYPE_CNAME:
            rejected.append(
                _describe(
                    rtype=rtype,
                    owner=owner,
                    qname=qname,
                    qtype=qtype,
                    rdlen=rdlen,
                    on_chain=owner in chain,
                )
            )
        offset = end
    return Reply(
        rcode=rcode,
        tc=bool(flags & _FLAG_TC),
        aa=bool(flags & _FLAG_AA),
        ra=bool(flags & _FLAG_RA),
        ancount=ancount,
        arcount=arcount,
        addresses=addresses,
        chain=chain,
        rejected=rejected,
        sinkholed=sinkholed,
    )


def _same_question(data: bytes, question: bytes) -> bool:
    """The question section equals ours, names compared without case (type and class exact)."""
    try:
        name, offset = read_name(data, 12)
    except Malformed:
        return False
    return name == question[:-4] and data[offset : offset + 4] == question[-4:]


def _describe(
    *, rtype: int, owner: bytes, qname: bytes, qtype: int, rdlen: int, on_chain: bool
) -> str:
    kind = QTYPE_NAME.get(rtype, str(rtype))
    a = "a" if kind == "CNAME" else "an"
    if on_chain and rtype not in (qtype, QTYPE_CNAME):
        return f"{a} {kind} record in the answer to {QTYPE_NAME.get(qtype, qtype)}"
    if on_chain:
        return f"{a} {kind} record of {rdlen} octets"
    return f"{a} {kind} record for {name_text(owner)} (not {name_text(qname)} or its CNAME chain)"
