"""``python -m scanner`` behaves exactly like the ``scanner`` console script."""

from .cli import run

run()
