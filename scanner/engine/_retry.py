"""When to try an address again (SPEC §4): transient categories, and our own shortages."""

from __future__ import annotations

from ..models import TRANSIENT, Category
from ..resolve import backoff_delay

#: A local shortage (EMFILE, EADDRNOTAVAIL ...) usually passes once other probes close
#: their sockets: try again this many times before calling the address inconclusive.
LOCAL_RETRIES = 3


class Tries:
    """Counts the handshakes to one address and decides whether to try again.

    ``attempts`` counts handshakes tried for transient categories; retries after our
    own shortage are extra and never turn into a verdict on the target.
    """

    __slots__ = ("attempts", "shortages")

    def __init__(self) -> None:
        self.attempts = 0
        self.shortages = 0

    def again(self, category: Category, retries: int) -> float | None:
        """Seconds to wait before the next handshake, or None: ``category`` is final."""
        if category is Category.INCONCLUSIVE and self.shortages < LOCAL_RETRIES:
            self.shortages += 1
            return backoff_delay(self.shortages, base=0.05)
        self.attempts += 1
        if category in TRANSIENT and self.attempts <= retries:
            return backoff_delay(self.attempts)
        return None
