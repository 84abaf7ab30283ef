"""The system's resolver configuration, read once per scan: resolv.conf and the hosts file.

Both are parsed the way glibc 2.36 parses them (``resolv/resolv_conf.c``, ``res_init.c``,
``nss_files/files-hosts.c``), because the scanner must ask what the application on this
machine would ask:

* resolv.conf: ``nameserver`` (at most 3, like glibc's MAXNS; none means 127.0.0.1),
  ``search`` / ``domain`` (the last one wins; neither: the domain part of the host name),
  ``options ndots:N timeout:N attempts:N rotate edns0 use-vc no-tld-query no-aaaa`` with
  glibc's limits (ndots <= 15, timeout <= 30, attempts <= 5); ``RES_OPTIONS`` adds options
  and ``LOCALDOMAIN`` replaces the search list, as in glibc. Lines starting with ``#`` or
  ``;`` are comments; unknown keywords and options are ignored.
* hosts: ``ADDRESS NAME [ALIAS...]``, ``#`` to the end of the line is a comment, a line whose
  address does not parse is ignored. A name matches case-insensitively and exactly as
  written (``name.`` does not match ``name``: glibc compares the strings), and a lookup
  gets the addresses of every line that lists it — only those lines, so an alias gives its
  own line's addresses, not those of other lines naming the same canonical name.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..models import AddressFamily

RESOLV_CONF = "/etc/resolv.conf"
HOSTS = "/etc/hosts"
MAXNS = 3  # glibc <resolv.h>
RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY = 15, 30, 5
RES_TIMEOUT, RES_DFLRETRY = 5, 2  # glibc's defaults: 5 s per try, 2 attempts
DNS_PORT = 53


@dataclass(frozen=True)
class Nameserver:
    """One DNS server: address (an IPv6 one may carry a ``%zone``), port, and how it is shown."""

    address: str
    port: int = DNS_PORT

    @property
    def family(self) -> AddressFamily:
        return "ipv6" if ":" in self.address else "ipv4"

    @property
    def label(self) -> str:
        """``198.18.53.1`` on port 53, ``127.0.0.1:5353`` or ``[::1]:5353`` on another port."""
        if self.port == DNS_PORT:
            return self.address
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else (f"{self.address}:{self.port}")
        )

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """``ADDR``, ``ADDR:PORT`` or ``[ADDR6]:PORT`` (the inventory's normalised form)."""
        text = text.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else DNS_PORT)
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return cls(host, int(port))
        return cls(text)


@dataclass(frozen=True)
class ResolvConf:
    """What glibc's res_init would make of resolv.conf (plus RES_OPTIONS and LOCALDOMAIN)."""

    nameservers: tuple[Nameserver, ...] = (Nameserver("127.0.0.1"),)
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: int = RES_TIMEOUT
    attempts: int = RES_DFLRETRY
    rotate: bool = False
    edns0: bool = False
    use_vc: bool = False
    no_tld_query: bool = False
    no_aaaa: bool = False
    path: str = RESOLV_CONF
    #: options glibc knows that change nothing here (single-request, trust-ad, ...)
    ignored: tuple[str, ...] = field(default=())


def _nameserver(text: str) -> Nameserver | None:
    address, _, zone = text.partition("%")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if zone and parsed.version != 6:
        return None
    return Nameserver(f"{parsed}%{zone}" if zone else str(parsed))


def _keyword(line: str, word: str) -> str | None:
    """The rest of ``line`` if it starts with ``word`` then a blank (glibc's MATCH), else None."""
    if line.startswith(word) and line[len(word) : len(word) + 1] in (" ", "\t"):
        return line[len(word) :].strip()
    return None


def _options(words: Sequence[str], into: dict[str, object], ignored: list[str]) -> None:
    """glibc's res_setoptions: ``ndots:N``, ``timeout:N``, ``attempts:N`` and the flags."""
    limits = {"ndots": RES_MAXNDOTS, "timeout": RES_MAXRETRANS, "attempts": RES_MAXRETRY}
    flags = {
        "rotate": "rotate",
        "edns0": "edns0",
        "use-vc": "use_vc",
        "no-tld-query": "no_tld_query",
        "no_tld_query": "no_tld_query",
        "no-aaaa": "no_aaaa",
    }
    for word in words:
        key, sep, value = word.partition(":")
        if sep and key in limits:
            digits = ""
            for char in value:
                if not char.isdigit():
                    break
                digits += char
            into[key] = min(int(digits or "0"), limits[key])
        elif word in flags:
            into[flags[word]] = True
        elif word:
            ignored.append(word)


