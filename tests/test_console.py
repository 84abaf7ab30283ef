"""The console renderer on typed results: groups, caps, order, -q/-v, plurals, colour, progress.

``ConsoleReport`` is an observer over plain values; these tests feed it the results a scan
would (real ``TargetResult`` values, no network) and read exactly what it writes. What the
CLI does with it on a terminal is tested through a pty in ``test_cli_console.py``.
"""

from __future__ import annotations

import io
import random

import pytest

from scanner.models import (
    Category,
    IcmpDetail,
    ProbeResult,
    ScanStart,
    ScanSummary,
    Target,
    TargetResult,
)
from scanner.report._text import counted, plural
from scanner.report.console import PER_GROUP, ConsoleReport, use_colour
from scanner.verdict import Counts, unchecked

C = Category


class Tty(io.StringIO):
    """A text stream that says it is a terminal (what a pty is to the console)."""

    def isatty(self) -> bool:
        return True


def probe(target: Target, address: str, category: Category, **kwargs: object) -> ProbeResult:
    fields: dict[str, object] = {
        "latency_ms": 1.5,
        "attempts": 1,
        "errno": None,
        "icmp": None,
        "hint": None,
    }
    fields.update(kwargs)
    return ProbeResult(target, address, "ipv4", category, **fields)  # type: ignore[arg-type]


def result(
    index: int,
    category: Category,
    *,
    name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 80,
    ok: bool | None = None,
    hint: str | None = "check it",
    probes: tuple[ProbeResult, ...] | None = None,
    expect: str = "open",
) -> TargetResult:
    target = Target(name or f"t{index}", host, port, expect=expect)  # type: ignore[arg-type]
    passed = category is C.OPEN if ok is None else ok
    if probes is None:
        probes = (probe(target, host, category),) if not category.is_dns else ()
    return TargetResult(
        target,
        passed,
        category,
        tuple(p.address for p in probes),
        None if passed else hint,
        probes,
        index=index,
    )


def run(
    results: list[TargetResult],
    *,
    total: int | None = None,
    not_started: int = 0,
    interrupted_by: str | None = None,
    **options: object,
) -> str:
    """Feed a whole scan to a ConsoleReport; what it wrote to its ``out``."""
    out = io.StringIO()
    report = ConsoleReport(out, io.StringIO(), colour=False, progress=False, **options)  # type: ignore[arg-type]
    report.on_start(ScanStart(total or len(results) + not_started, ("inv.yaml",), 64))
    counts = Counts()
    for item in results:
        counts.add(item.ok, item.category)
        report.on_target(item)
    counts.not_started = not_started
    report.on_finish(counts.summary(1.25, interrupted_by))
    return out.getvalue()


def failure_names(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("FAIL ")]


def test_groups_list_the_first_ten_in_inventory_order_whatever_the_arrival_order() -> None:
    refused = [result(i, C.REFUSED, hint="nothing listens on port 80") for i in range(0, 600, 2)]
    timeouts = [result(i, C.TIMEOUT, hint="no answer") for i in range(1, 40, 2)]
    ok = [result(i, C.OPEN) for i in range(600, 700)]
    everything = refused + timeouts + ok
    shuffled = everything[:]
    random.Random(7).shuffle(shuffled)  # workers and concurrency: any order at all
    text = run(shuffled)
    assert text == run(everything)  # the same listing either way
    lines = text.splitlines()
    assert lines[0] == "scanner: 420 targets from inv.yaml, 64 probes in flight at most"
    # the largest group first, then the next; each heading counts the whole group
    refused_at = lines.index("refused: 300 targets failed")
    timeout_at = lines.index("timeout: 20 targets failed")
    assert refused_at < timeout_at
    names = failure_names(text)
    assert names == [f"t{i}" for i in range(0, 20, 2)] + [f"t{i}" for i in range(1, 20, 2)]
    assert "… and 290 more refused (-v lists every one)" in lines
    assert "… and 10 more timeout (-v lists every one)" in lines
    # a run of one hint is said once
    assert text.count("→ nothing listens on port 80") == 1
    assert text.count("→ no answer") == 1
    assert lines[-1] == "420 targets: 100 ok, 320 failed, 0 inconclusive in 1.25 s"
    assert len(lines) < 45


def test_a_handful_of_failures_is_one_list_without_headings() -> None:
    results = [result(0, C.REFUSED), result(1, C.TIMEOUT), result(2, C.DNS_NXDOMAIN, host="x.test")]
    text = run(results)
    assert "failed" not in text.split("category")[0].replace("FAIL", "")  # no heading
    # one group each, ordered as the headings would be: by size, then by name
    assert failure_names(text) == ["t2", "t0", "t1"]
    assert "… and" not in text


