"""Inventories: YAML files → validated, lazily expanded targets, or every problem and where.

The modules, in the order a file goes through them: :mod:`._files` (reading with limits,
merging files), :mod:`._yaml` (safe YAML, marks, scalars, mappings), :mod:`._values`
(typed values: hosts, ports, numbers, tags), :mod:`._sections` (defaults, resolver, scope,
targets), :mod:`._names` (unique names across files); :mod:`.targets` holds the lazy
target lists and :mod:`.selection` what a scan checks of them (tags, shards, slices).
"""

from ._files import MAX_FILE_BYTES, load_inventories
from ._sections import SCHEMA_VERSION
from ._values import MAX_NETWORK, MAX_PORT, printable_path, split_host_port
from ._yaml import MAX_DEPTH, MAX_NODES, InventoryError, Problem
from .targets import display, literal_family

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NETWORK",
    "MAX_NODES",
    "MAX_PORT",
    "SCHEMA_VERSION",
    "InventoryError",
    "Problem",
    "display",
    "literal_family",
    "load_inventories",
    "printable_path",
    "split_host_port",
]
