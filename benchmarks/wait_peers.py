"""``scanner wait`` beside wait-for-it, dockerize and wait4x, on the cases that tell them apart.

Each case runs every tool in a network namespace of its own, whose ``/etc/resolv.conf``
points at the project's DNS server on the namespace's 127.0.0.1:53 and whose ``/etc/hosts``
says ``localhost`` is 127.0.0.1 and ::1 (what ``ip netns exec`` bind-mounts from
``/etc/netns/NAME``); services are listeners on the namespace's own loopback. No packet
leaves it: it has no other interface. The cases:

* ``missing-name`` — ``nothere.test:5432``: the name does not exist (NXDOMAIN); 5 s deadline.
* ``refused`` — ``127.0.0.1:5432``: nothing listens; 5 s deadline.
* ``dual-stack`` — ``localhost:6379``: 127.0.0.1 listens, ::1 refuses (a client that
  prefers ::1, as Node 17+ does for ``localhost``, cannot connect); 5 s deadline. "Ready"
  here is the wrong answer.
* ``late-record`` — ``late.test:5432``: the service listens, its A record is added to DNS
  after 2 s (a Kubernetes Service created late); 10 s deadline. Does the tool wait for it?

For each tool and case: the exit code, the wall time, and the last line it wrote to stderr
(what a person reads in the CI log). Each tool gets its own defaults but the deadline;
scanner runs twice: with its default backoff (1 s, doubled while a target fails alike, to
5 s) and with ``--max-interval 1`` (every second, as wait-for-it polls). Usage (root, for
the namespace; Debian's ``wait-for-it`` package puts wait-for-it on PATH)::

    sudo python benchmarks/wait_peers.py
    sudo python benchmarks/wait_peers.py --dockerize ./dockerize --wait4x ./wait4x

A tool that is not given and not on PATH is listed as not run. Options: ``--wait-for-it
PATH``, ``--cases missing-name,refused``, ``--json`` (the results as JSON, not a table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab import netns as lab  # noqa: E402 - needs ROOT on sys.path first
from tests.wait_support import ZoneServer  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    host: str
    port: int
    deadline: int
    #: listeners: (listen address, plan for tests/wait_services.py)
    services: tuple[tuple[tuple[str, ...], str], ...]
    zone: dict[str, dict[str, list[str]]]
    #: the zone after ``late_after`` seconds (None: it never changes)
    late_zone: dict[str, dict[str, list[str]]] | None = None
    late_after: float = 0.0


CASES = [
    Case("missing-name", "nothere.test", 5432, 5, (), {}),
    Case("refused", "127.0.0.1", 5432, 5, (), {}),
    Case("dual-stack", "localhost", 6379, 5, ((("127.0.0.1:6379",), "0:up"),), {}),
    Case(
        "late-record",
        "late.test",
        5432,
        10,
        ((("127.0.0.1:5432",), "0:up"),),
        {},
        {"late.test": {"A": ["127.0.0.1"]}},
        2.0,
    ),
]


@dataclass
class Outcome:
    tool: str
    case: str
    exit_code: int | None
    seconds: float | None
    said: str


def _scanner(*extra: str) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        target = f"{case.host}:{case.port}"
        return [sys.executable, "-m", "scanner", "wait", target, "--deadline", str(case.deadline),
                "--format", "json", *extra]  # fmt: skip

    return argv


def _wait_for_it(path: str) -> Callable[[Case], list[str]]:
    return lambda case: [path, f"{case.host}:{case.port}", "-t", str(case.deadline)]


def _dockerize(path: str) -> Callable[[Case], list[str]]:
    return lambda case: [
        path,
        "-wait",
        f"tcp://{case.host}:{case.port}",
        "-timeout",
        f"{case.deadline}s",
    ]


def _wait4x(path: str) -> Callable[[Case], list[str]]:
    return lambda case: [path, "tcp", f"{case.host}:{case.port}", "--timeout", f"{case.deadline}s"]


def _found(given: str | None, *names: str) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((p for p in (shutil.which(n) for n in names) if p), None)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_one(case: Case, tool: str, argv_of: Callable[[Case], list[str]]) -> Outcome:
    """One tool on one case, in a namespace of its own: a fresh DNS server and listeners."""
    ns = lab.Netns(f"{lab.run_id()}-peer")
    server: ZoneServer | None = None
    try:
        ns.write_etc("hosts", "127.0.0.1 localhost\n::1 localhost\n")
        ns.write_etc("resolv.conf", "nameserver 127.0.0.1\n")
        with tempfile.TemporaryDirectory() as work:
            server = ZoneServer(Path(work), case.zone, port=53, prefix=ns.exec_argv([]))
            for listen, plan in case.services:
                argv = [sys.executable, "-m", "tests.wait_services", "--plan", plan]
                for address in listen:
                    argv += ["--listen", address]
                ns.spawn(argv, ready_line="ready", cwd=ROOT)
            if case.late_zone is not None:
                server.set_later(case.late_after, case.late_zone)
            started = time.monotonic()
            proc = subprocess.run(
                ns.exec_argv(argv_of(case)),
                capture_output=True,
                text=True,
                timeout=case.deadline + 30,  # bounded even if a tool ignores its timeout
                cwd=ROOT,
                check=False,
            )
            took = time.monotonic() - started
            server.close()
            server = None
    finally:
        if server is not None:
            server.close()
        ns.delete()
    return Outcome(tool, case.name, proc.returncode, round(took, 1), _last_line(proc.stderr))


def run_case(case: Case, tools: Sequence[tuple[str, Callable[[Case], list[str]]]]) -> list[Outcome]:
    return [run_one(case, tool, argv_of) for tool, argv_of in tools]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--wait-for-it", default=None, metavar="PATH")
    parser.add_argument("--dockerize", default=None, metavar="PATH")
    parser.add_argument("--wait4x", default=None, metavar="PATH")
    parser.add_argument("--cases", default=",".join(c.name for c in CASES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = lab.netns_available()
    if reason is not None:
        sys.exit(f"wait_peers: {reason}")
    tools: list[tuple[str, Callable[[Case], list[str]]]] = [
        ("scanner", _scanner()),
        # the backoff (1 s doubling to 5 s) is the default; this polls every second, as
        # wait-for-it does
        ("scanner --max-interval 1", _scanner("--max-interval", "1")),
    ]
    used = []
    missing = []
    for name, given, names, wrap in (
        ("wait-for-it", args.wait_for_it, ("wait-for-it.sh", "wait-for-it"), _wait_for_it),
        ("dockerize", args.dockerize, ("dockerize",), _dockerize),
        ("wait4x", args.wait4x, ("wait4x",), _wait4x),
    ):
        path = _found(given, *names)
        if path is None:
            missing.append(name)
        else:
            tools.append((name, wrap(path)))
            used.append(f"{name}: {path}")
    wanted = set(args.cases.split(","))
    results = [o for case in CASES if case.name in wanted for o in run_case(case, tools)]
    if args.json:
        document = {"results": [asdict(r) for r in results], "ran": used, "not_run": missing}
        print(json.dumps(document, indent=2))
        return
    print("| case | tool | exit | seconds | last line on stderr |")
    print("|---|---|---|---|---|")
    for r in results:
        said = r.said.replace("|", "\\|")
        print(f"| {r.case} | {r.tool} | {r.exit_code} | {r.seconds} | {said} |")
    for line in used:
        print(f"\n{line}")
    for name in missing:
        print(f"\n{name}: not available on this machine, not run (give its path with --{name})")


if __name__ == "__main__":
    main()