def test_every_hint_differing_from_the_last_is_shown() -> None:
    results = [result(i, C.REFUSED, port=1000 + i, hint=f"port {1000 + i}") for i in range(5)]
    text = run(results)
    assert [line.strip() for line in text.splitlines() if "→" in line] == [
        f"→ port {1000 + i}" for i in range(5)
    ]


def test_quiet_is_the_counts_and_the_verdict_only() -> None:
    results = [result(i, C.REFUSED) for i in range(30)] + [result(30, C.OPEN)]
    text = run(results, verbosity="quiet")
    assert text.splitlines() == [
        "category  targets  failed",
        "refused        30      30",
        "open            1       0",
        "",
        "31 targets: 1 ok, 30 failed, 0 inconclusive in 1.25 s",
    ]


def test_verbose_lists_every_target_and_every_address() -> None:
    target = Target("web", "web.test", 443)
    probes = (
        probe(target, "192.0.2.1", C.OPEN, latency_ms=2.25),
        probe(target, "192.0.2.2", C.TIMEOUT, latency_ms=None, attempts=2),
        probe(
            target,
            "192.0.2.3",
            C.REJECTED,
            icmp=IcmpDetail(3, 13, "198.51.100.1", "ipv4"),
            latency_ms=0.5,
        ),
    )
    named = TargetResult(target, False, C.TIMEOUT, ("192.0.2.1",), "no answer", probes, index=0)
    many = [result(i, C.REFUSED) for i in range(1, 40)]
    normal = run([named, *many])
    verbose = run([named, *many], verbosity="verbose")
    assert len(failure_names(verbose)) == 40 and "… and" not in verbose
    assert len(failure_names(normal)) == 1 + PER_GROUP  # web, and the first ten refused
    # normal: only the addresses that broke the expectation, and a count of the others
    assert (
        "192.0.2.2: timeout, 2 attempts; 192.0.2.3: rejected icmp from 198.51.100.1; "
        "1 other address met the expectation"
    ) in normal
    # verbose: every address, with its latency
    assert (
        "192.0.2.1: open 2.2 ms; 192.0.2.2: timeout, 2 attempts; "
        "192.0.2.3: rejected 0.5 ms icmp from 198.51.100.1"
    ) in verbose
    # a lone IP literal says nothing its line does not: no address line unless verbose
    assert "127.0.0.1: refused" not in normal and "127.0.0.1: refused 1.5 ms" in verbose


def test_unfinished_and_not_started_targets_are_one_line_each() -> None:
    hint = "not finished: the scan was stopped (SIGINT received)"
    finished = [result(i, C.REFUSED) for i in range(3)]
    stopped = [unchecked(Target(f"q{i}", "127.0.0.1", 80), hint, 3 + i) for i in range(1024)]
    text = run(finished + stopped, not_started=3921, interrupted_by="SIGINT")
    lines = text.splitlines()
    assert "1,024 targets not finished: the scan was stopped (SIGINT received)" in lines
    assert "3,921 targets not started: the scan was stopped (SIGINT received)" in lines
    assert not any(line.startswith("??") for line in lines)  # none listed one by one
    assert lines[0].startswith("scanner: 4,948 targets from")
    assert lines[-1] == (
        "4,948 targets: 0 ok, 3 failed, 1,024 inconclusive, 3,921 not started in 1.25 s "
        "(interrupted: SIGINT)"
    )
    assert "not_started" not in text  # a count, not a category row


def test_a_real_shortage_is_listed_as_inconclusive() -> None:
    short = result(0, C.INCONCLUSIVE, hint="out of file descriptors (EMFILE)")
    text = run([short, *(result(i, C.OPEN) for i in range(1, 5))])
    assert "??   t0  inconclusive  127.0.0.1:80" in text
    assert "→ out of file descriptors (EMFILE)" in text


def test_show_ok_and_fixed_targets() -> None:
    fixed = result(0, C.OPEN, name="gets-fixed")
    broken = result(1, C.REFUSED, name="breaks")
    quiet = result(2, C.OPEN, name="still-ok")
    changes = {"gets-fixed": "fixed", "breaks": "new_failure"}

    def change_of(r: TargetResult) -> str | None:
        return changes.get(r.target.name)

    text = run([fixed, broken, quiet], change_of=change_of)
    assert "ok   gets-fixed  open  127.0.0.1:80  [fixed]" in text
    assert "FAIL breaks  refused  127.0.0.1:80  [new failure]" in text
    assert "still-ok" not in text
    assert "against the baseline: new failures 1, changed category 0, fixed 1" in text
    shown = run([fixed, broken, quiet], show_ok=True)
    assert "ok   still-ok  open  127.0.0.1:80" in shown


