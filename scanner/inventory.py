"""YAML inventory → validated :class:`Target` values, or every problem with file:line:column.

Why not a schema library: every message must point at the exact line and column of
the offending key or value, and all problems must be reported at once. PyYAML's node
tree (built by the C loader when present) carries those marks, so we validate the
nodes directly. Aliases are refused before any node is built, which also makes
"billion laughs" inputs harmless.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from .models import Expect, Family, Inventory, ResolverConfig, SourceLocation, Target

try:  # the C loader is several times faster; fall back silently when absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SCHEMA_VERSION = 1
MAX_PORT = 65535
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_TOP_KEYS = ("version", "defaults", "resolver", "targets", "scope")
_DEFAULT_KEYS = ("timeout", "retries", "expect", "family", "max_latency_ms")
_RESOLVER_KEYS = ("nameservers", "timeout", "tries")
_TARGET_KEYS = ("name", "host", "port", "ports", "expect", "timeout", "retries", "family",
                "tags", "max_latency_ms")
_LATER = "is not supported by this version of scanner yet"


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


@dataclass
class _FileLoader:
    path: str
    problems: list[Problem] = field(default_factory=list)

    def where(self, node: yaml.Node | yaml.Mark | None) -> SourceLocation:
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        if mark is None:
            return SourceLocation(self.path, 1, 1)
        return SourceLocation(self.path, mark.line + 1, mark.column + 1)

    def problem(self, node: yaml.Node | yaml.Mark | None, message: str) -> None:
        self.problems.append(Problem(self.where(node), message))

    # --- YAML layer -------------------------------------------------------------

    def parse(self, data: bytes) -> yaml.Node | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problems.append(Problem(SourceLocation(self.path, line, column),
                                         "not valid UTF-8"))
            return None
        if "\x00" in text:
            offset = text.index("\x00")
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            self.problems.append(Problem(SourceLocation(self.path, line, column),
                                         "NUL byte in inventory"))
            return None
        try:
            aliases = [event for event in yaml.parse(text, Loader=_Loader)
                       if isinstance(event, yaml.AliasEvent)]
            if aliases:
                for event in aliases:
                    self.problem(event.start_mark,
                                 f"YAML alias *{event.anchor} is not allowed: write the "
                                 "value out")
                return None
            node = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.problem(mark, f"YAML syntax error: {exc.problem or exc.context}")
            return None
        except yaml.YAMLError as exc:
            self.problem(None, f"YAML error: {exc}")
            return None
        if node is None:
            self.problem(None, "the inventory is empty")
        return node

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # callers treat non-scalars as a type error
        if node.tag.endswith(":timestamp") or node.tag.endswith(":binary"):
            return node.value  # keep as text; no key of ours wants these types
        return yaml.constructor.SafeConstructor().construct_object(node)

    def mapping(self, node: yaml.Node, what: str, allowed: Sequence[str]
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
                self.problem(key_node, f"unknown key '{key}' in {what}{suggestion}; "
                             f"allowed: {', '.join(allowed)}")
                continue
            if key in out:
                first = self.where(out[key][0])
                self.problem(key_node, f"duplicate key '{key}' in {what} (first at line "
                             f"{first.line})")
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
            self.problem(node, f"{what} must be > 0 and at most 86400, not {value}")
            return None
        return float(value)

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(node, f"{what} must be an integer, not {_kind(node)}")
            return None
        if not low <= value <= high:
            self.problem(node, f"{what} must be between {low} and {high}, not {value}")
            return None
        return value

    def choice(self, node: yaml.Node, what: str, choices: Sequence[str]) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or value not in choices:
            shown = value if isinstance(value, str | int | float | bool) else _kind(node)
            self.problem(node, f"{what} must be one of {' | '.join(choices)}, not {shown!r}")
            return None
        return value

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            self.problem(node, f"{what} must be a non-empty string, not {_kind(node)}")
            return None
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            self.problem(node, f"{what} must not contain control characters")
            return None
        return value

    def host(self, node: yaml.Node, value: str) -> str | None:
        """An IP literal or a valid host name (IDNA names become their A-label form)."""
        if "/" in value:
            self.problem(node, f"CIDR hosts ({value!r}) {_LATER}")
            return None
        candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
        if candidate != value:
            self.problem(node, f"{value!r} is not an IPv6 address")
            return None
        name = value.rstrip(".")
        try:
            ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
        except UnicodeError:
            self.problem(node, f"{value!r} is not a valid international host name")
            return None
        if len(ascii_name) > 253 or not all(_LABEL.match(lab) for lab in ascii_name.split(".")):
            self.problem(node, f"{value!r} is not a valid host name or IP address")
            return None
        return ascii_name.lower()

    def port(self, node: yaml.Node, what: str = "port") -> int | None:
        value = self.scalar(node)
        if isinstance(value, str) and re.fullmatch(r"\d+\s*-\s*\d+", value):
            self.problem(node, f"port ranges ({value!r}) {_LATER}")
            return None
        return self.integer(node, what, 1, MAX_PORT)

    # --- sections ---------------------------------------------------------------

    def defaults(self, node: yaml.Node) -> _Defaults:
        result = _Defaults()
        keys = self.mapping(node, "defaults", _DEFAULT_KEYS)
        self._apply_common(keys, result, "defaults")
        return result

    def _apply_common(self, keys: dict[str, tuple[yaml.Node, yaml.Node]], into: Any,
                      what: str) -> None:
        """The settings a target may override from defaults."""
        if "timeout" in keys and (v := self.number(keys["timeout"][1], f"{what}.timeout")):
            into.timeout = v
        if "retries" in keys:
            r = self.integer(keys["retries"][1], f"{what}.retries", 0, 10)
            if r is not None:
                into.retries = r
        if "expect" in keys and (e := self.choice(keys["expect"][1], f"{what}.expect",
                                                  ("open", "closed"))):
            into.expect = cast(Expect, e)
        if "family" in keys and (f := self.choice(keys["family"][1], f"{what}.family",
                                                  ("any", "ipv4", "ipv6"))):
            into.family = cast(Family, f)
        if "max_latency_ms" in keys:
            self.problem(keys["max_latency_ms"][0], f"max_latency_ms {_LATER}")

    def resolver(self, node: yaml.Node) -> ResolverConfig:
        keys = self.mapping(node, "resolver", _RESOLVER_KEYS)
        nameservers: list[str] = []
        if "nameservers" in keys:
            seq = keys["nameservers"][1]
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                self.problem(seq, "resolver.nameservers must be a non-empty list of "
                             "addresses like \"192.0.2.53\" or \"127.0.0.1:5353\"")
            else:
                for item in seq.value:
                    server = self.nameserver(item)
                    if server is not None:
                        nameservers.append(server)
        timeout, tries = 2.0, 2
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
            self.problem(node, f"{value!r} is not an address or address:port")
            return None
        host, port = parsed
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            self.problem(node, f"nameserver {value!r} must be an IP address, not a name")
            return None
        if not 1 <= port <= MAX_PORT:
            self.problem(node, f"nameserver port must be between 1 and {MAX_PORT}")
            return None
        return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"

    def targets(self, node: yaml.Node, defaults: _Defaults) -> list[Target]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"targets must be a list, not {_kind(node)}")
            return []
        if not node.value:
            self.problem(node, "targets is empty: nothing to check")
        out: list[Target] = []
        for item in node.value:
            out.extend(self.target(item, defaults))
        return out

    def target(self, node: yaml.Node, defaults: _Defaults) -> list[Target]:
        source = self.where(node)
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if not isinstance(value, str):
                self.problem(node, f"a target must be \"host:port\" or a mapping, not "
                             f"{_kind(node)}")
                return []
            parsed = split_host_port(value)
            if parsed is None:
                self.problem(node, f"{value!r} is not host:port (write IPv6 as "
                             "\"[2001:db8::1]:22\")")
                return []
            raw_host, port = parsed
            host = self.host(node, raw_host)
            if not 1 <= port <= MAX_PORT:
                self.problem(node, f"port must be between 1 and {MAX_PORT}, not {port}")
                return []
            if host is None:
                return []
            return [Target(name=display(host, port), host=host, port=port,
                           expect=defaults.expect, timeout=defaults.timeout,
                           retries=defaults.retries, family=defaults.family, source=source)]
        keys = self.mapping(node, "target", _TARGET_KEYS)
        if not keys and isinstance(node, yaml.MappingNode):
            self.problem(node, "a target needs at least host and port")
            return []
        if not keys:
            return []
        settings = _Defaults(defaults.timeout, defaults.retries, defaults.expect,
                             defaults.family)
        self._apply_common(keys, settings, "target")
        host: str | None = None
        if "host" not in keys:
            self.problem(node, "target has no host")
        elif (raw := self.text(keys["host"][1], "host")) is not None:
            host = self.host(keys["host"][1], raw)
        ports: list[int] = []
        if "port" in keys and "ports" in keys:
            self.problem(keys["ports"][0], "give either port or ports, not both")
        elif "port" in keys:
            if (p := self.port(keys["port"][1])) is not None:
                ports.append(p)
        elif "ports" in keys:
            seq = keys["ports"][1]
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                self.problem(seq, "ports must be a non-empty list of ports")
            else:
                for item in seq.value:
                    if (p := self.port(item, "each port")) is not None:
                        ports.append(p)
        else:
            self.problem(node, "target has no port (give port: N or ports: [N, M])")
        name: str | None = None
        if "name" in keys:
            name = self.text(keys["name"][1], "name")
        tags: tuple[str, ...] = ()
        if "tags" in keys:
            tags = self.tags(keys["tags"][1])
        if host is None or not ports:
            return []
        literal = _literal_version(host)
        if literal and settings.family != "any" and f"ipv{literal}" != settings.family:
            self.problem(keys.get("family", keys["host"])[1],
                         f"{host} is an IPv{literal} address but family is {settings.family}")
            return []
        many = "ports" in keys
        targets = []
        for port in ports:
            base = name if name is not None else display(host, port)
            target_name = f"{base}:{port}" if many and name is not None else base
            targets.append(Target(name=target_name, host=host, port=port,
                                  expect=settings.expect, timeout=settings.timeout,
                                  retries=settings.retries, family=settings.family,
                                  tags=tags, source=source))
        return targets

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

    def load(self, data: bytes) -> tuple[list[Target], ResolverConfig | None]:
        root = self.parse(data)
        if root is None:
            return [], None
        keys = self.mapping(root, "the inventory", _TOP_KEYS)
        if not keys:
            return [], None
        if "version" not in keys:
            self.problem(root, f"missing 'version: {SCHEMA_VERSION}' at the top")
        else:
            version = self.scalar(keys["version"][1])
            if version != SCHEMA_VERSION or isinstance(version, bool):
                self.problem(keys["version"][1], f"unsupported inventory version {version!r}; "
                             f"this scanner reads version {SCHEMA_VERSION}")
        if "scope" in keys:
            self.problem(keys["scope"][0], f"scope {_LATER}")
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
    if not host or not port_text.isdigit() or len(port_text) > 5:
        return None
    return host, int(port_text)


def display(host: str, port: int) -> str:
    """The conventional ``host:port`` spelling (brackets around IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
    names = {"str": "a string", "int": "an integer", "float": "a number",
             "bool": "a boolean", "null": "nothing (null)"}
    return f"{names.get(tag, tag)} ({node.value!r})" if tag != "null" else names["null"]


def load_inventories(paths: Iterable[str],
                     read: Callable[[str], bytes] | None = None) -> Inventory:
    """Load and merge inventory files; raise :class:`InventoryError` with every problem."""
    reader = read or _read_file
    problems: list[Problem] = []
    targets: list[Target] = []
    resolver: ResolverConfig | None = None
    resolver_from = ""
    path_list = list(paths)
    for path in path_list:
        loader = _FileLoader(path)
        try:
            data = reader(path)
        except OSError as exc:
            problems.append(Problem(SourceLocation(path, 1, 1),
                                    f"cannot read: {exc.strerror or exc}"))
            continue
        file_targets, file_resolver = loader.load(data)
        problems.extend(loader.problems)
        targets.extend(file_targets)
        if file_resolver is not None:
            if resolver is not None and file_resolver != resolver:
                problems.append(Problem(SourceLocation(path, 1, 1),
                                        f"resolver settings differ from those in "
                                        f"{resolver_from}; give them in one inventory"))
            resolver, resolver_from = file_resolver, path
    seen: dict[str, Target] = {}
    for target in targets:
        first = seen.get(target.name)
        if first is not None:
            assert target.source is not None and first.source is not None
            problems.append(Problem(target.source, f"duplicate target name {target.name!r} "
                                    f"(first at {first.source})"))
        else:
            seen[target.name] = target
    if problems:
        raise InventoryError(problems)
    return Inventory(paths=tuple(path_list), targets=tuple(targets),
                     resolver=resolver or ResolverConfig())


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
