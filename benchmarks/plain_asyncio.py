"""The baseline: the smallest asyncio TCP-connect scanner, to compare ``scanner`` against.

One handshake per target with ``asyncio.open_connection`` under a semaphore and
``asyncio.wait_for``; no retries, no DNS, no classification beyond what the exception says.
Prints the outcome counts as one JSON object. Usage::

    python benchmarks/plain_asyncio.py TARGETS_FILE PORT --concurrency 1000 --timeout 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter


async def probe(host: str, port: int, timeout: float, gate: asyncio.Semaphore) -> str:
    async with gate:
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


async def scan(hosts: list[str], port: int, concurrency: int, timeout: float) -> Counter[str]:
    gate = asyncio.Semaphore(concurrency)
    return Counter(await asyncio.gather(*(probe(h, port, timeout, gate) for h in hosts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", help="file with one IP address per line")
    parser.add_argument("port", type=int)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    with open(args.targets, encoding="ascii") as handle:
        hosts = [line.strip() for line in handle if line.strip()]
    print(json.dumps(asyncio.run(scan(hosts, args.port, args.concurrency, args.timeout))))


if __name__ == "__main__":
    main()
