"""``--workers N``: one scanner process per core, one event stream and one verdict out.

One asyncio loop saturates one core long before the kernel is the limit (each handshake
costs tens of microseconds of Python). With N workers the parent forks N processes; each
runs the engine on every N-th target of the inventory its parent already loaded
(balanced, so no worker waits out an extra round of timeouts; each target is probed
exactly once) from a typed :class:`WorkerJob` — no argv, no second parse, no import of
the CLI.

Each worker has two pipes to its parent. Its JSON event lines go down the first and are
relayed to stdout unchanged (framed by one ``scan.started`` / ``scan.finished`` for the
whole scan); typed messages go down the second as msgspec MessagePack frames: that it
started, its results when the parent needs them (reports, the console), and its summary.
The parent never parses the event stream.

Forked rather than started afresh: a new interpreter spent about 0.1 s starting up and
importing before its first handshake; a fork has all that already. The parent forks
before it starts any event loop, thread or resolver, so there is nothing a child could
inherit half-done. A worker dies with its parent (PR_SET_PDEATHSIG), and SIGINT/SIGTERM
reach every worker: the parent's handler is in place before the first fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, NoReturn, cast

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from . import signals
from .engine._options import ScanOptions
from .inventory.targets import EveryNth, Picked, TargetList, literal_family
from .models import (
    DEFAULT_CONCURRENCY,
    Inventory,
    ScanStart,
    ScanSummary,
    Target,
    TargetResult,
)
from .observers import BaseObserver, FanOut, Observer
from .report.document import Change
from .verdict import Counts, unchecked

#: ``--workers auto`` starts several processes only for at least this many targets: below,
#: forking, a second event loop and relaying the streams cost more than they save.
AUTO_WORKERS_MIN_TARGETS = 10_000
AUTO_WORKERS_MAX = 8
#: TLS targets from which ``--workers auto`` uses every core (see :func:`auto_workers`)
AUTO_WORKERS_MIN_TLS = 256
#: results a worker sends in one message at most
_BATCH = 512
_PR_SET_PDEATHSIG = 1


class WorkerJob(Struct, frozen=True, kw_only=True):
    """What one worker does: the engine on its slice, the options, what to send back."""

    inventory: Inventory
    options: ScanOptions
    #: the JSON event lines of its targets (relayed by the parent); False for the console
    stream: bool = True
    #: its target results too (the parent's reports or console need them)
    results: bool = False
    #: ``--baseline``: what changed for a target, in the worker's target.result events
    change_of: Callable[[TargetResult], Change | None] | None = None


class Started(Struct, frozen=True, tag=True):
    start: ScanStart


class Results(Struct, frozen=True, tag=True):
    results: list[TargetResult]


class Finished(Struct, frozen=True, tag=True):
    summary: ScanSummary


Message = Started | Results | Finished
_FRAME = struct.Struct("!I")


def auto_workers(inventory: Inventory, *, json_stream: bool, limits: bool, reports: bool) -> int:
    """How many processes ``--workers auto`` uses: one per core when it pays, else one.

    A TLS check costs ~1.7 ms of client CPU (the handshake and the chain's verification, in
    OpenSSL) against ~0.07 ms for a connect, so from :data:`AUTO_WORKERS_MIN_TLS` TLS
    targets on the processes carry it whatever the output, the artefacts or the names (a
    result sent to the parent, or a name looked up in two processes, is small beside it):
    2,000 TLS endpoints on 2 cores shared with the server (``python benchmarks/tls.py``),
    2.96 s for ``scanner check`` with two workers against 4.11 s for the same prober in one
    asyncio loop (medians of 5).

    Only for big JSON scans (of addresses, networks or names: :func:`shares` keeps each
    name in one process, so every distinct name is still resolved once) with no limit
    that must hold across the whole scan (``--rate`` and ``--per-host`` shared out among
    processes are stricter than asked; tracing) and no artefacts: sending every result to
    the parent for its reports costs the parent about 6 µs a target, which took the time
    the workers saved.
    """
    targets = inventory.targets
    if limits:
        return 1
    if _tls_checks(targets) >= AUTO_WORKERS_MIN_TLS:
        return idle_cores()
    if not json_stream or reports or len(targets) < AUTO_WORKERS_MIN_TARGETS:
        return 1
    return idle_cores()


def _names_once_each(targets: Sequence[Target]) -> bool:
    """True when each name (with its family) is the host of one target only: an every-N-th
    share then never splits a name's targets. Addresses and networks need no lookup."""
    seen: set[tuple[str, str]] = set()
    if isinstance(targets, TargetList):  # by entry: a network is never walked
        for spec in targets.specs:
            template = spec.template
            if spec.network is not None or literal_family(template.host):
                continue
            key = (template.host, template.family)
            if len(spec) != 1 or key in seen:
                return False
            seen.add(key)
        return True
    for target in targets:
        if literal_family(target.host):
            continue
        key = (target.host, target.family)
        if key in seen:
            return False
        seen.add(key)
    return True


