"""``scanner explain``: the evidence a person would collect by hand, for each target, in one place.

The checklist, client side first (docs/diagnosis.md has it in full):

a. how the name resolved: the hosts file or which nameserver, the search-list trail, every
   address per family — and, for a name that does not resolve, the names nearby that do;
b. the route and source address this host uses for each address (a route lookup and a
   connected UDP socket: no packet sent), and a policy route or an error route in the way;
c. the handshake per address: its category, errno, ICMP type/code and who sent it;
d. for failures, the path trace: which hop answered last;
e. local evidence when the address is this host's own: what listens, where, by which
   process, whether its accept queue is full;
f. one sentence: the most likely cause, and the next thing to check.

It runs the same engine as ``check`` (with ``--trace-failures``) and reads the evidence
after, with :mod:`scanner.explain`. :func:`conclude` is pure and table-tested.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from .explain.evidence import Finding
from .models import Category, DnsResult, Inventory, ProbeResult, TargetResult
from .report.document import (
    AddressExplanation,
    ExplainEntry,
    RouteEntry,
    dns_entry,
    probe_entry,
)
from .verdict import EXIT_OK, exit_code

C = Category


def explain(inventory: Inventory, *, hop_timeout: float = 1.0) -> tuple[list[ExplainEntry], int]:
    """Check every target of ``inventory``, trace its failures, and explain each one.

    Returns the explanations in inventory order and the exit code ``check`` would give.
    """
    from .engine import ScanOptions, run_scan_sync
    from .explain.sockets import listen_counters
    from .observers import Collector
    from .probers.trace import TraceConfig

    try:
        before = listen_counters()
    except OSError:
        before = None
    collector = Collector()
    options = ScanOptions(
        handle_signals=True,
        trace_failures=True,
        trace=TraceConfig(hop_timeout=hop_timeout, max_hops=16),
    )
    summary = run_scan_sync(inventory, collector, options)
    known = _resolved_names(collector.dns)
    entries = [_explanation(result, before, known) for result in collector.results]
    code = exit_code(summary)
    return entries, code if entries else EXIT_OK


def _resolved_names(answers: Iterable[DnsResult]) -> list[str]:
    """Names that resolve: those this run resolved, and the hosts file's."""
    from .resolve._system import hosts_file_names, hosts_file_path

    names = {a.host.rstrip(".") for a in answers if a.category is C.RESOLVED}
    names.update(hosts_file_names(hosts_file_path()))
    return sorted(names)


def _explanation(result: TargetResult, before: object, known: Sequence[str]) -> ExplainEntry:
    from .explain.local import local_findings
    from .explain.names import did_you_mean, suggest_names
    from .explain.routes import route_to

    addresses = []
    findings: dict[str, list[Finding]] = {}
    for probe in result.probes:
        route = None
        with contextlib.suppress(OSError, ValueError):  # no route table to read: said as none
            route = route_to(probe.address, probe.target.port)
        try:
            local = local_findings(
                probe.address,
                probe.target.port,
                probe.category.value,
                before=before,  # type: ignore[arg-type]
            )
        except OSError:
            local = []
        findings[probe.address] = local
        path = next((p for p in result.paths if p.address == probe.address), None)
        addresses.append(
            AddressExplanation(
                probe=probe_entry(probe),
                route=_route_entry(route) if route is not None else None,
                path_verdict=path.verdict if path else None,
                last_hop=path.last_hop if path else None,
                local=tuple(f.sentence for f in local),
            )
        )
    suggestions: tuple[str, ...] = ()
    mean = None
    if result.category in (C.DNS_NXDOMAIN, C.DNS_NO_ADDRESS):
        found = suggest_names(result.target.host.rstrip("."), known)
        suggestions = tuple(s.name for s in found)
        mean = did_you_mean(found)
    cause, next_step = conclude(result, findings, suggestions)
    if mean:
        cause = f"{cause}; {mean}"
    target = result.target
    return ExplainEntry(
        target=target.name,
        host=target.host,
        port=target.port,
        expect=target.expect,
        ok=result.ok,
        category=result.category,
        hint=result.hint,
        dns=dns_entry(result.dns) if result.dns is not None else None,
        addresses=tuple(addresses),
        suggestions=suggestions,
        cause=cause,
        next_step=next_step,
    )


def _route_entry(route: object) -> RouteEntry:
    from .explain.evidence import route_evidence
    from .explain.routes import Route

    assert isinstance(route, Route)
    said = route_evidence(route)
    return RouteEntry(
        kind=route.kind,
        source=route.source,
        device=route.device,
        gateway=route.gateway,
        own=route.own,
        error=route.error,
        sentence=said[0].sentence if said else None,
    )


# --- the one sentence (pure) -----------------------------------------------------------------

