"""scanner vs ``nmap -sT`` vs a plain asyncio scanner, each peer at its best, in a namespace.

Every tool gets the same job in the same input form, runs inside one network namespace
(``ip netns exec``) whose loopback answers for all of 127.0.0.0/8, and is checked on every
run: each category count exactly as expected, and the exit code. The cases (full size):

* ``list-open`` / ``list-refused`` — 20,000 endpoints as an explicit list: an inventory of
  20,000 ``host:port`` lines for scanner, ``-iL`` of the addresses plus ``-p`` for nmap.
  Open ones are answered by a C accept-and-close sink (``c/sink.c``, built with ``cc``, epoll)
  on 0.0.0.0:8080; refused ones by the kernel (nothing on :8081).
* ``cidr-open`` / ``cidr-refused`` — the same 20,000 endpoints as 1,040 CIDR blocks: an
  inventory of CIDR hosts for scanner, the same blocks in the ``-iL`` file for nmap.
* ``dropped`` — 2,000 listed endpoints whose SYN an nftables rule drops; every tool waits
  1 s per handshake (nmap's RTT timeouts pinned to it), and scanner's wall time is checked
  against issue 6's bound, 1.1 × ceil(N / concurrency) × timeout.
* ``sweep`` — 127.2.0.0/16 × ports 47000-47015 (1,048,576 endpoints, refused), one line each.
* ``names-*`` — 10,000 host names (A records to 127.5.x.y) served by a real Unbound in the
  namespace (``tests/lab/real_dns.py``), found through the namespace's own /etc/netns
  resolv.conf and nsswitch.conf (``hosts: files dns``): nmap resolves target names with glibc,
  one at a time
  (its ``--dns-servers`` serves reverse lookups only). Open and refused, with the resolver on
  loopback and behind a ~1 ms delay (``c/delayq.c``: this kernel has no netem).

Peers at their best: for each case, nmap's settings are searched (``-n -Pn --max-retries 0``
always; then, one dimension at a time, keeping the fastest correct run: timing template
-T4/-T3/-T5, ``--min-rate``, host group, parallelism — see NMAP_SEARCH) and the plain asyncio
peer's concurrency likewise; the table says which won. scanner runs with its defaults (the
inventories set ``timeout: 1, retries: 0``, the same single 1 s attempt nmap gets with
``--max-retries 0``). Tools are then timed ``--repeat`` times, interleaved, and the table
gives medians: wall time (from before the fork to the reaped exit, by a blocking wait on a
pidfd, no polling), targets/s, and the peak PSS of all the tool's processes together
(``procmem.Watch``). scanner is installed from this checkout with pip into a fresh venv, as a
user has it; the plain peer runs on the same interpreter.

Needs root, ``ip``, ``nft``, ``nmap``, ``cc`` and ``unbound``. The namespace has a
unique name and is deleted on exit, also on error or Ctrl-C; no packet leaves it. Usage::

    sudo python benchmarks/compare.py              # every case, full size, 3 repeats
    sudo python benchmarks/compare.py --quick      # small cases, fixed settings, 1 run (< 1 min)
    sudo python benchmarks/compare.py --cases list-open,sweep --repeat 5 --search-runs 2

The full run took 22-37 min on the shared 2-core development machine (--quick: 38 s), most
of it the search and the sweep (the plain peer alone: 2-3 min a sweep, so it is timed once
there, with the concurrency that won the CIDR refused case).
"""

from __future__ import annotations

import argparse
import compileall
import ipaddress
import json
import math
import os
import re
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dnslab  # noqa: E402 - the script's directory, as for procmem
from procmem import Watch  # noqa: E402

from tests.lab import netns as lab  # noqa: E402 - needs ROOT on sys.path first

PLAIN = Path(__file__).resolve().with_name("plain_asyncio.py")
OPEN_PORT, REFUSED_PORT, DROPPED_PORT = 8080, 8081, 8082
SWEEP_PORTS = "47000-47015"
TIMEOUT_S = 1.0  # every tool's handshake timeout (it only matters where SYNs are dropped)
ZONE = "bench.test"
UNBOUND_AT, DELAY_AT = "127.0.0.53", "127.0.0.54"
DELAY_US = 1000
#: Kill a tool that runs longer than this (per case below): every loop here is bounded.
RUN_DEADLINE_S = 120.0
#: scanner's --concurrency default (SPEC §1), for the bound of the dropped case
SCANNER_CONCURRENCY = 1024
TOOLS = ("scanner", "nmap -sT", "plain asyncio")

