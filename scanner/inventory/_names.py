"""Target names across all files: each must be unique, CIDR expansions included."""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Sequence

from ..models import SourceLocation
from ._values import split_host_port
from ._yaml import Problem, _shown
from .targets import TargetSpec


def duplicate_names(
    names: Sequence[tuple[str, SourceLocation]],
    networks: Sequence[tuple[TargetSpec, SourceLocation]],
) -> list[Problem]:
    """A problem for every name claimed twice, and for CIDR expansions that would be."""
    problems = _network_overlaps(networks, names)
    seen: dict[str, SourceLocation] = {}
    for name, source in names:
        first = seen.get(name)
        if first is not None:
            problems.append(
                Problem(source, f"duplicate target name {_shown(name)} (first at {first})")
            )
        else:
            seen[name] = source
    return problems


def _network_overlaps(
    networks: Sequence[tuple[TargetSpec, SourceLocation]],
    names: Sequence[tuple[str, SourceLocation]],
) -> list[Problem]:
    """Duplicate names that CIDR expansion would create, found without expanding.

    Unnamed network targets are named ``address:port``: two of them overlapping in
    addresses and ports, or one covering an endpoint listed on its own, would probe
    (and report) the same target twice.

    Both checks sweep sorted address intervals instead of comparing every pair: an
    inventory of a thousand CIDR lines took over a second the pairwise way.
    """
    problems = []
    unnamed = [(spec, source) for spec, source in networks if spec.name is None]
    intervals = []
    for position, (spec, _source) in enumerate(unnamed):
        assert spec.network is not None
        intervals.append(
            (
                spec.network.version,
                int(spec.network.network_address),
                int(spec.network.broadcast_address),
                position,
            )
        )
    intervals.sort()
    pairs: list[tuple[int, int]] = []  # (later, earlier) in inventory order
    open_intervals: list[tuple[int, int, int]] = []  # (version, last address, position)
    for version, first, last, position in intervals:
        open_intervals = [
            item for item in open_intervals if item[0] == version and item[1] >= first
        ]
        for _version, _last, earlier in open_intervals:
            if not set(unnamed[position][0].ports).isdisjoint(unnamed[earlier][0].ports):
                pairs.append((max(position, earlier), min(position, earlier)))
        open_intervals.append((version, last, position))
    for later, first_seen in sorted(pairs):
        (spec, source), (other, other_source) = unnamed[later], unnamed[first_seen]
        problems.append(
            Problem(
                source,
                f"{spec.network} overlaps {other.network} "
                f"(at {other_source}) on the same ports: the same "
                "targets twice",
            )
        )
    if not unnamed:  # no network to overlap with: the endpoints need no address at all
        return problems
    endpoints = []  # named single endpoints as (version, address, port, name, source)
    for name, name_source in names:
        parsed = split_host_port(name)
        if parsed is None:
            continue
        try:
            address = ipaddress.ip_address(parsed[0])
        except ValueError:
            continue
        endpoints.append((address.version, int(address), parsed[1], name, name_source))
    endpoints.sort(key=lambda item: (item[0], item[1]))
    keys = [(item[0], item[1]) for item in endpoints]
    for spec, source in unnamed:
        assert spec.network is not None
        version = spec.network.version
        low = bisect.bisect_left(keys, (version, int(spec.network.network_address)))
        high = bisect.bisect_right(keys, (version, int(spec.network.broadcast_address)))
        ports = set(spec.ports)
        for _version, _address, port, name, name_source in endpoints[low:high]:
            if port in ports:
                problems.append(
                    Problem(
                        name_source,
                        f"duplicate target name {_shown(name)} "
                        f"(also in {spec.network} at {source})",
                    )
                )
    return problems
