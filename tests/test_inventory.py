"""scanner.inventory against SPEC §2: valid inventories → targets, invalid ones → every problem.

Every invalid row lists the exact problems expected, as (line, column, message fragment),
1-based, pointing at the offending key or value.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from scanner.inventory import InventoryError, Problem, display, load_inventories, split_host_port
from scanner.models import ResolverConfig, SourceLocation, Target

LATER = "is not supported by this version of scanner yet"


def doc(*lines: str) -> str:
    """An inventory from its lines: line N of the file is argument N."""
    return "\n".join(lines) + "\n"


def write(path: Path, body: str | bytes) -> str:
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return str(path)


def T(name: str, host: str, port: int, **kw: object) -> Target:
    return Target(name=name, host=host, port=port, **kw)  # type: ignore[arg-type]


def without_source(targets: tuple[Target, ...]) -> list[Target]:
    return [msgspec.structs.replace(t, source=None) for t in targets]


def problems_of(paths: list[str]) -> tuple[Problem, ...]:
    with pytest.raises(InventoryError) as info:
        load_inventories(paths)
    return info.value.problems


def assert_problems(problems: tuple[Problem, ...], expected: list[tuple[int, int, str]]) -> None:
    """Each expected (line, column, fragment) matches exactly one problem, and nothing else."""
    got = [(p.location.line, p.location.column, p.message) for p in problems]
    remaining = list(got)
    for line, column, fragment in expected:
        match = next(
            (g for g in remaining if g[0] == line and g[1] == column and fragment in g[2]), None
        )
        assert match is not None, f"no problem at {line}:{column} with {fragment!r}; got {got}"
        remaining.remove(match)
    assert not remaining, f"unexpected problems: {remaining}"


# --- valid inventories ----------------------------------------------------------------

VALID = [
    pytest.param(
        doc("version: 1", "targets:", '  - "[fe80::1%lo]:22"'),
        [T("[fe80::1%lo]:22", "fe80::1%lo", 22)],
        id="link-local-with-its-zone",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - 192.0.2.10:22"),
        [T("192.0.2.10:22", "192.0.2.10", 22)],
        id="shorthand-ipv4",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - db.internal.example:5432"),
        [T("db.internal.example:5432", "db.internal.example", 5432)],
        id="shorthand-name",
    ),
    pytest.param(
        doc("version: 1", "targets:", '  - "[2001:db8::10]:22"'),
        [T("[2001:db8::10]:22", "2001:db8::10", 22)],
        id="shorthand-ipv6",
    ),
    pytest.param(
        doc("version: 1", "targets:", '  - "[2001:DB8:0:0::0010]:22"'),
        [T("[2001:db8::10]:22", "2001:db8::10", 22)],
        id="shorthand-ipv6-normalised",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - ' a.example:1 '", "  - a.example:65535"),
        [T("a.example:1", "a.example", 1), T("a.example:65535", "a.example", 65535)],
        id="shorthand-port-bounds",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - name: api",
            "    host: api.internal.example",
            "    port: 443",
        ),
        [T("api", "api.internal.example", 443)],
        id="mapping-named",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - host: api.internal.example", "    port: 443"),
        [T("api.internal.example:443", "api.internal.example", 443)],
        id="mapping-default-name",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - {host: '2001:db8::1', port: 443}"),
        [T("[2001:db8::1]:443", "2001:db8::1", 443)],
        id="mapping-ipv6-default-name",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - {host: '[2001:db8::1]', port: 443}"),
        [T("[2001:db8::1]:443", "2001:db8::1", 443)],
        id="mapping-bracketed-ipv6",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - host: web.example", "    ports: [80, 443]"),
        [T("web.example:80", "web.example", 80), T("web.example:443", "web.example", 443)],
        id="ports-without-name",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - name: web",
            "    host: web.example",
            "    ports: [80, 443]",
        ),
        [T("web:80", "web.example", 80), T("web:443", "web.example", 443)],
        id="ports-with-name-suffixed",
    ),
    pytest.param(
        doc("version: 1", "targets:", "  - {name: web, host: web.example, ports: [443]}"),
        [T("web:443", "web.example", 443)],
        id="one-item-ports-still-suffixed",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults:",
            "  timeout: 1.5",
            "  retries: 0",
            "  expect: closed",
            "  family: ipv4",
            "targets:",
            "  - a.example:22",
            "  - {host: b.example, port: 23}",
        ),
        [
            T(
                "a.example:22",
                "a.example",
                22,
                timeout=1.5,
                retries=0,
                expect="closed",
                family="ipv4",
            ),
            T(
                "b.example:23",
                "b.example",
                23,
                timeout=1.5,
                retries=0,
                expect="closed",
                family="ipv4",
            ),
        ],
        id="defaults-apply-to-all",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults: {timeout: 1.5, retries: 0, expect: closed}",
            "targets:",
            "  - name: x",
            "    host: x.example",
            "    port: 1",
            "    timeout: 5",
            "    retries: 3",
            "    expect: open",
            "    family: ipv6",
            "  - y.example:2",
        ),
        [
            T("x", "x.example", 1, timeout=5.0, retries=3, expect="open", family="ipv6"),
            T("y.example:2", "y.example", 2, timeout=1.5, retries=0, expect="closed"),
        ],
        id="per-target-overrides",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - {host: a.example, port: 1, tags: [prod, edge]}",
            "  - {host: b.example, ports: [1, 2], tags: []}",
        ),
        [
            T("a.example:1", "a.example", 1, tags=("prod", "edge")),
            T("b.example:1", "b.example", 1),
            T("b.example:2", "b.example", 2),
        ],
        id="tags",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults: {max_latency_ms: 250}",
            "targets:",
            "  - a.example:1",
            "  - {host: b.example, port: 2, max_latency_ms: 12.5}",
        ),
        [
            T("a.example:1", "a.example", 1, max_latency_ms=250.0),
            T("b.example:2", "b.example", 2, max_latency_ms=12.5),
        ],
        id="latency-budget",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - bücher.example:443",
            "  - {host: ПРИМЕР.испытание, port: 80}",
        ),
        [
            T("xn--bcher-kva.example:443", "xn--bcher-kva.example", 443),
            T("xn--e1afmkfd.xn--80akhbyknj4f:80", "xn--e1afmkfd.xn--80akhbyknj4f", 80),
        ],
        id="idna-to-a-label",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - API.Example.COM:443",
            "  - a.example.:80",
            "  - _sip._tcp.example:5060",
            "  - localhost:8080",
        ),
        [
            T("api.example.com:443", "api.example.com", 443),
            T("a.example.:80", "a.example.", 80),  # absolute: the dot is kept
            T("_sip._tcp.example:5060", "_sip._tcp.example", 5060),
            T("localhost:8080", "localhost", 8080),
        ],
        id="names-lowercased-trailing-dot-kept",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - {host: '2001:0DB8:0000::0001', port: 22}",
            "  - {host: 192.0.2.1, port: 22, family: ipv4}",
            "  - {host: '::ffff:192.0.2.1', port: 22}",
        ),
        [
            T("[2001:db8::1]:22", "2001:db8::1", 22),
            T("192.0.2.1:22", "192.0.2.1", 22, family="ipv4"),
            T("[::ffff:c000:201]:22", "::ffff:c000:201", 22),
        ],
        id="ip-literals-normalised",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults: {family: ipv6}",
            "targets:",
            '  - "[::1]:22"',
            "  - {host: '::1', port: 23, family: ipv6}",
        ),
        [T("[::1]:22", "::1", 22, family="ipv6"), T("[::1]:23", "::1", 23, family="ipv6")],
        id="ipv6-literal-family-ipv6",
    ),
    pytest.param(
        "\ufeff" + doc("version: 1", "targets:", "  - a.example:80"),
        [T("a.example:80", "a.example", 80)],
        id="utf8-bom",
    ),
    pytest.param(
        doc(
            "# inventory",
            "version: 1  # schema",
            "targets:  # all of them",
            "  - &first a.example:80  # an anchor alone is harmless",
        ),
        [T("a.example:80", "a.example", 80)],
        id="comments-and-lone-anchor",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults:",
            "  timeout: 2",
            "targets:",
            "  - {host: a.example, port: 1, timeout: 0.25}",
        ),
        [T("a.example:1", "a.example", 1, timeout=0.25)],
        id="integer-timeout-default",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            "  - name: a.example:80",
            "    host: b.example",
            "    port: 80",
        ),
        [T("a.example:80", "b.example", 80)],
        id="name-looking-like-host-port",
    ),
]


@pytest.mark.parametrize(("body", "expected"), VALID)
def test_valid_inventory(tmp_path: Path, body: str, expected: list[Target]) -> None:
    path = write(tmp_path / "inv.yaml", body)
    inventory = load_inventories([path])
    assert without_source(inventory.targets) == expected
    assert inventory.paths == (path,)
    assert inventory.resolver == ResolverConfig()
    for target in inventory.targets:
        assert target.source is not None and target.source.path == path


@pytest.mark.parametrize(
    ("body", "locations"),
    [
        pytest.param(
            doc(
                "version: 1",
                "targets:",
                "  - a.example:1",
                "  - name: b",
                "    host: b.example",
                "    ports: [1, 2]",
                "  - {host: c.example, port: 3}",
            ),
            {"a.example:1": (3, 5), "b:1": (4, 5), "b:2": (4, 5), "c.example:3": (7, 5)},
            id="block-and-flow",
        ),
        pytest.param(
            doc("version: 1", "targets:", "- x.example:1", "-   y.example:2"),
            {"x.example:1": (3, 3), "y.example:2": (4, 5)},
            id="unindented-list",
        ),
    ],
)
def test_target_source_points_at_the_target(
    tmp_path: Path, body: str, locations: dict[str, tuple[int, int]]
) -> None:
    path = write(tmp_path / "inv.yaml", body)
    targets = load_inventories([path]).targets
    assert {t.name: (t.source.line, t.source.column) for t in targets if t.source} == locations


@pytest.mark.parametrize(
    ("resolver", "expected"),
    [
        pytest.param(
            '{nameservers: ["192.0.2.53"]}',
            ResolverConfig(("192.0.2.53:53",)),
            id="ipv4-default-port",
        ),
        pytest.param(
            '{nameservers: ["127.0.0.1:5353"]}',
            ResolverConfig(("127.0.0.1:5353",)),
            id="ipv4-with-port",
        ),
        pytest.param(
            '{nameservers: ["2001:db8::53"]}',
            ResolverConfig(("[2001:db8::53]:53",)),
            id="bare-ipv6-default-port",
        ),
        pytest.param(
            '{nameservers: ["[2001:DB8:0::53]:5353"]}',
            ResolverConfig(("[2001:db8::53]:5353",)),
            id="bracketed-ipv6-with-port",
        ),
        pytest.param(
            '{nameservers: ["[::1]"]}',
            ResolverConfig(("[::1]:53",)),
            id="bracketed-ipv6-default-port",
        ),
        pytest.param(
            '{nameservers: ["192.0.2.53", "127.0.0.1:5353", "::1"], timeout: 0.5, tries: 3}',
            ResolverConfig(("192.0.2.53:53", "127.0.0.1:5353", "[::1]:53"), 0.5, 3),
            id="several-and-settings",
        ),
        pytest.param("{timeout: 1}", ResolverConfig((), 1.0, None), id="system-servers"),
        pytest.param("{}", ResolverConfig(), id="empty-mapping"),
    ],
)
def test_resolver_settings(tmp_path: Path, resolver: str, expected: ResolverConfig) -> None:
    path = write(
        tmp_path / "inv.yaml",
        doc("version: 1", f"resolver: {resolver}", "targets:", "  - a.example:1"),
    )
    assert load_inventories([path]).resolver == expected


def test_multiple_files_are_merged_in_order(tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.yaml",
        doc(
            "version: 1",
            "defaults: {timeout: 1}",
            "targets:",
            "  - a.example:1",
            "  - {name: b, host: b.example, port: 2}",
        ),
    )
    second = write(
        tmp_path / "b.yaml",
        doc(
            "version: 1",
            "resolver:",
            "  nameservers: [127.0.0.1:5353]",
            "targets:",
            "  - c.example:3",
        ),
    )
    inventory = load_inventories([first, second])
    assert inventory.paths == (first, second)
    # defaults belong to their own file
    assert without_source(inventory.targets) == [
        T("a.example:1", "a.example", 1, timeout=1.0),
        T("b", "b.example", 2, timeout=1.0),
        T("c.example:3", "c.example", 3),
    ]
    assert [t.source.path for t in inventory.targets if t.source] == [first, first, second]
    assert inventory.resolver == ResolverConfig(("127.0.0.1:5353",))


def test_same_resolver_in_two_files_is_fine_different_is_not(tmp_path: Path) -> None:
    body = doc("version: 1", "resolver: {nameservers: [192.0.2.53]}", "targets:", "  - {t}:1")
    a = write(tmp_path / "a.yaml", body.replace("{t}", "a.example"))
    b = write(tmp_path / "b.yaml", body.replace("{t}", "b.example"))
    assert load_inventories([a, b]).resolver == ResolverConfig(("192.0.2.53:53",))
    c = write(tmp_path / "c.yaml", body.replace("{t}", "c.example").replace("53]", "54]"))
    problems = problems_of([a, c])
    assert [(p.location.path, p.message[:27]) for p in problems] == [
        (c, "resolver settings differ fr")
    ]


# --- invalid inventories --------------------------------------------------------------

TARGET = ["version: 1", "targets:"]  # lines 1-2 of most rows below

INVALID = [
    # addresses a probe must not (or cannot) be sent to
    pytest.param(
        doc("version: 1", "targets:", "  - 0.0.0.0:8443", '  - "[::]:8443"'),
        [
            (
                3,
                5,
                "'0.0.0.0' is the unspecified address: connecting to it reaches this "
                "machine; name the host to check",
            ),
            (
                4,
                5,
                "'::' is the unspecified address: connecting to it reaches this "
                "machine; name the host to check",
            ),
        ],
        id="unspecified-literals",
    ),
    pytest.param(
        doc(
            "version: 1",
            "targets:",
            '  - "[fe80::1]:22"',
            '  - "[fe80::1%nosuchif0]:22"',
            "  - 224.0.0.1:80",
        ),
        [
            (
                3,
                5,
                "'fe80::1' is link-local: say through which interface it is reached, "
                "e.g. [fe80::1%eth0]",
            ),
            (4, 5, "'fe80::1%nosuchif0': this machine has no interface 'nosuchif0'"),
            (5, 5, "'224.0.0.1' is a multicast or broadcast address, not a host"),
        ],
        id="link-local-without-zone-and-multicast",
    ),
    pytest.param(
        doc(
            "version: 1",
            "resolver:",
            '  nameservers: ["0.0.0.0", "224.0.0.251", "255.255.255.255:53"]',
            "targets:",
            "  - a.example:80",
        ),
        [
            (3, 17, "nameserver '0.0.0.0' is the unspecified address: no DNS server there"),
            (3, 28, "nameserver '224.0.0.251' is a multicast address: no DNS server there"),
            (
                3,
                43,
                "nameserver '255.255.255.255:53' is the broadcast address: no DNS server there",
            ),
        ],
        id="unusable-nameservers",
    ),
    # unknown keys, with did-you-mean
    pytest.param(
        doc("version: 1", "target:", "  - a.example:80"),
        [
            (2, 1, "unknown key 'target' in the inventory (did you mean 'targets'?)"),
            (1, 1, "missing 'targets:' list"),
        ],
        id="unknown-top-key",
    ),
    pytest.param(
        doc("version: 1", "defaults:", "  timout: 1", "targets:", "  - a.example:80"),
        [(3, 3, "unknown key 'timout' in defaults (did you mean 'timeout'?)")],
        id="unknown-defaults-key",
    ),
    pytest.param(
        doc(*TARGET, "  - host: a.example", "    prot: 80"),
        [
            (4, 5, "unknown key 'prot' in target (did you mean 'port'?)"),
            (3, 5, "target has no port"),
        ],
        id="unknown-target-key",
    ),
    pytest.param(
        doc(
            "version: 1", "resolver:", "  nameserver: [192.0.2.53]", "targets:", "  - a.example:80"
        ),
        [(3, 3, "unknown key 'nameserver' in resolver (did you mean 'nameservers'?)")],
        id="unknown-resolver-key",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, colour: red}"),
        [(3, 32, "unknown key 'colour' in target; allowed: name, host, port")],
        id="unknown-key-no-suggestion",
    ),
    pytest.param(
        doc(*TARGET, '  - {host: a.example, port: 1, "\\e[31m": x}'),
        [(3, 32, "unknown key '\\x1b[31m'")],
        id="unknown-key-escaped",
    ),
    # wrong types
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, timeout: fast}"),
        [(3, 41, "target.timeout must be a number of seconds, not a string ('fast')")],
        id="timeout-string",
    ),
    pytest.param(
        doc("version: 1", "defaults: {timeout: 0}", *TARGET[1:], "  - a.example:1"),
        [(2, 21, "defaults.timeout must be > 0 and at most 86400, not 0")],
        id="timeout-zero",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, timeout: true}"),
        [(3, 41, "target.timeout must be a number of seconds, not a boolean")],
        id="timeout-bool",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, retries: 1.5}"),
        [(3, 41, "target.retries must be an integer, not a number ('1.5')")],
        id="retries-float",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, retries: 11}"),
        [(3, 41, "target.retries must be between 0 and 10, not 11")],
        id="retries-too-many",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, expect: maybe}"),
        [(3, 40, "target.expect must be one of open | closed, not 'maybe'")],
        id="expect-unknown",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, expect: ~}"),
        [(3, 40, "target.expect must be one of open | closed, not nothing (null)")],
        id="expect-null",
    ),
    pytest.param(
        doc("version: 1", "defaults:", "  family: ipv5", *TARGET[1:], "  - a.example:1"),
        [(3, 11, "defaults.family must be one of any | ipv4 | ipv6, not 'ipv5'")],
        id="family-unknown",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, tags: prod}"),
        [(3, 38, "tags must be a list of strings")],
        id="tags-not-list",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, tags: [ok, 1, 'a,b', '']}"),
        [
            (3, 43, "a tag must be a non-empty string, not an integer ('1')"),
            (3, 46, "a tag must not contain ','"),
            (3, 53, "a tag must be a non-empty string"),
        ],
        id="tags-bad-items",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: 42, port: 1}"),
        [(3, 12, "host must be a non-empty string, not an integer ('42')")],
        id="host-integer",
    ),
    pytest.param(
        doc(*TARGET, "  - {name: '', host: a.example, port: 1}"),
        [(3, 12, "name must be a non-empty string")],
        id="name-empty",
    ),
    pytest.param(
        doc(*TARGET, '  - {name: "a\\x07b", host: a.example, port: 1}'),
        [(3, 12, "name must not contain control characters")],
        id="name-control-character",
    ),
    pytest.param(
        doc("version: 1", "targets: {a: 1}"),
        [(2, 10, "targets must be a list, not a mapping")],
        id="targets-mapping",
    ),
    pytest.param(
        doc("version: 1", "targets:"),
        [(2, 9, "targets must be a list, not nothing (null)")],
        id="targets-null",
    ),
    pytest.param(
        doc("version: 1", "targets: []"), [(2, 10, "targets is empty")], id="targets-empty"
    ),
    pytest.param(
        doc("version: 1", "defaults: [1]", *TARGET[1:], "  - a.example:1"),
        [(2, 11, "defaults must be a mapping, not a list")],
        id="defaults-list",
    ),
    pytest.param(
        doc(*TARGET, "  - 80", "  - [a.example, 80]", "  - {}", "  -"),
        [
            (3, 5, "a target must be \"host:port\" or a mapping, not an integer ('80')"),
            (4, 5, "target must be a mapping, not a list"),
            (5, 5, "a target needs at least host and port"),
            (6, 4, 'a target must be "host:port" or a mapping, not nothing (null)'),
        ],
        id="target-wrong-shapes",
    ),
    pytest.param(
        doc(*TARGET, "  - {port: 1}"), [(3, 5, "target has no host")], id="target-no-host"
    ),
    # ports
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 0}"),
        [(3, 29, "port must be between 1 and 65535, not 0")],
        id="port-0",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 65536}"),
        [(3, 29, "port must be between 1 and 65535, not 65536")],
        id="port-65536",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: -1}"),
        [(3, 29, "port must be between 1 and 65535, not -1")],
        id="port-negative",
    ),
    pytest.param(
        doc(*TARGET, '  - {host: a.example, port: "80"}'),
        [(3, 29, "port must be an integer, not a string ('80')")],
        id="port-string",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: true}"),
        [(3, 29, "port must be an integer, not a boolean ('true')")],
        id="port-true",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 80.0}"),
        [(3, 29, "port must be an integer, not a number ('80.0')")],
        id="port-float",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - a.example:0",
            "  - a.example:65536",
            "  - a.example:http",
            "  - 'a.example:'",
            "  - :80",
        ),
        [
            (3, 5, "port must be between 1 and 65535, not 0"),
            (4, 5, "port must be between 1 and 65535, not 65536"),
            (5, 5, "'a.example:http' is not host:port"),
            (6, 5, "'a.example:' is not host:port"),
            (7, 5, "':80' is not host:port"),
        ],
        id="shorthand-bad-ports",
    ),
    pytest.param(
        doc(*TARGET, "  - a.example:", "  - {a.example: 80}"),
        [
            (3, 5, "unknown key 'a.example' in target"),
            (3, 5, "a target needs at least host and port"),
            (4, 6, "unknown key 'a.example' in target"),
            (4, 5, "a target needs at least host and port"),
        ],
        id="yaml-reads-a-mapping",
    ),
    pytest.param(
        doc(*TARGET, "  - 2001:db8::1:22", "  - a.example"),
        [
            (3, 5, 'is not host:port (write IPv6 as "[2001:db8::1]:22")'),
            (4, 5, "'a.example' is not host:port"),
        ],
        id="shorthand-no-port",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, ports: [80, 0, x, true]}"),
        [
            (3, 35, "each port must be between 1 and 65535, not 0"),
            (3, 38, "each port must be an integer, not a string ('x')"),
            (3, 41, "each port must be an integer, not a boolean"),
        ],
        id="ports-bad-items",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, ports: []}"),
        [(3, 30, "ports must be a non-empty list of ports")],
        id="ports-empty",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, ports: 80}"),
        [(3, 30, "ports must be a non-empty list of ports")],
        id="ports-scalar",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, ports: [2]}"),
        [(3, 32, "give either port or ports, not both")],
        id="port-and-ports",
    ),
    pytest.param(
        doc(*TARGET, "  - {name: w, host: a.example, ports: [80, 443, 80]}"),
        [(3, 49, "port 80 is listed twice")],
        id="ports-duplicate",
    ),
    # ranges and networks: what they may not be
    pytest.param(
        doc(*TARGET, '  - {host: a.example, port: "8010-8000"}'),
        [(3, 29, "port range '8010-8000' must go upwards within 1-65535")],
        id="port-range-downwards",
    ),
    pytest.param(
        doc(*TARGET, '  - {host: a.example, ports: [80, "0-10", "x-y"]}'),
        [
            (3, 35, "port range '0-10' must go upwards"),
            (3, 43, "each port must be an integer or a range like"),
        ],
        id="ports-range-bad-items",
    ),
    pytest.param(
        doc(*TARGET, '  - {host: a.example, ports: ["79-81", 80]}'),
        [(3, 40, "port 80 is listed twice")],
        id="ports-range-overlap",
    ),
    pytest.param(
        doc(*TARGET, "  - a.example:9000-8000"),
        [(3, 5, "port range in 'a.example:9000-8000' must go upwards")],
        id="shorthand-port-range-downwards",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: 198.51.100.7/28, port: 80}"),
        [(3, 12, "has host bits set (did you mean 198.51.100.0/28?)")],
        id="cidr-host-bits",
    ),
    pytest.param(
        doc(*TARGET, '  - {host: "2001:db8::/64", port: 80}'),
        [(3, 12, "a CIDR host expands to at most 65,536 (/112)")],
        id="cidr-too-big-v6",
    ),
    pytest.param(
        doc(*TARGET, "  - 10.0.0.0/8:80"),
        [(3, 5, "a CIDR host expands to at most 65,536 (/16)")],
        id="cidr-too-big",
    ),
    pytest.param(
        doc(*TARGET, "  - 198.51.100.0/28:80", "  - 198.51.100.8/29:70-90"),
        [(4, 5, "198.51.100.8/29 overlaps 198.51.100.0/28")],
        id="cidr-overlap",
    ),
    pytest.param(
        doc(*TARGET, "  - 198.51.100.0/28:80", "  - 198.51.100.3:80"),
        [(4, 5, "duplicate target name '198.51.100.3:80' (also in 198.51.100.0/28")],
        id="cidr-covers-listed-endpoint",
    ),
    # the overlap sweep: nested, same first address, several at once, v4 apart from v6
    pytest.param(
        doc(
            *TARGET,
            "  - 198.51.100.0/24:80",
            "  - 198.51.100.64/26:80",
            "  - 198.51.100.0/28:80",
            "  - 198.51.100.128/25:81",
        ),
        [
            (4, 5, "198.51.100.64/26 overlaps 198.51.100.0/24 (at "),
            (5, 5, "198.51.100.0/28 overlaps 198.51.100.0/24 (at "),
        ],
        id="cidr-overlap-nested-and-same-start",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - 198.51.100.0/29:80",
            "  - 198.51.100.8/29:80",
            '  - {host: "2001:db8::/125", port: 80}',
            '  - {host: "2001:db8::/126", port: 80}',
        ),
        [(6, 5, "2001:db8::/126 overlaps 2001:db8::/125")],
        id="cidr-overlap-adjacent-is-fine-v6-apart",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - 198.51.100.0/28:80-90",
            "  - 198.51.100.4:79",
            "  - 198.51.100.15:90",
            "  - 198.51.100.16:85",
        ),
        [(5, 5, "duplicate target name '198.51.100.15:90' (also in 198.51.100.0/28")],
        id="cidr-covers-listed-endpoint-edges",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - {name: pool, host: 198.51.100.0/28, port: 80}",
            "  - {name: pool, host: 198.51.101.0/28, port: 80}",
        ),
        [(4, 5, "duplicate target name 'pool/'")],
        id="cidr-same-name",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: 198.51.100.0/28, port: 80, family: ipv6}"),
        [(3, 47, "198.51.100.0/28 is an IPv4 address but family is ipv6")],
        id="cidr-family",
    ),
    pytest.param(
        doc(
            "version: 1",
            "scope:",
            "  allow: [192.0.2.7/24, nonsense, 7]",
            *TARGET[1:],
            "  - a.example:1",
        ),
        [
            (3, 11, "has host bits set (did you mean 192.0.2.0/24?)"),
            (3, 25, "'nonsense' is not an address or CIDR network"),
            (3, 35, "a scope network must be a string"),
        ],
        id="scope-bad-networks",
    ),
    pytest.param(
        doc("version: 1", "scope:", "  allo: [192.0.2.0/24]", *TARGET[1:], "  - a.example:1"),
        [(3, 3, "scope needs 'allow"), (3, 3, "unknown key 'allo' in scope")],
        id="scope-typo",
    ),
    pytest.param(
        doc("version: 1", "scope: {allow: []}", *TARGET[1:], "  - a.example:1"),
        [(2, 16, "scope.allow must be a non-empty list")],
        id="scope-empty",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, max_latency_ms: 0}"),
        [(3, 48, "target.max_latency_ms must be > 0")],
        id="max-latency-zero",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, max_latency_ms: fast}"),
        [(3, 48, "target.max_latency_ms must be a number of milliseconds")],
        id="max-latency-text",
    ),
    pytest.param(
        doc("version: 1", "defaults:", "  max_latency_ms: 700000", *TARGET[1:], "  - a.example:1"),
        [(3, 19, "defaults.max_latency_ms must be > 0 and at most 600000")],
        id="max-latency-defaults-too-big",
    ),
    # duplicates
    pytest.param(
        doc(*TARGET, "  - a.example:80", "  - a.example:80"),
        [(4, 5, "duplicate target name 'a.example:80' (first at ")],
        id="duplicate-shorthand",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - 127.0.0.1:22",
            "  - name: 127.0.0.1:22",
            "    host: 127.0.0.1",
            "    port: 23",
        ),
        [(4, 5, "duplicate target name '127.0.0.1:22'")],
        id="duplicate-explicit-vs-default-name",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - {name: web, host: a.example, ports: [80, 443]}",
            "  - {name: 'web:443', host: b.example, port: 443}",
        ),
        [(4, 5, "duplicate target name 'web:443'")],
        id="duplicate-after-expansion",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - {name: api, host: a.example, port: 0}",
            "  - {name: api, host: b.example, port: 443}",
        ),
        [(3, 40, "port must be between 1 and 65535, not 0"), (4, 5, "duplicate target name 'api'")],
        id="duplicate-of-invalid-port-target",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - {name: api, host: -bad-, port: 1}",
            "  - {name: api, host: b.example, port: 1}",
        ),
        [(3, 23, "'-bad-' is not a valid host name"), (4, 5, "duplicate target name 'api'")],
        id="duplicate-of-invalid-host-target",
    ),
    pytest.param(
        doc(*TARGET, "  - {name: 7, host: a.example, port: 1}", "  - a.example:1"),
        [(3, 12, "name must be a non-empty string")],
        id="invalid-name-claims-nothing",
    ),
    pytest.param(
        doc(*TARGET, "  - host: a.example", "    port: 1", "    host: b.example"),
        [(5, 5, "duplicate key 'host' in target (first at line 3)")],
        id="duplicate-key-target",
    ),
    pytest.param(
        doc("version: 1", "version: 1", *TARGET[1:], "  - a.example:1"),
        [(2, 1, "duplicate key 'version' in the inventory (first at line 1)")],
        id="duplicate-key-top",
    ),
    # YAML aliases
    pytest.param(
        doc(*TARGET, "  - &a a.example:80", "  - *a"),
        [(4, 5, "YAML alias *a is not allowed")],
        id="alias",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults: &d {timeout: 1}",
            "resolver: *d",
            "targets:",
            "  - {host: a.example, port: 1, timeout: *t}",
        ),
        [(3, 11, "YAML alias *d is not allowed"), (5, 41, "YAML alias *t is not allowed")],
        id="aliases-all-reported",
    ),
    pytest.param(
        doc("version: 1", "x: &x {y: 1}", "z:", "  <<: *x", "targets: [a.example:1]"),
        [(4, 7, "YAML alias *x is not allowed")],
        id="merge-key-alias",
    ),
    # YAML syntax
    pytest.param(
        doc(*TARGET, "  - [a.example:80", "  - b.example:80"),
        # the problem's wording differs between libyaml and pure PyYAML
        [(5, 1, "(while parsing a flow sequence, from line 3 column 5)")],
        id="unclosed-flow-sequence",
    ),
    pytest.param(
        doc(*TARGET, "  - a.example:80", " - b.example:80"),
        [(4, 2, "YAML syntax error")],
        id="bad-indentation",
    ),
    pytest.param(
        doc(*TARGET, "\t- a.example:80"), [(3, 1, "YAML syntax error")], id="tab-indentation"
    ),
    pytest.param(
        doc(*TARGET, "  - a.example:80", "---", "version: 1"),
        [
            (
                4,
                1,
                "YAML syntax error: found another document (expected a single document in "
                "the stream, from line 1 column 1)",
            )
        ],
        id="two-documents",
    ),
    pytest.param(
        doc(*TARGET, '  - "a.example:80'), [(4, 1, "YAML syntax error")], id="unclosed-quote"
    ),
    # empty, missing, version
    pytest.param("", [(1, 1, "the inventory is empty")], id="empty-file"),
    pytest.param(doc("# nothing here", ""), [(1, 1, "the inventory is empty")], id="only-comments"),
    pytest.param(
        doc("{}"),
        [(1, 1, "missing 'version: 1' at the top"), (1, 1, "missing 'targets:' list")],
        id="empty-mapping",
    ),
    pytest.param(doc("version: 1"), [(1, 1, "missing 'targets:' list")], id="missing-targets"),
    pytest.param(
        doc("targets:", "  - a.example:1"),
        [(1, 1, "missing 'version: 1' at the top")],
        id="missing-version",
    ),
    pytest.param(
        doc("version: 2", "targets: [a.example:1]"),
        [(1, 10, "unsupported inventory version 2; this scanner reads version 1")],
        id="version-2",
    ),
    pytest.param(
        doc('version: "1"', "targets: [a.example:1]"),
        [(1, 10, "unsupported inventory version '1'")],
        id="version-string",
    ),
    pytest.param(
        doc("version: true", "targets: [a.example:1]"),
        [(1, 10, "unsupported inventory version True")],
        id="version-bool",
    ),
    pytest.param(
        doc("version: 1.0", "targets: [a.example:1]"),
        [(1, 10, "unsupported inventory version 1.0")],
        id="version-float",
    ),
    pytest.param(
        doc("version:", "targets: [a.example:1]"),
        [(1, 9, "unsupported inventory version None")],
        id="version-null",
    ),
    # encoding
    pytest.param(
        b"version: 1\ntargets:\n  - caf\xe9.example:80\n",
        [(3, 8, "not valid UTF-8")],
        id="invalid-utf8",
    ),
    pytest.param(b"\xff\xfeversion: 1\n", [(1, 1, "not valid UTF-8")], id="utf16-bom"),
    pytest.param(
        b"version: 1\ntargets:\n  - a.example:80\x00\n",
        [(3, 17, "NUL byte in inventory")],
        id="nul-byte",
    ),
    pytest.param(
        b"version: 1\ntargets:\n  - a.exa\x1bmple:80\n",
        [(3, 10, "control character U+001B is not allowed")],
        id="raw-escape",
    ),
    pytest.param(
        b"version: 1\ntargets:\n  - \xc3\xa9\x7f:80\n",
        [(3, 6, "control character U+007F is not allowed")],
        id="raw-del-after-utf8",
    ),
    # host names
    pytest.param(
        doc(
            *TARGET,
            "  - -bad.example:1",
            "  - bad-.example:1",
            "  - a..example:1",
            "  - 'exa mple:1'",
            "  - a_b!.example:1",
        ),
        [
            (3, 5, "'-bad.example' is not a valid host name or IP address"),
            (4, 5, "'bad-.example' is not a valid host name"),
            (5, 5, "'a..example' is not a valid host name"),
            (6, 5, "'exa mple' is not a valid host name"),
            (7, 5, "'a_b!.example' is not a valid host name"),
        ],
        id="bad-host-names",
    ),
    pytest.param(
        doc(*TARGET, f"  - {'a' * 64}.example:1", f"  - {'.'.join(['abcdefghi'] * 26)}:1"),
        [(3, 5, "is not a valid host name"), (4, 5, "is not a valid host name")],
        id="host-too-long",
    ),
    pytest.param(
        doc(
            *TARGET,
            "  - 999.1.1.1:1",
            "  - 010.0.0.1:1",
            "  - 1.2.3.4.5:1",
            "  - {host: 10.1, port: 1}",
        ),
        [
            (3, 5, "'999.1.1.1' is not a valid IP address"),
            (4, 5, "'010.0.0.1' is not a valid IP address"),
            (5, 5, "'1.2.3.4.5' is not a valid IP address"),
            (6, 12, "host must be a non-empty string, not a number"),
        ],
        id="malformed-ipv4",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: '[a.example]', port: 1}", "  - '[2001:db8::zz]:1'"),
        [
            (3, 12, "'[a.example]' is not an IPv6 address"),
            (4, 5, "'[2001:db8::zz]' is not an IPv6 address"),
        ],
        id="bracketed-non-ipv6",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example/x, port: 1}"),
        [(3, 12, "'a.example/x' is not a valid host name, IP address or CIDR")],
        id="slash-not-cidr",
    ),
    pytest.param(
        doc(*TARGET, f"  - {'ü' * 70}.example:1"),
        [(3, 5, "is not a valid international host name")],
        id="idna-label-too-long",
    ),
    # family vs literal
    pytest.param(
        doc(*TARGET, "  - {host: 192.0.2.1, port: 1, family: ipv6}"),
        [(3, 40, "192.0.2.1 is an IPv4 address but family is ipv6")],
        id="ipv4-literal-family-ipv6",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: '2001:db8::1', port: 1, family: ipv4}"),
        [(3, 44, "2001:db8::1 is an IPv6 address but family is ipv4")],
        id="ipv6-literal-family-ipv4",
    ),
    pytest.param(
        doc(
            "version: 1",
            "defaults: {family: ipv6}",
            *TARGET[1:],
            "  - {host: 192.0.2.1, port: 1}",
            "  - 192.0.2.2:1",
        ),
        [
            (4, 12, "192.0.2.1 is an IPv4 address but family is ipv6"),
            (5, 5, "192.0.2.2 is an IPv4 address but family is ipv6"),
        ],
        id="ipv4-literal-default-family-ipv6",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: 192.0.2.1, port: 0, family: ipv6}"),
        [
            (3, 29, "port must be between"),
            (3, 40, "192.0.2.1 is an IPv4 address but family is ipv6"),
        ],
        id="family-checked-even-with-bad-port",
    ),
    # top level
    pytest.param(
        doc("- a.example:80"),
        [(1, 1, "the inventory must be a mapping, not a list")],
        id="top-level-list",
    ),
    pytest.param(
        doc("hello"),
        [(1, 1, "the inventory must be a mapping, not a string ('hello')")],
        id="top-level-scalar",
    ),
    # YAML tags
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: !!int eighty}"),
        [(3, 29, "'eighty' cannot be read as !!int")],
        id="bad-int-tag",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: 1, expect: !!bool maybe}"),
        [(3, 40, "'maybe' cannot be read as !!bool")],
        id="bad-bool-tag",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: !custom 80}"),
        [(3, 29, "YAML tag '!custom' is not supported")],
        id="custom-tag",
    ),
    pytest.param(
        doc("version: !!python/int 1", "targets: [a.example:1]"),
        [(1, 10, "YAML tag '!!python/int' is not supported")],
        id="python-tag",
    ),
    pytest.param(
        doc(*TARGET, "  - {host: a.example, port: !!str 80}"),
        [(3, 29, "port must be an integer, not a string ('80')")],
        id="str-tag",
    ),
    # resolver
    pytest.param(
        doc("version: 1", 'resolver: {nameservers: "192.0.2.53"}', *TARGET[1:], "  - a.example:1"),
        [(2, 25, "resolver.nameservers must be a non-empty list")],
        id="nameservers-string",
    ),
    pytest.param(
        doc(
            "version: 1",
            "resolver:",
            "  nameservers:",
            "    - dns.example",
            "    - 127.0.0.1:0",
            "    - 53",
            "    - '[::1'",
            "    - 192.0.2.1:99999",
            *TARGET[1:],
            "  - a.example:1",
        ),
        [
            (4, 7, "nameserver 'dns.example' must be an IP address, not a name"),
            (5, 7, "nameserver port must be between 1 and 65535"),
            (6, 7, "a nameserver must be a string, not an integer ('53')"),
            (7, 7, "'[::1' is not an address or address:port"),
            (8, 7, "nameserver port must be between 1 and 65535"),
        ],
        id="nameservers-bad-items",
    ),
    pytest.param(
        doc("version: 1", "resolver: {timeout: 0, tries: 0}", *TARGET[1:], "  - a.example:1"),
        [
            (2, 21, "resolver.timeout must be > 0"),
            (2, 31, "resolver.tries must be between 1 and 10, not 0"),
        ],
        id="resolver-settings",
    ),
    pytest.param(
        doc("version: 1", "resolver: [192.0.2.53]", *TARGET[1:], "  - a.example:1"),
        [(2, 11, "resolver must be a mapping, not a list")],
        id="resolver-list",
    ),
    # everything at once
    pytest.param(
        doc(
            "version: 1",
            "defaults:",
            "  timout: 1",
            *TARGET[1:],
            "  - {host: a.example, port: 0}",
            "  - b.example:80",
            "  - b.example:80",
        ),
        [
            (3, 3, "unknown key 'timout'"),
            (5, 29, "port must be between"),
            (7, 5, "duplicate target name 'b.example:80'"),
        ],
        id="three-problems-at-once",
    ),
]


@pytest.mark.parametrize(("body", "expected"), INVALID)
def test_invalid_inventory(
    tmp_path: Path, body: str | bytes, expected: list[tuple[int, int, str]]
) -> None:
    path = write(tmp_path / "inv.yaml", body)
    problems = problems_of([path])
    assert_problems(problems, expected)
    assert all(p.location.path == path for p in problems)
    # problems come top to bottom, and print as path:line:column: message
    assert [(p.location.line, p.location.column) for p in problems] == sorted(
        (p.location.line, p.location.column) for p in problems
    )
    assert all(
        str(p).startswith(f"{path}:{p.location.line}:{p.location.column}: ") for p in problems
    )
    assert all("\x1b" not in p.message for p in problems)


def test_error_message_lists_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inv.yaml",
        doc("version: 3", "targets:", "  - a.example:0", "  - {host: b.example, port: x}"),
    )
    with pytest.raises(InventoryError) as info:
        load_inventories([path])
    assert len(info.value.problems) == 3
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    assert str(info.value).splitlines()[0].startswith(f"{path}:1:10: unsupported")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.yaml",
        doc(
            "version: 1",
            "targets:",
            "  - x.example:80",
            "  - {name: api, host: a.example, port: 0}",
        ),
    )
    b = write(
        tmp_path / "b.yaml",
        doc(
            "version: 1",
            "targets:",
            "  - y.example:80",
            "  - x.example:80",
            "  - {name: api, host: b.example, port: 1}",
        ),
    )
    problems = problems_of([a, b])
    assert [str(p) for p in problems] == [
        f"{a}:4:40: port must be between 1 and 65535, not 0",
        f"{b}:4:5: duplicate target name 'x.example:80' (first at {a}:3:5)",
        f"{b}:5:5: duplicate target name 'api' (first at {a}:4:5)",
    ]


def test_problems_of_all_files_are_reported(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", doc("version: 1", "targets: [a.example:0]"))
    missing = str(tmp_path / "missing.yaml")
    b = write(tmp_path / "b.yaml", doc("version: 1", "targets: []"))
    problems = problems_of([a, missing, b])
    assert [(p.location.path, p.location.line, p.location.column) for p in problems] == [
        (a, 2, 11),
        (missing, 1, 1),
        (b, 2, 10),
    ]
    assert "cannot read" in problems[1].message


BILLION_LAUGHS = doc(
    "version: 1",
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *[f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)],
    "targets: [*i]",
)


def test_billion_laughs_is_rejected_without_expansion(tmp_path: Path) -> None:
    path = write(tmp_path / "lol.yaml", BILLION_LAUGHS)
    started = time.perf_counter()
    problems = problems_of([path])
    assert time.perf_counter() - started < 1.0
    assert len(problems) == 8 * 9 + 1
    assert all("YAML alias" in p.message and "is not allowed" in p.message for p in problems)
    assert (problems[0].location.line, problems[0].location.column) == (3, 8)
    assert (problems[-1].location.line, problems[-1].location.column) == (11, 11)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yaml", doc("version: 1", "targets: " + "[" * 200 + "]" * 200))
    problems = problems_of([path])
    assert [(p.location.line, p.location.column, p.message) for p in problems] == [
        (2, 10 + 63, "nested more than 64 levels deep")
    ]


def test_very_deep_nesting_does_not_crash_the_interpreter(tmp_path: Path) -> None:
    # libyaml's composer recursed until the interpreter crashed with a segfault
    path = write(
        tmp_path / "deeper.yaml", doc("version: 1", "targets: " + "[" * 200_000 + "]" * 200_000)
    )
    code = (
        "import sys\nfrom scanner.inventory import InventoryError, load_inventories\n"
        "try:\n    load_inventories([sys.argv[1]])\n"
        "except InventoryError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:2:" in proc.stdout
    # our own depth check, or (PyYAML >= 6.0.4) libyaml's, which may fire first
    assert (
        "nested more than 64 levels deep" in proc.stdout
        or "exceeded maximum nesting depth" in proc.stdout
    ), proc.stdout


@pytest.mark.parametrize(
    ("value", "default_port", "expected"),
    [
        pytest.param("a.example:80", None, ("a.example", 80), id="name"),
        pytest.param("[::1]:22", None, ("::1", 22), id="bracketed-v6"),
        pytest.param("[::1]", 53, ("::1", 53), id="bracketed-v6-default"),
        pytest.param("[::1]", None, None, id="bracketed-v6-no-port"),
        pytest.param("::1", 53, ("::1", 53), id="bare-v6-default"),
        pytest.param("::1", None, None, id="bare-v6-no-port"),
        pytest.param("192.0.2.1", 53, ("192.0.2.1", 53), id="bare-v4-default"),
        pytest.param("192.0.2.1", None, None, id="bare-v4-no-port"),
        pytest.param("a:", None, None, id="empty-port"),
        pytest.param(":80", None, None, id="empty-host"),
        pytest.param("a:123456", None, None, id="six-digit-port"),
        pytest.param("a:٨٠", None, None, id="non-ascii-digits"),
        pytest.param("", 53, None, id="empty"),
    ],
)
def test_split_host_port(
    value: str, default_port: int | None, expected: tuple[str, int] | None
) -> None:
    assert split_host_port(value, default_port) == expected


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        pytest.param("a.example", 1, "a.example:1", id="name"),
        pytest.param("192.0.2.1", 2, "192.0.2.1:2", id="v4"),
        pytest.param("2001:db8::1", 3, "[2001:db8::1]:3", id="v6"),
    ],
)
def test_display(host: str, port: int, expected: str) -> None:
    assert display(host, port) == expected


def test_source_location_str() -> None:
    assert str(SourceLocation("inv.yaml", 3, 5)) == "inv.yaml:3:5"


def test_scope_is_merged_across_files(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    two = tmp_path / "two.yaml"
    three = tmp_path / "three.yaml"
    one.write_text(
        'version: 1\nscope: {allow: [192.0.2.0/24, "2001:db8::/32"]}\ntargets: [a.example:1]\n'
    )
    two.write_text("version: 1\nscope: {allow: [198.51.100.1]}\ntargets: [b.example:1]\n")
    three.write_text("version: 1\ntargets: [c.example:1]\n")
    assert load_inventories([str(three)]).scope is None
    merged = load_inventories([str(one), str(two), str(three)])
    assert merged.scope == ("192.0.2.0/24", "2001:db8::/32", "198.51.100.1/32")


@pytest.mark.parametrize(
    ("line", "count", "first", "last"),
    [
        pytest.param(
            "  - 198.51.100.0/30:80",
            4,
            ("198.51.100.0:80", "198.51.100.0", 80),
            ("198.51.100.3:80", "198.51.100.3", 80),
            id="cidr-shorthand",
        ),
        pytest.param(
            "  - a.example:8000-8003",
            4,
            ("a.example:8000", "a.example", 8000),
            ("a.example:8003", "a.example", 8003),
            id="range-shorthand",
        ),
        pytest.param(
            '  - {name: pool, host: 198.51.100.0/31, ports: [80, "8000-8001"]}',
            6,
            ("pool/198.51.100.0:80", "198.51.100.0", 80),
            ("pool/198.51.100.1:8001", "198.51.100.1", 8001),
            id="named-cidr-ports",
        ),
        pytest.param(
            '  - {name: web, host: a.example, port: "80-81"}',
            2,
            ("web:80", "a.example", 80),
            ("web:81", "a.example", 81),
            id="named-range",
        ),
        pytest.param(
            '  - {host: "2001:db8::/126", port: 22}',
            4,
            ("[2001:db8::]:22", "2001:db8::", 22),
            ("[2001:db8::3]:22", "2001:db8::3", 22),
            id="cidr-v6",
        ),
    ],
)
def test_expansion(
    tmp_path: Path, line: str, count: int, first: tuple[str, str, int], last: tuple[str, str, int]
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(doc("version: 1", "targets:", line))
    targets = load_inventories([str(path)]).targets
    assert len(targets) == count
    listed = list(targets)
    assert len(listed) == count and len({t.name for t in listed}) == count
    assert (listed[0].name, listed[0].host, listed[0].port) == first
    assert (listed[-1].name, listed[-1].host, listed[-1].port) == last
    assert targets[count - 1] == listed[-1] and targets[0] == listed[0]


def test_a_million_targets_load_without_expanding(tmp_path: Path) -> None:
    """A /16 on 16 ports is one line and 1,048,576 targets; loading expands none."""
    import tracemalloc

    path = tmp_path / "big.yaml"
    path.write_text(
        doc("version: 1", "targets:", '  - {name: pool, host: 198.18.0.0/16, ports: ["8000-8015"]}')
    )
    tracemalloc.start()
    inventory = load_inventories([str(path)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(inventory.targets) == 1_048_576
    assert peak < 5_000_000
    assert inventory.targets[1_048_575].name == "pool/198.18.255.255:8015"
