"""scanner vs ``nmap -sT`` vs a plain asyncio scanner, on loopback inside a network namespace.

Three cases, each a set of distinct endpoints 127.x.y.z:port (``lo`` in the namespace answers
for all of 127.0.0.0/8):

* open     — 20,000 addresses, port 8080: one listener on 0.0.0.0:8080 accepts and closes;
* refused  — 20,000 addresses, port 8081: nothing listens, the kernel answers with RST;
* dropped  —  2,000 addresses, port 8082: an nftables rule in the namespace drops the SYN.

Every tool gets the same job: one TCP handshake per endpoint, no ping, no DNS, no retries,
the same timeout and the same number of handshakes in flight. Each tool runs in the namespace
(``ip netns exec``); wall time and peak RSS come from ``os.wait4``. scanner is installed
from this checkout with pip into a fresh venv, as a user installs it, and both Python tools
run on that venv's interpreter (``--dev-python``: a snapshot on PYTHONPATH instead).
Every run is checked against the expected outcome (e.g. exactly 20,000 ``open``
target.result events), and each table shows the median of ``--repeat`` runs. For the
dropped case the bound from issue 6 is checked: wall ≤ 1.1 × ceil(N / concurrency) × timeout.

Needs root, ``ip``, ``nft`` and ``nmap``. The namespace has a unique name and is deleted on
exit, also on error or Ctrl-C; no packet leaves it. Usage::

    sudo python benchmarks/compare.py              # full: 20,000 / 20,000 / 2,000, 3 repeats
    sudo python benchmarks/compare.py --quick      # 2,000 / 2,000 / 2,000, 1 repeat
"""

from __future__ import annotations

import argparse
import compileall
import ipaddress
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procmem import Watch  # noqa: E402 - the script's directory, as for dns.py

from tests.lab import netns as lab  # noqa: E402 - needs ROOT on sys.path first

PLAIN = Path(__file__).resolve().with_name("plain_asyncio.py")
OPEN_PORT, REFUSED_PORT, DROPPED_PORT = 8080, 8081, 8082
#: Kill a tool that runs longer than this: every loop here is bounded.
RUN_DEADLINE_S = 120.0
TOOLS = ("scanner", "nmap -sT", "plain asyncio")

LISTENER = """
import socket
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", {port}))
server.listen(65535)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    conn.close()
"""

NFT_RULES = f"""
table inet bench {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {DROPPED_PORT} drop
    }}
}}
"""


@dataclass(frozen=True)
class Case:
    """One set of endpoints and the one outcome each tool must report for every one of them."""

    name: str
    block: int  # targets are 127.<block>.x.y
    port: int
    count: int
    scanner: str  # target.result category
    nmap: str  # port state in -oG output
    plain: str  # plain_asyncio.py outcome

    def hosts(self) -> list[str]:
        return [f"127.{self.block}.{i // 250}.{i % 250 + 1}" for i in range(self.count)]


@dataclass
class Run:
    wall: float
    rss_mib: float
    counts: Counter[str]
    correct: bool
    note: str = ""
    duration: float | None = None  # the scanner's own scan.finished.duration_s
    #: scanner: peak PSS of all its processes together (workers forked) and how many
    tree_mib: float | None = None
    processes: int = 1


@dataclass
class Result:
    runs: dict[str, list[Run]] = field(default_factory=lambda: {t: [] for t in TOOLS})


def snapshot_scanner(dest: Path) -> str:
    """Copy scanner/ once, so every run measures the same code even while it is being edited.

    Returns what was copied (commit, and whether the working tree differs from it).
    The copy is byte-compiled, as ``pip install`` does: otherwise, with
    PYTHONDONTWRITEBYTECODE set, every run would compile the modules again.
    """
    shutil.copytree(
        ROOT / "scanner", dest / "scanner", ignore=shutil.ignore_patterns("__pycache__")
    )
    compileall.compile_dir(dest / "scanner", quiet=1)
    return snapshot_label()


