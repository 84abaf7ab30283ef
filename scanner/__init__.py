"""scanner: check a whole service inventory at once and say why each failing endpoint fails.

The stages, in the order data flows: :mod:`scanner.inventory` → :mod:`scanner.resolve`
→ :mod:`scanner.probe` → :mod:`scanner.classify` → :mod:`scanner.engine` →
:mod:`scanner.events` / :mod:`scanner.report` → :mod:`scanner.cli`.
Importing this package imports nothing heavy, so ``scanner --help`` starts fast.
"""

__version__ = "0.1.0"
