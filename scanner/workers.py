"""``--workers N``: one scanner process per core, one event stream out.

One asyncio loop saturates one core long before the kernel is the limit (each handshake
costs tens of microseconds of Python). With N workers the parent forks N processes that
each run an ordinary ``scanner check --format json --slice K/N`` on every N-th target
(balanced, so no worker waits out an extra round of timeouts; each target is probed
exactly once), relays their event lines to stdout unchanged, and replaces their
``scan.started`` / ``scan.finished`` by one of each for the whole scan. Artefacts
(--junit, --markdown, --report) come from merging the workers' reports with the same
code as ``scanner merge``. SIGINT/SIGTERM are forwarded to every worker.

Forked rather than started afresh: a new interpreter spent about 0.1 s starting up and
importing before its first handshake; a fork has all that already. The parent forks
before it starts any event loop, thread or resolver, so there is nothing a child could
inherit half-done.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from .models import DEFAULT_CONCURRENCY, ScanSummary

_STARTED = b'{"event":"scan.started"'
_FINISHED = b'{"event":"scan.finished"'


@dataclass
class WorkersOutcome:
    summary: ScanSummary
    reports: list[str] = field(default_factory=list)
    failed_workers: list[str] = field(default_factory=list)
    #: 1-based numbers of the workers that ended without their summary (or report)
    dead: list[int] = field(default_factory=list)


def preload() -> None:
    """Import what every worker needs once, here, so each fork starts scanning at once."""
    import anyio._backends._asyncio  # noqa: F401 - anyio.run would import it in each child

    from . import engine, events  # noqa: F401
    from .cli import _backend_options

    _backend_options()  # uvloop, when installed


class ForkedWorker:
    """A child process running ``scanner`` with ``argv``, its stdout a pipe to us."""

    def __init__(self, argv: Sequence[str], close_in_child: Sequence[int] = ()) -> None:
        read, write = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child writes our buffer again
            stream.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            _run_child(argv, write, close_in_child)  # never returns
        os.close(write)
        self.pid = pid
        self.stdout = os.fdopen(read, "rb", buffering=0)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _run_child(argv: Sequence[str], stdout_fd: int, close: Sequence[int]) -> NoReturn:
    """In the forked child: ``scanner check`` on our slice, output to the pipe, exit."""
    code = 70  # EX_SOFTWARE: main() raised
    try:
        for fd in close:  # the other workers' pipes
            os.close(fd)
        os.dup2(stdout_fd, 1)
        os.close(stdout_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        from .cli import main

        code = main(list(argv))
        sys.stdout.flush()
    except KeyboardInterrupt:  # SIGINT before the scan installed its own handler
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - shown, and the parent sees exit 70
        traceback.print_exc()
    finally:
        os._exit(code)


def run_workers(
    commands: Sequence[Sequence[str]],
    inventories: tuple[str, ...],
    out: IO[bytes],
    reports: Sequence[str] = (),
    *,
    targets: int,
) -> WorkersOutcome:
    """Fork a worker per ``scanner`` argv in ``commands``, relay their events to ``out``,
    aggregate the verdict over all ``targets``.

    A worker that dies leaves its targets unchecked: they count as inconclusive, so the
    stream's ``scan.finished`` agrees with the exit code and never passes a partial scan.
    """
    started_at = time.perf_counter()
    procs: list[ForkedWorker] = []
    for argv in commands:
        procs.append(ForkedWorker(argv, [p.stdout.fileno() for p in procs]))
    # imported once the workers are starting: they need a while, this does not wait
    from .events import JsonEventWriter, write_all

    interrupted_by: str | None = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal interrupted_by
        if interrupted_by is None:
            interrupted_by = signal.Signals(signum).name
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    writer = JsonEventWriter(out)
    starts: list[dict[str, Any]] = []
    finishes: list[dict[str, Any]] = []
    finished: set[int] = set()  # the workers whose scan.finished came
    held: list[bytes] = []  # lines that arrive before every worker has started
    reader_left = False  # stdout's reader went away (`| head`): drain, relay nothing

    def relay_out(data: bytes) -> None:
        nonlocal reader_left
        if reader_left:
            return
        try:
            write_all(out, data)
            out.flush()
        except BrokenPipeError:  # as one process does: the verdict and reports go on
            reader_left = True

    try:
        selector = selectors.DefaultSelector()
        partial: dict[int, bytes] = {}
        for proc in procs:
            assert proc.stdout is not None
            selector.register(proc.stdout, selectors.EVENT_READ, proc)
            partial[proc.pid] = b""
        while selector.get_map():
            for key, _events in selector.select(timeout=0.1):
                proc = key.data
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                lines = (partial[proc.pid] + chunk).split(b"\n")
                partial[proc.pid] = lines.pop()
                relay: list[bytes] = []
                for line in lines:
                    if line.startswith(_STARTED):
                        starts.append(json.loads(line))
                        if len(starts) == len(procs):
                            writer.on_start(
                                sum(s["targets"] for s in starts),
                                inventories,
                                sum(s["concurrency"] for s in starts),
                            )
                            relay, held = held, []
                    elif line.startswith(_FINISHED):
                        finishes.append(json.loads(line))
                        finished.add(proc.pid)
                    elif line:
                        (relay if len(starts) == len(procs) else held).append(line + b"\n")
                if relay:
                    relay_out(b"".join(relay))
        codes = [proc.wait() for proc in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    dead = [
        i + 1
        for i, (code, proc) in enumerate(zip(codes, procs, strict=True))
        if code not in (0, 1, 3, 130, 143) or proc.pid not in finished
    ]
    failed = [f"worker {k} exited {codes[k - 1]} without finishing" for k in dead]
    summary = _aggregate(finishes, time.perf_counter() - started_at, interrupted_by, targets)
    if len(starts) < len(procs):  # a worker died before it started: still one whole stream
        writer.on_start(targets, inventories, sum(s["concurrency"] for s in starts))
        relay_out(b"".join(held))
    writer.on_finish(summary)
    return WorkersOutcome(summary, [r for r in reports if os.path.exists(r)], failed, dead)


def _aggregate(
    finishes: Sequence[dict[str, Any]], duration_s: float, interrupted_by: str | None, targets: int
) -> ScanSummary:
    counts: Counter[str] = Counter()
    for finish in finishes:
        counts.update(finish.get("counts", {}))
        if interrupted_by is None and finish.get("interrupted"):
            interrupted_by = finish.get("interrupted_by") or "deadline"
    accounted = sum(counts[key] for key in ("ok", "failed", "inconclusive", "not_started"))
    if accounted < targets:  # a worker's share that nobody reported: not checked
        counts["inconclusive"] += targets - accounted
    return ScanSummary.from_counts(counts, duration_s, interrupted_by)


def worker_command(args: Any, index: int, workers: int, report: str | None) -> list[str]:
    """The ``scanner`` arguments of worker ``index`` (1-based) of ``workers``."""
    argv = [
        "check",
        *args.inventories,
        "--format",
        "json",
        "--workers",
        "1",
        "--slice",
        f"{index}/{workers}",
    ]
    # the handshakes in flight are shared out, the default included
    argv += ["--concurrency", str(max(1, (args.concurrency or DEFAULT_CONCURRENCY) // workers))]
    if args.rate:  # the overall rate is shared out
        argv += ["--rate", repr(args.rate / workers)]
    if args.per_host:  # so is the cap per address: one address's targets are in every slice
        argv += ["--per-host", str(args.per_host // workers)]
    for flag, value in (
        ("--timeout", args.timeout),
        ("--retries", args.retries),
        ("--tags", args.tags),
        ("--max-duration", args.max_duration),
        ("--baseline", args.baseline),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for network in args.allow:
        argv += ["--allow", network]
    if getattr(args, "trace_failures", False):
        argv += [
            "--trace-failures",
            "--max-hops",
            str(args.max_hops),
            "--hop-timeout",
            str(args.hop_timeout),
        ]
    if report is not None:
        argv += ["--report", report]
    return argv
