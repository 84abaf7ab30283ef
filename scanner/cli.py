"""Command line: the only place that parses argv, prints to the terminal and exits.

Every command drives the same engine (:mod:`scanner.engine`) with typed inputs and
reads typed results; this module only turns argv into those inputs, wires observers
and writers to the engine, prints what a person must read, and maps the verdict
(:mod:`scanner.verdict`) to the exit code.

Imports are lazy: ``scanner --help`` and ``scanner validate`` must start in well under
150 ms, so nothing heavy (asyncio stacks, msgspec, yaml) is imported up front, and only
the command a command line names gets its parser built (:class:`_Commands`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import sys
from collections.abc import Callable, Sequence

# not typing's (mypy knows the name): importing typing added 4 ms to ``scanner --help``
# (34 ms now, 52 before), and nothing else ``--help`` runs imports it (see _plan)
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, Literal, NoReturn

    from ._plan import CheckPlan
    from .engine import ScanOptions
    from .inventory.selection import Shard
    from .models import Inventory, ScanSummary, TargetResult
    from .observers import Observer
    from .report.artefacts import Artefacts
    from .report.baseline import Baseline
    from .report.document import Change, RemovedEntry, ReportBuilder
    from .wait import WaitObserver
    from .workers import WorkerJob


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal, paragraph by paragraph; a paragraph of several
    lines (examples, exit codes) printed as written.

    The width is argparse's own, the terminal's columns less 2, worked out by
    :func:`_columns`: argparse imports shutil for it, and shutil (with bz2, lzma and
    fnmatch) added 3.7 ms to ``scanner --help`` (34 ms now), for one function.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("width") is None:  # argparse passes prog=, never a width
            kwargs["width"] = _columns() - 2
        super().__init__(*args, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(
            part if "\n" in part else fill(part, width, indent) for part in text.split("\n\n")
        )


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, computed alike (a test compares them):
    ``COLUMNS`` if a positive number, else the width of the terminal on the process's
    first stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, closed, detached, no terminal
        columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """argparse with our conventions: no abbreviated options (``--time 2`` is an error,
    not ``--timeout``: a new option must never change what an old command line means),
    examples and exit codes in every help, usage errors exit 2 (its default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


#: SPEC §1's exit codes, as every command's help says them
EXIT_CODES = """\
exit codes:
  0        every target met its expectation
  1        at least one target failed
  2        usage or inventory error: nothing was probed (bare `scanner` too)
  3        no failures, but some targets are inconclusive (a problem on this machine)
  4        every target was checked, but a report, JUnit or Markdown file asked for
           could not be written
  130/143  interrupted by SIGINT/SIGTERM (the reports are still written)"""

_CHECK_EXAMPLES = """\
examples:
  # the console on a terminal, JSON lines when piped
  scanner check inventory.yaml
  # the events to a file, a summary of the failures on stderr
  scanner check inventory.yaml -f json > events.jsonl
  scanner check prod.yaml db.yaml --tags prod --timeout 1 --retries 2
  # CI: artefacts, and fail only on what broke since the last good run
  scanner check inventory.yaml --junit junit.xml --report now.json \\
      --baseline last-good.json --fail-on new
"""

_SECONDS_HELP = "seconds: more than 0, at most 86400"


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """``scanner``'s parser: every command's own parser built, or with ``lazy`` only the
    one a command line picks (see :class:`_Commands`); :func:`main` parses with ``lazy``.

    The full parser is for what looks at every command at once: shell completion and the
    tests. Both give the same helps, parse results and errors (a test compares them).
    """
    from . import __version__

    parser = _Parser(
        prog="scanner",
        description="Check a whole service inventory at once and say why each failing "
        "endpoint fails.",
        epilog="examples:\n"
        "  scanner demo                          a showcase on loopback, no setup\n"
        "  scanner check inventory.yaml          probe every target\n"
        "  scanner trace db.example:5432         which hop drops or rejects\n"
        "  scanner completion bash > ~/.local/share/bash-completion/completions/scanner\n"
        "\n'scanner COMMAND --help' says more about each command.\n\n" + EXIT_CODES,
    )
    parser.add_argument("-V", "--version", action="version", version=f"scanner {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, action=_Commands
    )
    assert isinstance(commands, _Commands)
    for name, (summary, define) in _COMMANDS.items():
        commands.add_command(name, summary, define, lazy=lazy)
    return parser


if TYPE_CHECKING:
    _SubParsersAction = argparse._SubParsersAction[_Parser]
else:  # not subscriptable at run time
    _SubParsersAction = argparse._SubParsersAction


class _Commands(_SubParsersAction):
    """``scanner``'s commands: each one's line in ``scanner --help``, and its parser, built
    at once or (``lazy``) only when argparse picks that command.

    Building all eight commands' parsers (eight more ``ArgumentParser()``, 77 more
    ``add_argument``) added 3.5 ms to ``scanner --help`` (34 ms now), while a command line
    only ever uses one of them, or none. argparse still picks the command, by its own
    rules, from the same argv: the choice (and an invalid one's error) is checked against
    every name, in order, and only then is the chosen command's parser built and handed
    the rest of argv. What a lazy parser says and parses is the full one's, byte for byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: with ``lazy``: every command's name (in ``--help``'s order) -> what defines it
        self._defines: dict[str, Callable[[_Parser], None]] = {}

    def add_command(
        self, name: str, summary: str, define: Callable[[_Parser], None], *, lazy: bool
    ) -> None:
        if not lazy:
            define(self.add_parser(name, help=summary))
            return
        # what add_parser(name, help=summary) adds to the top-level help, without the parser
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), summary))
        self._defines[name] = define
        # the names argparse checks the command against (only `in` and their order count)
        self.choices = self._defines  # type: ignore[assignment]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values and values[0] in self._defines and values[0] not in self._name_parser_map:
            self._defines[values[0]](self.add_parser(values[0]))
        super().__call__(parser, namespace, values, option_string)


def _check(check: _Parser) -> None:
    """``scanner check INVENTORY|HOST:PORT...``."""
    check.description = (
        "Resolve every name once, then time a TCP handshake to every address of "
        "every target, at once; say why each one that fails fails (its category and a hint). "
        "Several inventories are checked as one. An argument that is not a file and reads "
        "HOST:PORT ([v6]:PORT for IPv6) is a target; - reads an inventory from stdin."
    )
    check.epilog = _CHECK_EXAMPLES + "\n" + EXIT_CODES
    check.add_argument(
        "inventories",
        nargs="+",
        metavar="INVENTORY|HOST:PORT",
        help="inventory YAML file(s), HOST:PORT targets, - for an inventory on stdin",
    )
    _add_format_options(check)
    check.add_argument(
        "--concurrency",
        "-c",
        type=_bounded_int(1, MAX_CONCURRENCY),
        default=None,
        metavar="N",
        help="max probes in flight (default 1024, capped by the fd limit; at most "
        f"{MAX_CONCURRENCY:,})",
    )
    _add_probing_options(check, rounds=False)
    check.add_argument(
        "--tags",
        default=None,
        metavar="A,B",
        help="only targets carrying one of these tags (a tag no target carries: a warning)",
    )
    _add_adhoc_options(check)
    check.add_argument(
        "--max-duration",
        type=_seconds,
        default=None,
        metavar="S",
        help=f"global deadline; unfinished targets end as inconclusive ({_SECONDS_HELP})",
    )
    check.add_argument(
        "--rate",
        type=_rate,
        default=None,
        metavar="N",
        help=f"at most N handshake attempts per second overall (at most {MAX_RATE:,})",
    )
    check.add_argument(
        "--show-ok",
        action="store_true",
        help="console: list the targets that passed too (JSON lines have every target)",
    )
    check.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="check only slice I of N (1-based, stable hash of the target name)",
    )
    check.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N|auto",
        help="scan with N processes, each every N-th target, one stream "
        f"(1 to {MAX_WORKERS}); auto (default): one per idle core for 256+ TLS targets, or for "
        "10,000+ targets of addresses or distinct names in JSON without reports; never with "
        "--rate, --per-host, --shard or --trace-failures; else 1",
    )
    check.add_argument(
        "--trace-failures",
        action="store_true",
        help="trace the path of failed targets: which hop drops or rejects",
    )
    _add_trace_options(check)
    _add_artefact_options(check)


def _trace(trace: _Parser) -> None:
    """``scanner trace HOST:PORT``."""
    trace.description = (
        "TCP handshakes to HOST:PORT with rising hop limits; "
        "routers answer ICMP time exceeded (no privileges "
        "needed). Exits like check: 0 when the port is open."
    )
    trace.epilog = (
        "examples:\n"
        "  scanner trace 127.0.0.1:9\n"
        "  scanner trace db.example:5432 --family ipv4 --max-hops 12\n"
        "  scanner trace '[2001:db8::10]:443' -f json\n\n" + EXIT_CODES
    )
    trace.add_argument(
        "endpoint",
        metavar="HOST:PORT",
        type=_endpoint,
        help="name or IP literal and port ([v6]:port for IPv6)",
    )
    _add_format_options(trace)
    trace.add_argument(
        "--family",
        choices=("any", "ipv4", "ipv6"),
        default="any",
        help="which addresses of a name to trace (default: all)",
    )
    _add_trace_options(trace)


def _explain(explain: _Parser) -> None:
    """``scanner explain TARGET|INVENTORY [NAME...]``."""
    explain.description = (
        "Check the targets, trace their failures, and collect the evidence a "
        "person would collect by hand: how each name resolved (source, search trail, names "
        "nearby), the route and source address per address, the handshake and ICMP detail, "
        "the path, and, for this host's own addresses, what listens where. Ends each target "
        "with its most likely cause and the next thing to check. Exits like check."
    )
    explain.epilog = (
        "examples:\n"
        "  scanner explain db.example:5432\n"
        "  scanner explain inventory.yaml web db\n"
        "  scanner explain '[2001:db8::10]:443' -f json\n\n" + EXIT_CODES
    )
    explain.add_argument(
        "what",
        metavar="TARGET|INVENTORY",
        help="HOST:PORT ([v6]:PORT for IPv6), or an inventory file",
    )
    explain.add_argument(
        "names", nargs="*", metavar="NAME", help="only these targets of the inventory"
    )
    explain.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console on a TTY, json (explain.result events) otherwise",
    )
    explain.add_argument(
        "--hop-timeout",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="seconds to wait for each wave of hop limits of a trace (default 1)",
    )


def _merge(merge: _Parser) -> None:
    """``scanner merge REPORT...``."""
    merge.description = (
        "Join the --report documents of several shards (or "
        "scans) into one verdict; exits like check."
    )
    merge.epilog = (
        "examples:\n"
        "  scanner merge shard-1.json shard-2.json shard-3.json --junit junit.xml\n"
        "  scanner merge shard-*.json --report all.json --baseline before.json "
        "--fail-on new\n\n" + EXIT_CODES
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT", help="--report files of one split")
    _add_artefact_options(merge)


def _validate(validate: _Parser) -> None:
    """``scanner validate INVENTORY...``."""
    validate.description = (
        "Read the inventories as check would, report every problem with "
        "file:line:column, and count the targets (networks and port ranges are counted, "
        "not expanded). Nothing is resolved or probed."
    )
    validate.epilog = (
        "examples:\n  scanner validate inventory.yaml\n  scanner validate configs/*.yaml\n\n"
        "exit codes:\n  0  every inventory is valid\n"
        "  2  a problem was found (each one is said on stderr)"
    )
    validate.add_argument(
        "inventories", nargs="+", metavar="INVENTORY", help="inventory YAML file(s)"
    )


def _demo(demo: _Parser) -> None:
    """``scanner demo``."""
    demo.description = (
        "Start listeners and a DNS server on loopback, scan an inventory "
        "built against them and show each category loopback can produce, with its hint. "
        "Nothing leaves this machine."
    )
    demo.epilog = (
        "examples:\n  scanner demo\n  scanner demo -f json | jq .\n\n"
        "exit codes:\n  0  every target got the category it was built for\n"
        "  1  one did not (the demo says which)\n  2  a usage error"
    )
    _add_format_options(demo)


def _completion(completion: _Parser) -> None:
    """``scanner completion bash|zsh|fish``."""
    completion.description = (
        "Print the completion script of a shell: commands, options, their "
        "choices and file names complete with TAB."
    )
    completion.epilog = (
        "examples:\n"
        "  scanner completion bash > ~/.local/share/bash-completion/completions/scanner\n"
        '  scanner completion zsh > "${fpath[1]}/_scanner"\n'
        "  scanner completion fish > ~/.config/fish/completions/scanner.fish\n\n"
        "exit codes:\n  0  the script was printed\n  2  an unknown shell"
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")


def _add_adhoc_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--expect",
        choices=("open", "closed"),
        default=None,
        help="HOST:PORT targets: what they must be (default open)",
    )
    command.add_argument(
        "--family",
        choices=("any", "ipv4", "ipv6"),
        default=None,
        help="HOST:PORT targets: which addresses of a name to probe (default any: all)",
    )


_WAIT_EXAMPLES = """\
examples:
  # before the tests: two services by name, then the tests in scanner's place
  scanner wait db:5432 cache:6379 --deadline 120 -- ./run-tests
  # every target of an inventory, three good rounds in a row each
  scanner wait services.yaml --stable 3 --junit wait.xml
  # a port that must be closed before a migration goes on
  scanner wait old-db:5432 --expect closed --deadline 30
"""

_WAIT_EXIT_CODES = """\
exit codes:
  0        every target is ready (with -- CMD: CMD's own exit code instead)
  1        not every target was ready by the deadline (each one said, with its category)
  2        usage or inventory error: nothing was probed
  4        every target is ready, but a report, JUnit or Markdown file could not be written
  126/127  CMD cannot be run / was not found
  130/143  interrupted by SIGINT/SIGTERM (the reports are still written)"""


def _wait(wait: _Parser) -> None:
    """``scanner wait``: check's probing options (same engine, same meaning), per round."""
    wait.usage = "scanner wait INVENTORY|HOST:PORT... [options] [-- CMD [ARG ...]]"
    wait.description = (
        "Check the targets in rounds until every one meets its expectation "
        "(expect: closed too), then run CMD in scanner's place (its exit code is the "
        "result) or exit 0. A target ready is not probed again; names are resolved again "
        "every round; a failing target is probed again after --interval, doubled each "
        "round it fails alike, up to --max-interval, with jitter. At the deadline: exit 1, "
        "saying for each target not ready its last category, hint and for how long."
    )
    wait.epilog = _WAIT_EXAMPLES + "\n" + _WAIT_EXIT_CODES
    wait.add_argument(
        "inventories",
        nargs="+",
        metavar="INVENTORY|HOST:PORT",
        help="inventory YAML file(s), HOST:PORT targets, - for an inventory on stdin",
    )
    wait.add_argument(
        "--deadline",
        type=_deadline,
        default=60.0,
        metavar="S",
        help="give up after S seconds (default 60; 0: wait for ever; at most 86400)",
    )
    wait.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="seconds between a target's rounds at first (default 1)",
    )
    wait.add_argument(
        "--max-interval",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="the backoff's cap (default 5)",
    )
    wait.add_argument(
        "--stable",
        type=_bounded_int(1, 1000),
        default=1,
        metavar="N",
        help="good rounds in a row before a target counts as ready (default 1, at most 1000)",
    )
    wait.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console (live lines) on a TTY, json otherwise",
    )
    _add_probing_options(wait, rounds=True)
    _add_adhoc_options(wait)
    wait.add_argument(
        "--tags", default=None, metavar="A,B", help="only targets carrying one of these tags"
    )
    wait.add_argument(
        "--concurrency",
        "-c",
        type=_bounded_int(1, MAX_CONCURRENCY),
        default=None,
        metavar="N",
        help="max probes in flight per round (default 1024, capped by the fd limit)",
    )
    wait.add_argument(
        "--rate",
        type=_rate,
        default=None,
        metavar="N",
        help=f"at most N handshake attempts per second in each round (at most {MAX_RATE:,})",
    )
    wait.add_argument("--junit", default=None, metavar="PATH", help="write JUnit XML of the end")
    wait.add_argument(
        "--markdown",
        default=None,
        metavar="PATH",
        help="write a Markdown summary of the end (default with GITHUB_STEP_SUMMARY set: "
        "append to that file)",
    )
    wait.add_argument(
        "--report", default=None, metavar="PATH", help="write the end as one JSON document"
    )


