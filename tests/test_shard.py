"""--shard I/N: a stable split, the same on every machine; bad specs are usage errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from scanner.inventory.selection import Shard, parse_shard, shard_of

from .conftest import Listener, parse_events, run_scanner, write_inventory


@pytest.mark.parametrize(
    ("text", "shard"),
    [
        ("1/1", Shard(1, 1)),
        ("2/4", Shard(2, 4)),
        ("4/4", Shard(4, 4)),
        (" 3 / 7 ", Shard(3, 7)),
    ],
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "0/0", "-1/4", "1", "a/b", "1/2/3", ""])
def test_bad_shard_specs(text: str) -> None:
    with pytest.raises(ValueError, match=r"I/N|N must|I must"):
        parse_shard(text)


def test_hash_is_fixed() -> None:
    """Golden values: changing them moves targets between shards on users' CI. Don't."""
    assert shard_of("api", 4) == 2
    assert shard_of("db:5432", 4) == 3
    assert shard_of("127.0.0.1:80", 7) == 1
    for name in ("api", "ü", "x" * 300):  # the documented formula, nothing else
        digest = hashlib.sha256(name.encode()).hexdigest()
        assert shard_of(name, 5) == int(digest[:16], 16) % 5 + 1
    assert shard_of("anything", 1) == 1


def test_every_name_in_exactly_one_shard() -> None:
    names = [f"svc-{i}:{p}" for i in range(500) for p in (80, 443)]
    for count in (1, 2, 3, 8):
        shards = [[n for n in names if Shard(i, count).holds(n)] for i in range(1, count + 1)]
        assert sorted(n for shard in shards for n in shard) == sorted(names)
        if count > 1:  # and the split is roughly even
            assert min(map(len, shards)) > len(names) / count * 0.7


def test_cli_shards_partition_a_real_scan(tmp_path: Path, listener: Listener) -> None:
    lines = "\n".join(
        f"  - {{name: t{i}, host: 127.0.0.1, port: {listener.port}}}" for i in range(30)
    )
    inv = write_inventory(tmp_path / "inv.yaml", f"version: 1\ntargets:\n{lines}\n")
    seen: list[str] = []
    for index in (1, 2, 3):
        report = tmp_path / f"r{index}.json"
        proc = run_scanner(
            "check", str(inv), "--format", "json", "--shard", f"{index}/3", "--report", str(report)
        )
        assert proc.returncode == 0, proc.stderr
        names = [e["target"] for e in parse_events(proc.stdout) if e["event"] == "target.result"]
        assert all(shard_of(n, 3) == index for n in names)
        document = json.loads(report.read_text())
        assert document["shard"] == f"{index}/3"
        assert [t["target"] for t in document["targets"]] == names
        seen += names
    assert sorted(seen) == sorted(f"t{i}" for i in range(30))


def test_empty_shard_is_a_clean_pass(tmp_path: Path, listener: Listener) -> None:
    inv = write_inventory(
        tmp_path / "inv.yaml",
        f"version: 1\ntargets:\n  - {{name: api, host: 127.0.0.1, port: {listener.port}}}\n",
    )
    empty = next(i for i in (1, 2, 3, 4) if i != shard_of("api", 4))
    proc = run_scanner("check", str(inv), "--format", "json", "--shard", f"{empty}/4")
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    assert events[0]["targets"] == 0 and events[-1]["ok"] is True


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "x", "1/2/3"])
def test_cli_bad_shard_exits_2(tmp_path: Path, spec: str) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", "version: 1\ntargets:\n  - 127.0.0.1:9\n")
    proc = run_scanner("check", str(inv), "--format", "json", "--shard", spec)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--shard" in proc.stderr
