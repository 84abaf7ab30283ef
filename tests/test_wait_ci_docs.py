"""docs/ci's wait examples, each run by its exact command line against services that start late.

Each runs inside a network namespace of its own, which is the only way to give the command
the system resolver it would have in a container (``/etc/resolv.conf`` and ``/etc/hosts``,
bind-mounted by ``ip netns exec`` from ``/etc/netns/NAME``) without touching this
machine's: there, the project's DNS server answers on 127.0.0.1:53 and its zone changes
while the wait runs, and the services listen on the namespace's own loopback. Nothing can
leave the namespace: it has no other interface.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, parse_events, scanner_env, scanner_on_path
from .lab.netns import Netns, netns_available, run_id
from .test_packaging import _ci_package
from .test_report_helpers import assert_valid_junit
from .wait_support import ZoneServer, wall

CI = ROOT / "docs" / "ci"
#: what a pod's resolv.conf says (namespace "app"): the search list and ndots:5 apply
K8S_RESOLV = (
    "nameserver 127.0.0.1\n"
    "search app.svc.cluster.local svc.cluster.local cluster.local\n"
    "options ndots:5\n"
)


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Netns]:
    reason = netns_available()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"network namespaces unavailable in CI: {reason}", pytrace=False)
        pytest.skip(f"network namespaces unavailable: {reason}")
    namespace = Netns(f"{run_id()}-wait")
    try:
        namespace.write_etc("hosts", "127.0.0.1 localhost\n::1 localhost\n")
        yield namespace
    finally:
        namespace.delete()


def _dns(ns: Netns, tmp_path: Path, zone: dict[str, Any], resolv: str) -> ZoneServer:
    ns.write_etc("resolv.conf", resolv)
    workdir = tmp_path / "dns"
    workdir.mkdir()
    server = ZoneServer(workdir, zone, host="127.0.0.1", port=53, prefix=ns.exec_argv([]))
    ns.procs.append(server.proc)  # stopped with the namespace
    return server


def _services(ns: Netns, *listen: str, plan: str) -> float:
    """Listeners inside ``ns`` following ``plan``; returns when their clock started."""
    before = time.time()
    argv = [sys.executable, "-m", "tests.wait_services", "--plan", plan, "--lifetime", "60"]
    for address in listen:
        argv += ["--listen", address]
    ns.spawn(argv, ready_line="ready", cwd=ROOT, env=scanner_env())
    return before


def _run(ns: Netns, tmp_path: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``argv`` inside ``ns``, with ``scanner`` on PATH as the code under test."""
    return subprocess.run(
        ns.exec_argv(argv),
        capture_output=True,
        text=True,
        timeout=120,
        env=scanner_on_path(tmp_path),
        cwd=tmp_path,
        check=False,
    )


def _events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [e for e in parse_events(proc.stdout) if e["event"].startswith(("target.", "scan."))]


def _install_line_is_the_archive(text: str) -> None:
    package = _ci_package()
    for line in text.splitlines():
        if "pip install" in line:
            assert line.split("pip install", 1)[1].strip() in (f'"{package}"', '"$SCANNER_PACKAGE"')


def test_compose_entrypoint_waits_for_a_late_name_and_a_late_port(
    ns: Netns, tmp_path: Path
) -> None:
    text = (CI / "docker-compose.yml").read_text()
    _install_line_is_the_archive(text)
    app = yaml.safe_load(text)["services"]["app"]
    entrypoint = app["entrypoint"]
    assert entrypoint[:2] == ["scanner", "wait"] and entrypoint[-1] == "--"
    # cache resolves from the start and listens after 2 s; db listens from the start, but
    # its name is only added to DNS after 3 s (a container whose DNS entry comes late)
    server = _dns(ns, tmp_path, {"cache": {"A": ["127.0.0.1"]}}, "nameserver 127.0.0.1\n")
    _services(ns, "127.0.0.1:5432", plan="0:up")
    _services(ns, "127.0.0.1:6379", plan="2:up")
    server.set_later(3.0, {"cache": {"A": ["127.0.0.1"]}, "db": {"A": ["127.0.0.1"]}})
    # docker runs ENTRYPOINT + COMMAND: the app's command is ours, a stand-in that says so
    marker = tmp_path / "app.json"
    app_command = [
        sys.executable,
        "-c",
        f"import json, os; json.dump(os.getpid(), open({str(marker)!r}, 'w'))",
    ]
    started = time.time()
    proc = _run(ns, tmp_path, [*entrypoint, *app_command])
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()  # the command ran, in scanner's place
    events = _events(proc)
    db = [e for e in events if e.get("target") == "db:5432"]
    failing = [e for e in db if e["event"] == "target.waiting" and not e["ok"]]
    assert failing and {e["category"] for e in failing} == {"dns_nxdomain"}
    ready = [e for e in db if e["event"] == "target.ready"]
    assert ready and wall(ready[0]["timestamp"]) >= started + 3.0
    cache = [e for e in events if e.get("target") == "cache:6379"]
    failing = [e for e in cache if e["event"] == "target.waiting" and not e["ok"]]
    assert failing and {e["category"] for e in failing} == {"refused"}
    assert len(server.queries("db")) >= 3  # resolved again every round
    # --stable 2: each was ready after two good rounds in a row
    assert all(e["good_rounds"] == 2 for e in events if e["event"] == "target.ready")