#: every command, in the order ``scanner --help`` lists them: its line there, and what
#: defines its parser (description, examples, arguments)
_COMMANDS: dict[str, tuple[str, Callable[[_Parser], None]]] = {
    "check": ("probe every target of the inventories", _check),
    "trace": ("path trace of one endpoint: which hop drops or rejects", _trace),
    "explain": (
        "why each target fails: name, route, handshake, path, local evidence, cause",
        _explain,
    ),
    "wait": ("wait until every target is ready, then run CMD (or exit 0)", _wait),
    "merge": ("one verdict from the --report files of several shards", _merge),
    "validate": ("parse and validate only; probe nothing", _validate),
    "demo": ("self-contained showcase on loopback, no setup", _demo),
    "completion": ("print a shell completion script (bash, zsh or fish)", _completion),
}


def _add_probing_options(command: argparse.ArgumentParser, *, rounds: bool) -> None:
    """How targets are probed, for check and wait alike (wait's apply within each round)."""
    command.add_argument(
        "--timeout",
        "-t",
        type=_seconds,
        default=None,
        metavar="S",
        help=f"seconds per handshake attempt, for every target ({_SECONDS_HELP})",
    )
    command.add_argument(
        "--dns-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds a DNS query gets per try (overrides the inventory's resolver.timeout "
        "and resolv.conf's options timeout:N)",
    )
    command.add_argument(
        "--dns-tries",
        type=_bounded_int(1, 10),  # as resolver.tries in an inventory
        default=None,
        metavar="N",
        help="rounds over the nameservers (overrides resolver.tries and resolv.conf's "
        "options attempts:N)",
    )
    within = "within a round" if rounds else "for every target"
    command.add_argument(
        "--retries",
        "-r",
        type=_bounded_int(0, MAX_RETRIES),
        default=None,
        metavar="N",
        help=f"extra attempts for transient failures, {within} (0 to {MAX_RETRIES})",
    )
    command.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        type=_network,
        help="scope guard (repeatable): only these networks get packets, "
        "added to the inventory's scope.allow",
    )
    command.add_argument(
        "--per-host",
        type=_bounded_int(1, MAX_CONCURRENCY),
        default=None,
        metavar="N",
        help="at most N handshakes in flight to one address",
    )


