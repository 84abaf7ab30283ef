"""Lazily expanded targets: a CIDR host and port ranges stay one small spec until iterated.

A line such as ``host: 198.18.0.0/16`` with ``ports: ["8000-8015"]`` stands for a million
targets. Materialising them would cost hundreds of megabytes before the first packet,
so the inventory keeps :class:`TargetSpec` values and :class:`TargetList` expands them
one :class:`Target` at a time, as the engine pulls. Length, indexing, tag selection and
overrides work on the specs without expanding anything.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import overload

from msgspec.structs import replace as replace_fields

from ..models import AddressFamily, Target

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PACK_V4 = struct.Struct("!I").pack


def display(host: str, port: int) -> str:
    """The conventional ``host:port`` spelling (brackets around IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def literal_family(host: str) -> AddressFamily | None:
    """``ipv4``/``ipv6`` when ``host`` is an IP literal, None for a name.

    inet_pton rather than :mod:`ipaddress`: it runs once per target and per address,
    and the C call is some fifty times cheaper.
    """
    if ":" in host:  # only IPv6 has colons; a failed inet_pton raises, ~1 µs a time
        try:
            socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        except OSError:
            return None
        return "ipv6"
    if not host[-1:].isdigit():  # a name (its last label is never all digits)
        return None
    try:
        socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return None
    return "ipv4"


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One inventory entry: a host or a network, one or more ports, shared settings.

    ``template`` carries the settings (expect, timeout, tags, source ...) and, for a
    single host and port, is the target itself. Names follow SPEC §2: ``name`` for a
    single endpoint, ``name:port`` per port when there are several, and
    ``name/address:port`` per address of a network; without a name, ``address:port``.
    """

    template: Target
    ports: tuple[int, ...]
    network: Network | None = None
    name: str | None = None
    per_port_names: bool = False

    def __len__(self) -> int:
        hosts = self.network.num_addresses if self.network is not None else 1
        return hosts * len(self.ports)

    def hosts(self) -> Iterator[str]:
        network = self.network
        if network is None:
            yield self.template.host
        elif isinstance(network, ipaddress.IPv4Network):
            first = int(network.network_address)
            inet_ntoa = socket.inet_ntoa  # text without building IPv4Address objects
            for value in range(first, first + network.num_addresses):
                yield inet_ntoa(_PACK_V4(value))
        else:
            for address in network:
                yield str(address)

    def name_of(self, host: str, port: int) -> str:
        if self.name is None:
            return display(host, port)
        if self.network is not None:
            return f"{self.name}/{display(host, port)}"
        return f"{self.name}:{port}" if self.per_port_names else self.name

    def __iter__(self) -> Iterator[Target]:
        """Port-major order, so consecutive probes go to different hosts of a network."""
        target = self._target
        for port in self.ports:
            for host in self.hosts():
                yield target(host, port)

    def host_at(self, offset: int) -> str:
        """The ``offset``-th host of the network (the host itself for a single host)."""
        network = self.network
        if network is None:
            return self.template.host
        if isinstance(network, ipaddress.IPv4Network):
            return socket.inet_ntoa(_PACK_V4(int(network.network_address) + offset))
        return str(network.network_address + offset)

    def target_at(self, index: int) -> Target:
        hosts = len(self) // len(self.ports)
        port = self.ports[index // hosts]
        return self._target(self.host_at(index % hosts), port)

    def _target(self, host: str, port: int) -> Target:
        """The template's target at ``host``:``port`` (the one place a spec builds one)."""
        t = self.template
        return Target(
            self.name_of(host, port),
            host,
            port,
            t.expect,
            t.timeout,
            t.retries,
            t.family,
            t.tags,
            t.source,
            t.max_latency_ms,
            t.hold_ms,
            t.tls,
        )

    def strided(self, start: int, step: int) -> Iterator[Target]:
        """The targets at ``start``, ``start + step`` … in :meth:`__iter__` order.

        Only those are built: a ``--workers`` process skips the others' targets for the
        price of an index, not of a :class:`Target` each.
        """
        for index in range(start, len(self), step):
            yield self.target_at(index)


class _LazyTargets(Sequence[Target]):
    """Indexing shared by the lazy target views: slices, negative indices, bounds.

    Subclasses give ``__len__``, ``__iter__`` and ``_at`` (a valid, non-negative index).
    """

    __slots__ = ()

    def _at(self, index: int) -> Target:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> Target: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Target]: ...

    def __getitem__(self, index: int | slice) -> Target | Sequence[Target]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._at(index)