NFT_RULES = f"""
table inet bench {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {DROPPED_PORT} drop
    }}
}}
"""

#: nmap's options searched, one dimension at a time, in this order, each value tried with the
#: best values of the other dimensions so far; the first value of each is where the search
#: starts (the configuration issue 18 found best by hand), so a good run sets the bar early and
#: a hopeless candidate is stopped at 3 × that bar. -T4 first, as nmap's book recommends for
#: fast reliable networks ("keep that option even when you add fine-grained controls");
#: --min-rate, large host groups ("for scans of just a few port numbers, host group sizes of
#: 2048 or more may be helpful") and parallelism are its knobs for large sweeps. -sT waits with
#: select(), so more than ~1,000 sockets at once fail (FD_SETSIZE, nmap issue #1222): such a
#: run counts as wrong, not fast. --host-timeout is left out: it can only drop hosts (a wrong
#: run); --max-rate is never set. ``{hosts}`` is the case's number of addresses.
NMAP_SEARCH: list[tuple[str, list[tuple[str, ...]]]] = [
    ("timing", [("-T4",), ("-T3",), ("-T5",)]),
    ("rate", [("--min-rate", "100000"), (), ("--min-rate", "10000"), ("--min-rate", "1000000")]),
    ("hostgroup", [(), ("--min-hostgroup", "4096"), ("--min-hostgroup", "{hosts}")]),
    (
        "parallelism",
        [
            (),
            ("--min-parallelism", "256", "--max-parallelism", "256"),
            ("--min-parallelism", "512", "--max-parallelism", "512"),
            ("--min-parallelism", "1000", "--max-parallelism", "1000"),
        ],
    ),
]
#: nmap's settings for --quick or --no-search: where the search starts
NMAP_FIXED: tuple[str, ...] = tuple(arg for _, values in NMAP_SEARCH for arg in values[0])
PLAIN_SEARCH = [1024, 256, 64, 4096]
PLAIN_FIXED = 1024


#: a tool's setting: nmap's options, or the plain peer's concurrency
Setting = tuple[str, ...] | int


@dataclass(frozen=True)
class Case:
    """One job every tool does, in one input form, with the one outcome of every endpoint."""

    key: str
    title: str
    form: str  # "list" | "cidr" | "names"
    outcome: str  # "open" | "refused" | "timeout"
    targets: tuple[str, ...]  # addresses, CIDR blocks or names: the lines of nmap's -iL
    ports: str  # "8080" or "47000-47015"
    count: int  # endpoints = targets expanded × ports
    hosts: int  # addresses (nmap's host count)
    dns: str | None = None  # None | "loopback" | "delayed"
    deadline: float = RUN_DEADLINE_S
    #: the plain peer's concurrency is taken from this case's search, when it ran (the
    #: sweep: one run of the plain peer takes minutes, and its best depends on the outcome)
    plain_from: str | None = None
    #: at most this many timed runs of the plain peer (the sweep: ~3 min a run here)
    plain_repeat: int | None = None

    @property
    def scanner_category(self) -> str:
        return self.outcome

    @property
    def nmap_state(self) -> str:
        return {"open": "open", "refused": "closed", "timeout": "filtered"}[self.outcome]


