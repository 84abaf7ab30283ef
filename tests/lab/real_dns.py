"""Real DNS servers from Debian (BIND 9, Unbound) started inside a lab namespace, given zones.

Why real servers and not only ``scanner.testing.dns_server``: the resolver must behave like
glibc against what production runs — CNAME chains, wildcards, NODATA with an SOA, SERVFAIL
from a zone that failed to load, sinkhole answers — and a test double written by the same
people who wrote the resolver would share their misunderstandings. The project's dnslib
server stays the misbehaving one (malformed replies, foreign records, silence).

Every config is written here, into a directory the caller owns; no server ever runs with
Debian's default config, listens outside the namespace, or asks the real root servers:
Unbound is authoritative for its zones (``auth-zone``) and may only forward to addresses the
caller gives (``stub-zone``); BIND has recursion off. Both run in the foreground as children
of :meth:`tests.lab.netns.Netns.spawn`, so ``Netns.delete`` stops them.

Typical use (a benchmark or a test)::

    ns = Netns(f"{netns.run_id()}-dns")
    ns.ip("link add dummy0 type dummy", "link set dummy0 up")
    ns.add_addresses("dummy0", "198.18.53.1/24", "2001:db8:53::1/64")
    zone = Zone("bench.test", [f"n{i} A 198.18.60.1" for i in range(10_000)])
    unbound = start_unbound(ns, workdir, ["198.18.53.1"], zones=[zone])
    ns.write_etc("resolv.conf", "nameserver 198.18.53.1\\n")
    ... ns.delete()

``Zone.records`` are zone-file lines relative to the origin (``"db A 198.18.0.10"``,
``"* CNAME web"``, ``"@ AAAA 2001:db8::1"``); SOA and NS are added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .netns import Netns, NetnsError

UNBOUND = "/usr/sbin/unbound"
NAMED = "/usr/sbin/named"

# Sends one query from inside the namespace until anything answers (any rcode), or gives up.
_READY_PROBE = r"""
import socket, struct, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
header = struct.pack("!HHHHHH", 0x5EED, 0x0100, 1, 0, 0, 0)
query = header + b"\x05ready\x04test\x00\x00\x01\x00\x01"
while time.monotonic() < deadline:
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, (host, port))
            if s.recv(4096)[:2] == b"\x5e\xed":
                sys.exit(0)
        except OSError:
            time.sleep(0.05)
sys.exit(1)
"""


@dataclass(frozen=True)
class Zone:
    """One zone: its origin (``corp.test``) and its records as zone-file lines.

    ``broken``: the zone file is written with a syntax error, so BIND cannot load it and
    answers SERVFAIL for every name in it (what a real server does with a bad zone).
    """

    origin: str
    records: Sequence[str] = ()
    broken: bool = False
    ttl: int = 300

    def text(self, ns_name: str = "ns") -> str:
        origin = self.origin.rstrip(".") + "."
        head = [
            f"$ORIGIN {origin}",
            f"$TTL {self.ttl}",
            f"@ SOA {ns_name} hostmaster 1 3600 600 86400 60",
            f"@ NS {ns_name}",
            f"{ns_name} A 127.0.0.1",
        ]
        body = list(self.records)
        if self.broken:
            body.append("this line is not a record @@@")
        return "\n".join(head + body) + "\n"


@dataclass
class DnsServerProcess:
    """A running server: where it listens, its config directory, its process."""

    kind: str
    addresses: tuple[str, ...]
    port: int
    workdir: Path
    proc: subprocess.Popen[str]
    configs: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _check_tool(path: str) -> None:
    if shutil.which(path) is None:
        raise NetnsError(f"{path} is not installed (Debian package: bind9 / unbound)")


def wait_answering(ns: Netns, address: str, port: int = 53, timeout: float = 15.0) -> None:
    """Block until a DNS server at ``address`` answers a query sent inside ``ns``."""
    proc = ns.run(
        [sys.executable, "-c", _READY_PROBE, address, str(port), str(timeout)],
        check=False,
        timeout=timeout + 5,
    )
    if proc.returncode != 0:
        raise NetnsError(f"no DNS answer from {address}:{port} in {ns.name} within {timeout}s")


def _spawn(
    ns: Netns, argv: Sequence[str], addresses: Sequence[str], port: int
) -> subprocess.Popen[str]:
    proc = ns.spawn(argv)
    started = time.monotonic()
    try:
        for address in addresses:
            wait_answering(ns, address, port)
    except NetnsError:
        err = ""
        if proc.poll() is not None and proc.stderr is not None:
            err = proc.stderr.read()
        raise NetnsError(
            f"{argv[0]} did not answer after {time.monotonic() - started:.1f}s "
            f"(exit {proc.poll()}): {err[-2000:]}"
        ) from None
    return proc


def start_bind(
    ns: Netns,
    workdir: Path,
    addresses: Sequence[str],
    zones: Sequence[Zone],
    *,
    port: int = 53,
    extra_options: str = "",
) -> DnsServerProcess:
    """BIND 9 (``named -g``) inside ``ns``: authoritative for ``zones``, no recursion.

    A zone with ``broken=True`` fails to load; named then answers SERVFAIL for it.
    """
    _check_tool(NAMED)
    workdir = Path(workdir) / "bind"
    workdir.mkdir(parents=True, exist_ok=True)
    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    zone_blocks = []
    for zone in zones:
        path = workdir / f"{zone.origin.rstrip('.')}.zone"
        path.write_text(zone.text(), encoding="utf-8")
        zone_blocks.append(f'zone "{zone.origin.rstrip(".")}" {{ type primary; file "{path}"; }};')
    conf = f"""
