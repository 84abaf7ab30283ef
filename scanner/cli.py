"""Command line: the only place that parses argv, prints to the terminal and exits.

Imports are lazy: ``scanner --help`` and ``scanner validate`` must start in well under
150 ms, so nothing heavy (asyncio stacks, aiodns, structlog) is imported up front.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import ScanObserver
    from .models import Inventory, ScanSummary

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
               "3 inconclusive (local trouble) · 130/143 interrupted.")
    parser.add_argument("--version", action="version", version=f"scanner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="probe every target of the inventories")
    check.add_argument("inventories", nargs="+", metavar="INVENTORY")
    check.add_argument("--format", "-f", choices=("auto", "console", "json"), default="auto",
                       help="auto (default): console on a TTY, json otherwise")
    check.add_argument("--concurrency", "-c", type=_positive_int, default=None, metavar="N",
                       help="max probes in flight (default 1024, capped by the fd limit)")
    check.add_argument("--timeout", "-t", type=_positive_float, default=None, metavar="S",
                       help="seconds per handshake attempt (overrides the inventory)")
    check.add_argument("--retries", "-r", type=_non_negative_int, default=None, metavar="N",
                       help="extra attempts for transient failures (overrides the inventory)")
    check.add_argument("--tags", default=None, metavar="A,B",
                       help="only targets carrying one of these tags")
    check.add_argument("--max-duration", type=_positive_float, default=None, metavar="S",
                       help="global deadline; unfinished targets end as inconclusive")
    check.add_argument("--show-ok", action="store_true",
                       help="console format: list targets that passed too")

    validate = sub.add_parser("validate", help="parse and validate only; probe nothing")
    validate.add_argument("inventories", nargs="+", metavar="INVENTORY")

    demo = sub.add_parser("demo", help="self-contained showcase on loopback, no setup")
    demo.add_argument("--format", "-f", choices=("auto", "console", "json"), default="auto")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args.inventories)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(_resolve_format(args.format))
    return cmd_check(args)


def _resolve_format(choice: str) -> str:
    if choice == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return str(choice)


def _load(paths: Sequence[str]) -> Inventory | None:
    from .inventory import InventoryError, load_inventories

    try:
        return load_inventories(paths)
    except InventoryError as exc:
        for problem in exc.problems:
            print(f"scanner: {problem}", file=sys.stderr)
        count = len(exc.problems)
        print(f"scanner: {count} problem{'s' if count != 1 else ''}; nothing was probed",
              file=sys.stderr)
        return None


def cmd_validate(paths: Sequence[str]) -> int:
    inventory = _load(paths)
    if inventory is None:
        return EXIT_USAGE
    names = {t.host for t in inventory.targets}
    print(f"{', '.join(paths)}: ok, {len(inventory.targets)} targets on {len(names)} hosts")
    return EXIT_OK


def select_targets(inventory: Inventory, tags: str | None, timeout: float | None,
                   retries: int | None) -> Inventory:
    """Apply --tags, --timeout and --retries to a loaded inventory."""
    from dataclasses import replace

    targets = inventory.targets
    if tags:
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        targets = tuple(t for t in targets if wanted.intersection(t.tags))
    if timeout is not None:
        targets = tuple(replace(t, timeout=timeout) for t in targets)
    if retries is not None:
        targets = tuple(replace(t, retries=retries) for t in targets)
    return replace(inventory, targets=targets)


def exit_code(summary: ScanSummary) -> int:
    if summary.interrupted_by in EXIT_SIGNAL:
        return EXIT_SIGNAL[summary.interrupted_by]
    if summary.failed:
        return EXIT_FAILED
    if summary.inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def make_observer(fmt: str, show_ok: bool = False) -> ScanObserver:
    if fmt == "json":
        from .events import JsonEventWriter

        return JsonEventWriter()
    from .report.console import ConsoleReport

    return ConsoleReport(sys.stdout, sys.stderr, show_ok=show_ok)


def cmd_check(args: argparse.Namespace) -> int:
    inventory = _load(args.inventories)
    if inventory is None:
        return EXIT_USAGE
    inventory = select_targets(inventory, args.tags, args.timeout, args.retries)
    if not inventory.targets:
        print(f"scanner: no target carries any of the tags {args.tags!r}; nothing to check",
              file=sys.stderr)
        return EXIT_USAGE
    import anyio

    from .engine import ScanOptions, run_scan

    observer = make_observer(_resolve_format(args.format), args.show_ok)
    options = ScanOptions(concurrency=args.concurrency, max_duration=args.max_duration)
    summary, _results = anyio.run(run_scan, inventory, observer, options,
                                  backend_options=_backend_options())
    return exit_code(summary)


def _backend_options() -> dict[str, object]:
    """uvloop when installed (the ``fast`` extra) and not disabled with SCANNER_UVLOOP=0."""
    if os.environ.get("SCANNER_UVLOOP", "1") != "0":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return {}
        return {"use_uvloop": True}
    return {}