def addresses(block: int, count: int) -> list[str]:
    """``count`` distinct addresses 127.<block>.x.y, y in 1..250 (as a list of hosts reads)."""
    return [f"127.{block}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def names(count: int) -> list[str]:
    return [f"n{i:05d}.{ZONE}" for i in range(count)]


def build_cases(
    big: int, dropped: int, sweep_prefix: int, sweep_ports: str, n_names: int
) -> list[Case]:
    opened, refused = addresses(1, big), addresses(3, big)
    collapse = ipaddress.collapse_addresses
    blocks_open = tuple(str(b) for b in collapse(ipaddress.IPv4Network(h) for h in opened))
    blocks_refused = tuple(str(b) for b in collapse(ipaddress.IPv4Network(h) for h in refused))
    low, _, high = sweep_ports.partition("-")
    n_ports = int(high or low) - int(low) + 1
    sweep_hosts = 2 ** (32 - sweep_prefix)
    named = tuple(names(n_names))
    cases = [
        Case(
            "list-open",
            f"{big:,} listed endpoints, open",
            "list",
            "open",
            tuple(opened),
            str(OPEN_PORT),
            big,
            big,
        ),
        Case(
            "list-refused",
            f"{big:,} listed endpoints, refused",
            "list",
            "refused",
            tuple(refused),
            str(REFUSED_PORT),
            big,
            big,
        ),
        Case(
            "cidr-open",
            f"the same {big:,} as {len(blocks_open):,} CIDR blocks, open",
            "cidr",
            "open",
            blocks_open,
            str(OPEN_PORT),
            big,
            big,
        ),
        Case(
            "cidr-refused",
            f"the same {big:,} as {len(blocks_refused):,} CIDR blocks, refused",
            "cidr",
            "refused",
            blocks_refused,
            str(REFUSED_PORT),
            big,
            big,
        ),
        Case(
            "dropped",
            f"{dropped:,} listed endpoints, dropped (1 s timeout)",
            "list",
            "timeout",
            tuple(addresses(4, dropped)),
            str(DROPPED_PORT),
            dropped,
            dropped,
        ),
        Case(
            "sweep",
            f"127.2.0.0/{sweep_prefix} × {n_ports} ports ({sweep_hosts * n_ports:,}), refused",
            "cidr",
            "refused",
            (f"127.2.0.0/{sweep_prefix}",),
            sweep_ports,
            sweep_hosts * n_ports,
            sweep_hosts,
            deadline=900.0,
            plain_from="cidr-refused",
            plain_repeat=1,
        ),
    ]
    for dns, where in (("loopback", "Unbound on loopback"), ("delayed", "Unbound ~1 ms away")):
        for outcome, port in (("open", OPEN_PORT), ("refused", REFUSED_PORT)):
            cases.append(
                Case(
                    f"names-{outcome}{'-delayed' if dns == 'delayed' else ''}",
                    f"{n_names:,} host names ({where}), {outcome}",
                    "names",
                    outcome,
                    named,
                    str(port),
                    n_names,
                    n_names,
                    dns=dns,
                    deadline=300.0,
                )
            )
    return cases


@dataclass
class Run:
    wall: float
    pss_mib: float
    processes: int
    counts: Counter[str]
    correct: bool
    note: str = ""
    duration: float | None = None  # the scanner's own scan.finished.duration_s
    stopped: bool = False  # killed at its deadline


@dataclass
class Trial:
    """One run of the search: a tool's setting and how it did."""

    setting: Setting
    run: Run


@dataclass
class Outcome:
    """A case's search and measurement, per tool."""

    setting: dict[str, Setting | None] = field(default_factory=dict)
    trials: dict[str, list[Trial]] = field(default_factory=dict)
    runs: dict[str, list[Run]] = field(default_factory=lambda: {t: [] for t in TOOLS})


# ---- installing scanner ------------------------------------------------------------------------
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


# ---- one timed run ------------------------------------------------------------------------------
def timed(
    argv: list[str],
    stdout: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    tree: Watch | None = None,
    deadline: float = RUN_DEADLINE_S,
) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MiB, exit code, stderr tail) of one process, killed at the deadline.

    The wait blocks on a pidfd (woken by the exit itself, no polling step), then reaps the
    process with ``wait4`` for its resource usage. With ``tree``, that watch samples the
    process and every process it forks meanwhile.
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
        pidfd = os.pidfd_open(proc.pid)
        if tree is not None:
            tree.start(proc.pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], deadline)
            if not ready:  # over the deadline: kill the whole session, then reap
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C / SIGTERM: the tool must not outlive the benchmark
            os.killpg(proc.pid, signal.SIGKILL)
            os.waitpid(proc.pid, 0)
            raise
        finally:
            os.close(pidfd)
            if tree is not None:
                tree.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1500:]
    # ``ip netns exec`` execs the tool in place, so this is the tool's own peak (Linux: KiB)
    return wall, usage.ru_maxrss / 1024, proc.returncode, tail


