"""Ad-hoc targets (``check``/``wait`` arguments that are HOST:PORT, and ``-`` for stdin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scanner.inventory import InventoryError
from scanner.inventory.adhoc import (
    ARGUMENTS,
    STDIN,
    AdhocDefaults,
    adhoc_text,
    describe,
    is_endpoint,
    load_arguments,
    sort_arguments,
)

from .conftest import ROOT, Listener, parse_events, run_scanner, scanner_env, write_inventory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("db:5432", True),
        ("127.0.0.1:80", True),
        ("[::1]:443", True),
        ("[2001:db8::10]:22", True),
        ("db.internal.example.:5432", True),
        ("db", False),  # no port
        ("db:", False),
        (":80", False),  # no host
        ("db:0", False),
        ("db:65536", False),
        ("db:99999", False),
        ("::1:80", False),  # IPv6 needs brackets with a port
        ("[::1]", False),
        ("db:http", False),
        ("inventories/prod.yaml", False),
    ],
)
def test_what_reads_as_host_port(text: str, expected: bool) -> None:
    assert is_endpoint(text) is expected


def test_arguments_sort_into_files_stdin_targets_and_problems(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "db:5432", "version: 1\ntargets: []\n")
    sorted_out = sort_arguments(
        [str(inventory), "cache:6379", "-", "cache:6379", "nothing.yaml", "-", "[::1]:80"]
    )
    # a file wins over HOST:PORT; a repeated target is one target; '-' once
    assert sorted_out.paths == [str(inventory), ARGUMENTS, STDIN]
    assert sorted_out.endpoints == ["cache:6379", "[::1]:80"]
    assert sorted_out.problems == [
        "nothing.yaml:1:1: cannot read: No such file or directory",  # a path, by its name
        "'-' (stdin) given twice: stdin can be read once",
    ]


def test_the_generated_inventory_is_yaml_the_loader_reads() -> None:
    text = adhoc_text(["db:5432", "[::1]:80"], AdhocDefaults(expect="closed"))
    assert text.decode().splitlines() == [
        "version: 1",
        'defaults: {"expect": "closed"}',
        "targets:",
        '  - "db:5432"',
        '  - "[::1]:80"',
    ]
    inventory = load_arguments(sort_arguments(["db:5432", "[::1]:80"]), AdhocDefaults("closed"))
    targets = list(inventory.targets)
    assert [(t.name, t.host, t.port, t.expect) for t in targets] == [
        ("db:5432", "db", 5432, "closed"),
        ("[::1]:80", "::1", 80, "closed"),
    ]
    assert inventory.paths == (ARGUMENTS,)


def test_loader_problems_name_the_argument(tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml", "version: 1\ntargets:\n  - {name: 'db:5432', host: db, port: 1}\n"
    )
    arguments = sort_arguments(
        ["[::1]:80", "bad host!:80", "0.0.0.0:80", str(inventory), "db:5432"]
    )
    with pytest.raises(InventoryError) as caught:
        load_arguments(arguments, AdhocDefaults(family="ipv4"))
    said = [describe(p) for p in caught.value.problems]
    assert said[:3] == [
        "argument '[::1]:80': ::1 is an IPv6 address but family is ipv4",
        "argument 'bad host!:80': 'bad host!' is not a valid host name or IP address",
        "argument '0.0.0.0:80': '0.0.0.0' is the unspecified address: connecting to it "
        "reaches this machine; name the host to check",
    ]
    # a clash with a file's target: the file's line, and the argument by name
    assert (
        said[3] == f"{inventory}:3:5: duplicate target name 'db:5432' (first at argument 'db:5432')"
    )


def test_check_with_adhoc_targets_probes_them(listener: Listener, closed_port: int) -> None:
    proc = run_scanner(
        "check", f"127.0.0.1:{listener.port}", f"[::1]:{listener.port}", f"127.0.0.1:{closed_port}",
        "--format", "json", "--timeout", "1", "--retries", "0",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    events = parse_events(proc.stdout)
    results = {e["target"]: e for e in events if e["event"] == "target.result"}
    assert results[f"127.0.0.1:{listener.port}"]["category"] == "open"
    assert results[f"[::1]:{listener.port}"]["category"] == "open"
    assert results[f"127.0.0.1:{closed_port}"]["category"] == "refused"
    assert events[0]["inventories"] == ["<command line>"]


def test_expect_closed_applies_to_adhoc_targets(listener: Listener, closed_port: int) -> None:
    proc = run_scanner(
        "check", f"127.0.0.1:{closed_port}", "--expect", "closed", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    (result,) = [e for e in parse_events(proc.stdout) if e["event"] == "target.result"]
    assert (result["expect"], result["ok"], result["category"]) == ("closed", True, "refused")
    proc = run_scanner("check", f"127.0.0.1:{listener.port}", "--expect", "closed", "-f", "json")
    assert proc.returncode == 1


def test_family_applies_to_adhoc_names(tmp_path: Path, listener: Listener) -> None:
    hosts = tmp_path / "hosts"  # both families in the hosts file: no DNS is asked
    hosts.write_text("127.0.0.1 both.test\n::1 both.test\n")
    for family, address in (("ipv4", "127.0.0.1"), ("ipv6", "::1")):
        proc = run_scanner(
            "check", f"both.test:{listener.port}", "--family", family, "-f", "json", hosts=hosts
        )
        assert proc.returncode == 0, proc.stderr
        (result,) = [e for e in parse_events(proc.stdout) if e["event"] == "target.result"]
        assert result["addresses"] == [address]


def test_stdin_inventory_mixes_with_files_and_targets(tmp_path: Path, listener: Listener) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: file, host: 127.0.0.1, port: {listener.port}}}\n",
    )
    stdin = f"version: 1\ntargets:\n  - {{name: piped, host: '::1', port: {listener.port}}}\n"
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "check", str(inventory), "-",
         f"localhost:{listener.port}", "--format", "json"],
        input=stdin, capture_output=True, text=True, timeout=60, env=scanner_env(hosts), cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    assert events[0]["inventories"] == [str(inventory), "<stdin>", "<command line>"]
    names = {e["target"] for e in events if e["event"] == "target.result"}
    assert names == {"file", "piped", f"localhost:{listener.port}"}


def test_a_problem_in_stdin_names_stdin_line_and_column() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "check", "-"],
        input="version: 1\ntargets:\n  - {host: db, port: 70000}\n",
        capture_output=True, text=True, timeout=60, env=scanner_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "<stdin>:3:" in proc.stderr and "nothing was probed" in proc.stderr


@pytest.mark.parametrize("command", ["check", "wait"])
def test_an_argument_that_is_neither_is_a_usage_error(command: str) -> None:
    proc = run_scanner(
        command, "inventories/missing.yaml", "db:99999", "nonsense", "--format", "json"
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines == [
        # a path (a '/', a YAML suffix) is said as the loader says a file it cannot read
        "scanner: inventories/missing.yaml:1:1: cannot read: No such file or directory",
        "scanner: 'db:99999' is neither a file (no such file) nor HOST:PORT ([v6]:PORT for IPv6)",
        "scanner: 'nonsense' is neither a file (no such file) nor HOST:PORT ([v6]:PORT for IPv6)",
        "scanner: 3 problems; nothing was probed",
    ]


@pytest.mark.parametrize("command", ["check", "wait"])
def test_expect_and_family_need_an_adhoc_target(tmp_path: Path, command: str) -> None:
    inventory = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - db:1\n")
    proc = run_scanner(command, str(inventory), "--family", "ipv4")
    assert proc.returncode == 2
    assert "--family sets what HOST:PORT targets must be" in proc.stderr


def test_a_bad_adhoc_host_is_said_about_its_argument() -> None:
    proc = run_scanner("wait", "bad_host!:80", "[::1]:80", "--family", "ipv4")
    assert proc.returncode == 2
    assert "scanner: argument 'bad_host!:80': 'bad_host!' is not a valid host name" in proc.stderr
    assert "scanner: argument '[::1]:80': ::1 is an IPv6 address but family is ipv4" in proc.stderr