#: the next thing to check, per category, when the evidence says nothing more precise
NEXT_STEP: dict[Category, str] = {
    C.OPEN: "nothing to do",
    C.REFUSED: "on the host: is the service running, and on which address and port (ss -ltnp)?",
    C.REJECTED: "the rules of the firewall that sent the ICMP reject, for this port",
    C.TIMEOUT: "the firewalls on the path (from the last hop that answered on), and "
    "whether the host is up",
    C.HOST_UNREACHABLE: "whether the host is up and on that network (ARP/NDP at the last router)",
    C.NETWORK_UNREACHABLE: "the routes towards that network (ip route get), VPN and gateways",
    C.BLOCKED_LOCALLY: "this machine's own firewall and policy (nft list ruleset, ip rule)",
    C.INCONCLUSIVE: "this machine's limits (ulimit -n, free memory), then run again",
    C.DNS_NXDOMAIN: "the name's spelling, and its record in DNS or the hosts file",
    C.DNS_NO_ADDRESS: "the name's A/AAAA records, and the target's family setting",
    C.DNS_SERVFAIL: "the nameserver's upstream and DNSSEC (dig +cd against it)",
    C.DNS_REFUSED: "the nameserver's access lists, and which nameserver is configured",
    C.DNS_TIMEOUT: "whether the nameserver is reachable (its port, firewalls on the way)",
    C.DNS_ERROR: "the nameserver configuration (resolv.conf, resolver.nameservers)",
    C.SLOW: "the service's load, and the path's latency",
    C.OUT_OF_SCOPE: "where the name points (DNS, CNAMEs, hosts file) against scope.allow",
    C.NOT_ACCEPTING: "the listening process: hung, deadlocked or overloaded (its threads, "
    "its backlog, its logs)",
    C.CLOSED_BY_PEER: "what is behind the listener: a proxy's backends, TCP wrappers, "
    "connection limits",
    C.TLS_EXPIRED: "renew the certificate (and reload the server)",
    C.TLS_NOT_YET_VALID: "the clocks, and the certificate's start date",
    C.TLS_EXPIRING: "renew the certificate before it expires",
    C.TLS_HOSTNAME_MISMATCH: "the certificate's names against the name used (server_name)",
    C.TLS_UNTRUSTED: "the chain the server sends, and the CAs trusted here (ca_file)",
    C.TLS_HANDSHAKE_FAILED: "the server's TLS versions, ciphers and client-certificate policy",
    C.TLS_NOT_TLS: "whether the port speaks TLS at all (or needs STARTTLS)",
    C.TLS_TIMEOUT: "the service behind the port: it accepted and never answered",
}


def conclude(
    result: TargetResult,
    local: dict[str, list[Finding]],
    suggestions: Sequence[str] = (),
) -> tuple[str, str]:
    """The most likely cause and the next thing to check, in one sentence each.

    The decisive address is the one whose category decided the target; local evidence
    about it (what listens where, a full queue) wins over the category's general reading,
    and the path trace names the hop where a path ends.
    """
    category = result.category
    if result.ok:
        return "nothing is wrong: every address met its expectation", NEXT_STEP[C.OPEN]
    decisive = next((p for p in result.probes if p.category is category), None)
    next_step = NEXT_STEP.get(category, "the hint above")
    if decisive is None:  # a DNS failure, or not checked
        cause = result.hint or category.value
        if suggestions:
            next_step = "the spelling: a name nearby resolves"
        return cause, next_step
    evidence = local.get(decisive.address, [])
    if evidence:
        finding = evidence[0]
        return finding.sentence, _next_from_finding(finding, next_step)
    path = next((p for p in result.paths if p.address == decisive.address), None)
    if path is not None and category in (
        C.TIMEOUT,
        C.REJECTED,
        C.HOST_UNREACHABLE,
        C.NETWORK_UNREACHABLE,
    ):
        return f"{_reading(decisive)}; the path: {path.verdict}", next_step
    return _reading(decisive), next_step


def _next_from_finding(finding: Finding, default: str) -> str:
    return {
        "wrong_port": "the port in the inventory against the one the service uses",
        "other_address": "the address the service binds to (0.0.0.0 or :: to take all)",
        "listening_now": "the service's restarts: it listens now, it did not a moment ago",
        "queue_has_room": "this machine's own firewall (nft list ruleset): a listener waits",
        "other_family": "the family the service listens on (IPv4 or IPv6), and the name's "
        "addresses",
        "nothing_listens": "whether the service runs at all (its unit, its logs)",
        "accept_queue_full": NEXT_STEP[C.NOT_ACCEPTING],
    }.get(finding.code, default)


def _reading(probe: ProbeResult) -> str:
    """What one address's outcome most likely means (its hint, or the category)."""
    return probe.hint or probe.category.value
