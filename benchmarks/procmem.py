"""Memory of a process and the processes it forks, sampled from /proc while it runs.

``wait4`` gives one process's peak RSS (with forked workers: the largest one). To say what
a run costs in all, :class:`Watch` samples the whole tree and keeps the peak of the summed
proportional set sizes (PSS), which count pages the forked processes share once.
"""

from __future__ import annotations

import threading
from pathlib import Path

SAMPLE_S = 0.05


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (forked workers), from /proc."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            frontier.append(child)
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of one process in KiB; zeros once it has gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class Watch:
    """Samples the memory of a process tree every ``interval`` seconds until stopped.

    ``with Watch(pid):`` or ``start(pid)`` … ``stop()``.
    """

    def __init__(self, pid: int = 0, interval: float = SAMPLE_S) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kib = 0  # the largest single process
        self.peak_pss_sum_kib = 0  # all processes together, shared pages once
        self.processes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self.pid = pid
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Watch:
        self.start(self.pid)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pids = tree(self.pid)
            samples = [memory_kib(pid) for pid in pids]
            samples = [sample for sample in samples if sample != (0, 0)]  # gone meanwhile
            if not samples:
                continue
            self.processes = max(self.processes, len(samples))
            self.peak_rss_kib = max(self.peak_rss_kib, *(rss for rss, _ in samples))
            self.peak_pss_sum_kib = max(self.peak_pss_sum_kib, sum(pss for _, pss in samples))
