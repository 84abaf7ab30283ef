"""Help and conventions of the command line: descriptions, examples and exit codes in every
help, -V, bare `scanner`, no abbreviations, the inventory's limits, warnings for options
that do nothing, and shell completion — the CLI in a subprocess, as a user runs it."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scanner import __version__
from scanner.cli import MAX_RETRIES, MAX_SECONDS, build_parser
from scanner.inventory import _values

from .conftest import ROOT, Listener, run_scanner, scanner_env, write_inventory

COMMANDS = ["check", "wait", "trace", "explain", "merge", "validate", "demo", "completion"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_listed() -> None:
    assert sorted(_subparsers(build_parser())) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_help_has_a_description_examples_and_exit_codes(command: str) -> None:
    proc = run_scanner(command, "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    usage, _, rest = text.partition("\n\n")
    assert usage.startswith(f"usage: scanner {command}")
    description = rest.split("\n\n", 1)[0]
    assert len(description.split()) >= 8, description  # a sentence, not a label
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in examples.splitlines() if line.strip()[:1] != "#"]
    assert commands and all(c.startswith(f"scanner {command}") for c in commands if c[:1] != "-")
    codes = text.split("exit codes:\n", 1)[1]
    assert re.search(r"^  0 ", codes, re.MULTILINE) and re.search(r"^  2 ", codes, re.MULTILINE)
    assert max(len(line) for line in text.splitlines()) <= 100  # wrapped for a terminal


def test_check_help_documents_every_exit_code_and_auto_workers() -> None:
    text = run_scanner("check", "--help").stdout
    codes = text.split("exit codes:\n", 1)[1]
    for code in ("0", "1", "2", "3", "4", "130/143"):
        assert re.search(rf"^  {re.escape(code)} ", codes, re.MULTILINE), code
    assert "--workers N|auto" in text and "auto (default)" in text
    for option in ("--quiet, -q", "--verbose, -v", "--format"):
        assert option in text


def test_version_short_and_long() -> None:
    for flag in ("-V", "--version"):
        proc = run_scanner(flag)
        assert proc.returncode == 0 and proc.stdout == f"scanner {__version__}\n"


def test_bare_scanner_prints_the_help_and_exits_2() -> None:
    """Decided: a bare `scanner` did nothing asked for, so it is a usage error (exit 2, as
    documented in the help itself), but it says how to use it instead of one error line."""
    proc = run_scanner()
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: scanner")
    for command in COMMANDS:
        assert f"    {command} " in proc.stderr
    assert "bare `scanner` too" in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["check", "inv.yaml", "--time", "2"], id="check-time"),
        pytest.param(["check", "inv.yaml", "--conc", "5"], id="check-conc"),
        pytest.param(["check", "inv.yaml", "--trace"], id="check-trace"),
        pytest.param(["check", "inv.yaml", "--show"], id="check-show"),
        pytest.param(["check", "inv.yaml", "--verb"], id="check-verb"),
        pytest.param(["trace", "127.0.0.1:9", "--max-h", "3"], id="trace-max-h"),
        pytest.param(["trace", "127.0.0.1:9", "--fam", "ipv4"], id="trace-fam"),
        pytest.param(["merge", "r.json", "--mark", "x.md"], id="merge-mark"),
        pytest.param(["merge", "r.json", "--fail", "new"], id="merge-fail"),
        pytest.param(["demo", "--form", "json"], id="demo-form"),
        pytest.param(["--vers"], id="top-vers"),
    ],
)
def test_abbreviations_are_refused(argv: list[str]) -> None:
    proc = run_scanner(*argv)
    assert proc.returncode == 2
    abbreviated = next(a for a in argv if a.startswith("--"))
    assert f"unrecognized arguments: {abbreviated}" in proc.stderr, proc.stderr


def test_no_parser_allows_abbreviations() -> None:
    parser = build_parser()
    assert parser.allow_abbrev is False
    for name, sub in _subparsers(parser).items():
        assert sub.allow_abbrev is False, name


def test_the_cli_limits_are_the_inventorys() -> None:
    assert MAX_SECONDS == _values.MAX_SECONDS
    assert MAX_RETRIES == _values.MAX_RETRIES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--retries", "11"], "must be between 0 and 10", id="retries-high"),
        pytest.param(["--retries", "1000"], "must be between 0 and 10", id="retries-1000"),
        pytest.param(["--retries", "-1"], "must be between 0 and 10", id="retries-negative"),
        pytest.param(["--retries", "two"], "is not a whole number", id="retries-word"),
        pytest.param(["--timeout", "1e9"], "at most 86400", id="timeout-1e9"),
        pytest.param(["--timeout", "86400.5"], "at most 86400", id="timeout-over-a-day"),
        pytest.param(["--timeout", "inf"], "finite", id="timeout-inf"),
        pytest.param(["--timeout", "nan"], "finite", id="timeout-nan"),
        pytest.param(["--timeout", "0"], "more than 0", id="timeout-zero"),
        pytest.param(["--timeout", "-1"], "more than 0", id="timeout-negative"),
        pytest.param(["--max-duration", "inf"], "finite", id="max-duration-inf"),
        pytest.param(["--max-duration", "0"], "more than 0", id="max-duration-zero"),
        pytest.param(["--concurrency", "0"], "must be between 1 and", id="concurrency-zero"),
        pytest.param(
            ["--concurrency", "99999999"], "must be between 1 and 1,048,576", id="concurrency"
        ),
        pytest.param(["--rate", "inf"], "finite", id="rate-inf"),
        pytest.param(["--rate", "0"], "more than 0", id="rate-zero"),
        pytest.param(["--rate", "1e12"], "at most 1,000,000", id="rate-huge"),
        pytest.param(["--per-host", "0"], "must be between 1 and", id="per-host-zero"),
        pytest.param(["--workers", "0"], "must be between 1 and 64", id="workers-zero"),
        pytest.param(["--workers", "500"], "must be between 1 and 64", id="workers-500"),
        pytest.param(["--workers", "many"], "is not a whole number", id="workers-word"),
        pytest.param(["--max-hops", "256"], "must be between 1 and 255", id="max-hops"),
        pytest.param(["--dns-tries", "11"], "must be between 1 and 10", id="dns-tries"),
        pytest.param(["--dns-timeout", "inf"], "finite", id="dns-timeout-inf"),
        pytest.param(["--hop-timeout", "inf"], "finite", id="hop-timeout-inf"),
    ],
)
def test_values_beyond_the_limits_are_usage_errors(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    """Exit 2, nothing probed, a message that says the limit (not a Python function name)."""
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:9\n")
    proc = run_scanner("check", str(inv), *argv)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr, proc.stderr
    assert "_int" not in proc.stderr and "_float" not in proc.stderr


def test_values_at_the_limits_are_accepted() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            *("check", "x.yaml", "--retries", "10", "--timeout", "86400", "--workers", "auto"),
            *("--rate", "0.5", "--max-duration", "0.001", "--concurrency", "1"),
        ]
    )
    assert (args.retries, args.timeout, args.workers) == (10, 86400.0, None)
    assert (args.rate, args.max_duration, args.concurrency) == (0.5, 0.001, 1)


def _inventory(tmp_path: Path, port: int) -> Path:
    return write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ndefaults: {timeout: 1, retries: 0}\ntargets:\n"
        f"  - {{name: web, host: 127.0.0.1, port: {port}, tags: [web, prod]}}\n"
        f"  - {{name: db, host: 127.0.0.1, port: {port}, tags: [db]}}\n",
    )


@pytest.mark.parametrize(
    ("argv", "warning"),
    [
        pytest.param(
            ["--format", "json", "--show-ok"],
            "warning: --show-ok changes only the console format",
            id="show-ok-json",
        ),
        pytest.param(
            ["--max-hops", "5"],
            "warning: --max-hops does nothing without --trace-failures",
            id="hops",
        ),
        pytest.param(
            ["--hop-timeout", "0.5"],
            "warning: --hop-timeout does nothing without --trace-failures",
            id="hop-timeout",
        ),
        pytest.param(
            ["--tags", "web,nope"],
            "warning: --tags: no target carries the tag 'nope' "
            "(the inventory's tags: db, prod, web)",
            id="unknown-tag",
        ),
        pytest.param(
            ["--tags", "web,nope,nada"],
            "warning: --tags: no target carries the tags 'nada', 'nope'",
            id="unknown-tags",
        ),
    ],
)
def test_options_that_do_nothing_are_warned_about(
    tmp_path: Path, listener: Listener, argv: list[str], warning: str
) -> None:
    proc = run_scanner("check", str(_inventory(tmp_path, listener.port)), *argv)
    assert proc.returncode == 0, proc.stderr  # a warning, not an error: the scan runs
    assert f"scanner: {warning}" in proc.stderr


def test_no_warning_when_the_options_fit(tmp_path: Path, listener: Listener) -> None:
    inv = _inventory(tmp_path, listener.port)
    for argv in (
        ["--tags", "web,db"],
        ["--format", "console", "--show-ok"],
        ["--trace-failures", "--max-hops", "3", "--hop-timeout", "0.5"],
    ):
        proc = run_scanner("check", str(inv), *argv)
        assert proc.returncode == 0 and "warning" not in proc.stderr, (argv, proc.stderr)


def test_validate_and_usage_messages_count_in_words(tmp_path: Path) -> None:
    one = write_inventory(tmp_path / "one.yaml", "version: 1\ntargets:\n  - 127.0.0.1:9\n")
    proc = run_scanner("validate", str(one))
    assert proc.stdout == f"{one}: ok, 1 target from 1 entry\n"
    big = write_inventory(
        tmp_path / "big.yaml", "version: 1\ntargets:\n  - {host: 127.0.0.0/16, ports: [1, 2]}\n"
    )
    assert run_scanner("validate", str(big)).stdout == f"{big}: ok, 131,072 targets from 1 entry\n"
    bad = write_inventory(tmp_path / "bad.yaml", "version: 1\ntargets:\n  - 127.0.0.1:70000\n")
    assert "scanner: 1 problem; nothing was probed" in run_scanner("validate", str(bad)).stderr


def test_bash_completion_completes_commands_options_and_choices(tmp_path: Path) -> None:
    """The script bash would load, sourced in a real bash: TAB after each prefix."""
    script = run_scanner("completion", "bash")
    assert script.returncode == 0, script.stderr
    path = tmp_path / "scanner.bash"
    path.write_text(script.stdout)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        program = (
            f"source {path}\n"
            f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={line!r}\nCOMP_POINT={len(line)}\n"
            "_shtab_scanner\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
        )
        done = subprocess.run(
            ["bash", "--norc", "-c", program],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=scanner_env(),
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return sorted(w for w in done.stdout.split() if w)

    assert set(COMMANDS) <= set(complete("scanner "))
    assert complete("scanner ch") == ["check"]
    assert "--trace-failures" in complete("scanner check --tr")
    assert complete("scanner check --fail-on ") == ["any", "new"]
    assert complete("scanner check --format ") == ["auto", "console", "json"]
    assert complete("scanner completion ") == ["bash", "fish", "zsh"]
    (tmp_path / "prod.yaml").write_text("version: 1\ntargets: []\n")
    assert "prod.yaml" in complete("scanner check pro")  # an inventory is a file


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command_and_option(shell: str) -> None:
    proc = run_scanner("completion", shell)
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        assert name in script
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--"):
                    assert option.lstrip("-") in script, (shell, name, option)


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    proc = run_scanner("completion", "tcsh")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_help_stays_fast() -> None:
    """shtab (38 ms to import) and the report modules are imported only when used."""
    probe = (
        "import sys, scanner.cli as c; c.build_parser().format_help(); "
        "heavy = {'shtab', 'msgspec', 'yaml', 'anyio'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
