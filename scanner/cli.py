"""Command line: the only place that parses argv, prints to the terminal and exits.

Every command drives the same engine (:mod:`scanner.engine`) with typed inputs and
reads typed results; this module only turns argv into those inputs, wires observers
and writers to the engine, prints what a person must read, and maps the verdict
(:mod:`scanner.verdict`) to the exit code.

Imports are lazy: ``scanner --help`` and ``scanner validate`` must start in well under
150 ms, so nothing heavy (asyncio stacks, msgspec, structlog) is imported up front.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, NoReturn

if TYPE_CHECKING:
    from .engine import ScanOptions
    from .inventory.selection import Shard
    from .models import Inventory, ScanSummary, TargetResult
    from .observers import Observer
    from .report.artefacts import Artefacts
    from .report.baseline import Baseline
    from .report.document import Change, ReportBuilder
    from .verdict import FailOn
    from .wait import WaitObserver
    from .workers import WorkerJob


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with our message format (its default is 2 too)."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="scanner",
        description="Check a whole service inventory at once and say why each failing "
        "endpoint fails.",
        epilog="Exit codes: 0 all met · 1 failures · 2 usage/inventory error · "
        "3 inconclusive (local trouble) · 130/143 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"scanner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="probe every target of the inventories",
        description="Probe every target of the inventories. An argument that is not a file "
        "and reads HOST:PORT ([v6]:PORT for IPv6) is a target; - reads an inventory from stdin.",
    )
    check.add_argument("inventories", nargs="+", metavar="INVENTORY|HOST:PORT")
    check.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console on a TTY, json otherwise",
    )
    check.add_argument(
        "--concurrency",
        "-c",
        type=_positive_int,
        default=None,
        metavar="N",
        help="max probes in flight (default 1024, capped by the fd limit)",
    )
    check.add_argument(
        "--timeout",
        "-t",
        type=_positive_float,
        default=None,
        metavar="S",
        help="seconds per handshake attempt (overrides the inventory)",
    )
    check.add_argument(
        "--retries",
        "-r",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="extra attempts for transient failures (overrides the inventory)",
    )
    check.add_argument(
        "--tags", default=None, metavar="A,B", help="only targets carrying one of these tags"
    )
    _add_adhoc_options(check)
    check.add_argument(
        "--max-duration",
        type=_positive_float,
        default=None,
        metavar="S",
        help="global deadline; unfinished targets end as inconclusive",
    )
    check.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        type=_network,
        help="scope guard (repeatable): only these networks get packets, "
        "added to the inventory's scope.allow",
    )
    check.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        metavar="N",
        help="at most N handshake attempts per second overall",
    )
    check.add_argument(
        "--per-host",
        type=_positive_int,
        default=None,
        metavar="N",
        help="at most N handshakes in flight to one address",
    )
    check.add_argument(
        "--show-ok", action="store_true", help="console format: list targets that passed too"
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
        metavar="N",
        help="scan with N processes, each every N-th target, one stream; "
        "default auto: one per core for 10,000+ IP-address targets "
        "without --rate/--per-host, else 1",
    )
    check.add_argument(
        "--trace-failures",
        action="store_true",
        help="trace the path of failed targets: which hop drops or rejects",
    )
    _add_trace_options(check)
    _add_artefact_options(check)

    trace = sub.add_parser(
        "trace",
        help="path trace of one endpoint: which hop drops or rejects",
        description="TCP handshakes to HOST:PORT with rising hop limits; "
        "routers answer ICMP time exceeded (no privileges "
        "needed). Exits like check: 0 when the port is open.",
    )
    trace.add_argument(
        "endpoint",
        metavar="HOST:PORT",
        type=_endpoint,
        help="name or IP literal and port ([v6]:port for IPv6)",
    )
    trace.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console on a TTY, json otherwise",
    )
    trace.add_argument(
        "--family",
        choices=("any", "ipv4", "ipv6"),
        default="any",
        help="which addresses of a name to trace (default: all)",
    )
    _add_trace_options(trace)

    explain = sub.add_parser(
        "explain",
        help="why each target fails: name, route, handshake, path, local evidence, cause",
        description="Check the targets, trace their failures, and collect the evidence a "
        "person would collect by hand: how each name resolved (source, search trail, names "
        "nearby), the route and source address per address, the handshake and ICMP detail, "
        "the path, and, for this host's own addresses, what listens where. Ends each target "
        "with its most likely cause and the next thing to check. Exits like check.",
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
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="seconds to wait for each wave of hop limits of a trace (default 1)",
    )

    _add_wait_parser(sub)

    merge = sub.add_parser(
        "merge",
        help="one verdict from the --report files of several shards",
        description="Join the --report documents of several shards (or "
        "scans) into one verdict; exits like check.",
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT")
    _add_artefact_options(merge)

    validate = sub.add_parser("validate", help="parse and validate only; probe nothing")
    validate.add_argument("inventories", nargs="+", metavar="INVENTORY")

    demo = sub.add_parser("demo", help="self-contained showcase on loopback, no setup")
    demo.add_argument("--format", "-f", choices=("auto", "console", "json"), default="auto")
    return parser


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


def _add_wait_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    wait = sub.add_parser(
        "wait",
        help="wait until every target is ready, then run CMD (or exit 0)",
        usage="scanner wait INVENTORY|HOST:PORT... [options] [-- CMD [ARG ...]]",
        description="Check the targets in rounds until every one meets its expectation "
        "(expect: closed too), then run CMD in scanner's place (its exit code is the "
        "result) or exit 0. A target ready is not probed again; names are resolved again "
        "every round; a failing target is probed again after --interval, doubled each "
        "round it fails alike, up to --max-interval, with jitter. At the deadline: exit 1, "
        "saying for each target not ready its last category, hint and for how long.",
        epilog="Exit codes: 0 ready (or CMD's own) · 1 not ready by the deadline · "
        "2 usage/inventory error · 4 ready, but an artefact could not be written · "
        "126/127 CMD cannot be run / not found · 130/143 interrupted.",
    )
    wait.add_argument("inventories", nargs="+", metavar="INVENTORY|HOST:PORT")
    wait.add_argument(
        "--deadline",
        type=_non_negative_float,
        default=60.0,
        metavar="S",
        help="give up after S seconds (default 60; 0: wait for ever)",
    )
    wait.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="seconds between a target's rounds at first (default 1)",
    )
    wait.add_argument(
        "--max-interval",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="the backoff's cap (default 5)",
    )
    wait.add_argument(
        "--stable",
        type=_positive_int,
        default=1,
        metavar="N",
        help="good rounds in a row before a target counts as ready (default 1)",
    )
    wait.add_argument(
        "--format",
        "-f",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto (default): console (live lines) on a TTY, json otherwise",
    )
    wait.add_argument(
        "--timeout",
        "-t",
        type=_positive_float,
        default=None,
        metavar="S",
        help="seconds per handshake attempt (overrides the inventory)",
    )
    wait.add_argument(
        "--retries",
        "-r",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="extra attempts for transient failures within a round (overrides the inventory)",
    )
    _add_adhoc_options(wait)
    wait.add_argument(
        "--tags", default=None, metavar="A,B", help="only targets carrying one of these tags"
    )
    wait.add_argument(
        "--concurrency",
        "-c",
        type=_positive_int,
        default=None,
        metavar="N",
        help="max probes in flight per round (default 1024, capped by the fd limit)",
    )
    wait.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        metavar="N",
        help="at most N handshake attempts per second in each round",
    )
    wait.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        type=_network,
        help="scope guard (repeatable), added to the inventory's scope.allow",
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


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _add_trace_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-hops",
        type=_hop_limit,
        default=30,
        metavar="N",
        help="highest hop limit tried (default 30)",
    )
    command.add_argument(
        "--hop-timeout",
        type=_positive_float,
        default=2.0,
        metavar="S",
        help="seconds to wait for each wave of hop limits (default 2)",
    )


def _hop_limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError("must be 1 to 255")
    return value


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
        help="compare with an earlier --report: new failures, fixed, changed category",
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _workers(text: str) -> int | None:
    return None if text == "auto" else _positive_int(text)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def run() -> NoReturn:
    """The console script: :func:`main`, then leave without interpreter teardown.

    Tearing down the interpreter (every module, every object of a big scan) took about
    25 ms after the last event was written: time a CI job waits for nothing. Output is
    flushed first and nothing else is left open, so skipping it loses nothing.
    """
    code = main()
    from . import signals
    from .verdict import EXIT_SIGNAL

    received = signals.received()
    if received is not None:  # a signal came, even after the scan: say so (its work is done)
        code = EXIT_SIGNAL[received]
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


def main(argv: Sequence[str] | None = None) -> int:
    own, command = split_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    args.then = command  # wait's CMD
    if args.command == "validate":
        return cmd_validate(args.inventories)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(_resolve_format(args.format))
    if args.command == "merge":
        return cmd_merge(args)
    if args.command == "trace":
        return cmd_trace(args)
    if args.command == "explain":
        return cmd_explain(args)
    return cmd_wait(args, args.then) if args.command == "wait" else cmd_check(args)


def _resolve_format(choice: str) -> str:
    if choice == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return str(choice)


def _say(message: str) -> None:
    print(f"scanner: {message}", file=sys.stderr)


def _load(paths: Sequence[str]) -> Inventory | None:
    from .inventory import InventoryError, load_inventories

    try:
        return load_inventories(paths)
    except InventoryError as exc:
        for problem in exc.problems:
            _say(str(problem))
        count = len(exc.problems)
        _say(f"{count} problem{'s' if count != 1 else ''}; nothing was probed")
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
    count = len(problems)
    _say(f"{count} problem{'s' if count != 1 else ''}; nothing was probed")
    return None


def cmd_validate(paths: Sequence[str]) -> int:
    from .verdict import EXIT_OK, EXIT_USAGE

    inventory = _load(paths)
    if inventory is None:
        return EXIT_USAGE
    from .inventory.targets import TargetList

    targets = inventory.targets
    entries = len(targets.specs) if isinstance(targets, TargetList) else len(targets)
    # counted from the entries, never by expanding them: a /16 on 16 ports is instant
    print(f"{', '.join(paths)}: ok, {len(targets):,} targets from {entries} entries")
    return EXIT_OK


def _scan_options(args: argparse.Namespace) -> ScanOptions:
    from .engine import ScanOptions

    trace = None
    if args.trace_failures:  # the trace module only when asked for: start-up time counts
        from .probers.trace import TraceConfig

        trace = TraceConfig(max_hops=args.max_hops, hop_timeout=args.hop_timeout)
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


class CheckPlan(NamedTuple):
    """A ``check`` as argv asked for it, typed: every option lands in a field here.

    A NamedTuple, not a Struct: msgspec's import alone is 29 ms, and ``--help`` pays for
    what this module imports.
    """

    inventory: Inventory
    options: ScanOptions
    format: str
    show_ok: bool
    artefacts: Artefacts
    baseline: Baseline | None
    fail_on: FailOn
    shard: Shard | None
    workers: int

    @property
    def wants_report(self) -> bool:
        return self.artefacts.wanted or self.fail_on == "new"


def plan_check(args: argparse.Namespace) -> CheckPlan | None:  # noqa: PLR0911 - one return per usage error, each said first
    """The typed plan of ``scanner check``, or None after saying what is wrong (exit 2)."""
    artefacts = _artefacts(args)
    problems = _usage_problems(args, artefacts)
    for problem in problems:
        _say(problem)
    if problems:
        return None
    baseline = _load_baseline(args.baseline)
    if baseline is False:
        return None
    loaded = _load_arguments(args)
    if loaded is None or not _tls_settings_work(loaded):
        return None
    from .inventory import selection

    tags = {t.strip() for t in args.tags.split(",") if t.strip()} if args.tags else None
    inventory = selection.select(loaded, tags=tags, timeout=args.timeout, retries=args.retries)
    if not inventory.targets:
        _say(f"no target carries any of the tags {args.tags!r}; nothing to check")
        return None
    if args.shard is not None:
        inventory = selection.shard(inventory, args.shard)
    fmt = _resolve_format(args.format)
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
        _say(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was probed")
    return not problems


def cmd_check(args: argparse.Namespace) -> int:
    from .verdict import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_USAGE, exit_code, with_artefacts

    plan = plan_check(args)
    if plan is None:
        return EXIT_USAGE
    builder = None
    if plan.wants_report:
        from .report.document import ReportBuilder

        builder = ReportBuilder(plan.baseline.change if plan.baseline else None)
    if plan.workers > 1:
        summary, failed_workers = _check_with_workers(plan, builder)
    else:
        from .engine import run_scan_sync
        from .observers import FanOut
        from .report import stream_observer

        stream = stream_observer(
            plan.format, show_ok=plan.show_ok, change_of=_change_of(plan.baseline)
        )
        observer = FanOut(stream, builder) if builder is not None else stream
        summary, failed_workers = run_scan_sync(plan.inventory, observer, plan.options), []
    code = exit_code(summary)
    if builder is not None:
        from .inventory import printable_path

        document = builder.document(
            summary,
            inventories=plan.inventory.paths,
            shard=str(plan.shard) if plan.shard else None,
            baseline=printable_path(plan.baseline.path) if plan.baseline else None,
        )
        unwritten = plan.artefacts.write(document)
        for problem in unwritten:
            _say(problem)
        code = exit_code(summary, fail_on=plan.fail_on, new_failures=builder.new_failures())
        code = with_artefacts(code, unwritten=bool(unwritten))
    if failed_workers and code == EXIT_OK:
        return EXIT_INCONCLUSIVE  # part of the inventory went unchecked: never a pass
    return code


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
    stream = stream_observer(plan.format, show_ok=plan.show_ok, change_of=_change_of(plan.baseline))
    results: list[Observer] = [builder] if builder is not None else []
    if plan.format != "json":
        results.insert(0, stream)  # the console shows the results the workers send
    sink = getattr(stream, "sink", None)
    outcome = run_workers(
        worker_job(plan, results=bool(results)),
        plan.workers,
        frame=stream,
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


def cmd_wait(args: argparse.Namespace, command: list[str] | None) -> int:  # noqa: PLR0911 - one return per usage error, each said first
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
    loaded = _load_arguments(args)
    if loaded is None or not _tls_settings_work(loaded):
        return EXIT_USAGE
    from .inventory import selection

    tags = {t.strip() for t in args.tags.split(",") if t.strip()} if args.tags else None
    inventory = selection.select(loaded, tags=tags, timeout=args.timeout, retries=args.retries)
    if not inventory.targets:
        _say(f"no target carries any of the tags {args.tags!r}; nothing to wait for")
        return EXIT_USAGE
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
    target = Target(
        name=name, host=host, port=port, timeout=args.hop_timeout, retries=0, family=args.family
    )
    inventory = Inventory(paths=(name,), targets=(target,))
    observer = stream_observer(_resolve_format(args.format), show_ok=True)
    config = TraceConfig(max_hops=args.max_hops, hop_timeout=args.hop_timeout, include_ok=True)
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

    artefacts = _artefacts(args)
    problems = _usage_problems(args, artefacts)
    for problem in problems:
        _say(problem)
    if problems:
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

        report = replace(
            report,
            baseline=printable_path(baseline.path),
            targets=[
                replace(e, change=baseline.change(e.target, e.ok, e.category))
                for e in report.targets
            ],
        )
    unwritten = artefacts.write(report)
    for problem in unwritten:
        _say(problem)
    summary = summary_of(report.summary)
    _say(
        f"merged {len(args.reports)} reports: {len(report.targets)} targets, "
        f"{summary.ok} ok, {summary.failed} failed, {summary.inconclusive} inconclusive"
    )
    new_failures = sum(1 for e in report.targets if e.change == "new_failure")
    code = exit_code(summary, fail_on=args.fail_on, new_failures=new_failures, signals=False)
    return with_artefacts(code, unwritten=bool(unwritten))
