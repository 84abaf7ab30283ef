"""The baseline: the smallest asyncio TCP-connect scanner, to compare ``scanner`` against.

One handshake per (host, port) with ``asyncio.open_connection`` under ``asyncio.wait_for``,
``--concurrency`` workers pulling from one lazy iterator (so a million targets cost no more
memory than a thousand); no retries, no classification beyond what the exception says.
A line of the targets file is an IP address, a CIDR block (every address in it, as nmap
expands one) or a host name (resolved by ``open_connection``: glibc, in asyncio's thread
pool). Prints the outcome counts as one JSON object. Usage::

    python benchmarks/plain_asyncio.py TARGETS_FILE 8080 --concurrency 1000 --timeout 1
    python benchmarks/plain_asyncio.py TARGETS_FILE 47000-47015
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
from collections import Counter
from collections.abc import Iterator


async def probe(host: str, port: int, timeout: float) -> str:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error:{exc.errno}"
    writer.close()
    return "open"


def endpoints(lines: list[str], ports: list[int]) -> Iterator[tuple[str, int]]:
    for line in lines:
        if "/" in line:
            hosts: Iterator[str] = map(str, ipaddress.ip_network(line, strict=False))
        else:
            hosts = iter((line,))
        for host in hosts:
            for port in ports:
                yield host, port


async def scan(todo: Iterator[tuple[str, int]], concurrency: int, timeout: float) -> Counter[str]:
    counts: Counter[str] = Counter()

    async def worker() -> None:
        for host, port in todo:  # one shared iterator: each endpoint goes to one worker
            counts[await probe(host, port, timeout)] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def port_list(text: str) -> list[int]:
    ports: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        ports.extend(range(int(low), int(high or low) + 1))
    return ports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", help="file with one address, CIDR block or name per line")
    parser.add_argument("ports", type=port_list, help="e.g. 8080, 80,443 or 47000-47015")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    with open(args.targets, encoding="ascii") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    todo = endpoints(lines, args.ports)
    print(json.dumps(asyncio.run(scan(todo, args.concurrency, args.timeout))))


if __name__ == "__main__":
    main()
