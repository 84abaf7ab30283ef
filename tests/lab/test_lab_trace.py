"""Path traces in the lab: which hop drops or rejects, seen from the client, both families.

The lab has two routers in a row (client — router1 — router2 — server). What each staged
fault must look like, hop by hop, is the table below; docs/diagnosis.md ("Path") explains
why a router that filters forwarded traffic still answers its own hop (Linux checks the hop
limit before the FORWARD chain), so a drop at router2 ends the trace at router2, like a
drop on the server behind it, while a drop at router1 ends it at router1.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .topology import ROUTER1, ROUTER2, SCENARIOS_BY_NAME, Lab

Events = list[dict[str, Any]]
HOP_TIMEOUT = "1.0"


@dataclass(frozen=True)
class Expected:
    scenario: str
    verdict: str
    last_hop: str
    hops: tuple[str | None, ...]  # hop_address per hop limit, 1 first
    reached: bool = False


def _r1(s: str) -> str:
    return ROUTER1[SCENARIOS_BY_NAME[s].family]


def _r2(s: str) -> str:
    return ROUTER2[SCENARIOS_BY_NAME[s].family]


def _row(scenario: str, kind: str) -> Expected:
    r1, r2 = _r1(scenario), _r2(scenario)
    address = SCENARIOS_BY_NAME[scenario].address
    if kind == "drop-r1":
        return Expected(scenario, f"dropped after hop 1 ({r1})", r1, (r1, None))
    if kind == "drop-r2":
        return Expected(scenario, f"dropped after hop 2 ({r2})", r2, (r1, r2, None))
    if kind == "reject-r2":
        return Expected(scenario, f"rejected by hop 3 ({r2})", r2, (r1, r2, r2))
    if kind == "nohost-r2":
        return Expected(scenario, f"host unreachable, reported by hop 3 ({r2})", r2, (r1, r2, r2))
    assert kind == "reject-target"
    icmp = "3/3" if SCENARIOS_BY_NAME[scenario].family == "ipv4" else "1/4"
    return Expected(
        scenario,
        f"reached host at hop 3, which rejects the port (ICMP port-unreachable {icmp})",
        address,
        (r1, r2, address),
        reached=True,
    )


TRACED = [
    _row("router1-drop-v4", "drop-r1"),
    _row("router1-drop-v6", "drop-r1"),
    _row("router2-drop-v4", "drop-r2"),
    _row("router2-drop-v6", "drop-r2"),
    _row("server-drop-v4", "drop-r2"),
    _row("server-drop-v6", "drop-r2"),
    _row("router2-port-v4", "reject-r2"),
    _row("router2-port-v6", "reject-r2"),
    _row("router2-admin-v4", "reject-r2"),
    _row("router2-admin-v6", "reject-r2"),
    _row("server-port-v4", "reject-target"),
    _row("server-port-v6", "reject-target"),
    _row("route-blackhole-v4", "drop-r1"),  # the route decision comes before the TTL check
    _row("nohost-v4", "nohost-r2"),
]
UNTRACED = ["open-v4", "open-v6", "closed-v4", "router2-rst-v6"]


def _events(stdout: str) -> Events:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def traced_scan(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Events, float]:
    names = [e.scenario for e in TRACED] + UNTRACED
    lines = [
        f'  - {{name: {n}, host: "{SCENARIOS_BY_NAME[n].address}", '
        f"port: {SCENARIOS_BY_NAME[n].port}, timeout: 1.0, retries: 0}}"
        for n in names
    ]
    inventory = tmp_path_factory.mktemp("trace") / "inventory.yaml"
    inventory.write_text("version: 1\ntargets:\n" + "\n".join(lines) + "\n")
    started = time.monotonic()
    proc = lab.scanner(
        "check",
        str(inventory),
        "--format",
        "json",
        "--trace-failures",
        "--hop-timeout",
        HOP_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    return _events(proc.stdout), elapsed


def _hops(events: Events, target: str) -> Events:
    return [e for e in events if e["event"] == "path.hop" and e["target"] == target]


def _result(events: Events, target: str) -> dict[str, Any]:
    return next(e for e in events if e["event"] == "target.result" and e["target"] == target)


@pytest.mark.parametrize("expected", TRACED, ids=[e.scenario for e in TRACED])
def test_failed_target_path(traced_scan: tuple[Events, float], expected: Expected) -> None:
    events, _ = traced_scan
    scenario = SCENARIOS_BY_NAME[expected.scenario]
    result = _result(events, expected.scenario)
    assert result["path_verdict"] == expected.verdict
    assert result["last_hop"] == expected.last_hop
    hops = _hops(events, expected.scenario)
    assert [h["ttl"] for h in hops] == list(range(1, len(expected.hops) + 1))
    assert tuple(h["hop_address"] for h in hops) == expected.hops
    assert all(h["address"] == scenario.address for h in hops)
    assert [h["reached"] for h in hops] == [False] * (len(hops) - 1) + [expected.reached]
    exceeded = 11 if scenario.family == "ipv4" else 3
    for hop in hops:
        if hop["hop_address"] is None:  # silence: nothing to time or decode
            assert hop["rtt_ms"] is None and hop["icmp_type"] is None
        else:
            assert hop["rtt_ms"] is not None and hop["rtt_ms"] >= 0
    for hop in hops[:-1]:  # routers on the way: time exceeded
        assert hop["hop_address"] is None or hop["icmp_type"] == exceeded, hop
    last = hops[-1]
    if "reject" in expected.verdict or "reached" in expected.verdict:
        assert (last["icmp_type"], last["icmp_code"]) == (scenario.icmp_type, scenario.icmp_code)
    # every hop event comes before its target's result
    order = [i for i, e in enumerate(events) if e.get("target") == expected.scenario]
    assert events[order[-1]]["event"] == "target.result"


@pytest.mark.parametrize("name", UNTRACED)
def test_untraced_targets_keep_null_path_keys(traced_scan: tuple[Events, float], name: str) -> None:
    events, _ = traced_scan
    result = _result(events, name)
    assert result["last_hop"] is None and result["path_verdict"] is None
    assert _hops(events, name) == []


def test_tracing_costs_about_one_hop_timeout(traced_scan: tuple[Events, float]) -> None:
    """Probes (1 s timeout) plus one wave of silent hops (1 s), not one timeout per hop."""
    events, elapsed = traced_scan
    assert events[-1]["event"] == "scan.finished"
    assert elapsed < 6.0, elapsed


def test_trace_command_json(lab: Lab) -> None:
    scenario = SCENARIOS_BY_NAME["router2-port-v6"]
    proc = lab.scanner("trace", scenario.endpoint, "--format", "json", "--hop-timeout", HOP_TIMEOUT)
    assert proc.returncode == 1, proc.stderr
    events = _events(proc.stdout)
    hops = [e for e in events if e["event"] == "path.hop"]
    assert [h["hop_address"] for h in hops] == [ROUTER1["ipv6"], ROUTER2["ipv6"], ROUTER2["ipv6"]]
    assert [(h["icmp_type"], h["icmp_code"]) for h in hops] == [(3, 0), (3, 0), (1, 4)]
    result = next(e for e in events if e["event"] == "target.result")
    assert result["path_verdict"] == f"rejected by hop 3 ({ROUTER2['ipv6']})"


def test_trace_command_console_open_target(lab: Lab) -> None:
    """An open target is traced too (``scanner trace`` shows the path either way), exit 0."""
    scenario = SCENARIOS_BY_NAME["open-v4"]
    proc = lab.scanner("trace", scenario.endpoint, "--format", "console")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "reached host at hop 3, port open" in out
    hop_lines = [m.groups() for m in re.finditer(r"^ +(\d+) +(\S+) ", out, re.MULTILINE)]
    assert hop_lines == [("1", ROUTER1["ipv4"]), ("2", ROUTER2["ipv4"]), ("3", scenario.address)]


def test_trace_command_console_drop(lab: Lab, tmp_path: Path) -> None:
    scenario = SCENARIOS_BY_NAME["server-drop-v4"]
    proc = lab.scanner(
        "trace",
        scenario.endpoint,
        "--format",
        "console",
        "--hop-timeout",
        HOP_TIMEOUT,
        "--max-hops",
        "5",
    )
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert f"dropped after hop 2 ({ROUTER2['ipv4']})" in out
    star = next(line for line in out.splitlines() if re.match(r" +3 +\* ", line))
    assert "3–5" in star  # the silent hop limits fold into one line


def test_traced_scan_matches_the_event_schema(traced_scan: tuple[Events, float]) -> None:
    import jsonschema

    schema = json.loads(
        (
            Path(__file__).resolve().parents[2] / "scanner" / "data" / "events.schema.json"
        ).read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    events, _ = traced_scan
    assert any(e["event"] == "path.hop" for e in events)
    for event in events:
        errors = list(validator.iter_errors(event))
        assert not errors, (event, errors[0].message)
