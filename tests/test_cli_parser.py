"""The parser ``main`` uses builds only the command argv names (``scanner --help`` starts
faster): it must say and parse exactly what the full parser does, command by command."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import shutil
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import pytest

from scanner import cli

from .conftest import ROOT

#: a few command lines of each command: typical ones, each option kind, and mistakes
ARGVS: dict[str, list[list[str]]] = {
    "check": [
        ["inv.yaml"],
        ["a.yaml", "b.yaml", "127.0.0.1:9", "-f", "json", "-q", "--timeout", "2", "-r", "3"],
        ["-", "--allow", "10.0.0.0/8", "--allow", "::1/128", "--shard", "2/3", "--tags", "a"],
        ["x.yaml", "--workers", "auto", "--rate", "0.5", "--trace-failures", "--max-hops", "4"],
        ["x.yaml", "--junit", "j.xml", "--baseline", "b.json", "--fail-on", "new", "-v"],
        ["db:5432", "--expect", "closed", "--family", "ipv6", "--show-ok", "-c", "10"],
        [],
        ["x.yaml", "-v", "-q"],
        ["x.yaml", "--time", "2"],
        ["x.yaml", "--retries", "11"],
        ["x.yaml", "--bogus"],
    ],
    "trace": [
        ["127.0.0.1:9"],
        ["[::1]:443", "--family", "ipv6", "-f", "json", "--max-hops", "3", "--hop-timeout", "1"],
        ["nonsense"],
        [],
    ],
    "explain": [
        ["db.example:5432"],
        ["inventory.yaml", "web", "db", "--hop-timeout", "0.5", "-f", "json"],
        ["x:1", "--format", "xml"],
    ],
    "wait": [
        ["db:5432", "cache:6379"],
        ["s.yaml", "--deadline", "0", "--stable", "3", "--interval", "0.2", "--junit", "w.xml"],
        ["old:5432", "--expect", "closed", "--max-interval", "9", "--per-host", "2"],
        ["x", "--deadline", "-1"],
    ],
    "merge": [["a.json", "b.json", "--report", "all.json", "--fail-on", "new"], []],
    "validate": [["a.yaml", "b.yaml"], []],
    "demo": [[], ["-f", "json", "-q"], ["extra"]],
    "completion": [["bash"], ["zsh"], ["tcsh"], []],
}
#: command lines that name no command, or a wrong one: argparse's top level answers
TOP: list[list[str]] = [[], ["-V"], ["--version"], ["--vers"], ["nope"], ["-x"], ["-5"], ["-"]]


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, str, str]:
    """What parsing argv gives: the Namespace (or the exit code), stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = repr(sorted((k, repr(v)) for k, v in vars(parser.parse_args(argv)).items()))
        except SystemExit as exc:
            result = f"exit {exc.code!r}"
    return result, out.getvalue(), err.getvalue()


@pytest.fixture(params=["80", "100", "57"])
def columns(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each comparison at a few terminal widths: help is wrapped to the terminal."""
    monkeypatch.setenv("COLUMNS", request.param)
    return str(request.param)


def test_the_commands_are_the_full_parsers() -> None:
    action = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert list(action.choices) == list(cli._COMMANDS)


@pytest.mark.parametrize("command", list(ARGVS))
def test_each_commands_help_and_parses_are_the_full_parsers(command: str, columns: str) -> None:
    for argv in ([command, "--help"], [command, "-h"], *([command, *a] for a in ARGVS[command])):
        lazy = _parsed(cli.build_parser(lazy=True), argv)
        assert lazy == _parsed(cli.build_parser(), argv), argv
    help_text = _parsed(cli.build_parser(lazy=True), [command, "--help"])[1]
    assert help_text.startswith(f"usage: scanner {command}")


def test_the_top_level_help_and_errors_are_the_full_parsers(columns: str) -> None:
    for argv in [["--help"], ["-h"], ["-h", "check"], *TOP]:
        assert _parsed(cli.build_parser(lazy=True), argv) == _parsed(cli.build_parser(), argv)
    lazy, full = cli.build_parser(lazy=True), cli.build_parser()
    assert lazy.format_help() == full.format_help()
    assert lazy.format_usage() == full.format_usage()
    for command in ARGVS:
        assert f"    {command} " in lazy.format_help()


def _built(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action._name_parser_map)


def test_the_lazy_parser_builds_only_the_command_argv_names() -> None:
    """The point of it: ``--help`` builds no command's parser, a command line one."""
    parser = cli.build_parser(lazy=True)
    _parsed(parser, ["--help"])
    assert _built(parser) == []
    parser.parse_args(["trace", "127.0.0.1:9"])
    assert _built(parser) == ["trace"]
    assert _built(cli.build_parser()) == list(cli._COMMANDS)


def test_main_gives_completion_the_full_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    for option in ("--trace-failures", "--stable", "--hop-timeout", "--fail-on"):
        assert option in script


@contextlib.contextmanager
def _terminal(columns: int) -> Iterator[io.TextIOWrapper]:
    """A stream on a pseudo-terminal ``columns`` wide."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        with os.fdopen(terminal, "w") as stream:
            yield stream
    finally:
        os.close(controller)


@pytest.mark.parametrize("value", [None, "100", "1", "0", "-4", "wide", ""])
@pytest.mark.parametrize("stdout", ["terminal", "file", "none"])
def test_the_help_width_is_shutils(
    monkeypatch: pytest.MonkeyPatch, value: str | None, stdout: str
) -> None:
    """argparse takes the width from shutil, whose import the formatter saves: the same
    number, from COLUMNS or else the terminal (none, or not a terminal: 80)."""
    if value is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", value)
    with contextlib.ExitStack() as stack:
        if stdout == "terminal":
            monkeypatch.setattr(sys, "__stdout__", stack.enter_context(_terminal(123)))
        elif stdout == "file":
            monkeypatch.setattr(sys, "__stdout__", stack.enter_context(open(os.devnull, "w")))
        else:
            monkeypatch.setattr(sys, "__stdout__", None)
        assert cli._columns() == shutil.get_terminal_size().columns
        assert cli._Formatter("scanner")._width == argparse.HelpFormatter("scanner")._width
    assert cli._Formatter("scanner", width=50)._width == 50


def test_help_imports_neither_typing_nor_shutil() -> None:
    """What ``scanner --help`` imports (the console script imports only signals and the
    CLI first): typing (4 ms) and shutil (3.7 ms) were 8 of the 52 ms it took, so neither
    may come back."""
    probe = (
        "import contextlib, sys\n"
        "from scanner import _entry, signals, cli\n"
        "with contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "heavy = {'typing', 'shutil', 'shtab', 'msgspec', 'yaml', 'anyio'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: scanner [-h] [-V] COMMAND ...")
    assert proc.stderr.strip() == "[]"