def _deadline(text: str) -> float:
    """``--deadline``: seconds as ``--timeout`` takes them, or 0 for no deadline."""
    return 0.0 if _number(text) == 0 else _seconds(text)


def _add_format_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console on a TTY, json otherwise (then a short summary "
        "goes to stderr)",
    )
    loud = command.add_mutually_exclusive_group()
    loud.add_argument(
        "--quiet",
        "-q",
        dest="verbosity",
        action="store_const",
        const="quiet",
        default="normal",
        help="only the counts and the verdict (with json: no summary on stderr, no progress)",
    )
    loud.add_argument(
        "--verbose",
        "-v",
        dest="verbosity",
        action="store_const",
        const="verbose",
        help="every failed target, each with every address",
    )


#: the hop limit ``--max-hops`` and the seconds ``--hop-timeout`` take without one given
DEFAULT_MAX_HOPS, DEFAULT_HOP_TIMEOUT = 30, 2.0


def _add_trace_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-hops",
        type=_bounded_int(1, 255),
        default=None,
        metavar="N",
        help=f"highest hop limit tried (default {DEFAULT_MAX_HOPS}, at most 255)",
    )
    command.add_argument(
        "--hop-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help=f"seconds to wait for each wave of hop limits (default {DEFAULT_HOP_TIMEOUT:g})",
    )