class TargetList(_LazyTargets):
    """The targets of an inventory, expanded on demand from :class:`TargetSpec` values."""

    __slots__ = ("_offsets", "specs")

    def __init__(self, specs: Iterable[TargetSpec]) -> None:
        self.specs = tuple(specs)
        self._offsets = list(itertools.accumulate(len(spec) for spec in self.specs))

    def __len__(self) -> int:
        return self._offsets[-1] if self._offsets else 0

    def __iter__(self) -> Iterator[Target]:
        for spec in self.specs:
            yield from spec

    def _at(self, index: int) -> Target:
        spec_index = bisect.bisect_right(self._offsets, index)
        start = self._offsets[spec_index - 1] if spec_index else 0
        return self.specs[spec_index].target_at(index - start)

    def strided(self, start: int, step: int) -> Iterator[Target]:
        """Targets ``start``, ``start + step`` … without building the ones between."""
        if step == 1:
            yield from itertools.islice(self, start, None)
            return
        begin = 0  # the first index of each spec in the whole list
        for spec, end in zip(self.specs, self._offsets, strict=True):
            # the first wanted index at or after ``begin``
            first = start if start >= begin else start + -(-(begin - start) // step) * step
            if first < end:
                yield from spec.strided(first - begin, step)
            begin = end

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(
                a == b for a, b in zip(self, other, strict=False)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TargetList({len(self)} targets from {len(self.specs)} entries)"

    def select(
        self,
        *,
        tags: Iterable[str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> TargetList:
        """Targets carrying one of ``tags``, with overridden timeout/retries (no expansion)."""
        if tags is None and timeout is None and retries is None:
            return self  # nothing to select: 20,000 entries copied for nothing cost 50 ms
        wanted = set(tags) if tags is not None else None
        specs = []
        for spec in self.specs:
            if wanted is not None and not wanted.intersection(spec.template.tags):
                continue
            template = spec.template
            if timeout is not None:
                template = replace_fields(template, timeout=timeout)
            if retries is not None:
                template = replace_fields(template, retries=retries)
            specs.append(spec if template is spec.template else replace(spec, template=template))
        return TargetList(specs)


class FilteredTargets(_LazyTargets):
    """A lazy, filtered view of a target sequence; its length is counted once, on demand."""

    __slots__ = ("_keep", "_length", "_source")

    def __init__(self, source: Sequence[Target], keep: Callable[[Target], bool]) -> None:
        self._source = source
        self._keep = keep
        self._length: int | None = None

    def __iter__(self) -> Iterator[Target]:
        return (target for target in self._source if self._keep(target))

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(1 for _ in self)
        return self._length

    def _at(self, index: int) -> Target:
        return next(itertools.islice(iter(self), index, None))


class EveryNth(_LazyTargets):
    """Targets ``start``, ``start + step``, ``start + 2·step`` … of a sequence (lazily).

    ``--workers`` gives each process one such slice: exactly balanced, unlike hash
    shards, so no worker has an extra round of timeouts to wait for.
    """

    __slots__ = ("_source", "_start", "_step")

    def __init__(self, source: Sequence[Target], start: int, step: int) -> None:
        self._source, self._start, self._step = source, start, step

    def __iter__(self) -> Iterator[Target]:
        if isinstance(self._source, TargetList):
            return self._source.strided(self._start, self._step)
        return itertools.islice(iter(self._source), self._start, None, self._step)

    def __len__(self) -> int:
        return max(0, -(-(len(self._source) - self._start) // self._step))

    def _at(self, index: int) -> Target:
        return self._source[self._start + index * self._step]

    def index_in_source(self, index: int) -> int:
        """Where this slice's ``index``-th target is in the whole sequence."""
        return self._start + index * self._step


class Picked(_LazyTargets):
    """The targets of a sequence at ``indices`` (ascending), lazily: a worker's share of
    an inventory whose names must each stay in one process (see :mod:`scanner.workers`)."""

    __slots__ = ("_indices", "_source")

    def __init__(self, source: Sequence[Target], indices: Sequence[int]) -> None:
        self._source, self._indices = source, indices

    def __iter__(self) -> Iterator[Target]:
        wanted = iter(self._indices)
        want = next(wanted, None)
        if want is None:
            return
        for index, target in enumerate(self._source):
            if index == want:
                yield target
                want = next(wanted, None)
                if want is None:
                    return

    def __len__(self) -> int:
        return len(self._indices)

    def _at(self, index: int) -> Target:
        return self._source[self._indices[index]]

    def index_in_source(self, index: int) -> int:
        """Where this share's ``index``-th target is in the whole sequence."""
        return self._indices[index]