# ---- reading each tool's output -----------------------------------------------------------------
def scanner_counts(path: Path) -> tuple[Counter[str], Counter[str], float | None]:
    """target.result and dns.result categories, and scan.finished.duration_s, from the stream."""
    targets: Counter[str] = Counter()
    dns: Counter[str] = Counter()
    duration = None
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b'{"event":"target.result"'):
                targets[line.split(b'"category":"', 1)[1].split(b'"', 1)[0].decode()] += 1
            elif line.startswith(b'{"event":"dns.result"'):
                dns[json.loads(line)["category"]] += 1
            elif line.startswith(b'{"event":"scan.finished"'):
                duration = json.loads(line).get("duration_s")
            elif b'"target.result"' in line:  # another key order: parse it properly
                targets[json.loads(line)["category"]] += 1
    return targets, dns, duration


NMAP_PORT = re.compile(rb"(\d+)/([a-z|]+)/tcp/")
NMAP_IGNORED = re.compile(rb"Ignored State: ([a-z|]+) \((\d+)\)")


def nmap_counts(path: Path) -> Counter[str]:
    """Port states from nmap's greppable output (listed ports and "Ignored State" counts)."""
    counts: Counter[str] = Counter()
    with open(path, "rb") as handle:
        for line in handle:
            if not line.startswith(b"Host:") or b"Ports:" not in line:
                continue
            ports = line.split(b"Ports:", 1)[1]
            for _port, state in NMAP_PORT.findall(ports):
                counts[state.decode()] += 1
            for state, number in NMAP_IGNORED.findall(ports):
                counts[state.decode()] += int(number)
    return counts


