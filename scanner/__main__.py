"""``python -m scanner`` behaves exactly like the ``scanner`` console script."""

from ._entry import run

run()
