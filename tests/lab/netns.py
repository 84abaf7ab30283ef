"""Small helpers around ``ip netns``: namespaces, veth pairs, sysctls, nft rules, processes.

Why plain ``ip``/``nft`` subprocesses and no pyroute2: they are what an operator would type,
so a failing step can be replayed by hand, and there is nothing to install.

Every namespace created here is named ``scl<pid>-<rand>-<role>`` so parallel runs never collide,
and is recorded in a module registry; ``Netns.delete`` (called from ``try/finally`` by the
owner) and an ``atexit`` safety net both tear it down, together with the processes started
inside it and its ``/etc/netns/<name>`` directory. ``cleanup_stale`` removes what a killed run
(SIGKILL, power loss) left behind: namespaces whose creating pid no longer exists.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

NAME_PREFIX = "scl"
_STALE_RE = re.compile(rf"^{NAME_PREFIX}(\d+)-[0-9a-f]{{4}}-")
ETC_NETNS = Path("/etc/netns")

_lock = threading.Lock()
_live: dict[str, Netns] = {}


class NetnsError(RuntimeError):
    """A command inside the lab failed; the message carries the command and its stderr."""


def _run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float = 20.0,
    check: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise NetnsError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc


def run_id() -> str:
    """A prefix unique to this process and call: ``scl<pid>-<4 hex>``."""
    return f"{NAME_PREFIX}{os.getpid()}-{secrets.token_hex(2)}"


def netns_available() -> str | None:
    """None when namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed"
    probe = f"{run_id()}-probe"
    try:
        _run(["ip", "netns", "add", probe], timeout=10)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns add failed: {exc}"
    _run(["ip", "netns", "del", probe], check=False)
    return None


class Netns:
    """One network namespace and everything started inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen[str]] = []
        self.etc_files: list[Path] = []
        _run(["ip", "netns", "add", name])
        with _lock:
            _live[name] = self
        self.ip("link set lo up")

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    # -- commands -------------------------------------------------------------------------------
    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside this namespace (also for people replaying steps)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 20.0,
        check: bool = True,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and wait for it."""
        return _run(self.exec_argv(argv), input=input, timeout=timeout, check=check, cwd=cwd)

    def ip(self, *commands: str) -> None:
        """Run ``ip`` commands in the namespace (one ``ip -batch`` for all, which is fast)."""
        _run(["ip", "-n", self.name, "-batch", "-"], input="\n".join(commands) + "\n")

    def add_addresses(self, dev: str, *cidrs: str) -> None:
        """Add addresses; IPv6 ones with ``nodad`` so they are usable at once (no DAD wait)."""
        self.ip(*(f"addr add {c} dev {dev}{' nodad' if ':' in c else ''}" for c in cidrs))

    def sysctl(self, settings: dict[str, str | int]) -> None:
        """Set sysctls by writing /proc/sys inside the namespace (no shell, one process)."""
        script = (
            "import sys,json\n"
            "for k,v in json.load(sys.stdin).items():\n"
            "    open('/proc/sys/'+k.replace('.','/'),'w').write(str(v))\n"
        )
        self.run([sys.executable, "-c", script], input=json.dumps(settings))

    def nft(self, ruleset: str) -> None:
        """Load an nft ruleset (``nft -f -``) inside the namespace."""
        self.run(["nft", "-f", "-"], input=ruleset)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        ready_line: str | None = None,
        ready_timeout: float = 10.0,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start a background process in the namespace; it is killed at ``delete``.

        With ``ready_line``, wait until the process prints a line starting with it (e.g. a
        server's ``listening``); the remaining stdout is drained in a thread so it never blocks.
        """
        proc = subprocess.Popen(
            self.exec_argv(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own process group: we can kill it and its children
        )
        self.procs.append(proc)
        if ready_line is not None:
            _wait_for_line(proc, ready_line, ready_timeout)
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        return proc

    def write_etc(self, filename: str, text: str) -> Path:
        """Create /etc/netns/<name>/<filename>: ``ip netns exec`` bind-mounts it over /etc."""
        path = ETC_NETNS / self.name / filename
        for attempt in range(3):  # another run may rmdir an empty /etc/netns meanwhile
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.write_text(text, encoding="utf-8")
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        self.etc_files.append(path)
        return path

    # -- teardown -------------------------------------------------------------------------------
    def delete(self) -> None:
        """Kill our processes, delete the namespace and its /etc/netns directory. Idempotent."""
        for proc in self.procs:
            _kill(proc)
        self.procs.clear()
        _run(["ip", "netns", "del", self.name], check=False)
        _remove_etc(self.name)
        with _lock:
            _live.pop(self.name, None)


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    result: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                result.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        _kill(proc)
        err = proc.stderr.read() if proc.stderr else ""
        raise NetnsError(f"{proc.args!r} did not print {prefix!r} within {timeout}s: {err}")
    return result[0]


def _drain(proc: subprocess.Popen[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            try:
                for _ in stream:
                    pass
            except (OSError, ValueError):
                pass


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def veth(a: Netns, dev_a: str, b: Netns, dev_b: str) -> None:
    """A veth pair created directly inside both namespaces (the host's namespace never sees it)."""
    _run(
        [
            "ip",
            "link",
            "add",
            dev_a,
            "netns",
            a.name,
            "type",
            "veth",
            "peer",
            "name",
            dev_b,
            "netns",
            b.name,
        ]
    )
    a.ip(f"link set {dev_a} up")
    b.ip(f"link set {dev_b} up")


def delete_all(namespaces: Iterable[Netns] | None = None) -> None:
    """Tear down the given namespaces (default: every one this process still has)."""
    with _lock:
        todo = list(namespaces) if namespaces is not None else list(_live.values())
    for ns in todo:
        ns.delete()


def cleanup_stale() -> list[str]:
    """Delete lab namespaces left by runs whose process is gone; returns their names."""
    proc = _run(["ip", "netns", "list"], check=False)
    removed = []
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _STALE_RE.match(name)
        if match is None or name in _live:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _pid_alive(pid):
            continue
        for pid_text in _run(["ip", "netns", "pids", name], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_text), signal.SIGKILL)
        _run(["ip", "netns", "del", name], check=False)
        _remove_etc(name)
        removed.append(name)
    return removed


def _remove_etc(name: str) -> None:
    """Remove /etc/netns/<name>, and /etc/netns itself once empty (it was ours to create)."""
    shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
    with contextlib.suppress(OSError):
        ETC_NETNS.rmdir()  # fails harmlessly while other namespaces still have files there


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


atexit.register(delete_all)