def install_scanner(dest: Path) -> tuple[str, str] | None:
    """A fresh venv with scanner installed from this checkout, as ``pip install .`` does.

    The Python tools then run as a user runs them: no editable-install finder, none of
    the development interpreter's ``.pth`` hooks (here they cost ~20 ms of each start).
    Returns (the venv's python, what was installed), or None when it cannot be built
    (no package index): the caller falls back to the snapshot on PYTHONPATH.
    """
    package = dest / "package"
    package.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, package / name)
    shutil.copytree(
        ROOT / "scanner", package / "scanner", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = dest / "venv"
    python = venv / "bin" / "python"
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", str(package)],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = getattr(exc, "stderr", b"") or b""
        print(
            f"could not install scanner in a venv ({exc}): {tail.decode()[-300:]}", file=sys.stderr
        )
        return None
    return str(python), f"{snapshot_label()}, installed with pip in a fresh venv"


def snapshot_label() -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "scanner"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"scanner/ at {head or 'unknown commit'}{' + uncommitted changes' if dirty else ''}"


def timed(
    argv: list[str],
    stdout: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    tree: Watch | None = None,
) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MiB, exit code, stderr tail) of one process, killed at the deadline.

    With ``tree``, that watch samples the process and every process it forks meanwhile.
    """
    with open(stdout, "wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        watchdog = threading.Timer(RUN_DEADLINE_S, os.killpg, (proc.pid, signal.SIGKILL))
        watchdog.start()
        if tree is not None:
            tree.start(proc.pid)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C / SIGTERM: the tool must not outlive the benchmark
            os.killpg(proc.pid, signal.SIGKILL)
            os.waitpid(proc.pid, 0)
            raise
        finally:
            watchdog.cancel()
            if tree is not None:
                tree.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1500:]
    # ``ip netns exec`` execs the tool in place, so this is the tool's own peak (Linux: KiB)
    return wall, usage.ru_maxrss / 1024, proc.returncode, tail


def scanner_counts(path: Path) -> tuple[Counter[str], float | None]:
    """target.result categories and scan.finished.duration_s from a JSON-lines event stream."""
    counts: Counter[str] = Counter()
    duration = None
    with open(path, "rb") as handle:
        for line in handle:
            if b'"target.result"' in line:
                counts[json.loads(line)["category"]] += 1
            elif b'"scan.finished"' in line:
                duration = json.loads(line).get("duration_s")
    return counts, duration


def nmap_counts(path: Path, port: int) -> Counter[str]:
    """Port states from nmap's greppable output; hosts without a Ports line count as missing."""
    counts: Counter[str] = Counter()
    pattern = re.compile(rf"\b{port}/([a-z|]+)/tcp/")
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("Host:") and "Ports:" in line:
            match = pattern.search(line)
            counts[match.group(1) if match else "unparsed"] += 1
    return counts


