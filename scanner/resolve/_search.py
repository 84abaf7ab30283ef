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

from collections.abc import Generator, Iterator, Sequence
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
    """Candidates one at a time: ``for name in plan: plan.record(status_of(name))``."""

    def __init__(
        self, name: str, ndots: int, search: Sequence[str], *, no_tld_query: bool = False
    ) -> None:
        self.name = name
        self.ndots = ndots
        self.search = tuple(search)
        self.no_tld_query = no_tld_query
        self.steps: list[tuple[str, Status]] = []
        self.as_is_first = False
        self._status: Status | None = None

    def record(self, status: Status) -> None:
        self._status = status

    def __iter__(self) -> Iterator[str]:
        name = self.name
        dots = name.count(".")
        trailing = name.endswith(".")
        tried_as_is = False
        if dots >= self.ndots or trailing:
            status = yield from self._ask(as_is(name))
            if status is Status.SUCCESS or trailing:
                return
            tried_as_is = self.as_is_first = True
        searched = root_on_list = False
        if not trailing:  # RES_DEFNAMES and RES_DNSRCH are always on
            for listed in self.search:
                domain = listed[1:] if listed.startswith(".") else listed
                root_on_list = root_on_list or not domain
                searched = True
                status = yield from self._ask(f"{name}.{domain}." if domain else as_is(name))
                if status is Status.SUCCESS or status is Status.UNREACHABLE:
                    return
                if status not in _GO_ON:
                    break
        if (dots or not searched or not self.no_tld_query) and not (tried_as_is or root_on_list):
            yield from self._ask(as_is(name))

    def _ask(self, candidate: str) -> Generator[str, None, Status]:
        self._status = None
        yield candidate
        status = self._status if self._status is not None else Status.ERROR
        self.steps.append((candidate, status))
        return status

    def outcome(self) -> int:
        """The index of the step whose answer is the name's answer.

        The successful step if there is one. Otherwise a step that could not be answered
        (unreachable, timeout, SERVFAIL, REFUSED, bad reply, in that order) — a documented
        difference: glibc then reports the last or the as-written answer, often "not found",
        which hides that a server failed. Otherwise glibc's rule: the as-written answer if
        it was asked first, else NODATA if any step had it, else the last step.
        """
        statuses = [status for _, status in self.steps]
        if not statuses:
            return -1
        if Status.SUCCESS in statuses:
            return statuses.index(Status.SUCCESS)
        for wanted in _TRANSIENT_FIRST:
            if wanted in statuses:
                return statuses.index(wanted)
        if self.as_is_first:
            return 0
        if Status.NODATA in statuses:
            return statuses.index(Status.NODATA)
        return len(statuses) - 1
