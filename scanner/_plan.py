"""What ``scanner check`` is asked to do: argv, parsed and checked, as one typed value.

Not in :mod:`scanner.cli`, which ``scanner --help`` imports: a NamedTuple needs typing,
whose import added 4 ms to ``--help`` (34 ms now). Only ``check`` imports this module
(and has imported typing by then anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .engine import ScanOptions
    from .inventory.selection import Shard
    from .models import Inventory
    from .report.artefacts import Artefacts
    from .report.baseline import Baseline
    from .report.console import Verbosity
    from .verdict import FailOn


class CheckPlan(NamedTuple):
    """A ``check`` as argv asked for it, typed: every option lands in a field here.

    A NamedTuple, not a Struct: it was one when it lived in :mod:`scanner.cli`, where
    msgspec's import (29 ms) would have slowed ``--help``; kept so, as nothing needs more.
    """

    inventory: Inventory
    options: ScanOptions
    format: str
    show_ok: bool
    artefacts: Artefacts
    baseline: Baseline | None
    fail_on: FailOn
    shard: Shard | None
    workers: int
    #: quiet, normal or verbose (-q, -v): the console, or the summary on stderr beside JSON
    verbosity: Verbosity = "normal"
    #: the inventory as loaded, before --tags and --shard: which targets still exist
    known: Inventory | None = None

    @property
    def wants_report(self) -> bool:
        return self.artefacts.wanted or self.fail_on == "new"
