"""The scope guard: addresses outside ``scope.allow`` / ``--allow`` never get a packet.

Checked on every address after DNS (hosts-file answers and CNAME targets included),
so a typo or a hijacked record cannot turn a deploy check into a scan of someone
else's network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A CIDR (or a single address) as a network; ValueError with a helpful message.

    Host bits must be zero: ``192.0.2.7/24`` is refused with the network it probably
    meant, because silently widening a guard is the wrong way to be lenient.
    """
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an address or CIDR network") from exc
        raise ValueError(f"{text!r} has host bits set (did you mean {loose}?)") from exc


class ScopeGuard:
    """Answers "may we send a packet to this address?"."""

    def __init__(self, networks: Iterable[str | Network]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) else parse_network(n)
            for n in networks
        )

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1 on the wire
        return any(ip in network for network in self.networks if network.version == ip.version)

    def __str__(self) -> str:
        return ", ".join(str(n) for n in self.networks)
