"""A link-local IPv6 target is reached through the interface its zone names.

Two namespaces joined by a veth, each with a link-local address of its own (nodad: usable at
once). ``[fe80::2%c0]:PORT`` from the client connects through ``c0``; before the zone was
kept, the scope id was dropped and the connect failed (EINVAL), a misleading inconclusive.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .netns import Netns, netns_available, run_id, veth

ROOT = Path(__file__).resolve().parents[2]

_SERVER = (
    "import socket, sys; s = socket.socket(socket.AF_INET6); "
    "s.bind(('fe80::2', 8080, 0, socket.if_nametoindex('s0'))); s.listen(8); "
    "print('ready', flush=True); import time; time.sleep(120)"
)


def test_a_link_local_target_connects_through_its_zone(tmp_path: Path) -> None:
    assert netns_available() is None, netns_available()
    tag = run_id()
    client, server = Netns(f"{tag}-zc"), Netns(f"{tag}-zs")
    try:
        veth(client, "c0", server, "s0")
        client.ip("link set lo up", "link set c0 up", "addr add fe80::1/64 dev c0 nodad")
        server.ip("link set lo up", "link set s0 up", "addr add fe80::2/64 dev s0 nodad")
        server.spawn([sys.executable, "-c", _SERVER], ready_line="ready")
        inventory = f"{tmp_path}/inv.yaml"
        with open(inventory, "w", encoding="utf-8") as out:
            out.write(
                "version: 1\ndefaults: {timeout: 2, retries: 0}\ntargets:\n"
                '  - "[fe80::2%c0]:8080"\n  - "[fe80::2%c0]:8081"\n'
            )
        proc = client.run(
            [sys.executable, "-m", "scanner", "check", inventory, "--format", "json"],
            cwd=ROOT,
            check=False,
        )
        results = {
            e["target"]: e["category"]
            for e in map(json.loads, proc.stdout.splitlines())
            if e["event"] == "target.result"
        }
        assert results == {"[fe80::2%c0]:8080": "open", "[fe80::2%c0]:8081": "refused"}
    finally:
        client.delete()
        server.delete()
