"""Command line: the only place that parses argv, prints to the terminal and exits.

Imports are lazy: ``scanner --help`` and ``scanner validate`` must start in well under
150 ms, so nothing heavy (asyncio stacks, aiodns, structlog) is imported up front.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, NoReturn

if TYPE_CHECKING:
    from .baseline import Baseline
    from .engine import ScanObserver
    from .models import Inventory, ScanSummary, TargetResult
    from .report.json_report import Report
    from .shard import Shard

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


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

    check = sub.add_parser("check", help="probe every target of the inventories")
    check.add_argument("inventories", nargs="+", metavar="INVENTORY")
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
    check.add_argument("--slice", type=_shard, default=None, help=argparse.SUPPRESS)
    check.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="scan with N processes, each every N-th target, one JSON stream; "
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
    from .shard import parse_shard

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
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader left, or closed
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args.inventories)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(_resolve_format(args.format))
    if args.command == "merge":
        return cmd_merge(args)
    if args.command == "trace":
        return cmd_trace(args)
    return cmd_check(args)


def _resolve_format(choice: str) -> str:
    if choice == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return str(choice)


#: inventories this process has loaded, by their paths: a forked ``--workers`` process
#: takes its parent's instead of parsing the files again (10,000 lines: about 0.3 s each)
_loaded: dict[tuple[str, ...], Inventory] = {}


def _load(paths: Sequence[str]) -> Inventory | None:
    if tuple(paths) in _loaded:
        return _loaded[tuple(paths)]
    from .inventory import InventoryError, load_inventories

    try:
        return load_inventories(paths)
    except InventoryError as exc:
        for problem in exc.problems:
            print(f"scanner: {problem}", file=sys.stderr)
        count = len(exc.problems)
        print(
            f"scanner: {count} problem{'s' if count != 1 else ''}; nothing was probed",
            file=sys.stderr,
        )
        return None


def cmd_validate(paths: Sequence[str]) -> int:
    inventory = _load(paths)
    if inventory is None:
        return EXIT_USAGE
    from .targets import TargetList

    targets = inventory.targets
    entries = len(targets.specs) if isinstance(targets, TargetList) else len(targets)
    # counted from the entries, never by expanding them: a /16 on 16 ports is instant
    print(f"{', '.join(paths)}: ok, {len(targets):,} targets from {entries} entries")
    return EXIT_OK


def select_targets(
    inventory: Inventory, tags: str | None, timeout: float | None, retries: int | None
) -> Inventory:
    """Apply --tags, --timeout and --retries to a loaded inventory (nothing is expanded)."""
    from msgspec.structs import replace

    from .targets import TargetList

    wanted = {t.strip() for t in tags.split(",") if t.strip()} if tags else None
    targets = inventory.targets
    if not isinstance(targets, TargetList):
        raise TypeError("select_targets needs the TargetList of a loaded inventory")
    return replace(inventory, targets=targets.select(tags=wanted, timeout=timeout, retries=retries))


def exit_code(summary: ScanSummary) -> int:
    if summary.interrupted_by in EXIT_SIGNAL:
        return EXIT_SIGNAL[summary.interrupted_by]
    if summary.failed:
        return EXIT_FAILED
    if summary.inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def make_observer(
    fmt: str, show_ok: bool = False, baseline: Baseline | None = None
) -> ScanObserver:
    change_of: Callable[[TargetResult], str | None] | None = None
    if baseline is not None:

        def change_of(result: TargetResult) -> str | None:
            return baseline.change(result.target.name, result.ok, result.category.value)

    if fmt == "json":
        from .events import JsonEventWriter

        return JsonEventWriter(change_of=change_of)
    from .report.console import ConsoleReport

    return ConsoleReport(sys.stdout, sys.stderr, show_ok=show_ok, change_of=change_of)


def cmd_check(args: argparse.Namespace) -> int:
    if not _artefact_args_ok(args):
        return EXIT_USAGE
    baseline = _load_baseline(args.baseline)
    if baseline is False:
        return EXIT_USAGE
    loaded = _load(args.inventories)
    if loaded is None:
        return EXIT_USAGE
    inventory = select_targets(loaded, args.tags, args.timeout, args.retries)
    if not inventory.targets:
        print(
            f"scanner: no target carries any of the tags {args.tags!r}; nothing to check",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers is None:
        args.workers = auto_workers(args, inventory)
    if args.workers > 1:
        _loaded[tuple(args.inventories)] = loaded  # for the workers forked from here
        return _check_with_workers(args, inventory)
    if args.shard is not None:
        inventory = _shard_inventory(inventory, args.shard)
    if args.slice is not None:  # a --workers process: every N-th target, balanced
        from msgspec.structs import replace

        from .targets import EveryNth

        inventory = replace(
            inventory, targets=EveryNth(inventory.targets, args.slice.index - 1, args.slice.count)
        )
    import anyio

    from .engine import ScanOptions, run_scan

    observer = make_observer(_resolve_format(args.format), args.show_ok, baseline)
    trace = None
    if args.trace_failures:  # the trace module only when asked for: start-up time counts
        from .trace import TraceConfig

        trace = TraceConfig(max_hops=args.max_hops, hop_timeout=args.hop_timeout)
    options = ScanOptions(
        concurrency=args.concurrency,
        max_duration=args.max_duration,
        allow=tuple(args.allow),
        rate=args.rate,
        per_address=args.per_host,
        keep_results=_wants_report(args),
        trace_failures=args.trace_failures,
        trace=trace,
    )
    started = _utc_now() if _wants_report(args) else ""  # the report module only if needed
    summary, results = anyio.run(
        run_scan, inventory, observer, options, backend_options=_backend_options()
    )
    if _wants_report(args):
        from .inventory import printable_path
        from .report.json_report import build_report

        changes = (
            {r.target.name: baseline.change(r.target.name, r.ok, r.category.value) for r in results}
            if baseline
            else None
        )
        report = build_report(
            results,
            summary,
            inventories=inventory.paths,
            started=started,
            finished=_utc_now(),
            shard=str(args.shard) if args.shard else None,
            baseline=printable_path(baseline.path) if baseline else None,
            changes=changes,
        )
        if not _write_artefacts(report, args):
            return EXIT_USAGE
        if args.fail_on == "new" and summary.interrupted_by not in EXIT_SIGNAL:
            return report_exit_code(report, "new")
    return exit_code(summary)


#: ``--workers auto`` starts several processes only for at least this many targets: below,
#: forking, a second event loop and relaying the streams cost more than they save.
AUTO_WORKERS_MIN_TARGETS = 10_000
AUTO_WORKERS_MAX = 8


def auto_workers(args: argparse.Namespace, inventory: Inventory) -> int:
    """How many processes ``--workers auto`` uses: one per core when it pays, else one.

    Only for big JSON scans of IP addresses and networks with no limit that must hold
    across the whole scan (``--rate`` and ``--per-host`` shared out among processes are
    stricter than asked), no names (each process would look them up again) and no
    artefacts: merging the workers' reports held every one of them in memory at once
    (262,144 targets: 1.2 GB, against 0.2 GB in one process) and took the time saved.
    """
    from .targets import TargetList, literal_family

    if (
        args.shard is not None
        or args.slice is not None
        or args.rate
        or args.per_host
        or args.trace_failures
        or _resolve_format(args.format) != "json"
        or _wants_report(args)
        or len(inventory.targets) < AUTO_WORKERS_MIN_TARGETS
    ):
        return 1
    targets = inventory.targets
    if not isinstance(targets, TargetList) or not all(
        spec.network is not None or literal_family(spec.template.host) for spec in targets.specs
    ):
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), AUTO_WORKERS_MAX))


def _check_with_workers(args: argparse.Namespace, inventory: Inventory) -> int:
    """``check --workers N``: N shard processes, one stream, one verdict, one set of artefacts."""
    if args.shard is not None:
        print(
            "scanner: --workers shards the scan itself; run --shard scans as separate jobs "
            "instead of combining the two",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if _resolve_format(args.format) != "json":
        print(
            "scanner: --workers needs --format json (the console view comes from one process)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.per_host and args.per_host < args.workers:
        print(
            f"scanner: --per-host {args.per_host} is shared out among the workers, "
            f"at least one each: use --workers {args.per_host} or fewer",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import tempfile

    from .workers import preload, run_workers, worker_command

    preload()

    with tempfile.TemporaryDirectory(prefix="scanner-workers-") as tmp:
        reports = (
            [os.path.join(tmp, f"worker-{k}.json") for k in range(1, args.workers + 1)]
            if _wants_report(args)
            else []
        )
        commands = [
            worker_command(args, k, args.workers, reports[k - 1] if reports else None)
            for k in range(1, args.workers + 1)
        ]
        outcome = run_workers(
            commands, inventory.paths, sys.stdout.buffer, reports, targets=len(inventory.targets)
        )
        for problem in outcome.failed_workers:
            print(f"scanner: {problem}", file=sys.stderr)
        code = exit_code(outcome.summary)
        if reports:
            from .report.json_report import ReportError, load_report, merge_reports

            try:
                loaded = [(p, load_report(p)) for p in outcome.reports]
                if outcome.dead:  # their targets go in as unchecked, never just missing
                    loaded.append(
                        (
                            "(unchecked)",
                            _unchecked_report(inventory, args.workers, outcome.dead, loaded),
                        )
                    )
                report = merge_reports(loaded)
            except ReportError as exc:
                print(f"scanner: workers' reports: {exc}", file=sys.stderr)
                return EXIT_INCONCLUSIVE if code == EXIT_OK else code
            if not _write_artefacts(report, args):
                return EXIT_USAGE
            if outcome.summary.interrupted_by not in EXIT_SIGNAL:
                code = report_exit_code(report, args.fail_on)
    if outcome.failed_workers and code == EXIT_OK:
        return EXIT_INCONCLUSIVE  # part of the inventory went unchecked: never a pass
    return code


def _unchecked_report(
    inventory: Inventory, workers: int, dead: Sequence[int], reports: Sequence[tuple[str, Report]]
) -> Report:
    """A report of the targets of dead workers that no report holds: each inconclusive.

    Their events may have gone out before the worker died, but a worker writes its report
    at the end: what is not in a report was not checked as far as the artefacts can say.
    """
    from .models import Category, ScanSummary, TargetResult
    from .report.json_report import build_report, utc_now
    from .targets import EveryNth

    reported = {entry["target"] for _, report in reports for entry in report["targets"]}
    unchecked = [
        TargetResult(
            target,
            ok=False,
            category=Category.INCONCLUSIVE,
            addresses=(),
            hint=f"not checked: worker {k} of {workers} ended before it reported this target",
        )
        for k in dead
        for target in EveryNth(inventory.targets, k - 1, workers)
        if target.name not in reported
    ]
    now = utc_now()
    # every one inconclusive: that is its category and its verdict (one key in counts)
    summary = ScanSummary.from_counts({"inconclusive": len(unchecked)}, 0.0, None)
    return build_report(unchecked, summary, inventories=inventory.paths, started=now, finished=now)


def cmd_trace(args: argparse.Namespace) -> int:
    """``scanner trace HOST:PORT``: a one-target check whose every address is traced.

    The check's own handshake (timeout ``--hop-timeout``, no retry) gives the category
    and hint; the trace says where the path ends. Events and exit codes are check's.
    """
    import anyio

    from .engine import ScanOptions, run_scan
    from .models import Inventory, Target
    from .targets import display
    from .trace import TraceConfig

    host, port = args.endpoint
    name = display(host, port)
    target = Target(
        name=name, host=host, port=port, timeout=args.hop_timeout, retries=0, family=args.family
    )
    inventory = Inventory(paths=(name,), targets=(target,))
    observer = make_observer(_resolve_format(args.format), show_ok=True)
    options = ScanOptions(
        keep_results=False,
        trace_failures=True,
        trace=TraceConfig(max_hops=args.max_hops, hop_timeout=args.hop_timeout, include_ok=True),
    )
    summary, _ = anyio.run(
        run_scan, inventory, observer, options, backend_options=_backend_options()
    )
    return exit_code(summary)


def _shard_inventory(inventory: Inventory, shard: Shard) -> Inventory:
    """Only the targets of ``shard``; an empty shard is fine (a small inventory, many shards)."""
    from msgspec.structs import replace

    from .targets import FilteredTargets

    return replace(
        inventory, targets=FilteredTargets(inventory.targets, lambda t: shard.holds(t.name))
    )


def _utc_now() -> str:
    from .report.json_report import utc_now

    return utc_now()


def _wants_report(args: argparse.Namespace) -> bool:
    return bool(
        args.junit
        or args.markdown
        or args.report
        or args.fail_on == "new"
        or os.environ.get("GITHUB_STEP_SUMMARY")
    )


def _artefact_args_ok(args: argparse.Namespace) -> bool:
    """Usage errors found before anything is probed: exit 2, as for a bad inventory."""
    if args.fail_on == "new" and not args.baseline:
        print(
            "scanner: --fail-on new needs --baseline REPORT (new compared with what?)",
            file=sys.stderr,
        )
        return False
    for option in ("junit", "markdown", "report"):
        path = getattr(args, option)
        if path is None:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            print(f"scanner: --{option} {path}: directory {parent} does not exist", file=sys.stderr)
            return False
    return True


def _load_baseline(path: str | None) -> Baseline | Literal[False] | None:
    """The baseline, None without --baseline, False (after a message) when unreadable."""
    if path is None:
        return None
    from .baseline import Baseline
    from .report.json_report import ReportError

    try:
        return Baseline.load(path)
    except ReportError as exc:
        print(f"scanner: --baseline {exc}", file=sys.stderr)
        return False


def _write_artefacts(report: Report, args: argparse.Namespace) -> bool:
    """Write every artefact asked for; the Markdown goes to GitHub's step summary by default."""
    markdown, append = args.markdown, False
    if markdown is None and os.environ.get("GITHUB_STEP_SUMMARY"):
        markdown, append = os.environ["GITHUB_STEP_SUMMARY"], True
    try:
        if args.report:
            from .report.json_report import write_report

            write_report(report, args.report)
        if args.junit:
            from .report.junit import write_junit

            write_junit(report, args.junit)
        if markdown:
            from .report.markdown import write_markdown

            write_markdown(report, markdown, append=append)
    except OSError as exc:
        print(f"scanner: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return False
    return True


def report_exit_code(report: Report, fail_on: str = "any") -> int:
    """The verdict of a report document (``merge``, and ``check --fail-on new``).

    With ``new``, only failures that are new since the baseline fail the gate; known
    failures pass it. Inconclusive targets still mean "not checked" (exit 3).
    """
    counts = report["summary"]["counts"]
    if fail_on == "new":
        failed = any(e.get("change") == "new_failure" for e in report["targets"])
    else:
        failed = counts.get("failed", 0) > 0
    if failed:
        return EXIT_FAILED
    if counts.get("inconclusive", 0):
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    """One verdict (and one set of artefacts) from the reports of several shards."""
    if not _artefact_args_ok(args):
        return EXIT_USAGE
    from .report.json_report import ReportError, load_report, merge_reports

    baseline = _load_baseline(args.baseline)
    if baseline is False:
        return EXIT_USAGE
    try:
        report = merge_reports([(path, load_report(path)) for path in args.reports])
    except ReportError as exc:
        print(f"scanner: merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if baseline:
        from .inventory import printable_path

        report["baseline"] = printable_path(baseline.path)
        for entry in report["targets"]:
            entry["change"] = baseline.change_of_entry(entry)
    if not _write_artefacts(report, args):
        return EXIT_USAGE
    counts = report["summary"]["counts"]
    print(
        f"scanner: merged {len(args.reports)} reports: {len(report['targets'])} targets, "
        f"{counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
        f"{counts.get('inconclusive', 0)} inconclusive",
        file=sys.stderr,
    )
    return report_exit_code(report, args.fail_on)


def _backend_options() -> dict[str, object]:
    """uvloop when installed (the ``fast`` extra) and not disabled with SCANNER_UVLOOP=0."""
    if os.environ.get("SCANNER_UVLOOP", "1") != "0":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return {}
        return {"use_uvloop": True}
    return {}