class Bench:
    def __init__(
        self,
        ns: lab.Netns,
        work: Path,
        concurrency: int,
        timeout: float,
        scanner_args: Sequence[str] = (),
    ) -> None:
        self.scanner_args = list(scanner_args)
        self.ns = ns
        self.work = work
        self.src = work / "src"
        #: the interpreter of both Python tools; set by ``prepare``
        self.python = sys.executable
        self.installed = False  # scanner installed in self.python's venv, else on PYTHONPATH
        self.concurrency = concurrency
        self.timeout = timeout

    def prepare(self, venv: bool) -> str:
        """Install scanner in a fresh venv (or, failing that or without ``venv``, snapshot
        it for PYTHONPATH); says what will run."""
        installed = install_scanner(self.work / "install") if venv else None
        if installed is not None:
            self.python, label = installed
            self.installed = True
            return f"{label}: {self.python}"
        return f"{snapshot_scanner(self.src)} on PYTHONPATH, run by {self.python}"

    def stage(self, case: Case) -> None:
        hosts = case.hosts()
        (self.work / f"{case.name}.txt").write_text("\n".join(hosts) + "\n")
        lines = ["version: 1", f"defaults: {{timeout: {self.timeout}, retries: 0}}", "targets:"]
        # the same endpoints as the fewest CIDR blocks, as a person would write them
        blocks = ipaddress.collapse_addresses(ipaddress.ip_network(h) for h in hosts)
        lines += [f"  - {block}:{case.port}" for block in blocks]
        (self.work / f"{case.name}.yaml").write_text("\n".join(lines) + "\n")

    def argv(self, tool: str, case: Case) -> list[str]:
        c, t = str(self.concurrency), self.timeout
        rounds = math.ceil(case.count / self.concurrency)
        if tool == "scanner":
            return [
                self.python,
                "-m",
                "scanner",
                "check",
                str(self.work / f"{case.name}.yaml"),
                "--format",
                "json",
                "--timeout",
                str(t),
                "--retries",
                "0",
                "--concurrency",
                c,
                *self.scanner_args,
            ]
        if tool == "nmap -sT":
            ms = f"{round(t * 1000)}ms"
            return [
                "nmap",
                "-sT",
                "-Pn",
                "-n",
                "--max-retries",
                "0",
                # the per-probe timeout is nmap's RTT timeout: pin it to ours, or nmap
                # learns the ~0.1 ms loopback RTT and gives up on drops after 100 ms
                "--initial-rtt-timeout",
                ms,
                "--min-rtt-timeout",
                ms,
                "--max-rtt-timeout",
                ms,
                # a safety net only: the clock runs from the start of the host group
                "--host-timeout",
                f"{max(30, math.ceil(4 * rounds * t))}s",
                "--min-parallelism",
                c,
                "--max-parallelism",
                c,
                # one host group for all targets: otherwise nmap scans small groups one
                # after the other and never has C handshakes in flight
                "--min-hostgroup",
                str(case.count),
                "--max-hostgroup",
                str(case.count),
                "-p",
                str(case.port),
                "-iL",
                str(self.work / f"{case.name}.txt"),
                "-oG",
                str(self.work / "nmap.gnmap"),
            ]
        return [
            self.python,
            str(PLAIN),
            str(self.work / f"{case.name}.txt"),
            str(case.port),
            "--concurrency",
            c,
            "--timeout",
            str(t),
        ]

    def run(self, tool: str, case: Case) -> Run:
        out = self.work / "stdout"
        (self.work / "nmap.gnmap").unlink(missing_ok=True)
        # the snapshot, from its own directory: ``-m`` puts the cwd first on sys.path
        env = ["env", f"PYTHONPATH={self.src}"] if tool == "scanner" and not self.installed else []
        # scanner may fork workers: wait4's peak is then its largest process only
        tree = Watch(interval=0.05) if tool == "scanner" else None
        wall, rss, code, err = timed(
            self.ns.exec_argv([*env, *self.argv(tool, case)]),
            out,
            self.work if self.installed else self.src,
            tree=tree,
        )
        note, duration = "", None
        if tool == "scanner":
            counts, duration = scanner_counts(out)
            expected_code = 0 if case.scanner == "open" else 1
            note = f"duration_s {duration}" if duration is not None else "no scan.finished"
            expected = case.scanner
        elif tool == "nmap -sT":
            counts = nmap_counts(self.work / "nmap.gnmap", case.port)
            expected_code, expected = 0, case.nmap
        else:
            try:
                counts = Counter(json.loads(out.read_text()))
            except ValueError:  # crashed before printing its one line
                counts = Counter({"no output": 1})
            expected_code, expected = 0, case.plain
        correct = dict(counts) == {expected: case.count} and code == expected_code
        if not correct or "no scan.finished" in note:
            last = err.strip().splitlines()[-1:] or ["(no stderr)"]
            note += f"; exit {code}; stderr: {last[0][-300:]}"
        run = Run(wall, rss, counts, correct, note.strip(), duration)
        if tree is not None and tree.peak_pss_sum_kib:
            run.tree_mib, run.processes = tree.peak_pss_sum_kib / 1024, tree.processes
        return run


def setup_namespace() -> lab.Netns:
    ns = lab.Netns(f"{lab.run_id()}-bench")
    try:
        ns.sysctl({"net.core.somaxconn": 65535, "net.ipv4.tcp_max_syn_backlog": 65535})
        ns.nft(NFT_RULES)
        ns.spawn([sys.executable, "-c", LISTENER.format(port=OPEN_PORT)], ready_line="listening")
    except BaseException:
        ns.delete()
        raise
    return ns


def median_row(tool: str, runs: list[Run], count: int) -> tuple[str, float, float, float, str]:
    """Medians over the correct runs (a crashed run is not a fast one); all runs if none."""
    good = [r for r in runs if r.correct] or runs
    wall = statistics.median(r.wall for r in good)
    rss = statistics.median(r.rss_mib for r in good)
    ok = sum(r.correct for r in runs)
    return tool, count / wall, wall, rss, f"{ok}/{len(runs)}"