def _endpoint(text: str) -> tuple[str, int]:
    from .inventory import split_host_port

    parsed = split_host_port(text)
    if parsed is None or not 1 <= parsed[1] <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT ([v6]:PORT for IPv6)")
    return parsed


def _add_artefact_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--junit", default=None, metavar="PATH", help="write JUnit XML")
    command.add_argument(
        "--markdown",
        default=None,
        metavar="PATH",
        help="write a Markdown summary (default with GITHUB_STEP_SUMMARY set: append to that file)",
    )
    command.add_argument(
        "--report", default=None, metavar="PATH", help="write the whole result as one JSON document"
    )
    command.add_argument(
        "--baseline",
        default=None,
        metavar="REPORT",
        help="compare with an earlier --report: new failures, fixed, changed category, "
        "removed (one of another inventory: a warning)",
    )
    command.add_argument(
        "--fail-on",
        choices=("any", "new"),
        default="any",
        help="any (default): exit 1 on any failure; new: only on failures "
        "that are new since --baseline",
    )


def _shard(text: str) -> Shard:
    from .inventory.selection import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _network(text: str) -> str:
    from .scope import parse_network

    try:
        return str(parse_network(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


#: what the CLI accepts at most; the inventory's limits (seconds, retries) are the same
MAX_CONCURRENCY = 1 << 20
MAX_RATE = 1_000_000
MAX_WORKERS = 64
MAX_RETRIES = 10  # = scanner.inventory._values.MAX_RETRIES (a test holds them equal)
MAX_SECONDS = 86400  # = scanner.inventory._values.MAX_SECONDS


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, said plainly otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high:,}, not {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _seconds(text: str) -> float:
    """Seconds as the inventory takes them: more than 0, at most a day, finite."""
    value = _number(text)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_SECONDS} seconds, not {text}"
        )
    return value


def _rate(text: str) -> float:
    value = _number(text)
    if not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_RATE:,}")
    return value


def _workers(text: str) -> int | None:
    return None if text == "auto" else _bounded_int(1, MAX_WORKERS)(text)


def run() -> NoReturn:
    """The console script: :func:`main`, then leave without interpreter teardown.

    Tearing down the interpreter (every module, every object of a big scan) took about
    25 ms after the last event was written: time a CI job waits for nothing. Output is
    flushed first and nothing else is left open, so skipping it loses nothing.

    argparse's own exits leave the same way, with argparse's code: ``--help``,
    ``--version`` and a usage error, each said already. Even with as little loaded as
    ``--help`` loads, the teardown added 5 ms to it (34 ms now).
    """
    try:
        code = main()
    except SystemExit as exc:
        status = 0 if exc.code is None else exc.code
        if not isinstance(status, int):  # a message to print: the interpreter's to say
            raise
        _leave(status)
    from . import signals
    from .verdict import EXIT_SIGNAL

    received = signals.received()
    if received is not None:  # a signal came, even after the scan: say so (its work is done)
        code = EXIT_SIGNAL[received]
    _leave(code)