def shares(targets: Sequence[Target], workers: int) -> list[EveryNth | Picked]:
    """Each worker's targets: every N-th, unless a name is the host of several targets.

    Then each name's targets all go to one worker, the least loaded when the name first
    appears, and every address to the least loaded worker: every distinct name is still
    resolved once, in one process, and the shares differ in size by no more than the
    targets of one name. Processes pay for names as for addresses: 10,000 distinct names
    against Unbound in a namespace took 2.0-2.2 s with two workers and 2.8-3.3 s with one.
    """
    if _names_once_each(targets):
        return [EveryNth(targets, k, workers) for k in range(workers)]
    picks: list[list[int]] = [[] for _ in range(workers)]
    owners: dict[tuple[str, str], list[int]] = {}
    for index, target in enumerate(targets):
        if literal_family(target.host):
            min(picks, key=len).append(index)
            continue
        key = (target.host, target.family)
        owned = owners.get(key)
        if owned is None:
            owned = owners[key] = min(picks, key=len)
        owned.append(index)
    return [Picked(targets, indices) for indices in picks]


def idle_cores() -> int:
    """The cores this process may use that other work is not already using (at least one,
    at most :data:`AUTO_WORKERS_MAX`): its CPU affinity less the work that runs.

    Workers on cores that are busy only take turns with each other: 20,000 listed
    endpoints on 2 cores with a load of 1.3 took 2.0 s with two workers and 1.5 s with one.
    What runs is the smaller of the 1-minute load average and the tasks runnable right now:
    the average lags by a minute, so work that has just ended (the previous step of a CI
    job, the previous tool of a benchmark) would otherwise still count — it made a
    1,048,576-target sweep run in one process, 44.5 s, on two idle cores.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # no load average on this system
        busy = 0
    running = _running_now()
    if running is not None:
        busy = min(busy, running)
    return max(1, min(cores - busy, AUTO_WORKERS_MAX))


#: looks at the tasks runnable now, and the pause between two (see :func:`_running_now`)
_RUNNING_SAMPLES, _RUNNING_PAUSE = 5, 0.001


def _running_now() -> int | None:
    """Tasks that keep running on the machine now, this process not counted: the fewest
    of a few looks 1 ms apart at the fourth field of /proc/loadavg (``running/total``);
    None where it cannot be read.

    One look counts whatever happens to run at that instant: on an idle machine 0.7% of
    looks saw another task (a sampler, a kernel thread), and with a load average near 1
    (a benchmark's previous run) one such look sends a scan to one process; in the
    benchmark one run in three of 20,000 listed endpoints ran in one (1.74 s against
    1.13-1.26 s with two). A task that keeps a core busy is runnable in every look.
    """
    fewest: int | None = None
    for look in range(_RUNNING_SAMPLES):
        if look:
            time.sleep(_RUNNING_PAUSE)
        try:
            with open("/proc/loadavg", "rb") as loadavg:
                running = max(0, int(loadavg.read().split()[3].partition(b"/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        fewest = running if fewest is None else min(fewest, running)
        if fewest == 0:
            break
    return fewest


def _tls_checks(targets: Sequence[Target]) -> int:
    """How many of ``targets`` have a TLS phase (each network counted by its size; a lazy
    sequence of another kind is not walked to find out)."""
    if isinstance(targets, TargetList):
        return sum(len(spec) for spec in targets.specs if spec.template.tls is not None)
    if isinstance(targets, list | tuple):
        return sum(target.tls is not None for target in targets)
    return 0


def split(job: WorkerJob, workers: int) -> list[WorkerJob]:
    """The job of each of ``workers`` processes: its :func:`shares`, the limits shared out.

    The handshakes in flight, ``--rate`` and ``--per-host`` are divided, so the whole scan
    keeps them (one address's targets are in every slice).
    """
    options = job.options
    shared = replace(
        options,
        concurrency=max(1, (options.concurrency or DEFAULT_CONCURRENCY) // workers),
        rate=options.rate / workers if options.rate else None,
        per_address=options.per_address // workers if options.per_address else None,
    )
    inventory = job.inventory
    return [
        replace(job, inventory=replace(inventory, targets=share), options=shared)
        for share in shares(inventory.targets, workers)
    ]


def preload() -> None:
    """Import what every worker needs once, here, so each fork starts scanning at once."""
    import anyio._backends._asyncio  # noqa: F401 - anyio.run would import it in each child

    from .engine import backend_options
    from .report import events  # noqa: F401

    backend_options()  # uvloop, when installed


class _Worker:
    """A forked child running one :class:`WorkerJob`, and the parent's end of its pipes."""

    def __init__(self, number: int, job: WorkerJob, close_in_child: Sequence[int]) -> None:
        events_r, events_w = os.pipe()
        control_r, control_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child writes our buffer again
            stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(events_r)
            os.close(control_r)
            _child(job, events_w, control_w, parent, close_in_child)  # never returns
        os.close(events_w)
        os.close(control_w)
        self.number = number
        #: its targets, and where each is in the whole inventory
        self.share = cast("EveryNth | Picked", job.inventory.targets)
        self.pid = pid
        self.events = events_r
        self.control = control_r
        self.partial = b""  # an event line not yet complete
        self.frames = b""  # control bytes not yet a whole message
        self.start: ScanStart | None = None
        self.summary: ScanSummary | None = None
        self.reported: set[int] = set()
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


def _child(
    job: WorkerJob, events_fd: int, control_fd: int, parent: int, close: Sequence[int]
) -> NoReturn:
    """In the forked child: the engine on the job's slice, then exit (0: it finished)."""
    code = 70  # EX_SOFTWARE: the scan raised
    try:
        _die_with(parent)
        # the parent's recorder stays installed: a signal before the scan begins is seen
        # by the scan (which then stops at once), not raised in the middle of something
        signals.reset_in_child()
        for fd in close:  # the other workers' pipes
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)  # nothing but the pipes: a stray print must not join the stream
        os.close(null)
        code = _run_job(job, events_fd, control_fd)
    except BaseException:  # noqa: BLE001 - shown, and the parent sees exit 70
        traceback.print_exc()
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """SIGKILL when the parent dies (Linux); exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's end of the pipes still tells
        pass
    if os.getppid() != parent:
        os._exit(1)


def _run_job(job: WorkerJob, events_fd: int, control_fd: int) -> int:
    from .engine import run_scan_sync
    from .report.events import JsonEventWriter

    control = _Channel(os.fdopen(control_fd, "wb", buffering=0), send_results=job.results)
    observers: list[Observer] = [control]
    if job.stream:
        stream = os.fdopen(events_fd, "wb", buffering=0)
        observers.insert(0, JsonEventWriter(stream, job.change_of, frame=False))
    else:
        os.close(events_fd)
    run_scan_sync(job.inventory, FanOut(*observers), job.options)
    return 0


class _Channel(BaseObserver):
    """The worker's typed messages to its parent, as length-prefixed MessagePack frames."""

    def __init__(self, out: IO[bytes], *, send_results: bool) -> None:
        self._out = out
        self._encode = msgspec.msgpack.Encoder().encode
        self._send_results = send_results
        self._results: list[TargetResult] = []

    def _send(self, message: Message) -> None:
        from .report._sink import write_all

        payload = self._encode(message)
        write_all(self._out, _FRAME.pack(len(payload)) + payload)

    def on_start(self, start: ScanStart) -> None:
        self._send(Started(start))

    def on_target(self, result: TargetResult) -> None:
        if self._send_results:
            self._results.append(result)
            if len(self._results) >= _BATCH:
                self.flush()

    def flush(self) -> None:
        if self._results:
            self._send(Results(self._results))
            self._results = []

    def on_finish(self, summary: ScanSummary) -> None:
        self.flush()
        self._send(Finished(summary))


class WorkersOutcome(Struct):
    """The parent's view of a scan by several workers."""

    summary: ScanSummary
    #: one line per worker that ended without its summary
    problems: list[str]


def run_workers(
    job: WorkerJob,
    workers: int,
    *,
    frame: Observer,
    observer: Observer,
    relay: Callable[[bytes], None],
    flush: Callable[[], None],
) -> WorkersOutcome:
    """Fork ``workers`` processes for ``job``; relay their streams; one verdict.

    ``frame`` gets the whole scan's ``on_start`` / ``on_finish`` (the JSON stream's
    ``scan.started`` and ``scan.finished``); ``observer`` gets every target result the
    workers send (with ``job.results``) and, for a worker that died, its unreported targets
    as inconclusive; ``relay`` takes the workers' event lines, whole lines only.

    A worker that dies leaves its targets unchecked: they count as inconclusive, so the
    stream's ``scan.finished`` agrees with the exit code and never passes a partial scan.
    """
    parent = _Parent(job, workers, frame, observer, relay)
    # in place before the first fork: a signal in between reaches every worker
    signals.install()
    stop_forwarding = signals.listen(parent.forward)
    try:
        parent.start()
        parent.pump(flush)
    finally:
        stop_forwarding()
        parent.reap()
        parent.interrupted_by = signals.received()
        signals.uninstall()
    return parent.outcome()


class _Parent:
    """The parent's side of a scan by several workers: relaying, messages, the verdict."""

    def __init__(
        self,
        job: WorkerJob,
        workers: int,
        frame: Observer,
        observer: Observer,
        relay: Callable[[bytes], None],
    ) -> None:
        self.job = job
        self.workers = workers
        self.frame = frame
        self.observer = observer
        self.relay = relay
        self.procs: list[_Worker] = []
        self.decoder = msgspec.msgpack.Decoder(Message)
        self.held: list[bytes] = []  # event lines that arrive before every worker started
        self.framed = False
        self.interrupted_by: str | None = None
        self.started_at = time.perf_counter()

    def forward(self, signum: int) -> None:
        for proc in self.procs:
            proc.signal(signum)

    def start(self) -> None:
        for number, worker_job in enumerate(split(self.job, self.workers), start=1):
            fds = [fd for p in self.procs for fd in (p.events, p.control)]
            self.procs.append(_Worker(number, worker_job, fds))
        # a signal that came while forking reached only the workers forked before it
        if (received := signals.received()) is not None:
            self.forward(signal.Signals[received])

    def pump(self, flush: Callable[[], None]) -> None:
        """Read every pipe until all are closed.

        While the parent's own output backs up, the workers' event pipes are left unread:
        they fill, the workers' writers back up, and the workers pause their probing
        (never their clocks) until the reader catches up. Their messages are always read.
        """
        pipes = {
            fd: (proc, fd == proc.events)
            for proc in self.procs
            for fd in (proc.events, proc.control)
        }
        while pipes:
            # once interrupted, everything is read again: the rest of the stream is dropped
            # anyway, and the workers must be able to end
            backed_up = self.frame.backlogged() and signals.received() is None
            wanted = [fd for fd, (_, is_events) in pipes.items() if not (is_events and backed_up)]
            readable, _, _ = select.select(wanted, [], [], 0.1)
            for fd in readable:
                proc, is_events = pipes[fd]
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    del pipes[fd]
                    os.close(fd)
                elif is_events:
                    self._lines(proc, chunk)
                else:
                    self._control(proc, chunk)
            flush()
        for proc in self.procs:
            proc.wait()

    def _lines(self, proc: _Worker, chunk: bytes) -> None:
        """Relay the whole lines in ``chunk``, the first completing the start of a line the
        last chunk ended with; keep the start of a line this one ends with.

        Each piece relayed is whole lines, and a chunk that ends with a whole line (most
        do: workers write whole batches) is relayed as it came. Joining every chunk to
        the last one's rest, splitting it and appending the newline again copied every
        event three more times (877 MB of them in a 1,048,576-target sweep).
        """
        end = chunk.rfind(b"\n") + 1
        if not end:
            proc.partial += chunk
            return
        pieces = []
        start = 0
        if proc.partial:  # that line, whole: a relayed piece never ends inside a line
            start = chunk.find(b"\n") + 1
            pieces.append(proc.partial + chunk[:start])
        if start < end:
            pieces.append(chunk[start:end])  # the chunk itself when it ends with its newline
        proc.partial = chunk[end:]
        for piece in pieces:
            if self.framed:
                self.relay(piece)
            else:
                self.held.append(piece)

    def _control(self, proc: _Worker, chunk: bytes) -> None:
        for message in _messages(proc, chunk, self.decoder):
            if isinstance(message, Started):
                proc.start = message.start
            elif isinstance(message, Results):
                for result in message.results:
                    index = proc.share.index_in_source(result.index)
                    proc.reported.add(index)
                    self.observer.on_target(replace(result, index=index))
            else:
                proc.summary = message.summary
        if not self.framed and all(p.start is not None for p in self.procs):
            self._frame_start()

    def _frame_start(self) -> None:
        """One ``scan.started`` for the whole scan, then the lines held back for it."""
        starts = [p.start for p in self.procs if p.start is not None]
        inventory = self.job.inventory
        start = ScanStart(
            len(inventory.targets), inventory.paths, sum(s.concurrency for s in starts)
        )
        self.frame.on_start(start)
        self.framed = True
        for lines in self.held:
            self.relay(lines)
        self.held.clear()

    def reap(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.signal(signal.SIGKILL)
                proc.wait()

    def outcome(self) -> WorkersOutcome:
        if not self.framed:  # a worker died before it started: still one whole stream
            self._frame_start()
        counts = Counts()
        interrupted_by = self.interrupted_by
        for proc in self.procs:
            if proc.summary is not None:
                counts.merge(dict(proc.summary.counts))
                interrupted_by = interrupted_by or proc.summary.interrupted_by
        dead = [p for p in self.procs if p.summary is None]
        if self.job.results:  # the parent knows which targets it got: the others go in unchecked
            for proc in dead:
                _unchecked(proc, self.workers, counts, self.observer)
        missing = len(self.job.inventory.targets) - counts.accounted
        if missing > 0:  # a share nobody reported, not even as unchecked: not checked
            counts.merge({"inconclusive": missing})
        summary = counts.summary(time.perf_counter() - self.started_at, interrupted_by)
        self.frame.on_finish(summary)
        problems = [
            f"worker {p.number} exited {p.returncode} without finishing"
            for p in dead
            if not (self.interrupted_by is not None and p.returncode in (130, 143))  # stopped early
        ]
        return WorkersOutcome(summary, problems)


def _messages(
    proc: _Worker, chunk: bytes, decoder: msgspec.msgpack.Decoder[Message]
) -> list[Message]:
    data = proc.frames + chunk
    messages: list[Message] = []
    offset = 0
    while len(data) - offset >= _FRAME.size:
        (size,) = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + size
        if len(data) < end:
            break
        messages.append(decoder.decode(data[offset + _FRAME.size : end]))
        offset = end
    proc.frames = data[offset:]
    return messages


def _unchecked(proc: _Worker, workers: int, counts: Counts, observer: Observer) -> None:
    """A dead worker's targets that it did not report: inconclusive, never just missing.

    Their events may have gone out before the worker died, but what the parent did not
    receive was not checked as far as the verdict and the artefacts can say.
    """
    hint = f"not checked: worker {proc.number} of {workers} ended before it reported this target"
    share = proc.share
    for offset, target in enumerate(share):
        index = share.index_in_source(offset)
        if index in proc.reported:
            continue
        result = unchecked(target, hint, index)
        counts.add(result.ok, result.category)
        observer.on_target(result)
