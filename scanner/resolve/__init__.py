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

Measured with ``python benchmarks/resolver.py`` (10,000 names, A and AAAA each, Unbound
1.17 with one thread serving them from an auth-zone in a namespace; 2 cores shared with
other developers' test runs, load average 3-6, so rates vary by 2x from run to run — the
CPU per name, and runs side by side, are the fair comparison):

==================  ==================  ===============  =====================================
resolver            names/s (median 3)  CPU µs per name  note
==================  ==================  ===============  =====================================
scanner (this)      7,521               48-74            ~12,000-16,800/s on a quieter moment
glibc, one by one   4,472               60-68            getaddrinfo as nmap resolves; 11,700/s
                                                         quiet
aiodns / c-ares     1,639-2,406         188-248          a thread hand-off per answer
dnspython asyncio   640-831             —                a socket and a task per query
==================  ==================  ===============  =====================================

Reading one reply (one A record): this package's parser 3.4-5.6 µs, dnslib 50-74 µs,
dnspython 180 µs (``python benchmarks/resolver.py --parse``): a library's parse alone
would have cost more than everything else per name. What made the difference, by
measurement: no thread hand-off (c-ares' answers crossed a thread); a few sockets per
nameserver instead of one per query; one timer per nameserver over a FIFO of deadlines
instead of a timer per query (107 -> ~60 µs CPU per name); one wake-up per candidate for
its A and AAAA; a limiter that wakes one waiter (asyncio.Semaphore on 3.11 walks them all).
End to end (``scanner check`` of the 10,000 names in the same namespace, probes refused at
once, same load): 1,322-1,491 names/s against 914-1,206 for the c-ares version, with 3.4
instead of 5.0-5.4 s of user CPU; ``benchmarks/dns.py`` (the dnslib test server on
loopback): 965 names/s and correct, where the c-ares version got 587-668 and failed the
run with 198-662 spurious dns_timeout (its adaptive timeout) on the same machine minutes
apart.
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
