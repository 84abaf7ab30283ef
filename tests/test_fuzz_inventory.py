"""Hostile input for the inventory loader: fuzzed files and a catalogue of nasty cases.

The property, whatever the bytes: :func:`load_inventories` returns an :class:`Inventory`
or raises :class:`InventoryError` whose every problem points at a line and column (both
≥ 1) and says something printable. Never another exception, never a hang: each example
runs under a hard alarm as well as hypothesis' deadline.

The hostile catalogue at the bottom also bounds time and memory: a clear answer in under
a second, with a few megabytes, however big the file.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scanner.inventory import (
    MAX_FILE_BYTES,
    MAX_NODES,
    InventoryError,
    Problem,
    load_inventories,
)
from scanner.models import Inventory

from .conftest import ROOT, run_scanner, scanner_env

PATH = "fuzz.yaml"
#: a hang is a failure, not a stuck test run: per example, wall clock
HARD_LIMIT_S = 5.0
FUZZ = settings(
    deadline=timedelta(milliseconds=1500),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: SCANNER_FUZZ_SCALE=20 for a longer hunt (the default keeps this file near 30 s)
SCALE = int(os.environ.get("SCANNER_FUZZ_SCALE", "1"))
#: what a message may not carry raw: controls, surrogates, line/paragraph separators
_RAW = ("Cc", "Cs", "Zl", "Zp")


class Hang(Exception):
    pass


@contextlib.contextmanager
def hard_limit(seconds: float = HARD_LIMIT_S) -> Iterator[None]:
    def ring(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_problems(problems: tuple[Problem, ...], data: bytes) -> None:
    assert problems, "InventoryError without problems"
    text = data.decode("utf-8", "replace")
    last_line = sum(text.count(brk) for brk in ("\n", "\r", "\x85", "\u2028", "\u2029")) + 1
    for problem in problems:
        where = problem.location
        assert where.path == PATH
        assert isinstance(where.line, int) and isinstance(where.column, int)
        assert 1 <= where.line <= last_line + 1, problem
        assert where.column >= 1, problem
        message = problem.message
        assert isinstance(message, str) and message.strip(), problem
        raw = [ch for ch in message if unicodedata.category(ch) in _RAW]
        assert not raw, f"raw {raw!r} in {message!r}"
        assert len(message) < 2000, f"{len(message)}-character message"


def check_inventory(inventory: Inventory) -> None:
    assert isinstance(inventory, Inventory)
    assert len(inventory.targets) >= 1
    for index in {0, len(inventory.targets) - 1}:
        target = inventory.targets[index]
        assert 1 <= target.port <= 65535
        assert math.isfinite(target.timeout) and 0 < target.timeout <= 86400
        assert 0 <= target.retries <= 10
        assert target.name.strip() and target.host
        assert not [ch for ch in target.name if unicodedata.category(ch) in _RAW]
        assert target.source is not None and target.source.line >= 1


def load(data: bytes) -> Inventory | InventoryError:
    """The property: an Inventory or a well-formed InventoryError, promptly."""
    with hard_limit():
        try:
            inventory = load_inventories([PATH], read=lambda _path: data)
        except InventoryError as exc:
            check_problems(exc.problems, data)
            return exc
    check_inventory(inventory)
    return inventory


# --- strategies ----------------------------------------------------------------------------

KEYS = (
    "version",
    "defaults",
    "resolver",
    "targets",
    "scope",
    "timeout",
    "retries",
    "expect",
    "family",
    "max_latency_ms",
    "nameservers",
    "tries",
    "name",
    "host",
    "port",
    "ports",
    "tags",
    "allow",
)
#: strings that mean something to YAML, to the loader or to a terminal
WEIRD = (
    "",
    " ",
    "~",
    "null",
    "yes",
    "No",
    "on",
    "0x1F",
    "0o17",
    "1_000",
    "+.inf",
    ".NaN",
    "-0",
    "1e400",
    "2001-12-14",
    "127.0.0.1:80",
    "[::1]:22",
    "[::1",
    "a.example:0",
    "a.example:65536",
    "a.example:8000-7000",
    "10.0.0.0/8:80",
    "127.0.0.0/31:1-3",
    "xn--zz.example",
    "-bad-.example",
    "a..b",
    "ü" * 70 + ".example",
    "é.example:1",
    "\x1b[31mred",
    "\x9b2J",
    "a\u202eb",
    "\u2028",
    "\ufeff",
    "\x00",
    "\udc80",
    "\ud800",
    "&a",
    "*a",
    "!!python/object:os.system",
    "<<",
    "%YAML 1.1",
    "---",
    "...",
    "|",
    ">",
    "'",
    '"',
    "#",
    "\t",
    "\r\n",
    "a]]>b",
    "<x>&amp;",
    "a" * 300,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**120), max_value=10**120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WEIRD),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.binary(max_size=20),
)
keys = st.one_of(
    st.sampled_from(KEYS), st.text(max_size=12), st.integers(-5, 5), st.none(), st.booleans()
)
yaml_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=30,
)
documents = st.one_of(
    st.dictionaries(st.sampled_from(KEYS[:5]), yaml_values, max_size=5),  # looks like ours
    yaml_values,
)
dump_styles = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "allow_unicode": st.booleans(),
        "width": st.sampled_from([20, 80, 10_000]),
        "indent": st.integers(2, 6),
        "explicit_start": st.booleans(),
        "canonical": st.booleans(),
    }
)

hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "a.example",
            "b.test.",
            "127.0.0.0/30",
            "bücher.example",
            "_srv.a.example",
        ]
    ),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,3}", fullmatch=True),
)
ports = st.one_of(st.integers(1, 65535), st.sampled_from(["80-82", "8000-8000"]))
target_maps = st.fixed_dictionaries(
    {"host": hosts},
    optional={
        "name": st.from_regex(r"[A-Za-z][\w.:|<>&' -]{0,20}", fullmatch=True),
        "expect": st.sampled_from(["open", "closed"]),
        "timeout": st.floats(0.01, 60),
        "retries": st.integers(0, 10),
        "family": st.just("any"),
        "max_latency_ms": st.integers(1, 600_000),
        "tags": st.lists(st.sampled_from(["prod", "edge", "db", "ü"]), max_size=3, unique=True),
    },
).flatmap(
    lambda m: st.one_of(
        st.just(m).map(lambda m: {**m, "port": 443}),
        ports.map(lambda p: {**m, "port": p}),
        st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True).map(
            lambda ps: {**m, "ports": ps}
        ),
    )
)
shorthands = st.one_of(
    st.builds(
        lambda h, p: f"{h}:{p}",
        st.sampled_from(["127.0.0.1", "[::1]", "a.example", "c.test"]),
        ports,
    )
)
valid_documents = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "targets": st.lists(st.one_of(target_maps, shorthands), min_size=1, max_size=5),
    },
    optional={
        "defaults": st.fixed_dictionaries(
            {},
            optional={
                "timeout": st.floats(0.1, 10),
                "retries": st.integers(0, 3),
                "expect": st.sampled_from(["open", "closed"]),
            },
        ),
        "resolver": st.fixed_dictionaries(
            {"nameservers": st.just(["127.0.0.1:5353"])}, optional={"tries": st.integers(1, 10)}
        ),
        "scope": st.just({"allow": ["127.0.0.0/8", "::1/128"]}),
    },
)


def valid_text(document: dict[str, Any], style: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, **style)


# Mutations: each takes the text and a draw function and returns new text.
INSERTS = (
    ":",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!int ",
    "!x ",
    "? ",
    "|",
    ">",
    "'",
    '"',
    "#",
    "%",
    "@",
    "`",
    "\t",
    "\n",
    "\n  ",
    " ",
    "\x00",
    "\x85",
    "\u2028",
    "\x1b",
    "\ufeff",
    "é",
    "\U0001f600",
    "\\",
    "~",
    "<<: ",
    "0x",
    "1e400",
    ".nan",
    ".inf",
    "-1",
    "65536",
    "99999999999999999999",
    "\r",
)


def mutate(data: st.DataObject, text: str) -> bytes:
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(
            st.sampled_from(
                [
                    "insert",
                    "delete",
                    "replace",
                    "indent",
                    "dup-line",
                    "swap-lines",
                    "drop-line",
                    "truncate",
                    "retype",
                    "rekey",
                    "bytes",
                ]
            ),
            label="kind",
        )
        text = "".join(lines)
        at = data.draw(st.integers(0, max(len(text), 1) - 1), label="at") if text else 0
        row = data.draw(st.integers(0, len(lines) - 1), label="row")
        if kind == "insert":
            piece = data.draw(st.one_of(st.sampled_from(INSERTS), st.text(max_size=3)))
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 5)) :]
        elif kind == "replace":
            text = text[:at] + data.draw(st.characters()) + text[at + 1 :]
        elif kind == "indent":
            delta = data.draw(st.sampled_from([" ", "  ", "\t", "-1", "-2"]))
            line = lines[row]
            lines[row] = (
                line[int(delta[1]) :]
                if delta.startswith("-") and line.startswith(" " * int(delta[1]))
                else (delta + line if " " in delta or "\t" in delta else line)
            )
            text = "".join(lines)
        elif kind == "dup-line":
            lines.insert(row, lines[row])
            text = "".join(lines)
        elif kind == "swap-lines":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[row], lines[other] = lines[other], lines[row]
            text = "".join(lines)
        elif kind == "drop-line":
            del lines[row]
            text = "".join(lines)
        elif kind == "truncate":
            text = text[:at]
        elif kind == "retype":  # a value of another type after some ": "
            colon = text.find(": ", at)
            if colon != -1:
                end = text.find("\n", colon)
                end = len(text) if end == -1 else end
                value = data.draw(
                    st.sampled_from(
                        [
                            "[]",
                            "{}",
                            "~",
                            "true",
                            "-3",
                            "0",
                            "1.5",
                            ".inf",
                            ".nan",
                            "1e400",
                            str(10**100),
                            '"x"',
                            "[1, [2, [3]]]",
                            "{a: b}",
                            "!!binary aGk=",
                            "2001-01-01",
                            "'\\x1b'",
                            '"\\x9b"',
                            '"\\u202e"',
                            "a" * 500,
                        ]
                    )
                )
                text = text[: colon + 2] + value + text[end:]
        elif kind == "rekey":  # a key renamed: typo, look-alike, case
            colon = text.find(":", at)
            start = (
                max(
                    text.rfind(" ", 0, colon), text.rfind("\n", 0, colon), text.rfind("{", 0, colon)
                )
                + 1
            )
            if colon > start:
                key = data.draw(
                    st.sampled_from(
                        [*KEYS, "Version", "targеts", "hоst", "pOrt", "ports ", "名前", ""]
                    )
                )
                text = text[:start] + key + text[colon:]
        elif kind == "bytes":  # raw bytes: invalid UTF-8 and friends
            raw = text.encode("utf-8", "surrogatepass")
            junk = data.draw(st.binary(min_size=1, max_size=4))
            cut = min(at, len(raw))
            return raw[:cut] + junk + raw[cut:]
        lines = text.splitlines(keepends=True) or [""]
    return "".join(lines).encode("utf-8", "surrogatepass")


# --- the property --------------------------------------------------------------------------


@settings(FUZZ, max_examples=400 * SCALE)
@example(b"")
@example(b"\x00")
@example(b"\xff\xfe\x00v")
@example(b"\xef\xbb\xbf")
@example(b"version: 1\ntargets: [\xc3]")
@example(b"version: 1\ntargets: [\xed\xa0\x80:1]")  # a UTF-8 encoded surrogate
@example(b"\r\r\r\n\x85")
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    load(data)


@settings(FUZZ, max_examples=400 * SCALE)
@given(documents, dump_styles)
def test_arbitrary_yaml_documents(document: Any, style: dict[str, Any]) -> None:
    try:
        text = yaml.safe_dump(document, **style)
    except (yaml.YAMLError, UnicodeError):
        return  # not something PyYAML itself can write
    load(text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=200 * SCALE)
@given(valid_documents, dump_styles)
def test_generated_valid_inventories_load(document: dict[str, Any], style: dict[str, Any]) -> None:
    """The generator of the mutation test makes valid inventories (else it fuzzes nothing)."""
    style = {**style, "canonical": False}
    result = load(valid_text(document, style).encode())
    problems = result.problems if isinstance(result, InventoryError) else ()
    # two generated targets may claim the same name, or a CIDR may overlap a listed host
    assert all("duplicate" in p.message or "overlaps" in p.message for p in problems), problems


@settings(FUZZ, max_examples=800 * SCALE)
@given(valid_documents, dump_styles, st.data())
def test_mutated_valid_inventories(
    document: dict[str, Any], style: dict[str, Any], data: st.DataObject
) -> None:
    load(mutate(data, valid_text(document, {**style, "canonical": False})))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_documents, st.data())
def test_fuzzed_files_through_the_cli(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any], data: st.DataObject
) -> None:
    """``scanner validate`` exits 0 or 2 and never prints a traceback."""
    body = mutate(data, valid_text(document, {"default_flow_style": None}))
    path = tmp_path_factory.mktemp("cli") / "inv.yaml"
    path.write_bytes(body)
    proc = run_scanner("validate", str(path), timeout=30)
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert f"{path}:" in proc.stderr
        assert "\x1b" not in proc.stderr


# --- the hostile catalogue -----------------------------------------------------------------


def measured(action: Callable[[], Any], trace: bool = False) -> tuple[Any, float, int]:
    """What ``action`` returned or raised, its seconds, and (``trace``) its peak traced bytes."""
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        with hard_limit():
            try:
                outcome: Any = action()
            except InventoryError as exc:
                outcome = exc
        seconds = time.perf_counter() - started
        return outcome, seconds, tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()


def refused(
    path: Path, budget_s: float = 1.0, budget_bytes: int = 64 << 20
) -> tuple[InventoryError, float, int]:
    """Load ``path`` twice: timed as is, then under tracemalloc (which slows it) for memory."""
    outcome, seconds, _ = measured(lambda: load_inventories([str(path)]))
    assert isinstance(outcome, InventoryError), outcome
    assert seconds < budget_s, f"{seconds:.2f} s"
    _, _, peak = measured(lambda: load_inventories([str(path)]), trace=True)
    assert peak < budget_bytes, f"{peak / 1e6:.1f} MB"
    for problem in outcome.problems:
        assert problem.location.line >= 1 and problem.location.column >= 1
        assert not [ch for ch in problem.message if unicodedata.category(ch) in _RAW]
    return outcome, seconds, peak


#: ``python -m scanner`` that also reports its own time and peak RSS (VmHWM: the high-water
#: mark of this process image, unlike ru_maxrss, which inherits the forking parent's)
_MEASURED_CLI = """
import sys, time
from scanner.cli import main
started = time.perf_counter()
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
seconds = time.perf_counter() - started
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:")).split()[1]
with open("/proc/self/io") as io:
    rchar = next(line for line in io if line.startswith("rchar:")).split()[1]