def _leave(code: int) -> NoReturn:
    """Exit ``code`` at once, the output flushed: no interpreter teardown (see :func:`run`)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader left, or closed
            stream.flush()
    os._exit(code)


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``wait ... -- CMD ARGS`` → (scanner's own arguments, CMD); CMD None without ``--``.

    Split before argparse, which would take CMD's options (``-- pytest -x``) as its own.
    Only for ``wait``: the first argument that is no option names the command.
    """
    arguments = list(argv)
    command = next((a for a in arguments if not a.startswith("-")), None)
    if command != "wait" or "--" not in arguments:
        return arguments, None
    at = arguments.index("--")
    return arguments[:at], arguments[at + 1 :]


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per command
    parser = build_parser(lazy=True)  # only the command argv names is built: see _Commands
    own, then = split_command(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    if args.command is None:  # bare `scanner`: the help, on stderr, and exit 2 (documented)
        parser.print_help(sys.stderr)
        return 2
    if args.command == "validate":
        return cmd_validate(args.inventories)
    if args.command == "completion":  # the script covers every command: the full parser
        return cmd_completion(build_parser(), args.shell)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(_resolve_format(args.format), verbosity=args.verbosity)
    if args.command == "merge":
        return cmd_merge(args)
    if args.command == "trace":
        return cmd_trace(args)
    if args.command == "explain":
        return cmd_explain(args)
    return cmd_wait(args, then) if args.command == "wait" else cmd_check(args)


def _resolve_format(choice: str) -> str:
    if choice == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return str(choice)


def _say(message: str) -> None:
    print(f"scanner: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    """Something asked for that does nothing, or may not be what was meant: the scan goes on."""
    _say(f"warning: {message}")


def _load(paths: Sequence[str]) -> Inventory | None:
    from .inventory import InventoryError, load_inventories

    try:
        return load_inventories(paths)
    except InventoryError as exc:
        for problem in exc.problems:
            _say(str(problem))
        from .report._text import counted

        _say(f"{counted(len(exc.problems), 'problem')}; nothing was probed")
        return None


def _load_arguments(args: argparse.Namespace) -> Inventory | None:
    """The inventory of ``check``/``wait`` arguments: files, ``-`` (stdin), ``HOST:PORT``."""
    from .inventory import InventoryError
    from .inventory.adhoc import AdhocDefaults, describe, load_arguments, sort_arguments

    arguments = sort_arguments(args.inventories)
    problems = list(arguments.problems)
    if not arguments.endpoints:
        problems.extend(
            f"{option} sets what HOST:PORT targets must be; an inventory file says it per "
            "target (expect:, family:)"
            for option, value in (("--expect", args.expect), ("--family", args.family))
            if value is not None
        )
    if not problems:
        try:
            return load_arguments(arguments, AdhocDefaults(args.expect, args.family))
        except InventoryError as exc:
            problems = [describe(problem) for problem in exc.problems]
    for problem in problems:
        _say(problem)
    from .report._text import counted

    _say(f"{counted(len(problems), 'problem')}; nothing was probed")
    return None


def cmd_validate(paths: Sequence[str]) -> int:
    from .verdict import EXIT_OK, EXIT_USAGE

    inventory = _load(paths)
    if inventory is None:
        return EXIT_USAGE
    from .inventory.targets import TargetList

    targets = inventory.targets
    entries = len(targets.specs) if isinstance(targets, TargetList) else len(targets)
    from .report._text import counted

    # counted from the entries, never by expanding them: a /16 on 16 ports is instant
    found = f"{counted(len(targets), 'target')} from {counted(entries, 'entry')}"
    print(f"{', '.join(paths)}: ok, {found}")
    return EXIT_OK


def _scan_options(args: argparse.Namespace) -> ScanOptions:
    from .engine import ScanOptions

    trace = None
    if args.trace_failures:  # the trace module only when asked for: start-up time counts
        from .probers.trace import TraceConfig

        trace = TraceConfig(
            max_hops=args.max_hops or DEFAULT_MAX_HOPS,
            hop_timeout=args.hop_timeout or DEFAULT_HOP_TIMEOUT,
        )
    return ScanOptions(
        handle_signals=True,
        concurrency=args.concurrency,
        max_duration=args.max_duration,
        allow=tuple(args.allow),
        rate=args.rate,
        per_address=args.per_host,
        trace_failures=args.trace_failures,
        trace=trace,
    )


def _artefacts(args: argparse.Namespace) -> Artefacts:
    """The artefacts asked for; the Markdown goes to GitHub's step summary by default."""
    from .report.artefacts import Artefacts

    markdown, append = args.markdown, False
    if markdown is None and os.environ.get("GITHUB_STEP_SUMMARY"):
        markdown, append = os.environ["GITHUB_STEP_SUMMARY"], True
    return Artefacts(
        report=args.report, junit=args.junit, markdown=markdown, markdown_append=append
    )


def _usable_artefacts(args: argparse.Namespace) -> Artefacts | None:
    """The artefacts ``check`` or ``merge`` is asked for, or None after saying every usage
    error (:func:`_usage_problems`): exit 2, nothing probed or read."""
    artefacts = _artefacts(args)
    problems = _usage_problems(args, artefacts)
    for problem in problems:
        _say(problem)
    return None if problems else artefacts


def _usage_problems(args: argparse.Namespace, artefacts: Artefacts) -> list[str]:
    """Usage errors found before anything is probed: exit 2, as for a bad inventory."""
    problems = []
    if args.fail_on == "new" and not args.baseline:
        problems.append("--fail-on new needs --baseline REPORT (new compared with what?)")
    inputs = args.inventories if args.command == "check" else args.reports
    problems.extend(artefacts.problems([path for path in inputs if os.path.isfile(path)]))
    return problems


def _load_baseline(path: str | None) -> Baseline | Literal[False] | None:
    """The baseline, None without --baseline, False (after a message) when unreadable."""
    if path is None:
        return None
    from .report.baseline import Baseline
    from .report.document import ReportError

    try:
        return Baseline.load(path)
    except ReportError as exc:
        _say(f"--baseline {exc}")
        return False


def _change_of(baseline: Baseline | None) -> Callable[[TargetResult], Change | None] | None:
    if baseline is None:
        return None

    def change_of(result: TargetResult) -> Change | None:
        return baseline.change(result.target.name, result.ok, result.category)

    return change_of


def _selected(
    args: argparse.Namespace, verb: str
) -> tuple[Inventory, Inventory, set[str] | None] | None:
    """The inventory as loaded, the targets ``--tags`` selects (with the run's own
    timeout, retries and DNS settings), and the tags; or None once said what is wrong."""
    loaded = _load_arguments(args)
    if loaded is None or not _tls_settings_work(loaded):
        return None
    from .inventory import selection

    tags = {t.strip() for t in args.tags.split(",") if t.strip()} if args.tags else None
    inventory = selection.select(
        loaded,
        tags=tags,
        timeout=args.timeout,
        retries=args.retries,
        dns_timeout=args.dns_timeout,
        dns_tries=args.dns_tries,
    )
    if not inventory.targets:
        _say(f"no target carries any of the tags {args.tags!r}; nothing to {verb}")
        return None
    return loaded, inventory, tags


def plan_check(args: argparse.Namespace) -> CheckPlan | None:
    """The typed plan of ``scanner check``, or None after saying what is wrong (exit 2)."""
    artefacts = _usable_artefacts(args)
    if artefacts is None:
        return None
    baseline = _load_baseline(args.baseline)
    if baseline is False:
        return None
    selected = _selected(args, "check")
    if selected is None:
        return None
    loaded, inventory, tags = selected
    if args.shard is not None:
        from .inventory import selection

        inventory = selection.shard(inventory, args.shard)
    fmt = _resolve_format(args.format)
    for warning in _check_warnings(args, fmt, loaded, tags, baseline):
        _warn(warning)
    from ._plan import CheckPlan

    plan = CheckPlan(
        inventory=inventory,
        options=_scan_options(args),
        format=fmt,
        show_ok=args.show_ok,
        artefacts=artefacts,
        baseline=baseline,
        fail_on=args.fail_on,
        shard=args.shard,
        workers=args.workers or 1,
        verbosity=args.verbosity,
        known=loaded,
    )
    if args.workers is None:
        from .workers import auto_workers

        options = plan.options
        limits = bool(plan.shard or options.rate or options.per_address or options.trace_failures)
        workers = auto_workers(
            inventory, json_stream=fmt == "json", limits=limits, reports=plan.wants_report
        )
        return plan._replace(workers=workers)
    if args.workers > 1 and (refused := _refused_with_workers(plan)):
        _say(refused)
        return None
    return plan


def _check_warnings(
    args: argparse.Namespace,
    fmt: str,
    loaded: Inventory,
    tags: set[str] | None,
    baseline: Baseline | None,
) -> list[str]:
    """Options given that change nothing, or may not be what was meant: warned, not refused."""
    warnings = []
    if args.show_ok and fmt == "json":
        warnings.append("--show-ok changes only the console format: JSON lines list every target")
    if not args.trace_failures:
        for option, value in (("--max-hops", args.max_hops), ("--hop-timeout", args.hop_timeout)):
            if value is not None:
                warnings.append(f"{option} does nothing without --trace-failures")
    if tags:
        warnings.extend(_unknown_tags(loaded, tags))
    if baseline is not None:
        warnings.extend(_other_inventory(baseline, loaded.paths))
    return warnings


def _unknown_tags(loaded: Inventory, tags: set[str]) -> list[str]:
    """``--tags web,nope``: say that no target carries ``nope`` (a typo selects nothing)."""
    from .inventory.targets import TargetList
    from .report._text import plural

    targets = loaded.targets
    templates = (
        [spec.template for spec in targets.specs] if isinstance(targets, TargetList) else targets
    )
    known = {tag for target in templates for tag in target.tags}
    unknown = sorted(tags - known)
    if not unknown:
        return []
    shown = ", ".join(repr(t) for t in unknown)
    offered = ", ".join(sorted(known)[:20]) or "none"
    return [
        f"--tags: no target carries the {plural(len(unknown), 'tag')} {shown} "
        f"(the inventory's tags: {offered})"
    ]


def _other_inventory(baseline: Baseline, paths: Sequence[str]) -> list[str]:
    """A baseline written for other inventory files compares different things: say so."""
    from .report.baseline import same_inventories

    if same_inventories(baseline.inventories, paths):
        return []
    then = ", ".join(baseline.inventories) or "no inventory"
    return [
        f"--baseline {baseline.path} was written for {then}, this scan reads "
        f"{', '.join(paths)}: new, fixed and removed compare different inventories"
    ]


def _tls_settings_work(inventory: Inventory) -> bool:
    """Every distinct ``tls`` setting makes its context now (a client key that does not fit
    its certificate, a CA file that is no PEM): said with where, before anything is probed.
    The contexts are kept for the scan (and its forked workers)."""
    from .inventory.targets import TargetList

    targets = inventory.targets
    if not isinstance(targets, TargetList):
        return True
    tried: set[object] = set()
    problems = []
    for spec in targets.specs:
        settings = spec.template.tls
        if settings is None or settings in tried:
            continue
        tried.add(settings)
        from .probers.tls import TlsConfigError, context_for

        try:
            context_for(settings)
        except TlsConfigError as exc:
            problems.append(f"{spec.template.source}: tls: {exc}")
    for problem in problems:
        _say(problem)
    if problems:
        from .report._text import counted

        _say(f"{counted(len(problems), 'problem')}; nothing was probed")
    return not problems


def cmd_check(args: argparse.Namespace) -> int:
    from .verdict import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_USAGE, exit_code, with_artefacts

    plan = plan_check(args)
    if plan is None:
        return EXIT_USAGE
    # The plan (the inventory's targets above all) lives until the process ends: frozen,
    # the collector never walks it again, nor, after a fork, does any worker's (which
    # would also copy the pages it touched).
    gc.freeze()
    builder = None
    if plan.wants_report:
        from .report.document import ReportBuilder

        baseline = plan.baseline
        builder = ReportBuilder(
            baseline.change if baseline else None, baseline.category if baseline else None
        )
    if plan.workers > 1:
        summary, failed_workers = _check_with_workers(plan, builder)
    else:
        from .engine import run_scan_sync
        from .observers import FanOut
        from .report import stream_observer

        change_of = _change_of(plan.baseline)
        stream = stream_observer(
            plan.format, show_ok=plan.show_ok, change_of=change_of, verbosity=plan.verbosity
        )
        summary_view = _summary_view(plan, change_of)
        observers = [o for o in (stream, summary_view, builder) if o is not None]
        observer = FanOut(*observers) if len(observers) > 1 else stream
        summary, failed_workers = run_scan_sync(plan.inventory, observer, plan.options), []
    code = exit_code(summary)
    removed = _removed(plan, summary, builder)
    if builder is not None:
        from .inventory import printable_path

        document = builder.document(
            summary,
            inventories=plan.inventory.paths,
            shard=str(plan.shard) if plan.shard else None,
            baseline=printable_path(plan.baseline.path) if plan.baseline else None,
            removed=removed,
        )
        unwritten = plan.artefacts.write(document)
        for problem in unwritten:
            _say(problem)
        code = exit_code(summary, fail_on=plan.fail_on, new_failures=builder.new_failures())
        code = with_artefacts(code, unwritten=bool(unwritten))
    if failed_workers and code == EXIT_OK:
        return EXIT_INCONCLUSIVE  # part of the inventory went unchecked: never a pass
    return code


def _summary_view(
    plan: CheckPlan,
    change_of: Callable[[TargetResult], Change | None] | None,
    *,
    results: bool = True,
) -> Observer | None:
    """Beside JSON lines on stdout: the short summary (and progress) on stderr, unless -q.

    ``results``: whether it will see every target's result (not so from workers that
    send none): without them it shows the counts per category, and no progress.
    """
    if plan.format != "json" or plan.verbosity == "quiet":
        return None
    from .report import summary_observer

    return summary_observer(
        change_of=change_of,
        verbosity=plan.verbosity,
        progress=None if results else False,
        counts_only=not results,
    )


def _removed(
    plan: CheckPlan, summary: ScanSummary, builder: ReportBuilder | None
) -> list[RemovedEntry]:
    """The baseline's targets that the inventory no longer has; said on stderr (unless -q)."""
    baseline = plan.baseline
    if baseline is None:
        return []
    known = plan.known if plan.known is not None else plan.inventory
    every = dict(summary.counts).get("not_started", 0) == 0 and plan.shard is None
    if builder is not None and every and len(plan.inventory.targets) == len(known.targets):
        present: Callable[[str], bool] = builder.names().__contains__  # each has a result
    else:  # --tags, --shard, a stopped scan, no report: the names the inventory has
        present = {target.name for target in known.targets}.__contains__
    removed = baseline.removed(present)
    if removed and plan.verbosity != "quiet":
        from .report._text import counted

        failing = sum(1 for entry in removed if not entry.ok)
        shown = ", ".join(repr(entry.target) for entry in removed[:5])
        more = f" and {len(removed) - 5:,} more" if len(removed) > 5 else ""
        _say(
            f"removed since the baseline: {counted(len(removed), 'target')} "
            f"({failing:,} failing then): {shown}{more}"
        )
    return removed


def _refused_with_workers(plan: CheckPlan) -> str | None:
    """Why ``--workers N`` cannot go with the other options given, if it cannot."""
    if plan.shard is not None:
        return (
            "--workers shards the scan itself; run --shard scans as separate jobs "
            "instead of combining the two"
        )
    per_host = plan.options.per_address
    if per_host and per_host < plan.workers:
        return (
            f"--per-host {per_host} is shared out among the workers, at least one "
            f"each: use --workers {per_host} or fewer"
        )
    return None


def worker_job(plan: CheckPlan, *, results: bool) -> WorkerJob:
    """What the workers of ``plan`` run (each a slice of it: :func:`scanner.workers.split`)."""
    from .workers import WorkerJob

    return WorkerJob(
        inventory=plan.inventory,
        options=plan.options,
        stream=plan.format == "json",
        results=results,
        change_of=_change_of(plan.baseline),
    )


def _check_with_workers(
    plan: CheckPlan, builder: ReportBuilder | None
) -> tuple[ScanSummary, list[str]]:
    """``check --workers N``: N forked processes, one stream, one verdict, one report."""
    from .observers import BaseObserver, FanOut
    from .report import stream_observer
    from .workers import preload, run_workers

    preload()
    change_of = _change_of(plan.baseline)
    stream = stream_observer(
        plan.format, show_ok=plan.show_ok, change_of=change_of, verbosity=plan.verbosity
    )
    results: list[Observer] = [builder] if builder is not None else []
    if plan.format != "json":
        results.insert(0, stream)  # the console shows the results the workers send
    # beside JSON, the summary on stderr lists failures only if the workers send their
    # results anyway (for the reports): sending them for it alone costs the parent about
    # 6 µs a target, the time the workers save; without them it says the counts
    summary_view = _summary_view(plan, change_of, results=bool(results))
    if summary_view is not None and results:
        results.append(summary_view)
    sink = getattr(stream, "sink", None)
    outcome = run_workers(
        worker_job(plan, results=bool(results)),
        plan.workers,
        frame=FanOut(stream, summary_view) if summary_view is not None else stream,
        observer=FanOut(*results) if results else BaseObserver(),
        relay=sink.write if sink is not None else _drop,
        flush=stream.flush,
    )
    for problem in outcome.problems:
        _say(problem)
    return outcome.summary, outcome.problems


def _drop(_data: bytes) -> None:
    pass


#: ``scanner wait`` keeps a state per target: an inventory this large is no set of
#: dependencies to wait for (a /16 on a port, 65,536 targets, is the most it takes)
MAX_WAIT_TARGETS = 65536


def cmd_wait(args: argparse.Namespace, command: list[str] | None) -> int:
    """``scanner wait``: rounds of checks until every target is ready; then CMD, or exit 0."""
    import resource

    from .verdict import EXIT_OK, EXIT_USAGE, wait_exit_code, with_artefacts

    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)  # CMD gets it back as it was
    if command == []:
        _say("wait: nothing after --: give the command to run once the targets are ready")
        return EXIT_USAGE
    artefacts = _artefacts(args)
    problems = artefacts.problems([path for path in args.inventories if os.path.isfile(path)])
    for problem in problems:
        _say(problem)
    if problems:
        return EXIT_USAGE
    selected = _selected(args, "wait for")
    if selected is None:
        return EXIT_USAGE
    loaded, inventory, tags = selected
    for warning in _unknown_tags(loaded, tags) if tags else ():
        _warn(warning)
    if len(inventory.targets) > MAX_WAIT_TARGETS:
        _say(
            f"wait: {len(inventory.targets):,} targets, at most {MAX_WAIT_TARGETS:,}: wait "
            "for the dependencies of a job (use check for a sweep)"
        )
        return EXIT_USAGE
    from .engine import ScanOptions
    from .wait import WaitOptions, summary_line, wait_ready_sync

    options = WaitOptions(
        deadline=args.deadline or None,
        interval=args.interval,
        max_interval=args.max_interval,
        stable=args.stable,
        scan=ScanOptions(
            handle_signals=True,
            concurrency=args.concurrency,
            rate=args.rate,
            per_address=args.per_host,
            allow=tuple(args.allow),
        ),
    )
    fmt = _resolve_format(args.format)
    outcome = wait_ready_sync(inventory, _wait_observer(fmt), options)
    code = wait_exit_code(outcome.summary, ready=outcome.ready)
    if fmt == "json" and outcome.waiting:
        took = outcome.summary.duration_s
        _say(f"not ready after {took:.0f} s: {summary_line(outcome.waiting)}")
    if artefacts.wanted:
        from .report.document import wait_report

        unwritten = artefacts.write(wait_report(outcome, inventories=inventory.paths))
        for problem in unwritten:
            _say(problem)
        code = with_artefacts(code, unwritten=bool(unwritten))
    from . import signals

    if code != EXIT_OK or not command or signals.received() is not None:
        return code
    return _exec(command, fd_limit)


def _wait_observer(fmt: str) -> WaitObserver:
    if fmt == "json":
        from .report.events import WaitEventWriter

        return WaitEventWriter()
    from .report._sink import LineSink, SinkText, raw_stdout
    from .report.live import WaitConsole

    sink = LineSink(raw_stdout(), batch_bytes=1)
    return WaitConsole(SinkText(sink, like=sys.stdout), sink=sink)


def _exec(command: list[str], fd_limit: tuple[int, int]) -> int:
    """Run ``command`` in this process's place (its exit code and signals are its own).

    What Python changed for itself is put back first: SIGPIPE and SIGXFSZ, which it
    ignores (a ``yes | head`` inside CMD would never end), and the descriptor limit the
    scan raised. Returns only when the command cannot be run: 127 not found, 126 else.
    """
    import resource
    import signal

    from .verdict import EXIT_CANNOT_RUN, EXIT_NOT_FOUND

    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, fd_limit)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        os.execvp(command[0], command)  # noqa: S606 - CMD as given, in our place: no shell
    except FileNotFoundError:
        _say(f"cannot run {command[0]!r}: not found")
        return EXIT_NOT_FOUND
    except OSError as exc:
        _say(f"cannot run {command[0]!r}: {exc.strerror or exc}")
        return EXIT_CANNOT_RUN


