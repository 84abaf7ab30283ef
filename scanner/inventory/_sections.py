"""The sections of one inventory file: version, defaults, resolver, scope, targets.

Every target a file names is claimed in :attr:`InventoryFile.names` (with where), even
one that is invalid for another reason: a duplicate name is worth reporting in the same
run (:mod:`._names` checks the claims of all files together).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from ..models import Expect, Family, ResolverConfig, SourceLocation, Target, TlsSettings
from ..scope import parse_network
from ._values import _LABEL, MAX_PORT, MAX_RETRIES, ValueReader, _literal_version, split_host_port
from ._yaml import Where, _kind, _shown
from .targets import Network, TargetSpec, display

SCHEMA_VERSION = 1
_Keys = dict[str, tuple[yaml.Node, yaml.Node]]
_TOP_KEYS = ("version", "defaults", "resolver", "targets", "scope")
_DEFAULT_KEYS = ("timeout", "retries", "expect", "family", "max_latency_ms", "hold_ms", "tls")
_TLS_KEYS = (
    "server_name",
    "ca_file",
    "verify",
    "min_days",
    "starttls",
    "client_cert",
    "client_key",
)
_RESOLVER_KEYS = ("nameservers", "timeout", "tries")
_TARGET_KEYS = (
    "name",
    "host",
    "port",
    "ports",
    "expect",
    "timeout",
    "retries",
    "family",
    "tags",
    "max_latency_ms",
    "hold_ms",
    "tls",
)


@dataclass
class _Defaults:
    timeout: float = 3.0
    retries: int = 1
    expect: Expect = "open"
    family: Family = "any"
    max_latency_ms: float | None = None
    hold_ms: float | None = None
    tls: TlsSettings | None = None


def _unusable_nameserver(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a query to ``address`` cannot reach one DNS server, if it cannot."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "the broadcast address"
    return None


@dataclass
class InventoryFile(ValueReader):
    """One inventory file, read section by section into target specs."""

    #: every target name this file claims, with where (see the module docstring)
    names: list[tuple[str, SourceLocation]] = field(default_factory=list)
    #: networks from this file's ``scope.allow``; None when it has no scope section
    scope: list[str] | None = None
    #: CIDR targets, checked for overlapping (duplicate) names across all files
    networks: list[tuple[TargetSpec, SourceLocation]] = field(default_factory=list)

    def defaults(self, node: yaml.Node) -> _Defaults:
        result = _Defaults()
        keys = self.mapping(node, "defaults", _DEFAULT_KEYS)
        self._apply_common(keys, result, "defaults")
        return result

    def _apply_common(
        self, keys: dict[str, tuple[yaml.Node, yaml.Node]], into: Any, what: str
    ) -> None:
        """The settings a target may override from defaults."""
        if "timeout" in keys and (v := self.number(keys["timeout"][1], f"{what}.timeout")):
            into.timeout = v
        if "retries" in keys:
            r = self.integer(keys["retries"][1], f"{what}.retries", 0, MAX_RETRIES)
            if r is not None:
                into.retries = r
        if "expect" in keys and (
            e := self.choice(keys["expect"][1], f"{what}.expect", ("open", "closed"))
        ):
            into.expect = cast(Expect, e)
        if "family" in keys and (
            f := self.choice(keys["family"][1], f"{what}.family", ("any", "ipv4", "ipv6"))
        ):
            into.family = cast(Family, f)
        if "max_latency_ms" in keys:
            into.max_latency_ms = self.milliseconds(
                keys["max_latency_ms"][1], f"{what}.max_latency_ms", 600_000
            )
        if "hold_ms" in keys:  # a minute is far longer than any close-at-once
            into.hold_ms = self.milliseconds(keys["hold_ms"][1], f"{what}.hold_ms", 60_000)
        if "tls" in keys:
            into.tls = self.tls_section(keys["tls"][1], f"{what}.tls")
        if into.tls is not None and into.expect == "closed" and "tls" in keys:
            self.problem(
                keys["tls"][0],
                f"{what}.tls checks a port that opens; it cannot go with expect: closed",
            )

    def tls_section(self, node: yaml.Node, what: str) -> TlsSettings | None:
        """``tls: true``, ``tls: false`` or the mapping of :class:`TlsSettings`.

        Files (``ca_file``, ``client_cert``, ``client_key``) are relative to the inventory
        and must be readable now: a typo costs nothing.
        """
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if isinstance(value, bool):
                return TlsSettings() if value else None
            self.problem(node, f"{what} must be true, false or a mapping, not {_kind(node)}")
            return None
        keys = self.mapping(node, what, _TLS_KEYS)
        fields: dict[str, object] = {}
        if "server_name" in keys:
            fields["server_name"] = self.text(keys["server_name"][1], f"{what}.server_name")
        for key in ("ca_file", "client_cert", "client_key"):
            if key in keys:
                fields[key] = self.readable_file(keys[key][1], f"{what}.{key}")
        if "verify" in keys:
            verify = self.scalar(keys["verify"][1])
            if isinstance(verify, bool):
                fields["verify"] = verify
            else:
                self.problem(keys["verify"][1], f"{what}.verify must be true or false")
        if "min_days" in keys:
            fields["min_days"] = self.integer(keys["min_days"][1], f"{what}.min_days", 0, 3650)
        if "starttls" in keys:
            fields["starttls"] = self.choice(
                keys["starttls"][1], f"{what}.starttls", ("smtp", "imap", "pop3", "postgres")
            )
        if "client_key" in keys and "client_cert" not in keys:
            self.problem(keys["client_key"][0], f"{what}.client_key needs client_cert")
        return TlsSettings(**{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]

    def readable_file(self, node: yaml.Node, what: str) -> str | None:
        value = self.text(node, what)
        if value is None:
            return None
        path = os.path.join(os.path.dirname(self.path), os.path.expanduser(value))
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            self.problem(node, f"{what} {_shown(value)} is not a readable file")
            return None
        return os.path.abspath(path)

    def milliseconds(self, node: yaml.Node, what: str, most: int) -> float | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(node, f"{what} must be a number of milliseconds, not {_kind(node)}")
            return None
        if not 0 < value <= most:
            self.problem(node, f"{what} must be > 0 and at most {most}, not {value}")
            return None
        return float(value)

    def scope_section(self, node: yaml.Node) -> list[str]:
        """``scope: {allow: [CIDR, ...]}``: the networks probes may reach."""
        keys = self.mapping(node, "scope", ("allow",))
        if "allow" not in keys:
            if isinstance(node, yaml.MappingNode):
                self.problem(node, "scope needs 'allow: [CIDR, ...]'")
            return []
        seq = keys["allow"][1]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            self.problem(seq, "scope.allow must be a non-empty list of CIDR networks")
            return []
        networks = []
        for item in seq.value:
            value = self.scalar(item)
            if not isinstance(value, str):
                self.problem(item, f"a scope network must be a string, not {_kind(item)}")
                continue
            try:
                networks.append(str(parse_network(value)))
            except ValueError as exc:
                self.problem(item, str(exc))
        return networks

    def resolver(self, node: yaml.Node) -> ResolverConfig:
        keys = self.mapping(node, "resolver", _RESOLVER_KEYS)
        nameservers: list[str] = []
        if "nameservers" in keys:
            seq = keys["nameservers"][1]
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                self.problem(
                    seq,
                    "resolver.nameservers must be a non-empty list of "
                    'addresses like "192.0.2.53" or "127.0.0.1:5353"',
                )
            else:
                for item in seq.value:
                    server = self.nameserver(item)
                    if server is not None:
                        nameservers.append(server)
        timeout: float | None = None  # unset: resolv.conf's options (glibc's 5 s, 2 attempts)
        tries: int | None = None
        if "timeout" in keys and (t := self.number(keys["timeout"][1], "resolver.timeout")):
            timeout = t
        if "tries" in keys and (n := self.integer(keys["tries"][1], "resolver.tries", 1, 10)):
            tries = n
        return ResolverConfig(tuple(nameservers), timeout, tries)

    def nameserver(self, node: yaml.Node) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str):
            self.problem(node, f"a nameserver must be a string, not {_kind(node)}")
            return None
        parsed = split_host_port(value, default_port=53)
        if parsed is None:
            self.problem(node, f"{_shown(value)} is not an address or address:port")
            return None
        host, port = parsed
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if all(_LABEL.match(label) for label in host.rstrip(".").split(".")):
                self.problem(node, f"nameserver {_shown(value)} must be an IP address, not a name")
            else:
                self.problem(node, f"{_shown(value)} is not an address or address:port")
            return None
        if not 1 <= port <= MAX_PORT:
            self.problem(node, f"nameserver port must be between 1 and {MAX_PORT}")
            return None
        special = _unusable_nameserver(address)
        if special is not None:
            self.problem(node, f"nameserver {_shown(value)} is {special}: no DNS server there")
            return None
        return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"

    def targets(self, node: yaml.Node, defaults: _Defaults) -> list[TargetSpec]:
        if self.plain_items is not None and node is self.plain_items[0]:
            shorthand = self.shorthand_text
            return [
                spec
                for value, source in self.plain_items[1]
                for spec in shorthand(value, source, defaults, source)
            ]
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"targets must be a list, not {_kind(node)}")
            return []
        if not node.value:
            self.problem(node, "targets is empty: nothing to check")
        out: list[TargetSpec] = []
        for item in node.value:
            out.extend(self.target(item, defaults))
        return out

    def target(self, node: yaml.Node, defaults: _Defaults) -> list[TargetSpec]:
        source = self.where(node)
        if isinstance(node, yaml.ScalarNode):
            return self.shorthand(node, defaults, source)
        keys = self.mapping(node, "target", _TARGET_KEYS)
        if not keys and isinstance(node, yaml.MappingNode):
            self.problem(node, "a target needs at least host and port")
            return []
        if not keys:
            return []
        settings = _Defaults(
            defaults.timeout,
            defaults.retries,
            defaults.expect,
            defaults.family,
            defaults.max_latency_ms,
            defaults.hold_ms,
            defaults.tls,
        )
        self._apply_common(keys, settings, "target")
        host = self.target_host(node, keys)
        ports, many = self.target_ports(node, keys)
        name = self.text(keys["name"][1], "name") if "name" in keys else None
        tags = self.tags(keys["tags"][1]) if "tags" in keys else ()
        self.claim_names(source, host, ports, name=name, many=many, named="name" in keys)
        # the family is checked even when the ports are wrong: both are worth reporting
        family_node = keys.get("family", keys.get("host", (node, node)))[1]
        if host is None or not self.family_fits(family_node, host, settings.family) or not ports:
            return []
        return [
            self.spec(
                host,
                tuple(ports),
                name=name,
                many=many,
                settings=settings,
                tags=tags,
                source=source,
            )
        ]

    def target_host(self, node: yaml.Node, keys: _Keys) -> str | Network | None:
        if "host" not in keys:
            self.problem(node, "target has no host")
            return None
        value = keys["host"][1]
        raw = self.text(value, "host")
        if raw is None:
            return None
        return self.network(value, raw) if "/" in raw else self.host(value, raw)

    def target_ports(self, node: yaml.Node, keys: _Keys) -> tuple[list[int], bool]:
        """The target's ports, and whether it has several (each then names ``name:port``)."""
        ports: list[int] = []
        if "port" in keys and "ports" in keys:
            self.problem(keys["ports"][0], "give either port or ports, not both")
            return ports, True
        if "port" in keys:
            if (r := self.ports(keys["port"][1])) is not None:
                ports.extend(r)
                return ports, len(r) > 1
            return ports, False
        if "ports" not in keys:
            self.problem(node, "target has no port (give port: N or ports: [N, M])")
            return ports, False
        seq = keys["ports"][1]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            self.problem(seq, "ports must be a non-empty list of ports")
            return ports, True
        seen: set[int] = set()
        for item in seq.value:
            if (r := self.ports(item, "each port")) is None:
                continue
            twice = seen.intersection(r)
            if twice:
                self.problem(item, f"port {min(twice)} is listed twice")
                continue
            seen.update(r)
            ports.extend(r)
        return ports, True

    def claim_names(
        self,
        source: SourceLocation,
        host: str | Network | None,
        ports: list[int],
        *,
        name: str | None,
        many: bool,
        named: bool,
    ) -> None:
        """The names this target takes, even if it is invalid otherwise (not when the
        name itself is invalid: its default would be a guess)."""
        if not isinstance(host, str | None):
            if name is not None:
                self.names.append((f"{name}/", source))  # claims every name "name/..."
            return
        if name is not None:
            self.names.extend(
                ((f"{name}:{p}" if many else name), source) for p in (ports if many else [0])
            )
        elif host is not None and not named:
            self.names.extend((display(host, p), source) for p in ports)

    def shorthand(
        self, node: yaml.ScalarNode, defaults: _Defaults, source: SourceLocation
    ) -> list[TargetSpec]:
        value = self.scalar(node)
        if not isinstance(value, str):
            self.problem(node, f'a target must be "host:port" or a mapping, not {_kind(node)}')
            return []
        return self.shorthand_text(value, node, defaults, source)

    def shorthand_text(
        self, value: str, node: Where, defaults: _Defaults, source: SourceLocation
    ) -> list[TargetSpec]:
        """``host:port``, ``[v6]:port``, ``host:8000-8010``, ``198.51.100.0/28:443``."""
        text = value.strip()
        ranged = re.fullmatch(r"(.+):(\d{1,5})\s*-\s*(\d{1,5})", text) if "-" in text else None
        if ranged is not None:
            raw_host, low, high = ranged.group(1), int(ranged.group(2)), int(ranged.group(3))
            if not 1 <= low <= high <= MAX_PORT:
                self.problem(
                    node, f"port range in {_shown(value)} must go upwards within 1-{MAX_PORT}"
                )
                return []
            ports: tuple[int, ...] = tuple(range(low, high + 1))
        else:
            parsed = split_host_port(text)
            if parsed is None:
                self.problem(
                    node, f'{_shown(value)} is not host:port (write IPv6 as "[2001:db8::1]:22")'
                )
                return []
            raw_host, port = parsed
            if not 1 <= port <= MAX_PORT:
                self.problem(node, f"port must be between 1 and {MAX_PORT}, not {port}")
                return []
            ports = (port,)
            if text.startswith("["):  # keep the brackets: only IPv6 may wear them
                raw_host = f"[{raw_host}]"
        host = self.network(node, raw_host) if "/" in raw_host else self.host(node, raw_host)
        if host is None:
            return []
        if isinstance(host, str):
            if len(ports) == 1:  # most lines: no generator for one name
                self.names.append((display(host, ports[0]), source))
            else:
                self.names.extend((display(host, p), source) for p in ports)
        if not self.family_fits(node, host, defaults.family):
            return []
        return [
            self.spec(host, ports, name=None, many=False, settings=defaults, tags=(), source=source)
        ]

    def spec(
        self,
        host: str | Network,
        ports: tuple[int, ...],
        *,
        name: str | None,
        many: bool,
        settings: _Defaults,
        tags: tuple[str, ...],
        source: SourceLocation,
    ) -> TargetSpec:
        network = None if isinstance(host, str) else host
        first_host = host if isinstance(host, str) else str(host.network_address)
        template = Target(
            name=name or display(first_host, ports[0]),
            host=first_host,
            port=ports[0],
            expect=settings.expect,
            timeout=settings.timeout,
            retries=settings.retries,
            family=settings.family,
            tags=tags,
            source=source,
            max_latency_ms=settings.max_latency_ms,
            hold_ms=settings.hold_ms,
            tls=settings.tls,
        )
        spec = TargetSpec(
            template=template, ports=ports, network=network, name=name, per_port_names=many
        )
        if network is not None:
            self.networks.append((spec, source))
        return spec

    def family_fits(self, node: Where, host: str | Network, family: Family) -> bool:
        """An IP literal must match the family setting; it can never resolve otherwise."""
        if family == "any":  # the default: every literal fits, none need be parsed
            return True
        literal = _literal_version(host) if isinstance(host, str) else host.version
        if literal and family != f"ipv{literal}":
            self.problem(node, f"{host} is an IPv{literal} address but family is {family}")
            return False
        return True

    def load(self, data: bytes) -> tuple[list[TargetSpec], ResolverConfig | None]:
        root = self.parse(data)
        if root is None:
            return [], None
        keys = self.mapping(root, "the inventory", _TOP_KEYS)
        if not isinstance(root, yaml.MappingNode):
            return [], None
        if "version" not in keys:
            self.problem(root, f"missing 'version: {SCHEMA_VERSION}' at the top")
        else:
            version = self.scalar(keys["version"][1])
            if type(version) is not int or version != SCHEMA_VERSION:  # not True, not 1.0
                self.problem(
                    keys["version"][1],
                    f"unsupported inventory version "
                    f"{_shown(version)}; this scanner reads version {SCHEMA_VERSION}",
                )
        if "scope" in keys:
            self.scope = self.scope_section(keys["scope"][1])
        defaults = self.defaults(keys["defaults"][1]) if "defaults" in keys else _Defaults()
        resolver = self.resolver(keys["resolver"][1]) if "resolver" in keys else None
        if "targets" not in keys:
            self.problem(root, "missing 'targets:' list")
            return [], resolver
        return self.targets(keys["targets"][1], defaults), resolver
