"""Name suggestions for a name that does not resolve: "did you mean db.demo.test?".

The caller passes the candidates (the inventory's other names, the hosts file's names from
``scanner.resolve.hosts_file_names``, names a nameserver answered for in the same zone) and
should resolve the suggestions before saying them: a suggestion that does not resolve either
helps nobody.

The distance is the optimal string alignment distance (Levenshtein plus the swap of two
neighbouring characters, the commonest typo), case-insensitive, a trailing dot ignored, computed
by rapidfuzz: a pure-Python table took 25 s for 262,144 numbered names (110 µs a name that is
near), rapidfuzz 56 ms; it is imported here only, when a suggestion is asked for (12 ms).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from msgspec import Struct


class Suggestion(Struct, frozen=True, gc=False):
    """A candidate name and how many edits away from the asked name it is."""

    name: str
    distance: int


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance of ``a`` and ``b`` (as given: no folding of case);
    ``limit + 1`` once it exceeds ``limit``."""
    from rapidfuzz.distance import OSA

    return int(OSA.distance(a, b, score_cutoff=limit))


def default_limit(name: str) -> int:
    """How many edits still count as a typo of ``name``: 1 up to 4 characters, else 2."""
    return 1 if len(_key(name)) <= 4 else 2


def suggest_names(
    name: str,
    candidates: Iterable[str],
    *,
    limit: int | None = None,
    count: int = 3,
) -> list[Suggestion]:
    """The candidates within ``limit`` edits of ``name`` (default :func:`default_limit`),
    nearest first, then alphabetically; at most ``count``. The name itself is never
    suggested, nor a candidate twice."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    wanted = _key(name)
    bound = default_limit(name) if limit is None else limit
    spelled: dict[str, str] = {}
    for candidate in candidates:
        key = _key(candidate)
        if key != wanted:
            spelled.setdefault(key, candidate.rstrip("."))
    matches = process.extract(
        wanted, list(spelled), scorer=OSA.distance, score_cutoff=bound, limit=None
    )
    found = [Suggestion(spelled[key], int(distance)) for key, distance, _index in matches]
    return sorted(found, key=lambda s: (s.distance, s.name))[:count]


def did_you_mean(suggestions: Sequence[Suggestion]) -> str | None:
    """``did you mean db.demo.test?`` / ``… db.demo.test or db2.demo.test?``; None for none."""
    if not suggestions:
        return None
    names = [suggestion.name for suggestion in suggestions]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"did you mean {listed}?"