def cmd_trace(args: argparse.Namespace) -> int:
    """``scanner trace HOST:PORT``: a one-target check whose every address is traced.

    The check's own handshake (timeout ``--hop-timeout``, no retry) gives the category
    and hint; the trace says where the path ends. Events and exit codes are check's.
    """
    from .engine import ScanOptions, run_scan_sync
    from .inventory import display
    from .models import Inventory, Target
    from .probers.trace import TraceConfig
    from .report import stream_observer
    from .verdict import exit_code

    host, port = args.endpoint
    name = display(host, port)
    hop_timeout = args.hop_timeout or DEFAULT_HOP_TIMEOUT
    target = Target(
        name=name, host=host, port=port, timeout=hop_timeout, retries=0, family=args.family
    )
    inventory = Inventory(paths=(name,), targets=(target,))
    fmt = _resolve_format(args.format)
    observer = stream_observer(fmt, show_ok=True, verbosity=args.verbosity)
    if fmt == "json" and args.verbosity != "quiet":
        from .observers import FanOut
        from .report import summary_observer

        observer = FanOut(observer, summary_observer(verbosity=args.verbosity))
    config = TraceConfig(
        max_hops=args.max_hops or DEFAULT_MAX_HOPS, hop_timeout=hop_timeout, include_ok=True
    )
    options = ScanOptions(handle_signals=True, trace_failures=True, trace=config)
    return exit_code(run_scan_sync(inventory, observer, options))