def print_table(case: Case, result: Result, concurrency: int, timeout: float) -> None:
    repeat = len(result.runs["scanner"])
    print(
        f"\n{case.name}: {case.count:,} endpoints 127.{case.block}.x.y:{case.port}, "
        f"concurrency {concurrency}, timeout {timeout:g} s, median of {repeat} "
        "(correct runs only)"
    )
    print(f"  {'tool':<15}{'targets/s':>11}{'wall s':>9}{'peak RSS MiB':>14}{'correct':>9}")
    rows = {tool: median_row(tool, runs, case.count) for tool, runs in result.runs.items()}
    for tool, rate, wall, rss, ok in rows.values():
        print(f"  {tool:<15}{rate:>11,.0f}{wall:>9.2f}{rss:>14.1f}{ok:>9}")
    trees = [r for r in result.runs["scanner"] if r.correct and r.tree_mib is not None]
    if trees:
        print(
            f"  {'':<15}scanner's processes together (up to {max(r.processes for r in trees)}):"
            f" peak PSS {statistics.median(r.tree_mib or 0.0 for r in trees):.1f} MiB"
        )
    scanner, nmap = rows["scanner"], rows["nmap -sT"]
    print(
        f"  {'scanner/nmap':<15}{scanner[1] / nmap[1]:>10.2f}x{scanner[2] / nmap[2]:>8.2f}x"
        f"{scanner[3] / nmap[3]:>13.2f}x"
    )
    if case.name == "dropped":
        rounds = math.ceil(case.count / concurrency)
        bound = 1.1 * rounds * timeout
        print(
            f"  bound (issue 6): wall ≤ 1.1 × ceil({case.count} / {concurrency}) × "
            f"{timeout:g} s = {bound:.3f} s"
        )
        for tool, _rate, wall, _rss, _ok in rows.values():
            verdict = "within" if wall <= bound else "EXCEEDS"
            print(f"    {tool:<15} median wall {wall:.3f} s  {verdict}")
        durations = [
            r.duration for r in result.runs["scanner"] if r.correct and r.duration is not None
        ]
        if durations:
            own = statistics.median(durations)
            print(
                f"    {'scanner':<15} median scan.finished.duration_s {own:.3f} s  "
                f"{'within' if own <= bound else 'EXCEEDS'} (excludes interpreter start)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per tool and case (default 3, 1 with --quick); the tables show the median",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 open / 2,000 refused / 2,000 dropped, one run each",
    )
    parser.add_argument("--concurrency", type=int, default=1000, help="handshakes in flight")
    parser.add_argument("--timeout", type=float, default=1.0, help="handshake timeout, s")
    parser.add_argument(
        "--scanner-args", default="", help='extra arguments for scanner check, e.g. "--workers 2"'
    )
    parser.add_argument(
        "--dev-python",
        action="store_true",
        help="run scanner from a snapshot on PYTHONPATH with this interpreter "
        "instead of installing it in a fresh venv",
    )
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    if not 1 <= repeat <= 20 or args.concurrency < 1 or not 0 < args.timeout <= 10:
        parser.error("--repeat must be 1..20, --concurrency ≥ 1, --timeout in (0, 10]")
    reason = lab.netns_available() or (None if shutil.which("nmap") else "nmap is not installed")
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    big, dropped = (2_000, 2_000) if args.quick else (20_000, 2_000)
    cases = [
        Case("open", 1, OPEN_PORT, big, "open", "open", "open"),
        Case("refused", 2, REFUSED_PORT, big, "refused", "closed", "refused"),
        Case("dropped", 3, DROPPED_PORT, dropped, "timeout", "filtered", "timeout"),
    ]
    # SIGTERM unwinds like Ctrl-C, so the namespace is always deleted
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = {case.name: Result() for case in cases}
    ns = setup_namespace()
    print(
        f"namespace {ns.name}; {sys.executable} {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; repeat {repeat}"
    )
    failures = 0
    try:
        with tempfile.TemporaryDirectory(prefix="scanner-bench-") as tmp:
            bench = Bench(
                ns, Path(tmp), args.concurrency, args.timeout, shlex.split(args.scanner_args)
            )
            print(bench.prepare(venv=not args.dev_python), flush=True)
            for case in cases:
                bench.stage(case)
            for i in range(repeat):  # tools interleaved, so a slow phase hurts all alike
                for case in cases:
                    for tool in TOOLS:
                        run = bench.run(tool, case)
                        results[case.name].runs[tool].append(run)
                        failures += not run.correct
                        print(
                            f"run {i + 1} {case.name:<8}{tool:<14}{run.wall:7.2f} s "
                            f"{run.rss_mib:6.1f} MiB  {dict(run.counts)} "
                            f"{'correct' if run.correct else 'WRONG'}"
                            f"{'  ' + run.note if run.note else ''}",
                            flush=True,
                        )
    finally:
        ns.delete()
    for case in cases:
        print_table(case, results[case.name], args.concurrency, args.timeout)
    print(f"\n{'all runs correct' if not failures else f'{failures} run(s) WRONG'}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: tools stopped, namespace deleted", file=sys.stderr)
        sys.exit(130)
