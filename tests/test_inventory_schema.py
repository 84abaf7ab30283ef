"""scanner/data/inventory.schema.json against the loader: what one accepts, the other does.

Every inventory the project shows (configs/, the README's and docs' YAML) must satisfy both.
The loader's own tables (tests/test_inventory.py: VALID, INVALID) are run through the
schema: each valid row must pass it; each invalid row must fail it, or fail as YAML (what an
editor's YAML parser reports), or be listed in CANNOT with the reason a schema cannot see
it. A table of edge cases the loader accepts checks the schema is not stricter, with the one
place it is (STRICTER) said.
"""

from __future__ import annotations

import json
import re
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from scanner.inventory import InventoryError, load_inventories
from scanner.inventory import _sections as sections
from scanner.inventory import _values as values

from .conftest import ROOT
from .test_inventory import INVALID, VALID

SCHEMA: dict[str, Any] = json.loads(
    resources.files("scanner").joinpath("data/inventory.schema.json").read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA)
MODELINE = "# yaml-language-server: $schema=../scanner/data/inventory.schema.json"

#: Invalid rows the schema accepts, and why no schema can refuse them.
CANNOT = {
    "unspecified-literals": "0.0.0.0 and :: have many spellings; the address pattern allows them",
    "link-local-without-zone-and-multicast": "address ranges and this machine's interfaces",
    "unusable-nameservers": "address ranges (unspecified, multicast, broadcast) need arithmetic",
    "port-float": "2020-12 counts 443.0 as an integer; the loader wants YAML's int",
    "version-float": "2020-12 counts 1.0 as an integer; the loader wants YAML's int",
    "port-range-downwards": "the order of a range's two ends is no pattern",
    "shorthand-port-range-downwards": "the order of a range's two ends is no pattern",
    "ports-range-overlap": "uniqueItems sees equal items, not overlapping ranges",
    "cidr-host-bits": "host bits of a network (192.0.2.7/24) need arithmetic",
    "cidr-overlap": "names across targets: networks that overlap",
    "cidr-covers-listed-endpoint": "names across targets: an endpoint inside a network",
    "cidr-overlap-nested-and-same-start": "names across targets: networks that overlap",
    "cidr-overlap-adjacent-is-fine-v6-apart": "names across targets: networks that overlap",
    "cidr-covers-listed-endpoint-edges": "names across targets: an endpoint inside a network",
    "cidr-same-name": "names across targets: duplicate names",
    "duplicate-shorthand": "names across targets: duplicate names",
    "duplicate-explicit-vs-default-name": "names across targets: duplicate names",
    "duplicate-after-expansion": "names across targets: duplicate names",
    "duplicate-key-target": "a duplicate key is gone once YAML is data (editors flag it)",
    "duplicate-key-top": "a duplicate key is gone once YAML is data (editors flag it)",
    "alias": "an alias is resolved before a schema sees the data",
    "idna-label-too-long": "IDNA encoding, and the length of the labels it makes",
    "ipv4-literal-default-family-ipv6": "defaults.family against a target's literal: two objects",
}

#: Inventories the loader accepts and the schema refuses, and why the schema does.
STRICTER = {
    "version: 1\ntargets: ['2001:db8::1:80-90']\n": (
        "an IPv6 shorthand without brackets: the loader reads a port range after the last "
        'colon, the README says to write "[2001:db8::1]:80-90"'
    ),
    "version: 1\ntargets: [{host: '[192.0.2.1]', port: 1}]\n": (
        "an IPv4 address in brackets: the loader drops them, brackets are for IPv6"
    ),
}

