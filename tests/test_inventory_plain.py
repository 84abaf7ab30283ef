"""The plain-list fast path reads a file exactly as the full YAML path does.

For every inventory here (a table of the forms people write and the ones that must not be
taken for plain lines, then generated lists), the targets and the problems, line and
column included, are the same with the fast path as with it switched off; the table also
says which files take the fast path, so a change that quietly sends everything down the
full path (or a wrong file down the fast one) fails too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.inventory import InventoryError, load_inventories
from scanner.inventory import _yaml as inventory_yaml
from scanner.inventory._plain import split_plain_list
from scanner.inventory._sections import InventoryFile

HEAD = "version: 1\ndefaults: {timeout: 1, retries: 0}\n"


def outcome(path: Path) -> tuple[str, object]:
    try:
        inventory = load_inventories([str(path)])
    except InventoryError as exc:
        return "problems", [(str(p.location), p.message) for p in exc.problems]
    return "targets", list(inventory.targets)


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = outcome(path)
    with monkeypatch.context() as patched:
        patched.setattr(inventory_yaml, "split_plain_list", lambda text, most: None)
        full = outcome(path)
    return fast, full


def took_fast_path(text: str) -> bool:
    reader = InventoryFile("inv.yaml")
    reader.load(text.encode())
    return reader.plain_items is not None


CASES: list[tuple[str, str, bool]] = [
    ("addresses", HEAD + "targets:\n  - 198.18.0.1:443\n  - 198.18.0.2:80\n", True),
    ("names and ranges", HEAD + "targets:\n  - db.corp.test:5432\n  - web:8000-8002\n", True),
    ("CIDR", HEAD + "targets:\n  - 198.18.0.0/30:22\n", True),
    ("indentless", HEAD + "targets:\n- 198.18.0.1:443\n- 198.18.0.2:443\n", True),
    ("wide dash", HEAD + "targets:\n  -    198.18.0.1:443\n  -    api:80\n", True),
    ("quoted v6", HEAD + "targets:\n  - \"[2001:db8::1]:22\"\n  - '[2001:db8::2]:22'\n", True),
    ("comments, blanks", HEAD + "targets:  # all\n\n  # web\n  - web:80  # front\n\n", True),
    ("no newline at end", HEAD + "targets:\n  - 198.18.0.1:443", True),
    ("errors point right", HEAD + "targets:\n  - 999.1.1.1:80\n  - ok:0\n  - 2001:db8::1\n", True),
    ("duplicates", HEAD + "targets:\n  - web:80\n  - web:80\n", True),
    ("family", "version: 1\ndefaults: {family: ipv6}\ntargets:\n  - 198.18.0.1:1\n", True),
    ("bad head", "version: 2\ntargets:\n  - web:80\n", True),
    ("unknown key in head", HEAD + "colour: red\ntargets:\n  - web:80\n", True),
    ("empty quoted", HEAD + 'targets:\n  - ""\n', True),
    ("spaces in quotes", HEAD + 'targets:\n  - " web:80 "\n', True),
    ("sexagesimal", HEAD + "targets:\n  - 1:30\n", False),
    ("boolean", HEAD + "targets:\n  - yes\n", False),
    ("float", HEAD + "targets:\n  - 1.5\n", False),
    ("null", HEAD + "targets:\n  - null\n", False),
    ("mapping item", HEAD + "targets:\n  - web:80\n  - {host: db, port: 5432}\n", False),
    ("key: value item", HEAD + "targets:\n  - host: db\n    port: 5432\n", False),
    ("ends in colon", HEAD + "targets:\n  - web:\n", False),
    ("mixed indent", HEAD + "targets:\n  - a.test:80\n    - b.test:80\n", False),
    ("continuation", HEAD + "targets:\n  - a.test:80\n    more\n", False),
    ("tab", HEAD + "targets:\n\t- a.test:80\n", False),
    ("CRLF", HEAD.replace("\n", "\r\n") + "targets:\r\n  - a.test:80\r\n", False),
    ("escape", HEAD + 'targets:\n  - "a\\x41.test:80"\n', False),
    ("doubled quote", HEAD + "targets:\n  - 'it''s:80'\n", False),
    ("non-ASCII name", HEAD + "targets:\n  - bücher.test:80\n", False),
    ("key after", HEAD + "targets:\n  - a.test:80\nscope: {allow: [198.18.0.0/15]}\n", False),
    ("flow list", HEAD + "targets: [a.test:80]\n", False),
    ("empty", HEAD + "targets:\n", False),
    ("alias", HEAD + "targets:\n  - *web\n", False),
    ("flow root", "{version: 1,\ntargets:\n- a.test:80}\n", False),
    ("block scalar root", "--- |\ntargets:\n- a.test:80\n", False),
    ("unclosed quote above", 'version: "1\ntargets:\n  - a.test:80\n', False),
    ("targets twice", HEAD + "targets:\n  - a.test:80\ntargets:\n  - b.test:80\n", True),
    ("nested targets", "defaults:\n  targets:\n  - a.test:80\nversion: 1\n", False),
    ("document start", "---\n" + HEAD + "targets:\n  - a.test:80\n", True),
    ("document end", HEAD + "targets:\n  - a.test:80\n...\n", False),
    ("byte order mark", "\ufeff" + HEAD + "targets:\n  - a.test:80\n", True),
    ("second document", HEAD + "targets:\n  - a.test:80\n---\nversion: 1\n", False),
]


@pytest.mark.parametrize(("text", "fast"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_fast_path_reads_as_yaml_does(
    text: str, fast: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(text, newline="")
    with_fast, without = both_ways(path, monkeypatch)
    assert with_fast == without
    assert took_fast_path(text) is fast


def test_problems_keep_their_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(HEAD + "targets:\n  - 999.1.1.1:80\n  -   ok:0\n")
    with pytest.raises(InventoryError) as caught:
        load_inventories([str(path)])
    where = [(p.location.line, p.location.column) for p in caught.value.problems]
    assert where == [(4, 5), (5, 7)]


def test_a_list_near_the_value_limit_takes_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The items count towards the values one file may hold: a file over the limit gets the
    full path's message, where the limit was crossed, whichever part holds the values."""
    text = "targets:\n" + "  - a.test:80\n" * 5
    assert split_plain_list(text, 5) is not None
    assert split_plain_list(text, 4) is None
    monkeypatch.setattr(inventory_yaml, "MAX_NODES", 12)  # this head and 3 items: 12 values
    head = "version: 1\ndefaults: {timeout: 1}\n"
    for items, fits in ((3, True), (4, False)):
        text = head + "targets:\n" + "  - a.test:80\n" * items
        fast = _problems(text)
        with monkeypatch.context() as patched:
            patched.setattr(inventory_yaml, "split_plain_list", lambda text, most: None)
            assert _problems(text) == fast
        assert any("values in one inventory" in message for _, message in fast) is not fits


def _problems(text: str) -> list[tuple[str, str]]:
    reader = InventoryFile("inv.yaml")
    reader.load(text.encode())
    return [(str(p.location), p.message) for p in reader.problems]


_LABEL = st.text("abcxyz019-", min_size=1, max_size=6)
_SCALAR = st.one_of(
    st.builds(lambda *o: ".".join(map(str, o)), *[st.integers(0, 300)] * 4),
    st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
    st.text("0123456789.:-/abey_", min_size=1, max_size=12),
)
_ITEM: st.SearchStrategy[str] = st.tuples(
    _SCALAR, st.one_of(st.integers(0, 70000).map(str), st.just("1-3"), st.just(""))
).map(lambda hp: f"{hp[0]}:{hp[1]}" if hp[1] else hp[0])


def _written(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from([value, f'"{value}"', f"'{value}'", f"{value}  # c"])


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(_ITEM.flatmap(_written), min_size=1, max_size=8),
    indent=st.sampled_from(["", "  "]),
)
def test_generated_lists_read_alike(
    items: list[str], indent: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("plain") / "inv.yaml"
    path.write_text(HEAD + "targets:\n" + "".join(f"{indent}- {item}\n" for item in items))
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, full = both_ways(path, monkeypatch)
    assert fast == full