# ---- the bench ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, ns: lab.Netns, work: Path, scanner_args: Sequence[str] = ()) -> None:
        self.ns = ns
        self.work = work
        self.src = work / "src"
        self.scanner_args = list(scanner_args)
        #: the interpreter of both Python tools; set by ``prepare``
        self.python = sys.executable
        self.installed = False  # scanner installed in self.python's venv, else on PYTHONPATH
        self.delayq: subprocess.Popen[str] | None = None
        self.unbound: subprocess.Popen[str] | None = None
        self.delay_stats = work / "delayq.stats"
        self.search_runs = 1  # runs per candidate setting in a search

    def prepare(self, venv: bool) -> str:
        """Install scanner in a fresh venv (or, failing that or without ``venv``, snapshot
        it for PYTHONPATH); says what will run."""
        installed = install_scanner(self.work / "install") if venv else None
        if installed is not None:
            self.python, label = installed
            self.installed = True
            return f"{label}: {self.python}"
        return f"{snapshot_scanner(self.src)} on PYTHONPATH, run by {self.python}"

    def start_servers(self, cases: Sequence[Case]) -> None:
        """The sink, the drop rule, and for name cases Unbound (and the delay) with its files."""
        ns = self.ns
        ns.sysctl({"net.core.somaxconn": 65535, "net.ipv4.tcp_max_syn_backlog": 65535})
        ns.nft(NFT_RULES)
        sink = dnslab.compile_c("sink.c", self.work)
        ns.spawn([str(sink), str(OPEN_PORT)], ready_line="listening")
        named = [c for c in cases if c.form == "names"]
        if not named:
            return
        ns.write_etc("nsswitch.conf", "hosts: files dns\n")
        ns.write_etc("hosts", "127.0.0.1 localhost\n::1 localhost\n")
        self.use_resolver(UNBOUND_AT)
        count = max(c.count for c in named)
        records = zip(names(count), addresses(5, count), strict=True)
        self.unbound = dnslab.start_unbound(ns, self.work, UNBOUND_AT, ZONE, records)
        if any(c.dns == "delayed" for c in named):
            binary = dnslab.compile_c("delayq.c", self.work)
            self.delayq = dnslab.start_delay(
                ns, binary, DELAY_AT, UNBOUND_AT, DELAY_US, self.delay_stats
            )

    def use_resolver(self, address: str) -> None:
        """The namespace's resolv.conf names this server (glibc and c-ares read it at start)."""
        self.ns.write_etc("resolv.conf", f"nameserver {address}\n")

    def resolver_rtts(self) -> str:
        """What a client sees: median round trip of sequential queries, direct and delayed."""
        servers = [UNBOUND_AT] + ([DELAY_AT] if self.delayq else [])
        rtts = dnslab.measure_rtt(self.ns, names(1)[0], servers)
        text = f"Unbound {rtts[0]:.3f} ms"
        if len(rtts) > 1:
            text += f", through delayq {rtts[1]:.3f} ms (+{rtts[1] - rtts[0]:.3f} ms)"
        return f"DNS round trip (median of 200 sequential A queries): {text}"

    def stage(self, case: Case) -> None:
        targets = self.work / f"{case.key}.targets"
        targets.write_text("\n".join(case.targets) + "\n")
        lines = ["version: 1", f"defaults: {{timeout: {TIMEOUT_S:g}, retries: 0}}", "targets:"]
        if "-" in case.ports:  # the sweep: one target line, as a person writes it
            lines += [f'  - {{name: sweep, host: "{case.targets[0]}", ports: ["{case.ports}"]}}']
        else:
            lines += [f"  - {target}:{case.ports}" for target in case.targets]
        (self.work / f"{case.key}.yaml").write_text("\n".join(lines) + "\n")

    def argv(self, tool: str, case: Case, setting: Setting | None) -> list[str]:
        if tool == "scanner":
            return [
                self.python,
                "-m",
                "scanner",
                "check",
                str(self.work / f"{case.key}.yaml"),
                "--format",
                "json",
                *self.scanner_args,
            ]
        if tool == "nmap -sT":
            assert isinstance(setting, tuple)
            pinned: list[str] = []
            if case.outcome == "timeout":  # wait TIMEOUT_S for each SYN, like the others
                ms = f"{round(TIMEOUT_S * 1000)}ms"
                pinned = ["--initial-rtt-timeout", ms, "--min-rtt-timeout", ms]
                pinned += ["--max-rtt-timeout", ms]
            return [
                "nmap",
                *setting,
                "-sT",
                "-n",
                "-Pn",
                "--max-retries",
                "0",
                *pinned,
                "-p",
                case.ports,
                "-iL",
                str(self.work / f"{case.key}.targets"),
                "-oG",
                "-",
            ]
        assert isinstance(setting, int)
        return [
            self.python,
            str(PLAIN),
            str(self.work / f"{case.key}.targets"),
            case.ports,
            "--concurrency",
            str(setting),
            "--timeout",
            f"{TIMEOUT_S:g}",
        ]

    def run(
        self,
        tool: str,
        case: Case,
        setting: Setting | None,
        deadline: float | None = None,
    ) -> Run:
        out = self.work / "stdout"
        if case.dns is not None:
            self.use_resolver(DELAY_AT if case.dns == "delayed" else UNBOUND_AT)
        # the snapshot, from its own directory: ``-m`` puts the cwd first on sys.path
        env = ["env", f"PYTHONPATH={self.src}"] if tool == "scanner" and not self.installed else []
        tree = Watch(interval=0.05)
        cpu_before = self.server_cpu()
        limit = deadline or case.deadline
        wall, _rss, code, err = timed(
            self.ns.exec_argv([*env, *self.argv(tool, case, setting)]),
            out,
            self.work if self.installed else self.src,
            tree=tree,
            deadline=limit,
        )
        stopped = code == -signal.SIGKILL and wall >= limit
        note, duration = "", None
        if tool == "scanner":
            counts, dns, duration = scanner_counts(out)
            expected_code = 0 if case.outcome == "open" else 1
            correct = dict(counts) == {case.scanner_category: case.count}
            if case.form == "names":
                correct &= dict(dns) == {"resolved": case.count}
                note = f"dns.result {dict(dns)}"
            note += f" duration_s {duration}" if duration is not None else " no scan.finished"
        elif tool == "nmap -sT":
            counts = nmap_counts(out)
            expected_code = 0
            correct = dict(counts) == {case.nmap_state: case.count}
            unresolved = err.count("Failed to resolve")
            if unresolved:
                note = f"{unresolved} names not resolved"
                correct = False
        else:
            try:
                counts = Counter(json.loads(out.read_text()))
            except ValueError:  # crashed before printing its one line
                counts = Counter({"no output": 1})
            expected_code = 0
            correct = dict(counts) == {case.outcome: case.count}
        correct &= code == expected_code
        if case.dns is not None:
            note += self.server_note(cpu_before)
        if stopped:
            note += f"; stopped at its deadline, {limit:.1f} s"
        elif not correct:
            last = err.strip().splitlines()[-1:] or ["(no stderr)"]
            note += f"; exit {code}; stderr: {last[0][-300:]}"
        return Run(
            wall,
            tree.peak_pss_sum_kib / 1024,
            tree.processes,
            counts,
            correct and not stopped,
            note.strip(" ;"),
            duration,
            stopped,
        )

    def server_cpu(self) -> tuple[float, float, int]:
        """CPU seconds Unbound and the delay forwarder have used so far, and queries delayed."""
        if self.unbound is None:
            return 0.0, 0.0, 0
        if self.delayq is None:
            return dnslab.cpu_seconds(self.unbound.pid), 0.0, 0
        queries = dnslab.delay_stats(self.delayq, self.delay_stats).get("queries", 0)
        return dnslab.cpu_seconds(self.unbound.pid), dnslab.cpu_seconds(self.delayq.pid), queries

    def server_note(self, before: tuple[float, float, int]) -> str:
        """What the run cost the resolver: Unbound's CPU, and the delay forwarder's per query."""
        after = self.server_cpu()
        note = f"; Unbound {after[0] - before[0]:.2f} CPU s"
        delayed = after[2] - before[2]
        if delayed:
            cpu = after[1] - before[1]
            note += (
                f"; delayq {delayed} queries, {cpu:.2f} CPU s ({cpu / delayed * 1e6:.1f} µs each)"
            )
        return note


