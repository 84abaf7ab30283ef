"""The Python API: the README's example, run as written, against real loopback listeners."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import scanner

from .conftest import ROOT, Listener, scanner_env, write_inventory


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's Python API section has no example"
    return match.group(1)


def test_the_readme_example_runs_as_written(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    write_inventory(
        tmp_path / "inventory.yaml",
        f"""
version: 1
defaults: {{timeout: 1, retries: 0}}
targets:
  - {{name: web, host: 127.0.0.1, port: {listener.port}}}
  - {{name: cache, host: 127.0.0.1, port: {closed_port}}}
""",
    )
    proc = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        env=scanner_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # cache is refused: the check fails
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cache: refused (a TCP reset came back")
    assert lines[-1] == "1 ok, 1 failed"


def test_check_returns_typed_results_in_inventory_order(
    listener: Listener, closed_port: int
) -> None:
    targets = [
        scanner.Target(f"t{i}", "127.0.0.1", listener.port if i % 2 else closed_port, timeout=1)
        for i in range(20)
    ]
    seen = scanner.Collector()
    result = scanner.check(scanner.Inventory(paths=("api",), targets=targets), observer=seen)
    assert [t.target.name for t in result.targets] == [f"t{i}" for i in range(20)]
    assert [t.category for t in result.targets] == [
        scanner.Category.OPEN if i % 2 else scanner.Category.REFUSED for i in range(20)
    ]
    assert len(result.failed) == 10 and not result.inconclusive
    assert not result.ok and result.exit_code == 1
    assert seen.summary == result.summary and len(seen.probes) == 20


async def test_check_async_runs_in_the_callers_loop(listener: Listener) -> None:
    target = scanner.Target("web", "::1", listener.port, timeout=1)
    result = await scanner.check_async(scanner.Inventory(paths=("api",), targets=[target]))
    assert result.ok and result.exit_code == 0
    assert result.targets[0].probes[0].family == "ipv6"


def test_importing_scanner_imports_nothing_heavy() -> None:
    heavy = ("msgspec", "anyio", "yaml", "aiodns", "structlog", "scanner.")
    code = f"import sys, scanner; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=scanner_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        scanner.nothing_here
    assert set(scanner.__all__) >= {"check", "check_async", "load_inventory", "CheckResult"}
    for name in scanner.__all__:
        assert getattr(scanner, name) is not None