def cmd_explain(args: argparse.Namespace) -> int:
    """``scanner explain TARGET|INVENTORY [NAME...]``: one explanation per target."""
    from .verdict import EXIT_USAGE

    if os.path.exists(args.what):
        loaded = _load([args.what])
        if loaded is None:
            return EXIT_USAGE
        inventory = loaded
        if args.names:
            from msgspec.structs import replace

            wanted = set(args.names)
            targets = [t for t in loaded.targets if t.name in wanted]
            missing = wanted - {t.name for t in targets}
            if missing:
                _say(f"no target named {', '.join(sorted(missing))} in {args.what}")
                return EXIT_USAGE
            inventory = replace(loaded, targets=targets)
    else:
        endpoint = _endpoint_or_none(args.what)
        if endpoint is None:
            _say(f"{args.what!r} is neither a file nor HOST:PORT ([v6]:PORT for IPv6)")
            return EXIT_USAGE
        from .inventory import display
        from .models import Inventory, Target

        host, port = endpoint
        name = display(host, port)
        inventory = Inventory(paths=(name,), targets=(Target(name, host, port, retries=0),))
    from .diagnose import explain

    entries, code = explain(inventory, hop_timeout=args.hop_timeout)
    if _resolve_format(args.format) == "json":
        from .report.events import JsonEventWriter
        from .verdict import event_level

        writer = JsonEventWriter()
        for entry in entries:
            writer.emit("explain.result", event_level(entry.ok, entry.category), entry)
        writer.sink.drain()
    else:
        from .report.console import format_explanation, use_colour

        colour = use_colour(sys.stdout)

        def paint(style: str, text: str) -> str:
            from .report.console import _RESET, _STYLE

            return f"{_STYLE[style]}{text}{_RESET}" if colour else text

        print("\n\n".join(format_explanation(entry, paint) for entry in entries))
    return code