options {{
    directory "{workdir}";
    pid-file none;
    session-keyfile none;
    managed-keys-directory "{workdir}";
    listen-on port {port} {{ {" ".join(f"{a};" for a in v4) or "none;"} }};
    listen-on-v6 port {port} {{ {" ".join(f"{a};" for a in v6) or "none;"} }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify no;
    minimal-responses yes;
    {extra_options}
}};
controls {{ }};
logging {{ category default {{ default_stderr; }}; category lame-servers {{ null; }}; }};
{chr(10).join(zone_blocks)}
"""
    conf_path = workdir / "named.conf"
    conf_path.write_text(conf, encoding="utf-8")
    check = subprocess.run(
        ["named-checkconf", str(conf_path)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise NetnsError(f"named-checkconf: {check.stdout}{check.stderr}")
    proc = _spawn(ns, [NAMED, "-g", "-n", "1", "-c", str(conf_path)], addresses, port)
    return DnsServerProcess("bind", tuple(addresses), port, workdir, proc, {"named.conf": conf})


def start_unbound(
    ns: Netns,
    workdir: Path,
    addresses: Sequence[str],
    *,
    zones: Sequence[Zone] = (),
    stubs: Mapping[str, Sequence[str]] | None = None,
    local_zones: Mapping[str, str] | None = None,
    port: int = 53,
    threads: int = 1,
    extra: str = "",
) -> DnsServerProcess:
    """Unbound inside ``ns``, answering recursive queries from anyone in the namespace.

    ``zones``: served by Unbound itself (``auth-zone``). ``stubs``: zone -> addresses of the
    authoritative servers Unbound asks for it (e.g. a BIND in the same namespace). Anything
    else gets NXDOMAIN (a static root zone; the root stub behind it points at the unrouted
    test net): Unbound never leaves the namespace. ``local_zones``: zone -> type, e.g.
    ``{"ads.test": "always_null"}`` (a sinkhole answering 0.0.0.0 and ::) or
    ``"always_refuse"``.
    """
    _check_tool(UNBOUND)
    workdir = Path(workdir) / "unbound"
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "server:",
        f'  directory: "{workdir}"',
        '  chroot: ""',
        '  username: ""',
        '  pidfile: ""',
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 0",
        f"  num-threads: {threads}",
        f"  port: {port}",
        *(f"  interface: {a}" for a in addresses),
        "  interface-automatic: no",
        "  do-ip4: yes",
        "  do-ip6: yes",
        "  do-udp: yes",
        "  do-tcp: yes",
        "  access-control: 0.0.0.0/0 allow",
        "  access-control: ::/0 allow",
        "  do-not-query-localhost: no",
        "  module-config: iterator",
        '  trust-anchor-file: ""',
        "  harden-glue: no",
        "  qname-minimisation: no",
        "  minimal-responses: yes",
        "  so-rcvbuf: 8m",
        "  so-sndbuf: 8m",
        "  msg-cache-size: 64m",
        "  rrset-cache-size: 128m",
        "  outgoing-range: 1024",
        "  num-queries-per-thread: 4096",
        "  prefetch: no",
        "  serve-expired: no",
        "  infra-keep-probing: yes",
        "  infra-host-ttl: 1",
        # RFC 6761 names (test., invalid., ...) are blocked by default: the zones here use them
        '  local-zone: "test." nodefault',
        '  local-zone: "invalid." nodefault',
        *(f'  local-zone: "{name}." {kind}' for name, kind in (local_zones or {}).items()),
        # Names outside the configured zones: NXDOMAIN at once, as a root server would say,
        # instead of SERVFAIL after trying the root stub below.
        '  local-zone: "." static',
        *(
            f'  local-zone: "{name.rstrip(".")}." transparent'
            for name in [*(z.origin for z in zones), *(stubs or {})]
            if name.rstrip(".") not in (local_zones or {})
        ),
    ]
    if extra:
        lines += [f"  {line}" for line in extra.splitlines() if line.strip()]
    lines += ["remote-control:", "  control-enable: no"]
    for zone in zones:
        path = workdir / f"{zone.origin.rstrip('.')}.zone"
        path.write_text(zone.text(), encoding="utf-8")
        lines += [
            "auth-zone:",
            f'  name: "{zone.origin.rstrip(".")}."',
            f'  zonefile: "{path}"',
            "  for-downstream: yes",
            "  for-upstream: yes",
            "  fallback-enabled: no",
        ]
    for name, servers in (stubs or {}).items():
        lines += ["stub-zone:", f'  name: "{name.rstrip(".")}."']
        lines += [f"  stub-addr: {s}" for s in servers]
    # The root: a stub at an address nothing answers, inside the unrouted test net, so a
    # name outside the configured zones fails in the namespace and never leaves it.
    lines += ["stub-zone:", '  name: "."', "  stub-addr: 203.0.113.1", "  stub-prime: no"]
    conf = "\n".join(lines) + "\n"
    conf_path = workdir / "unbound.conf"
    conf_path.write_text(conf, encoding="utf-8")
    check = subprocess.run(
        ["unbound-checkconf", str(conf_path)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise NetnsError(f"unbound-checkconf: {check.stdout}{check.stderr}")
    proc = _spawn(ns, [UNBOUND, "-d", "-c", str(conf_path)], addresses, port)
    return DnsServerProcess(
        "unbound", tuple(addresses), port, workdir, proc, {"unbound.conf": conf}
    )