#: Edge cases the loader accepts: the schema must too.
ACCEPTED = [
    "targets: [{host: a.example, port: '8000-8010'}]",
    "targets: ['198.51.100.0/28:8000-8001', '[::1]:8000-8010', 'a.example:00080']",
    "targets: ['c.example:80-90', 'd.example:80 - 90', ' e.example:1 ']",
    "targets: [{host: a.example., port: 1}]",
    "targets: [{host: _srv.x_y.example, port: 2}, {host: 1a.example, port: 3}]",
    "targets: [{host: bücher.example, port: 443}, 'xn--bcher-kva.example:80']",
    "targets: [{host: 'fe80::1%eth0', port: 22}, '[fe80::1%eth0]:23']",
    "targets: [{host: '2001:db8::/112', port: 1}, {host: 10.0.0.0/255.255.0.0, port: 1}]",
    "targets: [{host: ' 10.1.0.0/16 ', port: 2}, {host: 10.2.0.0/016, port: 1}]",
    "targets: [{host: '::ffff:192.0.2.1', port: 1}, {host: '64:ff9b::192.0.2.1', port: 2}]",
    "targets: [{host: '1::', port: 4}, {host: '1:2:3:4:5:6:7:8', port: 5}]",
    "scope: {allow: [192.0.2.1, 10.0.0.0/8, '2001:db8::/32', 0.0.0.0/0, '::/0']}\n"
    "targets: [192.0.2.1:1]",
    "resolver: {nameservers: ['192.0.2.53', '127.0.0.1:5353', '[2001:db8::53]:53', "
    "'2001:db8::53', '[::1]'], timeout: 0.5, tries: 10}\ntargets: [a.example:1]",
    "defaults: {timeout: 86400, retries: 10, max_latency_ms: 600000, expect: closed, "
    "family: ipv6}\ntargets: [{host: a.example, port: 1, tags: [prod, ü, 'a\u200db']}]",
    "defaults: {timeout: 0.001, retries: 0, max_latency_ms: 0.001}\ntargets: [a.example:1]",
    "targets: [{name: 'x\u200cy', host: a.example, port: 1}]",
    "targets: [{host: 1.2.3.4, port: 1, family: ipv4}, {host: '::1', port: 2, family: ipv6}]",
    "targets: [{host: 10.0.0.0/16, ports: [1], family: ipv4}, {host: a.example, ports: "
    "['1-2', 3, ' 4 - 5 '], family: ipv6}]",
    "targets: ['a-b.c-d.example:1', 'example.123a:3', '192.0.2.1:65535']",
    "targets: [{host: a.example, port: 1, tags: []}]",
]

#: Mistakes the loader refuses that INVALID does not spell out: the schema refuses them too.
REFUSED = [
    "targets: [{host: 'b.example..', port: 1}]",  # one trailing dot makes a name absolute
    "targets: [{host: a.example, port: 1, tags: ['a,b']}]",
    "targets: [{host: a.example, port: 1, family: ipv6, name: x}, {host: 10.0.0.0/16, "
    "port: 1, family: ipv6}]",
    "targets: [{host: '2001:db8::/112', port: 1, family: ipv4}]",
    "targets: [{host: 10.0.0.0/15, port: 1}]",
    "targets: [{host: '2001:db8::/111', port: 1}]",
    "targets: ['2001:db8::/112:443']",
    "targets: ['[2001:db8::1]']",
    "targets: ['a.example:0', 'a.example:65536', 'a.example:123456']",
    "targets: [{host: a.example, ports: ['0-1']}]",
    "targets: [{host: -a.example, port: 1}]",
    "targets: [{host: a-.example, port: 1}]",
    "targets: [{host: 'a..b', port: 1}]",
    "targets: [{host: 010.0.0.1, port: 1}]",
    "targets: [{host: '1:2:3:4:5:6:7:8:9', port: 1}]",
    "resolver: {nameservers: [ns.example]}\ntargets: [a.example:1]",
    "resolver: {nameservers: ['192.0.2.1:0']}\ntargets: [a.example:1]",
    "resolver: {tries: 0}\ntargets: [a.example:1]",
    "resolver: {timeout: 86401}\ntargets: [a.example:1]",
    "defaults: {max_latency_ms: 600001}\ntargets: [a.example:1]",
    "scope: {allow: [10.0.0.0/33]}\ntargets: [a.example:1]",
    "scope: {}\ntargets: [a.example:1]",
    "targets: [{name: ' ', host: a.example, port: 1}]",
    "targets: [{name: 'a\u202eb', host: a.example, port: 1}]",
    'targets: [{name: "a\\nb", host: a.example, port: 1}]',
    'targets: [{name: "trailing\\n", host: a.example, port: 1}]',
    'targets: [{host: "a.example\\n", port: 1}]',
    'targets: [{host: a.example, port: 1, tags: ["\\u00ad"]}]',
]


def loader_accepts(body: str | bytes) -> bool:
    data = body.encode() if isinstance(body, str) else body
    try:
        load_inventories(["inventory.yaml"], read=lambda _path: data)
    except InventoryError:
        return False
    return True


