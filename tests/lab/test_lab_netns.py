"""The namespace helpers clean up after themselves, also after a run that was killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import netns
from .netns import Netns, NetnsError
from .topology import Lab


def _listed() -> set[str]:
    argv = ["ip", "netns", "list"]
    out = subprocess.run(argv, check=False, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.split()}


def test_delete_kills_processes_and_removes_everything(lab: Lab) -> None:
    ns = Netns(f"{netns.run_id()}-t")
    try:
        ns.write_etc("hosts", "127.0.0.1 localhost\n")
        proc = ns.spawn(
            [sys.executable, "-c", "print('ready', flush=True)\nimport time\ntime.sleep(60)"],
            ready_line="ready",
        )
        assert ns.name in _listed()
        assert ns.run(["cat", "/etc/hosts"]).stdout == "127.0.0.1 localhost\n"
    finally:
        ns.delete()
    assert proc.poll() is not None
    assert ns.name not in _listed()
    assert not (netns.ETC_NETNS / ns.name).exists()


def test_failing_command_says_what_failed(lab: Lab) -> None:
    with pytest.raises(NetnsError, match="nft -f -"):
        lab.client.nft("this is not nft\n")


def test_cleanup_stale_removes_namespaces_of_dead_runs(lab: Lab) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    time.sleep(0.05)
    name = f"{netns.NAME_PREFIX}{dead.pid}-beef-stale"
    subprocess.run(["ip", "netns", "add", name], check=True)
    (netns.ETC_NETNS / name).mkdir(parents=True, exist_ok=True)
    try:
        assert name in netns.cleanup_stale()
        assert name not in _listed()
        assert not Path(netns.ETC_NETNS / name).exists()
        assert all(ns.name in _listed() for ns in lab.namespaces)  # ours (alive) stay
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