def test_compose_healthcheck_is_a_check_of_the_apps_port(ns: Netns, tmp_path: Path) -> None:
    test = yaml.safe_load((CI / "docker-compose.yml").read_text())["services"]["app"]["healthcheck"]
    assert test["test"][0] == "CMD"
    command = test["test"][1:]
    proc = _run(ns, tmp_path, command)
    assert proc.returncode == 1  # nothing listens on 8000 yet: unhealthy
    _services(ns, "127.0.0.1:8000", "[::1]:8000", plan="0:up")
    proc = _run(ns, tmp_path, command)
    assert proc.returncode == 0, proc.stderr


def test_kubernetes_init_container_waits_through_the_pods_resolv_conf(
    ns: Netns, tmp_path: Path
) -> None:
    documents = list(yaml.safe_load_all((CI / "k8s-init-container.yaml").read_text()))
    pod = documents[0]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert "command" not in init  # the image's entrypoint is scanner: args follow it
    argv = ["scanner", *init["args"]]
    # redis resolves from the start and listens after 2 s; postgres listens, but its
    # Service's name only exists after 3 s
    redis = {"redis.cache.svc.cluster.local": {"A": ["127.0.0.1"]}}
    server = _dns(ns, tmp_path, redis, K8S_RESOLV)
    _services(ns, "127.0.0.1:5432", plan="0:up")
    _services(ns, "127.0.0.1:6379", plan="2:up")
    server.set_later(3.0, {**redis, "postgres.db.svc.cluster.local": {"A": ["127.0.0.1"]}})
    started = time.time()
    proc = _run(ns, tmp_path, argv)
    assert proc.returncode == 0, proc.stderr
    events = _events(proc)
    postgres = [e for e in events if e.get("target") == "postgres.db.svc.cluster.local:5432"]
    assert {e["category"] for e in postgres if e["event"] == "target.waiting"} == {"dns_nxdomain"}
    (ready,) = [e for e in postgres if e["event"] == "target.ready"]
    assert wall(ready["timestamp"]) >= started + 3.0
    # ndots:5: the search list first (glibc's order), every round
    asked = server.queries()
    assert "postgres.db.svc.cluster.local.app.svc.cluster.local A" in asked
    finished = events[-1]
    assert finished["event"] == "scan.finished" and finished["waiting"] == []


def test_github_service_containers_step_waits_for_both_families_and_stability(
    ns: Netns, tmp_path: Path
) -> None:
    text = (CI / "github-actions-services.yml").read_text()
    _install_line_is_the_archive(text)
    job = yaml.safe_load(text)["jobs"]["test"]
    assert set(job["services"]) == {"postgres", "redis"}
    (step,) = [s for s in job["steps"] if "scanner wait" in s.get("run", "")]
    (line,) = [ln for ln in step["run"].splitlines() if ln.strip().startswith("scanner ")]
    # postgres flaps while it starts (up 0.3 s to 0.9 s, down, up for good at 1.6 s) on
    # both loopback families; redis comes up on 127.0.0.1 at once, on ::1 only at 2.5 s
    began = _services(ns, "127.0.0.1:5432", "[::1]:5432", plan="0.3:up,0.9:down,1.6:up")
    _services(ns, "127.0.0.1:6379", plan="0:up")
    _services(ns, "[::1]:6379", plan="2.5:up")
    proc = _run(ns, tmp_path, [*shlex.split(line), "--format", "json"])
    assert proc.returncode == 0, proc.stderr
    events = _events(proc)
    postgres = [e for e in events if e.get("target") == "localhost:5432"]
    (ready,) = [e for e in postgres if e["event"] == "target.ready"]
    assert ready["good_rounds"] == 3
    assert wall(ready["timestamp"]) >= began + 1.6  # not during the flap
    redis = [e for e in events if e.get("target") == "localhost:6379"]
    waiting = [e for e in redis if e["event"] == "target.waiting"]
    assert waiting and sorted(waiting[0]["addresses"]) == ["127.0.0.1", "::1"]
    assert "::1" in (waiting[0]["hint"] or "") or waiting[0]["category"] == "refused"
    (redis_ready,) = [e for e in redis if e["event"] == "target.ready"]
    assert wall(redis_ready["timestamp"]) >= began + 2.5  # ::1 counted, not only 127.0.0.1
    junit = tmp_path / "wait-junit.xml"
    assert_valid_junit(junit)
    assert 'failures="0"' in junit.read_text()


def test_github_step_at_the_deadline_says_what_was_not_ready(ns: Netns, tmp_path: Path) -> None:
    """The same step when redis never comes up on ::1: exit 1, the JUnit names it."""
    job = yaml.safe_load((CI / "github-actions-services.yml").read_text())["jobs"]["test"]
    (step,) = [s for s in job["steps"] if "scanner wait" in s.get("run", "")]
    (line,) = [ln for ln in step["run"].splitlines() if ln.strip().startswith("scanner ")]
    argv = shlex.split(line)
    argv[argv.index("--deadline") + 1] = "3"  # the only change: a short deadline
    _services(ns, "127.0.0.1:5432", "[::1]:5432", "127.0.0.1:6379", plan="0:up")
    proc = _run(ns, tmp_path, [*argv, "--format", "json"])
    assert proc.returncode == 1
    finished = json.loads(proc.stdout.splitlines()[-1])
    (left,) = finished["waiting"]
    assert (left["target"], left["category"]) == ("localhost:6379", "refused")
    assert "not ready after 3 s: localhost:6379: refused for 3 s" in proc.stderr
    xml = (tmp_path / "wait-junit.xml").read_text()
    assert 'failures="1"' in xml and "not ready: refused for" in xml