def test_stderr_summary_layout_has_no_header_nor_table() -> None:
    out = io.StringIO()
    summary = ConsoleReport(
        out, io.StringIO(), colour=False, progress=False, header=False, table=False, limit=3,
        more="the JSON events have every one",
    )  # fmt: skip
    summary.on_start(ScanStart(12, ("inv.yaml",), 8))
    counts = Counts()
    for item in [result(i, C.REFUSED) for i in range(10)] + [result(10, C.OPEN)]:
        counts.add(item.ok, item.category)
        summary.on_target(item)
    summary.on_finish(counts.summary(0.5, None))
    lines = out.getvalue().splitlines()
    assert lines[0] == "refused: 10 targets failed"
    assert failure_names(out.getvalue()) == ["t0", "t1", "t2"]
    assert "… and 7 more refused (the JSON events have every one)" in lines
    assert "category" not in out.getvalue()
    assert lines[-1] == "11 targets: 1 ok, 10 failed, 0 inconclusive in 0.50 s"


def test_without_results_the_table_counts_only() -> None:
    """With --workers and no report the summary sees no result: it must not claim 0 failed."""
    out = io.StringIO()
    report = ConsoleReport(out, io.StringIO(), colour=False, progress=False)
    report.on_start(ScanStart(5, ("inv.yaml",), 8))
    report.on_finish(ScanSummary.from_counts({"refused": 5, "failed": 5}, 0.1, None))
    text = out.getvalue()
    table = text.split("\n\n")[1].splitlines()
    assert table == ["category  targets", "refused         5"]
    assert text.endswith("5 targets: 0 ok, 5 failed, 0 inconclusive in 0.10 s\n")


@pytest.mark.parametrize(
    ("env", "colour"),
    [
        pytest.param({}, True, id="tty"),
        pytest.param({"NO_COLOR": "1"}, False, id="no-color"),
        pytest.param({"TERM": "dumb"}, False, id="term-dumb"),
        pytest.param({"TERM": "xterm-256color"}, True, id="term-xterm"),
    ],
)
def test_colour_only_on_a_terminal_that_wants_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], colour: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert use_colour(Tty()) is colour
    assert use_colour(io.StringIO()) is False  # never into a file or a pipe


@pytest.mark.parametrize("dumb", [False, True])
def test_progress_goes_to_err_and_is_cleared(monkeypatch: pytest.MonkeyPatch, dumb: bool) -> None:
    monkeypatch.setenv("TERM", "dumb" if dumb else "xterm")
    out, err = io.StringIO(), Tty()
    report = ConsoleReport(out, err, colour=False)
    assert report.progress  # err is a terminal
    report.on_start(ScanStart(2000, ("inv.yaml",), 8))
    counts = Counts()
    for i in range(1500):
        item = result(i, C.REFUSED if i % 3 == 0 else C.OPEN)
        counts.add(item.ok, item.category)
        report._last_progress = 0.0 if i == 1499 else report._last_progress  # draw the last
        report.on_target(item)
    report.on_finish(counts.summary(1.0, None))
    shown = err.getvalue()
    assert "1,500/2,000 targets, 500 failed (" in shown
    assert ("\x1b" in shown) is not dumb  # TERM=dumb: blanks, no escape sequence
    assert shown.endswith("\r\x1b[K" if not dumb else "\r")  # cleared before the summary
    assert "targets, " not in out.getvalue().split("\n")[1]  # progress never on out
    quiet = ConsoleReport(io.StringIO(), Tty(), verbosity="quiet")
    assert not quiet.progress


@pytest.mark.parametrize(
    ("count", "noun", "text"),
    [
        (0, "target", "0 targets"),
        (1, "target", "1 target"),
        (2, "target", "2 targets"),
        (5121, "target", "5,121 targets"),
        (1_048_576, "target", "1,048,576 targets"),
        (1, "entry", "1 entry"),
        (3, "entry", "3 entries"),
        (1, "address", "1 address"),
        (2, "address", "2 addresses"),
        (2, "problem", "2 problems"),
    ],
)
def test_counted_nouns(count: int, noun: str, text: str) -> None:
    assert counted(count, noun) == text
    assert plural(count, noun) == text.split(" ", 1)[1]
