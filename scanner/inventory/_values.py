"""Typed values of an inventory: numbers, choices, text, host names, addresses, ports, tags.

Each reader takes a YAML node, reports what is wrong with it where it is written, and
returns the value or None.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import yaml

from ..scope import parse_network
from ._yaml import Where, YamlFile, _kind, _shown
from .targets import Network

MAX_PORT = 65535
MAX_NETWORK = 65536  # addresses one CIDR host may expand to (a /16, or an IPv6 /112)
#: seconds (timeouts) at most, and retries at most: the CLI's --timeout / --retries too
MAX_SECONDS = 86400
MAX_RETRIES = 10
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
#: Longer host names are refused before IDNA encoding: the DNS allows 253 characters, and
#: IDNA mappings (NFKC, dropped zero-width characters) do not shrink a real name 4-fold.
_MAX_NAME = 1024


@dataclass
class ValueReader(YamlFile):
    """The YAML layer plus readers for each kind of value an inventory holds."""

    def number(self, node: yaml.Node, what: str, *, positive: bool = True) -> float | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(node, f"{what} must be a number of seconds, not {_kind(node)}")
            return None
        if positive and not (0 < value <= MAX_SECONDS):
            self.problem(node, f"{what} must be > 0 and at most {MAX_SECONDS}, not {_shown(value)}")
            return None
        return float(value)

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(node, f"{what} must be an integer, not {_kind(node)}")
            return None
        if not low <= value <= high:
            self.problem(node, f"{what} must be between {low} and {high}, not {_shown(value)}")
            return None
        return value

    def choice(self, node: yaml.Node, what: str, choices: Sequence[str]) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or value not in choices:
            shown = _shown(value) if isinstance(value, str | int | float | bool) else _kind(node)
            self.problem(node, f"{what} must be one of {' | '.join(choices)}, not {shown}")
            return None
        return value

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            self.problem(node, f"{what} must be a non-empty string, not {_kind(node)}")
            return None
        bad = _unprintable(value)
        if bad is not None:
            char = f"U+{ord(bad):04X} {unicodedata.name(bad, '')}".rstrip()
            self.problem(
                node, f"{what} must not contain control characters or invisible formatting ({char})"
            )
            return None
        return value

    def network(self, node: Where, value: str) -> Network | None:
        """A CIDR host: one target per address, up to :data:`MAX_NETWORK` addresses."""
        try:
            network = parse_network(value)
        except ValueError as exc:
            message = str(exc)
            if "not an address" in message:
                message = f"{_shown(value)} is not a valid host name, IP address or CIDR network"
            self.problem(node, message)
            return None
        if network.num_addresses > MAX_NETWORK:
            smallest = 16 if network.version == 4 else 112
            self.problem(
                node,
                f"{_shown(value)} has {network.num_addresses:,} addresses; a CIDR "
                f"host expands to at most {MAX_NETWORK:,} (/{smallest}): split it",
            )
            return None
        return network

    def host(self, node: Where, value: str) -> str | None:  # noqa: PLR0911 - one return per problem
        """An IP literal or a valid host name (IDNA names become their A-label form)."""
        if "/" in value:
            self.problem(node, f"{_shown(value)} is not a valid host name or IP address")
            return None
        if _is_ipv4(value):  # the common case, and inet_pton takes only the canonical form
            first = int(value[: value.index(".")])
            if 0 < first < 224 and value != "255.255.255.255":  # no ipaddress object: 6 µs
                return value
            return self.probeable(node, value, ipaddress.IPv4Address(value))
        candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        if ":" in candidate or candidate != value:  # a name has neither colon nor brackets
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                pass
            else:
                return self.probeable(node, str(address), address)
        if candidate != value:
            self.problem(node, f"{_shown(value)} is not an IPv6 address")
            return None
        # A trailing dot makes the name absolute (no search list): it is kept, as written.
        absolute = value.endswith(".")
        name = value[:-1] if absolute else value
        try:
            ascii_name = name
            if not name.isascii():
                if len(name) > _MAX_NAME:  # IDNA's codec takes seconds for a megabyte
                    raise UnicodeError("too long")
                from ..resolve._idna import to_ascii  # IDNA 2008 / UTS 46, as glibc encodes

                ascii_name = to_ascii(name)
        except (UnicodeError, ValueError):
            self.problem(node, f"{_shown(value)} is not a valid international host name")
            return None
        labels = ascii_name.split(".")
        if len(ascii_name) > 253 or not all(_LABEL.match(lab) for lab in labels):
            self.problem(node, f"{_shown(value)} is not a valid host name or IP address")
            return None
        if labels[-1].isdigit():  # "010.0.0.1", "999.1.1.1", "10.1": a mistyped address
            self.problem(
                node,
                f"{_shown(value)} is not a valid IP address (nor a host name: "
                "the last label of a name is never all digits)",
            )
            return None
        return ascii_name.lower() + ("." if absolute else "")

    def probeable(
        self, node: Where, text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> str | None:
        """An address a probe can be sent to: not 0.0.0.0 or :: (which connect to this
        machine, so a target there would pass whatever it should check), not multicast or
        broadcast, and a link-local IPv6 address with the zone it is reached through."""
        if address.is_unspecified:
            self.problem(
                node,
                f"{_shown(text)} is the unspecified address: connecting to it "
                "reaches this machine; name the host to check",
            )
            return None
        if address.is_multicast or text == "255.255.255.255":
            self.problem(node, f"{_shown(text)} is a multicast or broadcast address, not a host")
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.is_link_local:
            if not address.scope_id:
                self.problem(
                    node,
                    f"{_shown(text)} is link-local: say through which interface "
                    "it is reached, e.g. [fe80::1%eth0]",
                )
                return None
            try:
                socket.if_nametoindex(address.scope_id)
            except OSError:
                if not address.scope_id.isdigit():
                    self.problem(
                        node,
                        f"{_shown(text)}: this machine has no interface {_shown(address.scope_id)}",
                    )
                    return None
        return text

    def port(self, node: yaml.Node, what: str = "port") -> int | None:
        return self.integer(node, what, 1, MAX_PORT)

    def ports(self, node: yaml.Node, what: str = "port") -> range | None:
        """A port (``443``) or an inclusive range (``"8000-8010"``), as a range of ports."""
        value = self.scalar(node)
        if isinstance(value, str) and "-" in value:
            match = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", value)
            if match is None:
                self.problem(
                    node,
                    f'{what} must be an integer or a range like "8000-8010", not {_shown(value)}',
                )
                return None
            low, high = int(match.group(1)), int(match.group(2))
            if not 1 <= low <= high <= MAX_PORT:
                self.problem(
                    node, f"port range {_shown(value)} must go upwards within 1-{MAX_PORT}"
                )
                return None
            return range(low, high + 1)
        port = self.port(node, what)
        return None if port is None else range(port, port + 1)

    def tags(self, node: yaml.Node) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "tags must be a list of strings")
            return ()
        tags = []
        for item in node.value:
            value = self.text(item, "a tag")
            if value is not None:
                if "," in value:
                    self.problem(item, "a tag must not contain ','")
                    continue
                tags.append(value)
        return tuple(tags)


def split_host_port(  # noqa: PLR0911 - one return per spelling: [v6]:port, v6, host:port
    value: str, default_port: int | None = None
) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` (or a bare host when ``default_port`` is given)."""
    value = value.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?", value) if value[:1] == "[" else None
    if match:
        port = match.group(2)
        if port is None and default_port is None:
            return None
        return match.group(1), int(port) if port else cast(int, default_port)
    if value.count(":") > 1:  # a bare IPv6 address: only valid without a port
        if default_port is None:
            return None
        return value, default_port
    host, sep, port_text = value.rpartition(":")
    if not sep:
        return (value, default_port) if default_port is not None and value else None
    if not host or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    return host, int(port_text)


def _unprintable(value: str) -> str | None:
    """The first character that must not be in a name or tag, if any.

    Controls (C0, DEL and C1 like the 8-bit CSI U+009B), line and paragraph separators
    (U+2028 splits "lines" for many readers of JSON lines), and invisible formatting such
    as bidi overrides (U+202E makes a name display as another), BOM and zero-width space.
    The zero-width (non-)joiners stay allowed: scripts and emoji sequences need them.
    """
    for ch in value:
        if ch.isascii():
            if ch < " " or ch == "\x7f":
                return ch
            continue
        if ch in "\u200c\u200d":
            continue
        code = ord(ch)
        if (
            unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
            or (code & 0xFFFE) == 0xFFFE
            or 0xFDD0 <= code <= 0xFDEF
        ):  # noncharacters
            return ch
    return None


def printable_path(path: str) -> str:
    """``path`` as reports and messages show it: bytes that are not UTF-8 (which Python
    keeps as lone surrogates, and JSON cannot carry) and control characters (an ESC in a
    file name would drive the terminal) written as escapes, ``inv\\xff.yaml``.
    Other paths are returned unchanged.
    """
    if _unprintable(path) is None:
        return path
    try:
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte
        path = path.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if _unprintable(ch) else ch for ch in path
    )


def _is_ipv4(text: str) -> bool:
    """A dotted-quad IPv4 address: inet_pton in C, some fifty times cheaper than ipaddress
    (which a 20,000-line inventory called 60,000 times: 0.8 s of its 2.2 s to load)."""
    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return False
    return True


def _literal_version(host: str) -> int | None:
    if _is_ipv4(host):
        return 4
    if ":" not in host:  # no IPv6 literal without one: spares a name ipaddress's ValueError
        return None
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None
