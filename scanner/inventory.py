"""YAML inventory → validated :class:`Target` values, or every problem with file:line:column.

Why not a schema library: every message must point at the exact line and column of
the offending key or value, and all problems must be reported at once. PyYAML's node
tree (built by the C loader when present) carries those marks, so we validate the
nodes directly. Aliases are refused before any node is built, which also makes
"billion laughs" inputs harmless.
"""

from __future__ import annotations

import bisect
import difflib
import ipaddress
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import yaml

from .models import Expect, Family, Inventory, ResolverConfig, SourceLocation, Target
from .scope import parse_network
from .targets import Network, TargetList, TargetSpec, display

if TYPE_CHECKING:  # the C parser's marks are their own class
    from yaml._yaml import Mark as _CMark

try:  # the C loader is several times faster; fall back silently when absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SCHEMA_VERSION = 1
MAX_PORT = 65535
MAX_NETWORK = 65536  # addresses one CIDR host may expand to (a /16, or an IPv6 /112)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_TOP_KEYS = ("version", "defaults", "resolver", "targets", "scope")
_DEFAULT_KEYS = ("timeout", "retries", "expect", "family", "max_latency_ms")
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
)
_LATER = "is not supported by this version of scanner yet"
#: An inventory is 4 levels deep; far deeper input is hostile (libyaml's composer
#: recurses and crashes the interpreter at around 100,000 levels).
MAX_DEPTH = 64
#: What YAML forbids in a stream (PyYAML's Reader.NON_PRINTABLE); found before parsing so
#: the message can say where.
#: PyYAML compiles it on import already; compiling it again cost 8 ms of start-up.
_NON_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE
_STANDARD_TAG = "tag:yaml.org,2002:"
#: Larger files are refused before reading: even a valid inventory this big would take
#: minutes and gigabytes to check (PyYAML builds a node per value), and a hostile one
#: (a 200 MB scalar, /dev/zero) must cost nothing. Big scans use CIDR hosts and port ranges.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Values (scalars and collections) one file may hold, counted while parsing and before
#: any node is built: ~100,000 written-out targets. Dense input within MAX_FILE_BYTES
#: (``[0,0,0,...]``) would otherwise build tens of millions of nodes.
MAX_NODES = 1_000_000
#: Longer host names are refused before IDNA encoding: the DNS allows 253 characters, and
#: IDNA mappings (NFKC, dropped zero-width characters) do not shrink a real name 4-fold.
_MAX_NAME = 1024
#: How much of an offending value a message quotes.
_SHOWN = 60


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an inventory, and where."""

    location: SourceLocation
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InventoryError(Exception):
    """Raised with every problem found; nothing may be probed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


@dataclass
class _Defaults:
    timeout: float = 3.0
    retries: int = 1
    expect: Expect = "open"
    family: Family = "any"
    max_latency_ms: float | None = None


