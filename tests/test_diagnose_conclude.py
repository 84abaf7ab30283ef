"""The one sentence of ``scanner explain`` (pure): which evidence wins, and what to do next."""

from __future__ import annotations

import pytest

from scanner.diagnose import NEXT_STEP, conclude
from scanner.explain.evidence import Finding
from scanner.models import Category, DnsResult, Hop, PathTrace, ProbeResult, Target, TargetResult

C = Category
T = Target("t", "198.18.3.31", 80)


def probe(category: Category, hint: str | None = "the probe's hint") -> ProbeResult:
    return ProbeResult(T, "198.18.3.31", "ipv4", category, 1.0, 1, None, None, hint)


def result(category: Category, *probes: ProbeResult, **extra: object) -> TargetResult:
    return TargetResult(T, category is C.OPEN, category, ("198.18.3.31",), "hint", probes, **extra)  # type: ignore[arg-type]


PATH = PathTrace(
    "198.18.3.31",
    80,
    "ipv4",
    (Hop(1, "198.18.1.1", 0.1, 11, 0, False),),
    8,
    "198.18.1.1",
    "dropped after hop 1 (198.18.1.1)",
)


@pytest.mark.parametrize(
    ("target", "local", "cause", "next_step"),
    [
        pytest.param(
            result(C.OPEN, probe(C.OPEN, None)),
            {},
            "nothing is wrong: every address met its expectation",
            NEXT_STEP[C.OPEN],
            id="ok",
        ),
        pytest.param(
            result(C.REFUSED, probe(C.REFUSED)),
            {"198.18.3.31": [Finding("wrong_port", "nothing listens on 80; 8080 does")]},
            "nothing listens on 80; 8080 does",
            "the port in the inventory against the one the service uses",
            id="local-evidence-wins",
        ),
        pytest.param(
            result(C.REFUSED, probe(C.REFUSED)),
            {},
            "the probe's hint",
            NEXT_STEP[C.REFUSED],
            id="remote-refused-reads-the-hint",
        ),
        pytest.param(
            result(C.TIMEOUT, probe(C.TIMEOUT), paths=(PATH,)),
            {},
            "the probe's hint; the path: dropped after hop 1 (198.18.1.1)",
            NEXT_STEP[C.TIMEOUT],
            id="timeout-names-the-hop",
        ),
        pytest.param(
            result(C.NOT_ACCEPTING, probe(C.NOT_ACCEPTING)),
            {
                "198.18.3.31": [
                    Finding(
                        "accept_queue_full", "listens, does not accept", suggests="not_accepting"
                    )
                ]
            },
            "listens, does not accept",
            NEXT_STEP[C.NOT_ACCEPTING],
            id="queue-full",
        ),
        pytest.param(
            TargetResult(
                T,
                False,
                C.DNS_NXDOMAIN,
                (),
                "the name does not exist",
                dns=DnsResult("x", "any", C.DNS_NXDOMAIN, (), 1.0, None),
            ),
            {},
            "the name does not exist",
            NEXT_STEP[C.DNS_NXDOMAIN],
            id="dns",
        ),
    ],
)
def test_conclude(
    target: TargetResult, local: dict[str, list[Finding]], cause: str, next_step: str
) -> None:
    assert conclude(target, local) == (cause, next_step)


def test_a_name_nearby_changes_the_next_step() -> None:
    target = TargetResult(T, False, C.DNS_NXDOMAIN, (), "no such name")
    assert conclude(target, {}, ["db.demo.test"])[1] == "the spelling: a name nearby resolves"


def test_every_category_has_a_next_step() -> None:
    assert set(NEXT_STEP) == set(Category) - {C.RESOLVED}
