"""``scanner wait`` on the console: one live line per target still waiting, then the verdict.

On a terminal the waiting targets are a block of lines redrawn in place (twice a second:
category, time in that state, the hint), and each target that gets ready leaves a line
above the block. Written to a file or a pipe (``--format console`` without a terminal),
nothing is redrawn: a line is printed when a target's state changes, so a CI log reads
top to bottom. At the end, every target not ready is listed with its last category, for
how long it had it, and its hint.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from msgspec.structs import replace

from .. import signals
from ..inventory.targets import display
from ..models import ScanStart
from ..wait import WaitOptions, WaitOutcome, WaitStatus
from ._sink import LineSink
from .console import _RESET, _STYLE, TextOut, clean, use_colour

#: seconds between redraws of the live block
REDRAW = 0.5


def seconds(value: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``: what a person reads at a glance."""
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest:02d} s"


def state_text(status: WaitStatus) -> str:
    """``refused for 12 s``, or ``open for 2.0 s (2 of 3 good rounds)`` while not stable."""
    text = f"{status.result.category} for {seconds(status.for_s)}"
    if status.result.ok and status.good_rounds < status.stable:
        text += f" ({status.good_rounds} of {status.stable} good rounds)"
    return text


class WaitConsole:
    """The wait for a person; ``live`` (default: the output is a terminal) redraws in place."""

    def __init__(
        self,
        out: TextOut,
        *,
        sink: LineSink | None = None,
        colour: bool | None = None,
        live: bool | None = None,
        width: Callable[[], int] | None = None,
        height: Callable[[], int] | None = None,
    ) -> None:
        self.out = out
        self.sink = sink
        self.colour = use_colour(out) if colour is None else colour
        self.live = out.isatty() if live is None else live
        self._width = width or (lambda: shutil.get_terminal_size().columns)
        self._height = height or (lambda: shutil.get_terminal_size().lines)
        self.waiting: dict[int, WaitStatus] = {}  # by target index, while not ready
        self._shown = 0  # lines of the live block on the screen now
        self._drawn_at = 0.0
        self._clock = time.monotonic
        self._last_seen: dict[int, float] = {}  # when each status arrived (for live times)
        self.total = 0

    def _paint(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.colour else text

    def backlogged(self) -> bool:
        return bool(self.sink is not None and self.sink.backlogged)

    def on_wait_start(self, start: ScanStart, options: WaitOptions, _began_at: float) -> None:
        self.total = start.targets
        deadline = f"deadline {seconds(options.deadline)}" if options.deadline else "no deadline"
        stable = f", {options.stable} good rounds in a row" if options.stable > 1 else ""
        plural = "s" if start.targets != 1 else ""
        self._print(
            self._paint(
                "bold",
                f"scanner: waiting for {start.targets} target{plural} ({deadline}, every "
                f"{seconds(options.interval)} backing off to "
                f"{seconds(max(options.interval, options.max_interval))}{stable})",
            )
        )

    def on_status(self, status: WaitStatus) -> None:
        index = status.result.index
        previous = self.waiting.get(index)
        if status.ready:
            self.waiting.pop(index, None)
            target = status.result.target
            rounds = f"{status.round} round{'s' if status.round != 1 else ''}"
            self._print(
                f"{self._paint('ok', 'ok  ')} {clean(target.name)}  "
                f"{self._paint('ok', status.result.category.value)}  "
                f"{clean(display(target.host, target.port))}  "
                + self._paint("dim", f"ready after {seconds(status.waited_s)} ({rounds})")
            )
            return
        self.waiting[index] = status
        self._last_seen[index] = self._clock()
        changed = previous is None or previous.since_s != status.since_s
        if not self.live and changed:
            self._print(self._line(status, status.for_s))

    def _line(self, status: WaitStatus, for_s: float) -> str:
        result = status.result
        style = "ok" if result.ok else "warn"
        shown = replace(status, for_s=for_s)
        line = (
            f"{self._paint(style, 'wait')} {clean(result.target.name)}  "
            f"{self._paint(style, state_text(shown))}"
        )
        if result.hint and not result.ok:
            line += "  " + self._paint("dim", "→ " + clean(result.hint))
        return line

    def tick(self) -> None:
        now = self._clock()
        if self.live and now - self._drawn_at >= REDRAW:
            self._drawn_at = now
            self._redraw()
        self.out.flush()

    def _block(self) -> list[str]:
        now = self._clock()
        width = max(20, self._width() - 1)  # a line that wraps would break the redraw
        room = max(1, self._height() - 2)
        statuses = [self.waiting[i] for i in sorted(self.waiting)]
        lines = []
        for status in statuses[:room] if len(statuses) <= room else statuses[: room - 1]:
            for_s = status.for_s + now - self._last_seen.get(status.result.index, now)
            lines.append(_cut(self._line(status, for_s), width, self.colour))
        if len(statuses) > room:
            lines.append(self._paint("dim", f"… and {len(statuses) - room + 1} more waiting"))
        return lines

    def _erase(self) -> str:
        if not self._shown:
            return ""
        text = f"\x1b[{self._shown}F\x1b[J"
        self._shown = 0
        return text

    def _redraw(self) -> None:
        lines = self._block()
        self.out.write(self._erase() + "".join(line + "\n" for line in lines))
        self._shown = len(lines)

    def _print(self, line: str) -> None:
        """A line above the live block (which is drawn again at the next tick)."""
        self.out.write(self._erase() + line + "\n")
        self._drawn_at = 0.0
        self.out.flush()

    def on_wait_finish(self, outcome: WaitOutcome) -> None:
        self.out.write(self._erase())
        summary = outcome.summary
        if outcome.ready:
            plural = "s" if summary.total != 1 else ""
            self._print(
                self._paint(
                    "ok",
                    f"all {summary.total} target{plural} ready after {seconds(summary.duration_s)}",
                )
            )
        else:
            why = {"deadline": "the deadline"}.get(
                str(summary.interrupted_by), str(summary.interrupted_by)
            )
            self._print(
                self._paint(
                    "fail",
                    f"not ready: {len(outcome.waiting)} of {summary.total} targets after "
                    f"{seconds(summary.duration_s)} ({why})",
                )
            )
            for status in outcome.waiting:
                self._print(self._final_line(status))
        self.out.flush()
        if self.sink is not None:
            self.sink.drain(interrupted=lambda: signals.received() is not None)

    def _final_line(self, status: WaitStatus) -> str:
        result = status.result
        target = result.target
        rounds = f"{status.round} round{'s' if status.round != 1 else ''}"
        line = (
            f"{self._paint('fail', 'FAIL')} {clean(target.name)}  "
            f"{self._paint('fail', state_text(status))}  "
            f"{clean(display(target.host, target.port))}  " + self._paint("dim", f"({rounds})")
        )
        details = [f"{p.address}: {p.category.value}" for p in result.probes if not result.ok]
        if details:
            line += "\n      " + self._paint("dim", "; ".join(details))
        if result.hint:
            line += "\n      → " + clean(result.hint)
        return line


def _cut(line: str, width: int, colour: bool) -> str:
    """``line`` cut to ``width`` visible characters (escape sequences do not count)."""
    visible = 0
    out = []
    index = 0
    while index < len(line):
        if line[index] == "\x1b":
            end = line.find("m", index)
            end = len(line) - 1 if end < 0 else end
            out.append(line[index : end + 1])
            index = end + 1
            continue
        if visible >= width:
            break
        out.append(line[index])
        visible += 1
        index += 1
    text = "".join(out)
    if colour and visible >= width:
        text += _RESET
    return text