# ---- searching each peer's best -----------------------------------------------------------------
class Search:
    """Runs candidate settings of one tool on one case and keeps the fastest correct one.

    A candidate is stopped once it has taken 3 × the best wall so far (+ 2 s): it cannot win.
    """

    def __init__(self, bench: Bench, tool: str, case: Case, log: Callable[[str], None]) -> None:
        self.bench, self.tool, self.case, self.log = bench, tool, case, log
        self.trials: list[Trial] = []
        self.best: Trial | None = None

    def attempt(self, setting: Setting) -> None:
        if any(t.setting == setting for t in self.trials):
            return
        deadline = self.case.deadline
        if self.best is not None:
            deadline = min(deadline, 3 * self.best.run.wall + 2.0)
        runs: list[Run] = []
        for _ in range(self.bench.search_runs):  # the fastest of them: load only slows a run
            runs.append(self.bench.run(self.tool, self.case, setting, deadline))
            if not runs[-1].correct:
                break
        run = runs[-1] if not runs[-1].correct else min(runs, key=lambda r: r.wall)
        trial = Trial(setting, run)
        self.trials.append(trial)
        of = f" (fastest of {len(runs)})" if len(runs) > 1 else ""
        self.log(
            f"  search {self.case.key:<22}{self.tool:<14}{describe(setting):<58}{run.wall:7.2f} s "
            f"{verdict(run)}{of}"
        )
        if run.correct and (self.best is None or run.wall < self.best.run.wall):
            self.best = trial


def verdict(run: Run) -> str:
    if run.stopped:
        return "stopped at its deadline (3 × the best so far + 2 s, or the case's)"
    if run.correct:
        return "correct"
    return f"WRONG {dict(run.counts)}"[:80] + f"  {run.note[-120:]}"


