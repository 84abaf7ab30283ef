"""The network lab as pytest fixtures: built once per session, torn down even on failure.

Without root or working ``ip netns`` the lab tests are skipped, except in CI (``CI=true``),
where a lab that cannot be built is a failure: a skipped lab would silently drop the only
tests that see real ICMP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .netns import netns_available
from .topology import SCENARIOS, Lab

_LAB_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root and network namespaces (the network lab)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _LAB_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.lab)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"network lab unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"network lab unavailable: {reason}")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """client — router1 — router2 — server, every fault of ``SCENARIOS`` staged, DNS running."""
    reason = netns_available()
    if reason is not None:
        _unavailable(reason)
    built = Lab()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="session")
def observed(lab: Lab) -> dict[str, dict[str, Any]]:
    """Every scenario probed once with plain sockets from the client, all in parallel."""
    results = lab.probe([(s.address, s.port, s.timeout_s) for s in SCENARIOS])
    return {s.name: r for s, r in zip(SCENARIOS, results, strict=True)}
