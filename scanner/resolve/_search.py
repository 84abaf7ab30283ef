"""Which names to ask, in which order, and when to stop: glibc's search-list rules.

This is ``__res_context_search`` of glibc 2.36 (``resolv/res_query.c``) as a small state
machine, so the rules can be tested as a table without a network:

* a name with a trailing dot is absolute: asked as written, and only as written;
* a name with at least ``ndots`` dots is asked as written first;
* then (a name without a trailing dot) each search domain in order, ``name.domain``;
  glibc goes on to the next one after NXDOMAIN, NODATA (a wildcard of another type must not
  hide the name higher up) and SERVFAIL, and stops after any other failure (a timeout,
  REFUSED, a bad answer);
* a nameserver that is closed (nothing listens: ICMP port unreachable, or nothing could be
  sent) ends the whole search at once;
* last, the name as written, unless it was already asked, the search list held the root,
  or ``no-tld-query`` is set for a dotless name.

The first name that gets an answer with records (NOERROR and a non-empty answer section, for
either family) ends the search: its answer is the name's answer, even if no address in it
is usable. :meth:`SearchPlan.outcome` says which step decides a name that nothing answered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import Enum


class Status(Enum):
    """What asking one candidate name gave (glibc's h_errno, with the cause kept)."""

    SUCCESS = "success"  # an answer with records: the search ends here
    NOTFOUND = "notfound"  # NXDOMAIN
    NODATA = "nodata"  # NOERROR, empty answer
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    REFUSED = "refused"  # REFUSED or NOTIMP from every server
    UNREACHABLE = "unreachable"  # no server could be reached (closed port, no route)
    ERROR = "error"  # a reply that could not be used (malformed)


_GO_ON = frozenset({Status.NOTFOUND, Status.NODATA, Status.SERVFAIL})
#: a failed name's verdict: a candidate that could not be asked outranks the glibc rule,
#: because had it answered, the name might have resolved (see SearchPlan.outcome)
_TRANSIENT_FIRST = (
    Status.UNREACHABLE,
    Status.TIMEOUT,
    Status.SERVFAIL,
    Status.REFUSED,
    Status.ERROR,
)


def as_is(name: str) -> str:
    """The absolute form of ``name`` as written (one trailing dot)."""
    return name if name.endswith(".") else name + "."


class SearchPlan:
    """The candidates of one name, and after each answer which one comes next.

    ``candidates`` is the whole order glibc would follow if every answer said "go on";
    :meth:`after` cuts it short. Iterating (``for name in plan: plan.record(status)``) does
    the same one step at a time.
    """

    __slots__ = ("_first_as_is", "_search_end", "_status", "candidates", "name", "statuses")

    def __init__(
        self, name: str, ndots: int, search: Sequence[str], *, no_tld_query: bool = False
    ) -> None:
        self.name = name
        dots = name.count(".")
        trailing = name.endswith(".")
        candidates: list[str] = []
        first_as_is = dots >= ndots or trailing
        if first_as_is:
            candidates.append(as_is(name))
        root_on_list = searched = False
        if not trailing:  # RES_DEFNAMES and RES_DNSRCH are always on
            for listed in search:
                domain = listed[1:] if listed.startswith(".") else listed
                root_on_list = root_on_list or not domain
                searched = True
                candidates.append(f"{name}.{domain}." if domain else as_is(name))
        self._search_end = len(candidates)
        if (dots or not searched or not no_tld_query) and not (first_as_is or root_on_list):
            candidates.append(as_is(name))
        self.candidates = candidates
        self._first_as_is = first_as_is
        self.statuses: list[Status] = []
        self._status: Status | None = None

    def after(self, index: int, status: Status) -> int | None:
        """Record that candidate ``index`` got ``status``; the next index, or None: done."""
        self.statuses.append(status)
        if status is Status.SUCCESS:
            return None
        if index == 0 and self._first_as_is:
            if self.name.endswith("."):
                return None
            following = 1
        elif index < self._search_end:  # a search-list candidate
            if status is Status.UNREACHABLE:
                return None
            following = index + 1 if status in _GO_ON else self._search_end
        else:
            return None
        return following if following < len(self.candidates) else None

    def record(self, status: Status) -> None:
        self._status = status

    def __iter__(self) -> Iterator[str]:
        index: int | None = 0 if self.candidates else None
        while index is not None:
            self._status = None
            yield self.candidates[index]
            status = self._status if self._status is not None else Status.ERROR
            index = self.after(index, status)

    def outcome(self) -> int:
        """The index (among the steps asked) of the step whose answer is the name's answer.

        The successful step if there is one. Otherwise a step that could not be answered
        (unreachable, timeout, SERVFAIL, REFUSED, bad reply, in that order) — a documented
        difference: glibc then reports the last or the as-written answer, often "not found",
        which hides that a server failed. Otherwise glibc's rule: the as-written answer if
        it was asked first, else NODATA if any step had it, else the last step.
        """
        statuses = self.statuses
        if not statuses:
            return -1
        if statuses[-1] is Status.SUCCESS:
            return len(statuses) - 1
        for wanted in _TRANSIENT_FIRST:
            if wanted in statuses:
                return statuses.index(wanted)
        if self._first_as_is:
            return 0
        if Status.NODATA in statuses:
            return statuses.index(Status.NODATA)
        return len(statuses) - 1