def search_nmap(bench: Bench, case: Case, log: Callable[[str], None]) -> Search:
    """NMAP_SEARCH one dimension at a time, each from the best of the dimensions before."""
    found = Search(bench, "nmap -sT", case, log)
    choice = {name: values[0] for name, values in NMAP_SEARCH}

    def flat(parts: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        hosts = str(case.hosts)
        return tuple(arg.replace("{hosts}", hosts) for part in parts.values() for arg in part)

    for name, values in NMAP_SEARCH:
        for value in values:
            found.attempt(flat({**choice, name: value}))
        for value in values:  # keep the value the best run so far has in this dimension
            if found.best is not None and found.best.setting == flat({**choice, name: value}):
                choice[name] = value
    return found


def search_plain(bench: Bench, case: Case, log: Callable[[str], None]) -> Search:
    found = Search(bench, "plain asyncio", case, log)
    for concurrency in PLAIN_SEARCH:
        found.attempt(concurrency)
    return found


def describe(setting: Setting | None) -> str:
    if setting is None:
        return "(none correct)"
    if isinstance(setting, int):
        return f"--concurrency {setting}"
    return " ".join(setting) or "(nmap's defaults)"


# ---- the table ----------------------------------------------------------------------------------
def median_run(runs: list[Run]) -> tuple[float, float, int] | None:
    """(median wall, median PSS MiB, max processes) over the correct runs; None if none."""
    good = [r for r in runs if r.correct]
    if not good:
        return None
    return (
        statistics.median(r.wall for r in good),
        statistics.median(r.pss_mib for r in good),
        max(r.processes for r in good),
    )


def cell(case: Case, runs: list[Run], repeat: int) -> str:
    med = median_run(runs)
    if med is None:
        return "no correct run"
    wall, pss, procs = med
    ok = sum(r.correct for r in runs)
    where = f", {procs} proc" if procs > 1 else ""
    flag = "" if ok == len(runs) else f" ({ok}/{len(runs)} correct)"
    if len(runs) == 1 and repeat > 1:
        flag += " (1 run)"
    return f"{wall:.2f} s, {case.count / wall:,.0f}/s, {pss:.0f} MiB{where}{flag}"


def ratio(scanner: list[Run], peer: list[Run]) -> str:
    a, b = median_run(scanner), median_run(peer)
    if a is None or b is None:
        return "—"
    return f"{b[0] / a[0]:.2f}×"


def print_table(cases: Sequence[Case], outcomes: dict[str, Outcome], repeat: int) -> None:
    print(
        f"\nmedian of {repeat} run(s) per tool (correct runs only); time, endpoints/s, peak PSS "
        "of all the tool's processes; ratio = peer's time / scanner's (> 1: scanner is faster)\n"
    )
    print(
        "| case | scanner | nmap -sT at its best | plain asyncio at its best "
        "| scanner/nmap | scanner/plain |"
    )
    print("|---|---|---|---|---|---|")
    for case in cases:
        o = outcomes[case.key]
        print(
            f"| {case.title} | {cell(case, o.runs['scanner'], repeat)} | "
            f"{cell(case, o.runs['nmap -sT'], repeat)} | "
            f"{cell(case, o.runs['plain asyncio'], repeat)} | "
            f"{ratio(o.runs['scanner'], o.runs['nmap -sT'])} | "
            f"{ratio(o.runs['scanner'], o.runs['plain asyncio'])} |"
        )
    print(
        "\nsettings that won (nmap always adds -sT -n -Pn --max-retries 0; for the dropped "
        "case also --initial/--min/--max-rtt-timeout 1000ms):"
    )
    for case in cases:
        o = outcomes[case.key]
        print(
            f"  {case.key:<24} nmap {describe(o.setting.get('nmap -sT')):<60} "
            f"plain {describe(o.setting.get('plain asyncio'))}"
        )
    for case in cases:
        if case.outcome != "timeout":
            continue
        rounds = math.ceil(case.count / SCANNER_CONCURRENCY)
        bound = 1.1 * rounds * TIMEOUT_S
        runs = [r for r in outcomes[case.key].runs["scanner"] if r.correct]
        if not runs:
            continue
        wall = statistics.median(r.wall for r in runs)
        own = statistics.median(r.duration or 0.0 for r in runs)
        print(
            f"\n{case.key}: bound (issue 6) 1.1 × ceil({case.count} / {SCANNER_CONCURRENCY}) × "
            f"{TIMEOUT_S:g} s = {bound:.2f} s; scanner's median wall {wall:.3f} s "
            f"{'within' if wall <= bound else 'EXCEEDS'}; its scan.finished.duration_s "
            f"{own:.3f} s {'within' if own <= bound else 'EXCEEDS'}"
        )


# ---- main ---------------------------------------------------------------------------------------
def raise_fd_limit() -> int:
    """Every tool inherits the same open-file limit: as high as the hard limit allows."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per tool and case after the search (default 3, 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2,000-endpoint cases, a 4,096-endpoint sweep, 1,000 names, "
        "fixed peer settings, one run each",
    )
    parser.add_argument("--cases", default="", help="only these cases (comma-separated keys)")
    parser.add_argument(
        "--no-search",
        action="store_true",
        help=f"no search: nmap {' '.join(NMAP_FIXED)}, plain --concurrency {PLAIN_FIXED}",
    )
    parser.add_argument(
        "--search-runs",
        type=int,
        default=1,
        help="runs per candidate setting in the search, the fastest counts (default 1)",
    )
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
    if not 1 <= repeat <= 20 or not 1 <= args.search_runs <= 5:
        parser.error("--repeat must be 1..20, --search-runs 1..5")
    reason = lab.netns_available()
    for tool in ("nmap", "unbound", "unbound-checkconf"):
        if reason is None and shutil.which(tool) is None:
            reason = f"{tool} is not installed"
    if reason is None and not (shutil.which("cc") or shutil.which("gcc")):
        reason = "no C compiler (cc/gcc)"
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if args.quick:
        cases = build_cases(2_000, 2_000, 22, "47000-47003", 1_000)
    else:
        cases = build_cases(20_000, 2_000, 16, SWEEP_PORTS, 10_000)
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.key for c in cases}
        if unknown:
            parser.error(f"unknown cases {sorted(unknown)}; known: {[c.key for c in cases]}")
        cases = [c for c in cases if c.key in wanted]
    fixed = args.quick or args.no_search
    # SIGTERM unwinds like Ctrl-C, so the namespace is always deleted
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    fds = raise_fd_limit()
    outcomes = {case.key: Outcome() for case in cases}
    ns = lab.Netns(f"{lab.run_id()}-bench")
    load = os.getloadavg()
    nmap = subprocess.run(["nmap", "--version"], capture_output=True, text=True, check=False)
    print(
        f"namespace {ns.name}; {sys.executable} {sys.version.split()[0]}; {os.cpu_count()} CPUs;"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; open-file limit {fds}; "
        f"repeat {repeat}; {nmap.stdout.splitlines()[0]}",
        flush=True,
    )
    failures = 0
    started = time.monotonic()

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="scanner-bench-") as tmp:
            bench = Bench(ns, Path(tmp), shlex.split(args.scanner_args))
            bench.search_runs = args.search_runs
            print(bench.prepare(venv=not args.dev_python), flush=True)
            bench.start_servers(cases)
            if bench.unbound is not None:
                print(bench.resolver_rtts(), flush=True)
            for case in cases:
                bench.stage(case)
            print(f"scanner check --format json {args.scanner_args}".strip(), "(its defaults)")
            for case in cases:  # each peer's best setting, per case
                o = outcomes[case.key]
                if fixed:
                    o.setting = {"nmap -sT": NMAP_FIXED, "plain asyncio": PLAIN_FIXED}
                    continue
                searches = [search_nmap(bench, case, log)]
                inherited = outcomes.get(case.plain_from or "")
                if inherited is not None and "plain asyncio" in inherited.setting:
                    o.setting["plain asyncio"] = inherited.setting["plain asyncio"]
                    log(f"  {case.key}: plain asyncio as for {case.plain_from} (no search)")
                else:
                    searches.append(search_plain(bench, case, log))
                for found in searches:
                    o.trials[found.tool] = found.trials
                    o.setting[found.tool] = found.best.setting if found.best else None
                print(
                    f"  best for {case.key}: nmap {describe(o.setting['nmap -sT'])}; "
                    f"plain {describe(o.setting['plain asyncio'])}",
                    flush=True,
                )
            for i in range(repeat):  # tools interleaved, so a slow phase hurts all alike
                for case in cases:
                    o = outcomes[case.key]
                    for tool in TOOLS:
                        setting = o.setting.get(tool)
                        if tool != "scanner" and setting is None:
                            continue  # no correct setting found: nothing to time
                        if tool == "plain asyncio" and i >= (case.plain_repeat or repeat):
                            continue
                        run = bench.run(tool, case, setting)
                        o.runs[tool].append(run)
                        failures += not run.correct
                        print(
                            f"run {i + 1} {case.key:<22}{tool:<14}{run.wall:7.2f} s "
                            f"{run.pss_mib:6.1f} MiB  {dict(run.counts)} "
                            f"{'correct' if run.correct else 'WRONG'}"
                            f"{'  ' + run.note if run.note else ''}",
                            flush=True,
                        )
    finally:
        ns.delete()
    print_table(cases, outcomes, repeat)
    print(
        f"\n{'all timed runs correct' if not failures else f'{failures} timed run(s) WRONG'}; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: tools stopped, namespace deleted", file=sys.stderr)
        sys.exit(130)
