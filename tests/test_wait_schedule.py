"""The wait's schedule (scanner/wait/_schedule.py): states, backoff, readiness. Pure, tabled."""

from __future__ import annotations

import itertools

import pytest

from scanner.models import AddressFamily, Category, ProbeResult, Target, TargetResult
from scanner.wait import Backoff, WaitBook, summary_line

C = Category
DB = Target("db", "127.0.0.1", 5432)


def result(category: Category, ok: bool | None = None, target: Target = DB) -> TargetResult:
    return TargetResult(target, category is C.OPEN if ok is None else ok, category, (), None)


@pytest.mark.parametrize(
    ("current", "repeated", "expected"),
    [
        (None, False, 1.0),  # the first round
        (None, True, 1.0),
        (1.0, True, 2.0),  # a bad state again: doubled
        (2.0, True, 4.0),
        (4.0, True, 5.0),  # to the cap
        (5.0, True, 5.0),
        (4.0, False, 1.0),  # a change (or a good round): back to the interval
    ],
)
def test_interval_doubles_to_the_cap_and_falls_back_on_a_change(
    current: float | None, repeated: bool, expected: float
) -> None:
    assert (
        Backoff(interval=1.0, max_interval=5.0).next_interval(current, repeated=repeated)
        == expected
    )


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.75), (0.5, 1.0), (0.999999, 1.25)])
def test_jitter_spreads_a_delay_by_a_quarter_each_way(draw: float, expected: float) -> None:
    assert Backoff(jitter=0.25).delay(1.0, draw) == pytest.approx(expected, abs=1e-5)


def _book(stable: int = 1, draws: list[float] | None = None) -> WaitBook:
    values = itertools.cycle(draws or [0.5])  # 0.5: the delay is the interval exactly
    return WaitBook([DB], start=100.0, stable=stable, backoff=Backoff(), draw=lambda: next(values))


# Each row: the category of each round (at t = 100 + 10 * n, each lasting 0.5 s), and then
# what the last round's status must say.
ROUNDS = [
    # category sequence, ready, round, good, since_s, next_in_s
    ([C.REFUSED], False, 1, 0, 0.0, 1.0),
    ([C.REFUSED, C.REFUSED], False, 2, 0, 0.0, 2.0),
    ([C.REFUSED] * 3, False, 3, 0, 0.0, 4.0),
    ([C.REFUSED] * 5, False, 5, 0, 0.0, 5.0),  # capped
    ([C.DNS_NXDOMAIN, C.DNS_NXDOMAIN, C.REFUSED], False, 3, 0, 20.0, 1.0),  # changed: 1 s
    ([C.REFUSED, C.OPEN], True, 2, 1, 10.0, None),
    ([C.OPEN], True, 1, 1, 0.0, None),
]


@pytest.mark.parametrize(("categories", "ready", "number", "good", "since_s", "next_in"), ROUNDS)
def test_rounds(
    categories: list[Category],
    ready: bool,
    number: int,
    good: int,
    since_s: float,
    next_in: float | None,
) -> None:
    book = _book()
    state = book.states[0]
    status = None
    for n, category in enumerate(categories):
        began = 100.0 + 10 * n
        status = book.record(state, result(category), began=began, now=began + 0.5)
    assert status is not None
    assert (status.ready, status.round, status.good_rounds) == (ready, number, good)
    assert status.since_s == since_s
    assert status.next_in_s == next_in
    assert status.for_s == pytest.approx(100.0 + 10 * (len(categories) - 1) + 0.5 - (100 + since_s))
    assert book.done is ready


def test_stable_needs_good_rounds_in_a_row_and_a_bad_one_starts_again() -> None:
    book = _book(stable=3)
    state = book.states[0]
    sequence = [C.OPEN, C.OPEN, C.REFUSED, C.OPEN, C.OPEN, C.OPEN]
    seen = []
    for n, category in enumerate(sequence):
        status = book.record(state, result(category), began=100 + n, now=100.1 + n)
        seen.append((status.good_rounds, status.ready))
    assert seen == [(1, False), (2, False), (0, False), (1, False), (2, False), (3, True)]
    # while it is good, the next round comes at the interval: no backoff
    assert book.backoff.next_interval(1.0, repeated=False) == 1.0


def test_a_ready_target_is_never_due_again() -> None:
    book = _book()
    state = book.states[0]
    assert book.due(100.0) == [state]
    book.record(state, result(C.OPEN), began=100.0, now=100.1)
    assert book.due(1e9) == []
    assert book.next_due() == float("inf")


def test_due_skips_targets_under_way_and_honours_the_window() -> None:
    other = Target("cache", "127.0.0.1", 6379)
    book = WaitBook([DB, other], start=0.0, draw=lambda: 0.5)
    db, cache = book.states
    book.record(db, result(C.REFUSED), began=0.0, now=0.2)  # due at 1.2
    cache.in_flight = True
    assert book.due(1.0) == []
    assert book.due(1.0, window=0.25) == [db]
    assert book.next_due() == pytest.approx(1.2)
    book.put_back(cache, 1.0)  # its round was cut short: due again now, no news
    assert not cache.in_flight and cache.result is None and cache.due == 1.0


def test_final_lists_the_unready_with_their_state_and_never_checked_ones() -> None:
    other = Target("cache", "nothere.test", 6379)
    fresh = Target("late", "127.0.0.1", 1)
    book = WaitBook([DB, other, fresh], start=0.0, draw=lambda: 0.5)
    db, cache, _late = book.states
    book.record(db, result(C.OPEN), began=0.0, now=0.1)
    book.record(cache, result(C.DNS_NXDOMAIN, target=other), began=0.0, now=0.1)
    book.record(cache, result(C.DNS_NXDOMAIN, target=other), began=30.0, now=30.1)
    results, waiting = book.final(60.0)
    assert [r.category for r in results] == [C.OPEN, C.DNS_NXDOMAIN, C.INCONCLUSIVE]
    assert [(s.result.target.name, s.for_s) for s in waiting] == [("cache", 60.0), ("late", 60.0)]
    assert "not checked" in (results[2].hint or "")
    assert summary_line(waiting) == "cache: dns_nxdomain for 60 s; late: inconclusive for 60 s"


def test_stable_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WaitBook([DB], start=0.0, stable=0)


def _probe(target: Target, address: str, category: Category) -> ProbeResult:
    family: AddressFamily = "ipv6" if ":" in address else "ipv4"
    return ProbeResult(target, address, family, category, None, 1, None, None, None)


def test_summary_line_says_each_address_of_a_half_up_name() -> None:
    """``localhost`` with 127.0.0.1 open and ::1 refused is not ready, and the line says why
    (the address that decides first); addresses alike add nothing."""
    name = Target("localhost:6379", "localhost", 6379)
    half = TargetResult(
        name, False, C.REFUSED, ("127.0.0.1", "::1"), None,
        probes=(_probe(name, "127.0.0.1", C.OPEN), _probe(name, "::1", C.REFUSED)),
    )  # fmt: skip
    alike = TargetResult(
        DB, False, C.REFUSED, ("127.0.0.1",), None, probes=(_probe(DB, "127.0.0.1", C.REFUSED),)
    )
    book = WaitBook([name, DB], start=0.0, draw=lambda: 0.5)
    for state, outcome in zip(book.states, (half, alike), strict=True):
        book.record(state, outcome, began=0.0, now=0.1)
    _results, waiting = book.final(5.0)
    assert summary_line(waiting) == (
        "localhost:6379: refused for 5 s (::1 refused, 127.0.0.1 open); db: refused for 5 s"
    )