@dataclass
class _FileLoader:
    path: str
    problems: list[Problem] = field(default_factory=list)
    #: every target name this file claims, with where, even for targets that are invalid
    #: for another reason: a duplicate name is worth reporting in the same run.
    names: list[tuple[str, SourceLocation]] = field(default_factory=list)
    #: networks from this file's ``scope.allow``; None when it has no scope section
    scope: list[str] | None = None
    #: CIDR targets, checked for overlapping (duplicate) names across all files
    networks: list[tuple[TargetSpec, SourceLocation]] = field(default_factory=list)
    #: scalar nodes already reported as unreadable; no second problem for them
    _unreadable: set[int] = field(default_factory=set)
    _constructor: yaml.constructor.SafeConstructor = field(
        default_factory=yaml.constructor.SafeConstructor
    )

    def where(self, node: yaml.Node | yaml.Mark | _CMark | None) -> SourceLocation:
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        if mark is None:
            return SourceLocation(self.path, 1, 1)
        return SourceLocation(self.path, mark.line + 1, mark.column + 1)

    def problem(self, node: yaml.Node | yaml.Mark | _CMark | None, message: str) -> None:
        if isinstance(node, yaml.Node) and id(node) in self._unreadable:
            return
        self.problems.append(Problem(self.where(node), message))

    def problem_at(self, text: str, offset: int, message: str) -> None:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        self.problems.append(Problem(SourceLocation(self.path, line, column), message))

    # --- YAML layer -------------------------------------------------------------

    def parse(self, data: bytes) -> yaml.Node | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problems.append(
                Problem(SourceLocation(self.path, line, column), "not valid UTF-8")
            )
            return None
        bad = _NON_PRINTABLE.search(text)
        if bad is not None:
            char = bad.group()
            self.problem_at(
                text,
                bad.start(),
                "NUL byte in inventory"
                if char == "\x00"
                else f"control character U+{ord(char):04X} is not allowed in YAML",
            )
            return None
        try:
            if not self.events_are_safe(text):
                return None
            node = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            self.problem(exc.problem_mark or exc.context_mark, _syntax_message(exc))
            return None
        except yaml.reader.ReaderError as exc:
            # libyaml counts in UTF-8 bytes; turn that into a character offset
            offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
            self.problem_at(text, offset, f"YAML error: {exc.reason}")
            return None
        except yaml.YAMLError as exc:
            self.problem(None, f"YAML error: {exc}")
            return None
        if node is None:
            self.problem(None, "the inventory is empty")
        return node

    def events_are_safe(self, text: str) -> bool:
        """Refuse aliases and absurd nesting from the event stream, before any node exists.

        Aliases are refused rather than expanded, so "billion laughs" costs nothing.
        """
        safe = True
        depth = nodes = 0
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    self.problem(
                        event.start_mark,
                        f"more than {MAX_NODES:,} values in one "
                        "inventory: split it into several files, or use CIDR hosts "
                        "and port ranges",
                    )
                    return False
            if isinstance(event, yaml.AliasEvent):
                self.problem(
                    event.start_mark,
                    f"YAML alias *{event.anchor} is not allowed: write the value out",
                )
                safe = False
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    self.problem(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return safe

    def scalar(self, node: yaml.Node) -> Any:
        """The Python value of a scalar node; a non-scalar node is returned as is.

        A value its tag cannot describe (``!!int x``, ``!custom 80``) is reported here,
        once, and comes back as :data:`_UNREADABLE`; callers then stay quiet about it.
        """
        if not isinstance(node, yaml.ScalarNode):
            return node  # callers treat non-scalars as a type error
        if node.tag.endswith(":timestamp") or node.tag.endswith(":binary"):
            return node.value  # keep as text; no key of ours wants these types
        if id(node) in self._unreadable:
            return _UNREADABLE
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, KeyError, TypeError, OverflowError) as exc:
            tag = (
                f"!!{node.tag[len(_STANDARD_TAG) :]}"
                if node.tag.startswith(_STANDARD_TAG)
                else node.tag
            )
            if isinstance(exc, yaml.constructor.ConstructorError):  # no such tag for us
                message = f"YAML tag {_shown(tag)} is not supported"
            else:
                message = f"{_shown(node.value)} cannot be read as {tag}"
            self.problem(node, message)
            self._unreadable.add(id(node))
            return _UNREADABLE
        finally:
            self._constructor.constructed_objects.clear()

    def mapping(
        self, node: yaml.Node, what: str, allowed: Sequence[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node, checking for unknown and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping, not {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{what} keys must be plain names")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                foreign = next((ch for ch in key if not ch.isascii()), None)
                if close and foreign is not None:  # a look-alike: say what differs
                    suggestion = (
                        f" (did you mean '{close[0]}'? it has U+{ord(foreign):04X} "
                        f"{unicodedata.name(foreign, 'a non-ASCII character')})"
                    )
                self.problem(
                    key_node,
                    f"unknown key {_shown(key)} in {what}{suggestion}; "
                    f"allowed: {', '.join(allowed)}",
                )
                continue
            if key in out:
                first = self.where(out[key][0])
                self.problem(
                    key_node, f"duplicate key {_shown(key)} in {what} (first at line {first.line})"
                )
                continue
            out[key] = (key_node, value_node)
        return out

    # --- typed values -----------------------------------------------------------

    def number(self, node: yaml.Node, what: str, *, positive: bool = True) -> float | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(node, f"{what} must be a number of seconds, not {_kind(node)}")
            return None
        if positive and not (0 < value <= 86400):
            self.problem(node, f"{what} must be > 0 and at most 86400, not {_shown(value)}")
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

    def network(self, node: yaml.Node, value: str) -> Network | None:
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

    def host(self, node: yaml.Node, value: str) -> str | None:
        """An IP literal or a valid host name (IDNA names become their A-label form)."""
        if "/" in value:
            self.problem(node, f"{_shown(value)} is not a valid host name or IP address")
            return None
        candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
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
                from .resolve._idna import to_ascii  # IDNA 2008 / UTS 46, as glibc encodes

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

    # --- sections ---------------------------------------------------------------

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
            r = self.integer(keys["retries"][1], f"{what}.retries", 0, 10)
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
            node = keys["max_latency_ms"][1]
            value = self.scalar(node)
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.problem(
                    node,
                    f"{what}.max_latency_ms must be a number of milliseconds, not {_kind(node)}",
                )
            elif not 0 < value <= 600_000:
                self.problem(
                    node, f"{what}.max_latency_ms must be > 0 and at most 600000, not {value}"
                )
            else:
                into.max_latency_ms = float(value)

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
        return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"

    def targets(self, node: yaml.Node, defaults: _Defaults) -> list[TargetSpec]:
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
        )
        self._apply_common(keys, settings, "target")
        host: str | Network | None = None
        if "host" not in keys:
            self.problem(node, "target has no host")
        elif (raw := self.text(keys["host"][1], "host")) is not None:
            host = (
                self.network(keys["host"][1], raw)
                if "/" in raw
                else self.host(keys["host"][1], raw)
            )
        ports: list[int] = []
        many = "ports" in keys
        if "port" in keys and "ports" in keys:
            self.problem(keys["ports"][0], "give either port or ports, not both")
        elif "port" in keys:
            if (r := self.ports(keys["port"][1])) is not None:
                ports.extend(r)
                many = len(r) > 1
        elif "ports" in keys:
            seq = keys["ports"][1]
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                self.problem(seq, "ports must be a non-empty list of ports")
            else:
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
        else:
            self.problem(node, "target has no port (give port: N or ports: [N, M])")
        name: str | None = None
        if "name" in keys:
            name = self.text(keys["name"][1], "name")
        tags: tuple[str, ...] = ()
        if "tags" in keys:
            tags = self.tags(keys["tags"][1])
        # The names this target takes, even if it is invalid otherwise (not when the
        # name itself is invalid: its default would be a guess).
        if isinstance(host, str | None):
            if name is not None:
                self.names.extend(
                    ((f"{name}:{p}" if many else name), source) for p in (ports if many else [0])
                )
            elif host is not None and "name" not in keys:
                self.names.extend((display(host, p), source) for p in ports)
        elif name is not None:
            self.names.append((f"{name}/", source))  # claims every name "name/..."
        if host is not None and not self.family_fits(
            keys.get("family", keys["host"])[1], host, settings.family
        ):
            return []
        if host is None or not ports:
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

    def shorthand(
        self, node: yaml.ScalarNode, defaults: _Defaults, source: SourceLocation
    ) -> list[TargetSpec]:
        """``host:port``, ``[v6]:port``, ``host:8000-8010``, ``198.51.100.0/28:443``."""
        value = self.scalar(node)
        if not isinstance(value, str):
            self.problem(node, f'a target must be "host:port" or a mapping, not {_kind(node)}')
            return []
        text = value.strip()
        ranged = re.fullmatch(r"(.+):(\d{1,5})\s*-\s*(\d{1,5})", text)
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
        )
        spec = TargetSpec(
            template=template, ports=ports, network=network, name=name, per_port_names=many
        )
        if network is not None:
            self.networks.append((spec, source))
        return spec

    def family_fits(self, node: yaml.Node, host: str | Network, family: Family) -> bool:
        """An IP literal must match the family setting; it can never resolve otherwise."""
        literal = _literal_version(host) if isinstance(host, str) else host.version
        if literal and family not in ("any", f"ipv{literal}"):
            self.problem(node, f"{host} is an IPv{literal} address but family is {family}")
            return False
        return True

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

    # --- the file ---------------------------------------------------------------

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


def split_host_port(value: str, default_port: int | None = None) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` (or a bare host when ``default_port`` is given)."""
    value = value.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?", value)
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


_UNREADABLE: Any = type("_Unreadable", (), {"__repr__": lambda self: "<unreadable>"})()


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


def _shown(value: object) -> str:
    """``repr(value)`` for a message, cut short: a 1 MB host name needs no 1 MB message."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[: _SHOWN - 10]}…{text[-8:]} ({size:,} characters)"


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


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem, with its context ("while parsing a flow sequence") and where that began.

    The problem mark alone often points at the end of the file; the context mark says
    where the unfinished construct started.
    """
    problem = (exc.problem or exc.context or "invalid YAML").removeprefix("but ")
    message = f"YAML syntax error: {problem}"
    context, mark = exc.context, exc.context_mark
    if exc.problem and context and mark is not None:
        message += f" ({context}, from line {mark.line + 1} column {mark.column + 1})"
    return message


def _literal_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    names = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "null": "nothing (null)",
    }
    return f"{names.get(tag, tag)} ({_shown(node.value)})" if tag != "null" else names["null"]


def load_inventories(paths: Iterable[str], read: Callable[[str], bytes] | None = None) -> Inventory:
    """Load and merge inventory files; raise :class:`InventoryError` with every problem."""
    reader = read or _read_file
    problems: list[Problem] = []
    specs: list[TargetSpec] = []
    names: list[tuple[str, SourceLocation]] = []
    networks: list[tuple[TargetSpec, SourceLocation]] = []
    resolver: ResolverConfig | None = None
    resolver_from = ""
    scope: list[str] | None = None
    real_paths = list(paths)
    path_list = [printable_path(path) for path in real_paths]
    for real_path, path in zip(real_paths, path_list, strict=True):
        loader = _FileLoader(path)
        try:
            data = reader(real_path)
        except OSError as exc:
            problems.append(
                Problem(SourceLocation(path, 1, 1), f"cannot read: {exc.strerror or exc}")
            )
            continue
        except _TooLarge as exc:
            problems.append(Problem(SourceLocation(path, 1, 1), _too_large(exc.size)))
            continue
        if len(data) > MAX_FILE_BYTES:  # from a caller's reader
            problems.append(Problem(SourceLocation(path, 1, 1), _too_large(len(data))))
            continue
        file_specs, file_resolver = loader.load(data)
        problems.extend(loader.problems)
        specs.extend(file_specs)
        names.extend(loader.names)
        networks.extend(loader.networks)
        if loader.scope is not None:  # any file with a scope guards every target
            scope = (scope or []) + [n for n in loader.scope if n not in (scope or [])]
        if file_resolver is not None:
            if resolver is not None and file_resolver != resolver:
                problems.append(
                    Problem(
                        SourceLocation(path, 1, 1),
                        f"resolver settings differ from those in "
                        f"{resolver_from}; give them in one inventory",
                    )
                )
            resolver, resolver_from = file_resolver, path
    problems.extend(_network_overlaps(networks, names))
    seen: dict[str, SourceLocation] = {}
    for name, source in names:
        first = seen.get(name)
        if first is not None:
            problems.append(
                Problem(source, f"duplicate target name {_shown(name)} (first at {first})")
            )
        else:
            seen[name] = source
    if problems:
        # file by file in the order given, then top to bottom
        order = {path: index for index, path in enumerate(path_list)}
        problems.sort(
            key=lambda p: (
                order.get(p.location.path, len(order)),
                p.location.line,
                p.location.column,
            )
        )
        raise InventoryError(problems)
    return Inventory(
        paths=tuple(path_list),
        targets=TargetList(specs),
        resolver=resolver or ResolverConfig(),
        scope=tuple(scope) if scope is not None else None,
    )


def _network_overlaps(
    networks: Sequence[tuple[TargetSpec, SourceLocation]],
    names: Sequence[tuple[str, SourceLocation]],
) -> list[Problem]:
    """Duplicate names that CIDR expansion would create, found without expanding.

    Unnamed network targets are named ``address:port``: two of them overlapping in
    addresses and ports, or one covering an endpoint listed on its own, would probe
    (and report) the same target twice.

    Both checks sweep sorted address intervals instead of comparing every pair: an
    inventory of a thousand CIDR lines took over a second the pairwise way.
    """
    problems = []
    unnamed = [(spec, source) for spec, source in networks if spec.name is None]
    intervals = []
    for position, (spec, _source) in enumerate(unnamed):
        assert spec.network is not None
        intervals.append(
            (
                spec.network.version,
                int(spec.network.network_address),
                int(spec.network.broadcast_address),
                position,
            )
        )
    intervals.sort()
    pairs: list[tuple[int, int]] = []  # (later, earlier) in inventory order
    open_intervals: list[tuple[int, int, int]] = []  # (version, last address, position)
    for version, first, last, position in intervals:
        open_intervals = [
            item for item in open_intervals if item[0] == version and item[1] >= first
        ]
        for _version, _last, earlier in open_intervals:
            if not set(unnamed[position][0].ports).isdisjoint(unnamed[earlier][0].ports):
                pairs.append((max(position, earlier), min(position, earlier)))
        open_intervals.append((version, last, position))
    for later, first_seen in sorted(pairs):
        (spec, source), (other, other_source) = unnamed[later], unnamed[first_seen]
        problems.append(
            Problem(
                source,
                f"{spec.network} overlaps {other.network} "
                f"(at {other_source}) on the same ports: the same "
                "targets twice",
            )
        )
    endpoints = []  # named single endpoints as (version, address, port, name, source)
    for name, name_source in names:
        parsed = split_host_port(name)
        if parsed is None:
            continue
        try:
            address = ipaddress.ip_address(parsed[0])
        except ValueError:
            continue
        endpoints.append((address.version, int(address), parsed[1], name, name_source))
    endpoints.sort(key=lambda item: (item[0], item[1]))
    keys = [(item[0], item[1]) for item in endpoints]
    for spec, source in unnamed:
        assert spec.network is not None
        version = spec.network.version
        low = bisect.bisect_left(keys, (version, int(spec.network.network_address)))
        high = bisect.bisect_right(keys, (version, int(spec.network.broadcast_address)))
        ports = set(spec.ports)
        for _version, _address, port, name, name_source in endpoints[low:high]:
            if port in ports:
                problems.append(
                    Problem(
                        name_source,
                        f"duplicate target name {_shown(name)} "
                        f"(also in {spec.network} at {source})",
                    )
                )
    return problems


class _TooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def _too_large(size: int | None) -> str:
    what = f"{size / 1024 / 1024:,.1f} MiB" if size is not None else "more than that"
    return (
        f"file too large for an inventory: {what}, at most "
        f"{MAX_FILE_BYTES // 1024 // 1024} MiB (split it, or use CIDR hosts and port "
        "ranges)"
    )


def _read_file(path: str) -> bytes:
    """The file's bytes; :class:`_TooLarge` before reading anything above the limit."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise _TooLarge(size)
        # in pieces: a pipe or /dev/zero has no size to check, and may never end
        chunks: list[bytes] = []
        total = 0
        while chunk := handle.read(size + 1 if not chunks and size else 1 << 20):
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise _TooLarge(None)
            chunks.append(chunk)
    return b"".join(chunks)