def as_data(body: str | bytes) -> tuple[bool, Any]:
    """(True, data) as an editor's YAML parser hands it to the schema; (False, why) when
    the YAML itself is refused (syntax, encoding, tags no schema types)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return True, yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError, ValueError, KeyError) as exc:
        return False, f"{type(exc).__name__}: {exc}"


def schema_errors(data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)
    ]


def test_the_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_keys_are_the_loaders() -> None:
    """A key the loader learns (tls, hold_ms) fails here until the schema has it too."""
    defs = SCHEMA["$defs"]
    assert tuple(SCHEMA["properties"]) == sections._TOP_KEYS
    assert set(defs["defaults"]["properties"]) == set(sections._DEFAULT_KEYS)
    assert set(defs["target"]["properties"]) == set(sections._TARGET_KEYS)
    assert set(defs["resolver"]["properties"]) == set(sections._RESOLVER_KEYS)
    assert set(defs["scope"]["properties"]) == {"allow"}
    defaults = sections._Defaults()
    for key, spec in defs["defaults"]["properties"].items():
        if getattr(defaults, key) is None:
            assert "default" not in spec, key
        else:
            assert spec["default"] == getattr(defaults, key), key


def _inventory_examples() -> list[tuple[str, str]]:
    """Every inventory the project shows: (where, YAML)."""
    examples = [
        (str(p.relative_to(ROOT)), p.read_text()) for p in sorted(ROOT.glob("configs/*.y*ml"))
    ]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for number, block in enumerate(
            re.findall(r"```ya?ml\n(.*?)```", path.read_text(), re.DOTALL)
        ):
            if re.search(r"^version:", block, re.MULTILINE) and "targets:" in block:
                examples.append((f"{path.relative_to(ROOT)} block {number + 1}", block))
    for path in sorted((ROOT / "docs").rglob("*.y*ml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ConfigMap":
                for key, value in document["data"].items():
                    examples.append((f"{path.relative_to(ROOT)} {key}", value))
    return examples


def test_every_example_inventory_is_valid_for_the_loader_and_the_schema() -> None:
    examples = _inventory_examples()
    where = {w.split(" ")[0] for w, _ in examples}
    assert {"configs/example.yaml", "configs/reference.yaml", "README.md"} <= where
    assert "docs/ci/k8s-indexed-job.yaml" in where
    for name, body in examples:
        assert loader_accepts(body), name
        ok, data = as_data(body)
        assert ok, f"{name}: {data}"
        assert schema_errors(data) == [], name


@pytest.mark.parametrize("name", ["reference.yaml", "example.yaml"])
def test_configs_name_the_schema_for_editors(name: str) -> None:
    first = (ROOT / "configs" / name).read_text().splitlines()[0]
    assert first == MODELINE
    target = (ROOT / "configs" / first.split("$schema=", 1)[1]).resolve()
    assert target == (ROOT / "scanner" / "data" / "inventory.schema.json").resolve()


@pytest.mark.parametrize(("body", "expected"), VALID)
def test_loader_valid_rows_pass_the_schema(body: str, expected: object) -> None:
    ok, data = as_data(body)
    assert ok, data
    assert schema_errors(data) == []


@pytest.mark.parametrize(("body", "expected"), INVALID)
def test_loader_invalid_rows_fail_the_schema_or_are_listed(
    request: pytest.FixtureRequest, body: str | bytes, expected: object
) -> None:
    row = request.node.callspec.id
    assert not loader_accepts(body)
    ok, data = as_data(body)
    if row in CANNOT:
        assert ok and schema_errors(data) == [], f"{row} is refused now: drop it from CANNOT"
        return
    if not ok:
        return  # the YAML itself is wrong: an editor's YAML parser says so, before any schema
    assert schema_errors(data), f"{row}: the loader refuses it, the schema does not"


@pytest.mark.parametrize("body", ACCEPTED)
def test_what_the_loader_accepts_the_schema_accepts(body: str) -> None:
    body = f"version: 1\n{body}\n"
    assert loader_accepts(body)
    assert schema_errors(yaml.safe_load(body)) == []


@pytest.mark.parametrize("body", REFUSED)
def test_what_the_loader_refuses_the_schema_refuses(body: str) -> None:
    body = f"version: 1\n{body}\n"
    assert not loader_accepts(body)
    assert schema_errors(yaml.safe_load(body))


@pytest.mark.parametrize(("body", "reason"), STRICTER.items())
def test_where_the_schema_is_stricter(body: str, reason: str) -> None:
    assert loader_accepts(body), f"the loader refuses it now: drop it from STRICTER ({reason})"
    assert schema_errors(yaml.safe_load(body))


def test_names_and_tags_refuse_exactly_the_characters_the_loader_refuses() -> None:
    """Every code point (surrogates cannot be in YAML text) against the loader's rule."""
    if unicodedata.unidata_version != "14.0.0":
        pytest.skip(
            f"the schema lists Unicode 14.0.0's characters, not {unicodedata.unidata_version}"
        )
    forbidden = re.compile(SCHEMA["$defs"]["name"]["not"]["pattern"])
    tag = SCHEMA["$defs"]["tags"]["items"]["not"]["pattern"]
    assert tag == forbidden.pattern
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        refused = values._unprintable(char) is not None
        assert (forbidden.search(char) is not None) == refused, f"U+{code:04X}"


def test_the_package_ships_the_schema() -> None:
    shipped = resources.files("scanner").joinpath("data")
    names = {p.name for p in shipped.iterdir()}
    assert "inventory.schema.json" in names
    assert Path(str(shipped.joinpath("inventory.schema.json"))).read_text().endswith("}\n")