sys.stderr.write(f"\\n@measured {seconds} {hwm} {rchar}\\n")
sys.exit(code)
"""


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float  # from interpreter start-up to exit
    in_main_s: float  # inside scanner's main()
    peak_rss: int  # bytes, the whole interpreter
    read_bytes: int  # everything the process read (rchar: files, pipes, its own modules)


def run_measured(*args: str, timeout: float = 60) -> Measured:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED_CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=scanner_env(),
        cwd=ROOT,
        check=False,
    )
    seconds = time.perf_counter() - started
    stderr, _, tail = proc.stderr.rpartition("\n@measured ")
    assert tail, f"no measurement; stderr: {proc.stderr[-2000:]}"
    in_main, hwm_kib, rchar = tail.split()
    return Measured(
        proc.returncode,
        proc.stdout,
        stderr,
        seconds,
        float(in_main),
        int(hwm_kib) * 1024,
        int(rchar),
    )


def messages(error: InventoryError) -> list[tuple[int, int, str]]:
    return [(p.location.line, p.location.column, p.message) for p in error.problems]


def test_a_200_mb_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as out:  # one 200 MB scalar, written in pieces
        out.write(b"version: 1\ntargets:\n  - ")
        chunk = b"a" * (1 << 20)
        for _ in range(200):
            out.write(chunk)
        out.write(b".example:80\n")
    assert path.stat().st_size > 200 << 20
    error, _, _ = refused(path, budget_bytes=1 << 20)  # not read: under 1 MB allocated
    assert messages(error) == [
        (
            1,
            1,
            "file too large for an inventory: 200.0 MiB, at most "
            "64 MiB (split it, or use CIDR hosts and port ranges)",
        )
    ]


def test_a_sparse_file_over_the_limit_costs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sparse.yaml"
    with path.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)
    error, _, peak = refused(path, budget_bytes=1 << 20)  # not read: under 1 MB allocated
    assert "file too large for an inventory" in error.problems[0].message
    assert peak < 1 << 20


def test_an_endless_stream_is_cut_off_at_the_limit() -> None:
    """``scanner validate /dev/zero`` (or a pipe) has no size; reading stops at the limit."""
    run = run_measured("validate", "/dev/zero")
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[0] == (
        "scanner: /dev/zero:1:1: file too large for an inventory: more than that, at most "
        "64 MiB (split it, or use CIDR hosts and port ranges)"
    )
    assert run.in_main_s < 2
    assert run.peak_rss < 250 << 20  # the limit's worth of 1 MiB pieces, and the interpreter


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    """60 MiB of comments: read, parsed and found empty in a few seconds."""
    path = tmp_path / "comments.yaml"
    line = b"# " + b"x" * 1021 + b"\n"
    with path.open("wb") as out:
        out.write(line * (60 << 10))
    run = run_measured("validate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == f"scanner: {path}:1:1: the inventory is empty"
    assert run.in_main_s < 10
    assert run.peak_rss < 600 << 20  # bytes + text + PyYAML's copy


def test_too_many_values_are_refused_while_parsing(tmp_path: Path) -> None:
    """A dense flow list (2 bytes a value) stops at MAX_NODES, before any node is built."""
    path = tmp_path / "dense.yaml"
    path.write_text("version: 1\ntargets: [" + "0," * (MAX_NODES + 10) + "0]\n")
    run = run_measured("validate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == (
        f"scanner: {path}:2:{11 + 2 * (MAX_NODES - 5)}: more than 1,000,000 values in one "
        "inventory: split it into several files, or use CIDR hosts and port ranges"
    )
    assert run.in_main_s < 5
    assert run.peak_rss < 150 << 20


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("version: 1\ntargets: " + "[" * 10_000 + "]" * 10_000 + "\n", id="flow-lists"),
        pytest.param(
            "version: 1\ntargets: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
            id="flow-mappings",
        ),
        pytest.param("version: 1\ntargets:\n  " + "- " * 10_000 + "x\n", id="block-lists"),
        pytest.param(
            "version: 1\ntargets:\n" + "".join(" " * i + "k:\n" for i in range(2_000)),
            id="block-mappings-2000",
        ),  # 10,000 would be a 50 MB file of indentation
        pytest.param("version: 1\ntargets: " + "? " * 10_000 + "x\n", id="complex-keys"),
    ],
)
def test_10000_deep_nesting(tmp_path: Path, body: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(body)
    error, _, _ = refused(path)
    assert [m for _, _, m in messages(error)] == ["nested more than 64 levels deep"] or all(
        "YAML syntax error" in m for _, _, m in messages(error)
    )


def test_billion_laughs_is_covered_elsewhere() -> None:
    """tests/test_inventory.py::test_billion_laughs_is_rejected_without_expansion."""
    source = (Path(__file__).parent / "test_inventory.py").read_text()
    assert "def test_billion_laughs_is_rejected_without_expansion" in source


def write(tmp_path: Path, body: str | bytes) -> Path:
    path = tmp_path / "inv.yaml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


TARGET = "version: 1\ntargets:\n  - "


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            TARGET.encode() + b"a.exa\x00mple:80\n", (3, 10, "NUL byte in inventory"), id="nul"
        ),
        pytest.param(b"\x00" * 1000, (1, 1, "NUL byte in inventory"), id="only-nul"),
        pytest.param(
            TARGET.encode() + b"a.example:80\n  - \xff\xfe:1\n",
            (4, 5, "not valid UTF-8"),
            id="invalid-utf8",
        ),
        pytest.param(
            TARGET.encode() + b"\xed\xa0\x80.example:80\n",
            (3, 5, "not valid UTF-8"),
            id="utf8-encoded-surrogate",
        ),
        pytest.param(
            TARGET.encode() + b"a.example:80\n" + "é".encode() * 3 + b"\xc3",
            (4, 7, "not valid UTF-8"),
            id="truncated-utf8",
        ),
        pytest.param(
            TARGET + '"\\ud800.example:80"\n',
            (3, 8, "YAML syntax error: found invalid Unicode character escape code"),
            id="escaped-surrogate",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, host: b.example}\n",
            (3, 32, "duplicate key 'host' in target (first at line 3)"),
            id="duplicate-key",
        ),
        pytest.param(
            TARGET + f"{{host: a.example, port: {10**100}}}\n",
            (
                3,
                29,
                "port must be between 1 and 65535, not 1000000000000000000000000000000"
                "0000000000000000000…00000000 (101 characters)",
            ),
            id="port-10**100",
        ),
        pytest.param(
            TARGET + f"{{host: a.example, port: 1{'0' * 5000}}}\n",
            (3, 29, "(5,001 characters) cannot be read as !!int"),
            id="port-beyond-int-conversion",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, timeout: 1e400}\n",
            (3, 41, "target.timeout must be a number of seconds, not a string ('1e400')"),
            id="timeout-1e400",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, timeout: 1.0e+400}\n",
            (3, 41, "target.timeout must be > 0 and at most 86400, not inf"),
            id="timeout-1.0e+400",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, timeout: .inf}\n",
            (3, 41, "target.timeout must be > 0 and at most 86400, not inf"),
            id="timeout-inf",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, timeout: .nan}\n",
            (3, 41, "target.timeout must be > 0 and at most 86400, not nan"),
            id="timeout-nan",
        ),
        pytest.param(
            "version: 1\ndefaults: {timeout: .NaN}\ntargets: [a.example:1]\n",
            (2, 21, "defaults.timeout must be > 0 and at most 86400, not nan"),
            id="defaults-timeout-nan",
        ),
        pytest.param(
            "version: 1\nresolver: {timeout: -.inf}\ntargets: [a.example:1]\n",
            (2, 21, "resolver.timeout must be > 0 and at most 86400, not -inf"),
            id="resolver-timeout-minus-inf",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, max_latency_ms: .nan}\n",
            (3, 48, "target.max_latency_ms must be > 0 and at most 600000, not nan"),
            id="max-latency-nan",
        ),
        pytest.param(
            TARGET + "{host: a.example, port: 1, retries: 1e3}\n",
            (3, 41, "target.retries must be an integer, not a string ('1e3')"),
            id="retries-float-like",
        ),
        pytest.param(
            "version: 1\ntargеts: [a.example:1]\n",
            (
                2,
                1,
                "unknown key 'targеts' in the inventory (did you mean 'targets'? it "
                "has U+0435 CYRILLIC SMALL LETTER IE)",
            ),
            id="confusable-key",
        ),
        pytest.param(
            "vers\u0131on: 1\ntargets: [a.example:1]\n",
            (
                1,
                1,
                "unknown key 'versıon' in the inventory (did you mean 'version'? it "
                "has U+0131 LATIN SMALL LETTER DOTLESS I)",
            ),
            id="dotless-i-key",
        ),
        pytest.param(
            TARGET + "{ｈｏｓｔ: a.example, port: 1}\n",
            (3, 6, "unknown key 'ｈｏｓｔ' in target"),
            id="fullwidth-key",
        ),
        pytest.param(
            TARGET + '{"host\\u200b": a.example, port: 1}\n',
            (
                3,
                6,
                "unknown key 'host\\u200b' in target (did you mean 'host'? it has "
                "U+200B ZERO WIDTH SPACE)",
            ),
            id="zero-width-in-key",
        ),
        pytest.param(
            TARGET + '{name: "a\\u202egnp.exe", host: a.example, port: 1}\n',
            (
                3,
                12,
                "name must not contain control characters or invisible formatting "
                "(U+202E RIGHT-TO-LEFT OVERRIDE)",
            ),
            id="bidi-override-name",
        ),
        pytest.param(
            TARGET + '{name: "a\\x9b2J", host: a.example, port: 1}\n',
            (3, 12, "name must not contain control characters or invisible formatting (U+009B)"),
            id="c1-csi-name",
        ),
        pytest.param(
            TARGET + '{name: "a\\Lb", host: a.example, port: 1}\n',
            (3, 12, "(U+2028 LINE SEPARATOR)"),
            id="line-separator-name",
        ),
        pytest.param(
            TARGET + '{name: "a\\Nb", host: a.example, port: 1}\n',
            (3, 12, "(U+0085)"),
            id="nel-name",
        ),
        pytest.param(
            TARGET + '{host: a.example, port: 1, tags: ["\\ufeffprod"]}\n',
            (
                3,
                39,
                "a tag must not contain control characters or invisible formatting "
                "(U+FEFF ZERO WIDTH NO-BREAK SPACE)",
            ),
            id="bom-tag",
        ),
    ],
)
def test_hostile_values(tmp_path: Path, body: str | bytes, expected: tuple[int, int, str]) -> None:
    error, _, _ = refused(write(tmp_path, body))
    line, column, text = expected
    found = messages(error)
    assert any(
        (got_line, got_column) == (line, column) and text in message
        for got_line, got_column, message in found
    ), found


def test_a_1_mb_host_name(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET + "{host: " + "a" * 1_000_000 + ".example, port: 80}\n")
    error, _, _ = refused(path, budget_bytes=32 << 20)
    [(line, column, message)] = messages(error)
    assert (line, column) == (3, 12)
    assert message == (
        f"'{'a' * 49}…example' (1,000,008 characters) is not a valid host name or IP address"
    )


def test_a_1_mb_unicode_host_name(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET + "{host: " + "ü" * 1_000_000 + ".example, port: 80}\n")
    error, _, _ = refused(path, budget_bytes=64 << 20)
    assert [m for _, _, m in messages(error)] == [
        f"'{'ü' * 49}…example' (1,000,008 characters) is not a valid international host name"
    ]


def test_a_1_mb_name_is_valid_and_kept(tmp_path: Path) -> None:
    """Names have no length limit; the outputs cope (tests/test_output_safety.py)."""
    path = write(tmp_path, TARGET + "{name: " + "n" * 1_000_000 + ", host: 127.0.0.1, port: 1}\n")
    outcome, seconds, peak = measured(lambda: load_inventories([str(path)]))
    assert isinstance(outcome, Inventory)
    assert outcome.targets[0].name == "n" * 1_000_000
    assert seconds < 1.0 and peak < 32 << 20


def test_ten_thousand_problems_are_all_reported_quickly(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET + "\n  - ".join(f"bad host {i}:1" for i in range(10_000)) + "\n")
    error, _, _ = refused(path, budget_s=2.0)
    assert len(error.problems) == 10_000


def test_validate_answers_every_hostile_file_without_a_traceback(tmp_path: Path) -> None:
    """The same files through ``scanner validate`` in one process: exit 2, file:line:col."""
    bodies: list[bytes] = [
        b"\x00\x01\x02",
        b"\xff" * 10,
        b"version: 1\ntargets: " + b"[" * 100_000,
        b"version: 1\ntargets: [" + b"&a x, *a, " * 1000 + b"]",
        (TARGET + "{host: " + "a" * 100_000 + ", port: 1}\n").encode(),
        (TARGET + "{host: a.example, port: 1, timeout: .nan}\n").encode(),
        b"version: 1\ntargets: [a.example:1]\n--- !!python/object/apply:os.system ['true']\n",
        b"!!python/object/apply:os.system ['true']\n",
    ]
    paths = []
    for index, body in enumerate(bodies):
        path = tmp_path / f"h{index}.yaml"
        path.write_bytes(body)
        paths.append(str(path))
    run = run_measured("validate", *paths)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    for path in paths:
        assert f"{path}:" in run.stderr, path
    assert run.in_main_s < 5
    assert run.peak_rss < 200 << 20


def test_validate_refuses_a_file_over_the_limit_in_a_blink(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as out:
        out.write(b"version: 1\ntargets:\n" + b"# comment\n" * 1000)
        out.truncate(200 << 20)  # the rest reads as NUL bytes, if anyone reads it
    run = run_measured("validate", str(path))
    assert run.returncode == 2
    assert f"{path}:1:1: file too large for an inventory: 200.0 MiB" in run.stderr
    # refused before reading: the process read its own modules, not 200 MB of inventory
    assert run.read_bytes < 32 << 20, run.read_bytes
    assert run.peak_rss < 100 << 20
