"""``scanner explain`` on every lab scenario: the sentence names the box that is the cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .topology import SCENARIOS, Lab, Scenario


@pytest.fixture(scope="module")
def explained(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    inventory = tmp_path_factory.mktemp("explain") / "inventory.yaml"
    inventory.write_text(
        "version: 1\ntargets:\n"
        + "".join(
            f'  - {{name: {s.name}, host: "{s.address}", port: {s.port}, '
            f"timeout: {s.timeout_s}, retries: 0"
            + (f", max_latency_ms: {s.max_latency_ms}" if s.max_latency_ms else "")
            + "}\n"
            for s in SCENARIOS
        )
    )
    proc = lab.scanner("explain", str(inventory), "--format", "json", "--hop-timeout", "0.5")
    assert proc.returncode in (0, 1), proc.stderr
    return {e["target"]: e for e in map(json.loads, proc.stdout.splitlines())}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_cause_names_what_the_scenario_staged(
    explained: dict[str, dict[str, Any]], scenario: Scenario, tmp_path: Path
) -> None:
    entry = explained[scenario.name]
    assert entry["category"] == scenario.category, scenario.what
    cause = entry["cause"]
    (address,) = entry["addresses"]
    assert address["route"] is not None, "every address has its route said"
    if scenario.category == "open":
        assert cause.startswith("nothing is wrong")
    elif scenario.icmp_from and scenario.category in (
        "rejected",
        "host_unreachable",
        "network_unreachable",
    ):
        # the box that sent the ICMP is named, or said to be the target itself
        assert scenario.icmp_from in cause or "target host itself" in cause, cause
    elif scenario.category == "timeout":
        assert "the path:" in cause, cause  # the trace says where it ends
    elif scenario.category == "blocked_locally":
        assert "this machine" in cause, cause
    if scenario.category != "open":
        assert entry["next_step"] and entry["next_step"] != "nothing to do"
