"""Name suggestions for dns_nxdomain / dns_no_address: distances and choices, table-driven."""

from __future__ import annotations

import time

import pytest

from scanner.explain.names import (
    Suggestion,
    default_limit,
    did_you_mean,
    edit_distance,
    suggest_names,
)


@pytest.mark.parametrize(
    ("a", "b", "limit", "distance"),
    [
        ("db.demo.test", "db.demo.test", None, 0),
        ("db.demo.tset", "db.demo.test", None, 1),  # swapped neighbours: one edit
        ("db.demo.tst", "db.demo.test", None, 1),
        ("db.dmeo.tset", "db.demo.test", None, 2),
        ("abc", "", None, 3),
        ("ca", "abc", None, 3),  # OSA, not full Damerau: a swapped pair is not edited again
        ("kitten", "sitting", None, 3),
        ("kitten", "sitting", 1, 2),  # past the limit: limit + 1
        ("a" * 30, "b" * 30, 2, 3),
    ],
)
def test_edit_distance(a: str, b: str, limit: int | None, distance: int) -> None:
    assert edit_distance(a, b, limit) == distance


INVENTORY = [
    "db.demo.test",
    "db2.demo.test",
    "web.demo.test",
    "api.demo.test",
    "cache.demo.test",
    "DB.Demo.Test.",  # the same name spelled differently: suggested once
]


@pytest.mark.parametrize(
    ("name", "candidates", "limit", "expected"),
    [
        ("db.demo.tset", INVENTORY, None, [("db.demo.test", 1), ("db2.demo.test", 2)]),
        # the name itself, however spelled, is no suggestion
        ("DB.DEMO.TEST.", INVENTORY, None, [("db2.demo.test", 1), ("web.demo.test", 2)]),
        (
            "wbe.demo.test",
            INVENTORY,
            None,
            [("web.demo.test", 1), ("db.demo.test", 2), ("db2.demo.test", 2)],
        ),
        ("wbe.demo.test", INVENTORY, 1, [("web.demo.test", 1)]),
        ("wbe.demo.test", INVENTORY, 0, []),
        ("cahce.demo.test", INVENTORY, None, [("cache.demo.test", 1)]),
        ("payments.demo.test", INVENTORY, None, []),
        ("db", ["dc", "db1", "xy", "dbxx"], None, [("db1", 1), ("dc", 1)]),  # short: 1 edit
        ("anything.test", [], None, []),
    ],
)
def test_suggest_names(
    name: str, candidates: list[str], limit: int | None, expected: list[tuple[str, int]]
) -> None:
    found = suggest_names(name, candidates, limit=limit)
    assert [(s.name, s.distance) for s in found] == expected


def test_at_most_count_nearest_first_then_by_name() -> None:
    candidates = [f"host-{i:02d}.demo.test" for i in range(100)]
    found = suggest_names("host-1.demo.test", candidates, count=4)
    assert [(s.name, s.distance) for s in found] == [
        ("host-01.demo.test", 1),
        ("host-10.demo.test", 1),
        ("host-11.demo.test", 1),
        ("host-12.demo.test", 1),
    ]


@pytest.mark.parametrize(("name", "limit"), [("db", 1), ("web1", 1), ("web12", 2), ("x.test.", 2)])
def test_default_limit(name: str, limit: int) -> None:
    assert default_limit(name) == limit


@pytest.mark.parametrize(
    ("suggestions", "sentence"),
    [
        ([], None),
        ([Suggestion("db.demo.test", 1)], "did you mean db.demo.test?"),
        (
            [Suggestion("db.demo.test", 1), Suggestion("db2.demo.test", 2)],
            "did you mean db.demo.test or db2.demo.test?",
        ),
        (
            [Suggestion("a.test", 1), Suggestion("b.test", 1), Suggestion("c.test", 1)],
            "did you mean a.test, b.test or c.test?",
        ),
    ],
)
def test_did_you_mean(suggestions: list[Suggestion], sentence: str | None) -> None:
    assert did_you_mean(suggestions) == sentence


def test_a_big_inventory_stays_fast() -> None:
    """262,144 names that are all near each other (the worst case for a bounded distance)."""
    candidates = [f"host-{i:06d}.demo.test" for i in range(262_144)]
    started = time.perf_counter()
    found = suggest_names("host-00012.demo.tset", candidates)
    elapsed = time.perf_counter() - started
    assert [s.name for s in found] == [
        "host-000012.demo.test",
        "host-000102.demo.test",
        "host-000112.demo.test",
    ]
    assert elapsed < 5.0  # about 0.25 s here; a pure-Python table took 25 s