def default_domain() -> tuple[str, ...]:
    """No ``search`` or ``domain`` line: glibc uses the host name's part after its first dot."""
    name = socket.gethostname()
    _, dot, domain = name.partition(".")
    return (domain,) if dot and domain else ()


def parse_resolv_conf(
    text: str | None, path: str = RESOLV_CONF, environ: Mapping[str, str] | None = None
) -> ResolvConf:
    """Parse resolv.conf text (None: the file is missing) the way glibc 2.36 does."""
    env = os.environ if environ is None else environ
    servers: list[Nameserver] = []
    search: tuple[str, ...] | None = None
    settings: dict[str, object] = {}
    ignored: list[str] = []
    local_domain = env.get("LOCALDOMAIN")
    if local_domain is not None:
        search = tuple(local_domain.split())
    for raw in (text or "").splitlines():
        line = raw.rstrip("\n")
        if not line or line[0] in "#;":
            continue
        if (rest := _keyword(line, "domain")) is not None:
            if local_domain is None and rest:
                search = (rest.split()[0],)
        elif (rest := _keyword(line, "search")) is not None:
            if local_domain is None:
                search = tuple(rest.split())
        elif (rest := _keyword(line, "nameserver")) is not None:
            if len(servers) < MAXNS and rest and (server := _nameserver(rest.split()[0])):
                servers.append(server)
        elif (rest := _keyword(line, "options")) is not None:
            _options(rest.split(), settings, ignored)
    _options(env.get("RES_OPTIONS", "").split(), settings, ignored)
    if search is None:
        search = default_domain()
    attempts = int(settings.pop("attempts", RES_DFLRETRY))  # type: ignore[call-overload]
    return ResolvConf(
        nameservers=tuple(servers) or (Nameserver("127.0.0.1"),),
        search=tuple(d for d in search if d),
        attempts=max(1, attempts),  # glibc's attempts:0 sends nothing at all; one try here
        path=path,
        ignored=tuple(ignored),
        **settings,  # type: ignore[arg-type]
    )


def load_resolv_conf(path: str = RESOLV_CONF) -> ResolvConf:
    """Read and parse ``path``; a missing or unreadable file means glibc's defaults."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text: str | None = handle.read()
    except OSError:
        text = None
    return parse_resolv_conf(text, path)


class HostsFile:
    """A hosts file parsed once: lower-case name -> (family, address) of every line naming it."""

    __slots__ = ("entries", "path")

    def __init__(self, path: str, entries: Mapping[str, tuple[tuple[AddressFamily, str], ...]]):
        self.path = path
        self.entries = entries

    @classmethod
    def parse(cls, text: str, path: str = HOSTS) -> HostsFile:
        found: dict[str, list[tuple[AddressFamily, str]]] = {}
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            parsed = _host_address(fields[0])
            if parsed is None:
                continue
            for name in dict.fromkeys(n.lower() for n in fields[1:]):
                found.setdefault(name, []).append(parsed)
        return cls(path, {name: tuple(lines) for name, lines in found.items()})

    @classmethod
    def load(cls, path: str = HOSTS) -> HostsFile:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return cls.parse(handle.read(), path)
        except OSError:
            return cls(path, {})

    def lookup(self, name: str) -> tuple[tuple[AddressFamily, str], ...]:
        """Every (family, address) for ``name`` in file order; () if the file does not list it."""
        return self.entries.get(name.lower(), ())

    def names(self) -> frozenset[str]:
        return frozenset(self.entries)


def _host_address(text: str) -> tuple[AddressFamily, str] | None:
    """An address as glibc's hosts parser takes it: inet_pton for IPv6, then IPv4."""
    for family, af in ((socket.AF_INET6, "ipv6"), (socket.AF_INET, "ipv4")):
        try:
            packed = socket.inet_pton(family, text)
        except OSError:
            continue
        return af, socket.inet_ntop(family, packed)  # type: ignore[return-value]
    return None


def hosts_file_path() -> str:
    """The hosts file to read: ``CARES_HOSTS`` (the c-ares variable, kept) or /etc/hosts."""
    return os.environ.get("CARES_HOSTS") or HOSTS


def hosts_file_names(path: str) -> frozenset[str]:
    """Names listed in a hosts file (lower case)."""
    return HostsFile.load(path).names()
