"""The event stream reaches its reader whole: every byte, every line, in order.

Real pipes, not stand-in streams: a raw (unbuffered) file on a non-blocking pipe writes
only what fits, which is what ``python -u`` / PYTHONUNBUFFERED gives ``sys.stdout``
when a reader is slower than the scan.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scanner.models import Category, DnsResult, ScanStart, ScanSummary
from scanner.report._sink import write_all
from scanner.report.events import JsonEventWriter

F_SETPIPE_SZ = 1031


@contextmanager
def slow_pipe(pipe_bytes: int = 4096) -> Iterator[tuple[object, list[bytes]]]:
    """A non-blocking pipe of ``pipe_bytes`` as a raw FileIO, drained by a slow thread."""
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, pipe_bytes)
    os.set_blocking(write_fd, False)
    received: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(read_fd, 1000):
            received.append(chunk)
            time.sleep(0.0005)  # slower than the writer: the pipe keeps filling up

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    raw = os.fdopen(write_fd, "wb", buffering=0)
    try:
        yield raw, received
    finally:
        raw.close()
        reader.join(timeout=30)
        os.close(read_fd)
    assert not reader.is_alive()


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 200_000])
def test_write_all_delivers_every_byte_through_a_full_pipe(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    with slow_pipe() as (raw, received):
        # a single raw write takes at most what fits: the loop must carry on
        write_all(raw, data)  # type: ignore[arg-type]
    assert b"".join(received) == data


def test_a_buffered_writer_on_a_full_non_blocking_pipe_loses_nothing() -> None:
    data = b"x" * 100_000
    with slow_pipe() as (raw, received):
        buffered = open(raw.fileno(), "wb", closefd=False)  # noqa: SIM115 - closed below
        write_all(buffered, data)
        while True:  # what the buffer still holds goes out once the reader makes room
            try:
                buffered.flush()
                break
            except BlockingIOError:
                time.sleep(0.001)
        buffered.close()
    assert b"".join(received) == data


def test_json_events_stay_whole_lines_on_an_unbuffered_stdout() -> None:
    """The writer's 64 KiB batches through a 4 KiB pipe: no line torn, none lost."""
    with slow_pipe() as (raw, received):
        writer = JsonEventWriter(raw)  # type: ignore[arg-type]
        writer.on_start(ScanStart(3000, ("inv.yaml",), 100))
        for n in range(3000):  # buffered: written 64 KiB at a time
            writer.on_dns(
                DnsResult(
                    f"host-{n}.example",
                    "any",
                    Category.RESOLVED,
                    (f"198.18.{n // 250}.{n % 250}",),
                    1.5,
                    "127.0.0.1",
                )
            )
        writer.on_finish(ScanSummary.from_counts({"ok": 3000}, 1.0, None))
    lines = b"".join(received).split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["event"] for e in events] == ["scan.started", *["dns.result"] * 3000, "scan.finished"]
    assert [e["host"] for e in events[1:-1]] == [f"host-{n}.example" for n in range(3000)]