def _endpoint_or_none(text: str) -> tuple[str, int] | None:
    try:
        return _endpoint(text)
    except argparse.ArgumentTypeError:
        return None


def cmd_merge(args: argparse.Namespace) -> int:
    """One verdict (and one set of artefacts) from the reports of several shards."""
    from .verdict import EXIT_USAGE, exit_code, with_artefacts

    artefacts = _usable_artefacts(args)
    if artefacts is None:
        return EXIT_USAGE
    from msgspec.structs import replace

    from .report.document import ReportError, load_report, summary_of
    from .report.merge import merge_reports

    baseline = _load_baseline(args.baseline)
    if baseline is False:
        return EXIT_USAGE
    try:
        report = merge_reports([(path, load_report(path)) for path in args.reports])
    except ReportError as exc:
        _say(f"merge: {exc}")
        return EXIT_USAGE
    if baseline:
        from .inventory import printable_path

        for warning in _other_inventory(baseline, report.inventories):
            _warn(warning)
        names = {e.target for e in report.targets}
        report = replace(
            report,
            baseline=printable_path(baseline.path),
            targets=[baseline.annotate(e) for e in report.targets],
            removed=baseline.removed(names.__contains__),
        )
    unwritten = artefacts.write(report)
    for problem in unwritten:
        _say(problem)
    summary = summary_of(report.summary)
    from .report._text import counted

    _say(
        f"merged {counted(len(args.reports), 'report')}: "
        f"{counted(len(report.targets), 'target')}, {summary.ok:,} ok, "
        f"{summary.failed:,} failed, {summary.inconclusive:,} inconclusive"
        + (f", {len(report.removed):,} removed since the baseline" if report.removed else "")
    )
    new_failures = sum(1 for e in report.targets if e.change == "new_failure")
    code = exit_code(summary, fail_on=args.fail_on, new_failures=new_failures, signals=False)
    return with_artefacts(code, unwritten=bool(unwritten))


def cmd_completion(parser: argparse.ArgumentParser, shell: str) -> int:
    """``scanner completion bash|zsh|fish``: shtab writes the script from this very parser,
    so it completes exactly the commands, options and choices there are (files where a
    command takes a file). shtab is imported here only: ``--help`` stays fast."""
    import shtab

    files = {"inventories", "reports", "junit", "markdown", "report", "baseline"}
    for action in _all_actions(parser):
        if action.dest in files:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=shell), end="")
    return 0


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found = []
    for action in parser._actions:
        found.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found.extend(_all_actions(child))
    return found
