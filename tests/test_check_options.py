"""Every ``check`` option reaches the workers' job, is the parent's own to act on, or is
refused with ``--workers``: none is dropped on the way (the workers get a typed job, not
argv, so nothing else would notice)."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import pytest

from scanner.cli import build_parser, plan_check, worker_job
from scanner.models import ScanSummary
from scanner.report.document import build_report
from scanner.workers import split

from .conftest import write_inventory

#: option (its dest) -> argv that sets it, and the argv it is compared with
CASES: dict[str, tuple[list[str], list[str]]] = {
    "format": (["--format", "console"], []),
    "concurrency": (["--concurrency", "7"], []),
    "timeout": (["--timeout", "0.5"], []),
    "retries": (["--retries", "3"], []),
    "dns_timeout": (["--dns-timeout", "0.3"], []),
    "dns_tries": (["--dns-tries", "1"], []),
    "tags": (["--tags", "a"], []),
    # ad-hoc HOST:PORT targets: they become inventory targets, so they reach the workers
    "expect": (["127.0.0.9:1", "--expect", "closed"], ["127.0.0.9:1"]),
    "family": (["localhost:1", "--family", "ipv4"], ["localhost:1"]),
    "max_duration": (["--max-duration", "9"], []),
    "allow": (["--allow", "127.0.0.0/8"], []),
    "rate": (["--rate", "40"], []),
    "per_host": (["--per-host", "4"], []),
    "show_ok": (["--show-ok"], []),
    "verbosity": (["--verbose"], []),
    "shard": (["--shard", "1/2"], []),
    "workers": (["--workers", "3"], []),
    "trace_failures": (["--trace-failures"], []),
    "max_hops": (["--trace-failures", "--max-hops", "5"], ["--trace-failures"]),
    "hop_timeout": (["--trace-failures", "--hop-timeout", "0.7"], ["--trace-failures"]),
    "junit": (["--junit", "{tmp}/j.xml"], []),
    "markdown": (["--markdown", "{tmp}/m.md"], []),
    "report": (["--report", "{tmp}/r.json"], []),
    "baseline": (["--baseline", "{tmp}/before.json"], []),
    "fail_on": (
        ["--baseline", "{tmp}/before.json", "--fail-on", "new"],
        ["--baseline", "{tmp}/before.json"],
    ),
}
#: what only the parent acts on: how its console shows results (artefacts reach the
#: workers too: they must send their results for the parent to write them)
PARENT = {"show_ok", "verbosity"}
#: what cannot go with --workers (exit 2, nothing probed)
REFUSED = {"shard"}


def check_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    check = sub.choices["check"]
    return {a.dest for a in check._actions if a.dest not in ("help", "inventories")}


def test_every_check_option_is_in_the_table() -> None:
    """A new option fails here until it says how it reaches the workers."""
    assert check_options() == set(CASES)


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    report = build_report([], ScanSummary.from_counts({}, 0.0, None), inventories=["x"])
    (tmp_path / "before.json").write_bytes(msgspec.json.encode(report))
    return write_inventory(
        tmp_path / "inv.yaml",
        "version: 1\ntargets:\n"
        "  - {name: a, host: 127.0.0.1, port: 1, tags: [a]}\n"
        "  - {name: b, host: 127.0.0.2, port: 1, tags: [b]}\n"
        "  - {name: c, host: 127.0.0.3, port: 1, tags: [b]}\n",
    )


def _jobs(argv: list[str]) -> tuple[object, list[tuple[object, ...]]]:
    args = build_parser().parse_args(argv)
    plan = plan_check(args)
    if plan is None:
        return None, []
    jobs = split(worker_job(plan, results=plan.wants_report), plan.workers)
    shape = [
        (
            tuple(j.inventory.targets),
            j.inventory.resolver,
            j.options,
            j.stream,
            j.results,
            j.change_of is None,
        )
        for j in jobs
    ]
    return plan, shape


@pytest.mark.parametrize("dest", sorted(CASES))
def test_each_option_reaches_the_workers_or_is_refused(
    dest: str,
    inventory: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    given, compared = ([a.format(tmp=tmp_path) for a in argv] for argv in CASES[dest])
    head = ["check", str(inventory), "--format", "json", "--workers", "2"]

    def argv(extra: list[str]) -> list[str]:  # a HOST:PORT joins the positionals
        at = 2 if extra[:1] and not extra[0].startswith("-") else len(head)
        return head[:at] + extra + head[at:]

    base_plan, base = _jobs(argv(compared))
    plan, jobs = _jobs(argv(given))
    assert base_plan is not None
    if dest in REFUSED:
        assert plan is None
        assert "--workers" in capsys.readouterr().err
        return
    assert plan is not None, capsys.readouterr().err
    if dest in PARENT:
        assert jobs == base  # the workers do the same scan...
        assert plan != base_plan  # ...and the parent acts on the option
    else:
        assert jobs != base, f"--{dest} does not reach the workers"
