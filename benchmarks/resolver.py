"""The DNS phase alone: 10,000 names against a real Unbound in a network namespace.

Unbound (tests/lab/real_dns.py) serves n00000.bench.test ... as an auth-zone (A and AAAA)
at 198.18.53.1 inside a namespace this script creates; the namespace's own
/etc/netns/<ns>/resolv.conf names it, so glibc and every resolver measured here read the
same configuration. Measured, each in its own process inside the namespace:

* ``glibc``: getaddrinfo(AF_UNSPEC) one name after the other, as nmap resolves its targets;
* ``scanner``: scanner.resolve.Resolver, RESOLVER_CONCURRENCY names at once (the engine's way);
* ``aiodns``: c-ares through aiodns (what scanner used before), A and AAAA per name, as many
  at once (only if aiodns is installed);
* ``dnspython``: dns.asyncresolver, A and AAAA per name, as many at once (if installed);
* ``check``: ``python -m scanner check`` of the 10,000 names end to end (probes refused at
  once), names/s from scan.started to the last dns.result, as benchmarks/dns.py counts.

Each run checks its answers (every name resolved to the zone's two addresses; a run with a
wrong or missing answer counts as WRONG and gets no rate). ``--parse`` measures the cost of
reading one reply with each parser instead. ``--delay-ms`` puts netem delay on the
namespace's loopback (the DNS round trip; needs the kernel's sch_netem). Needs root
(namespaces); traffic stays inside the namespace. Usage::

    python benchmarks/resolver.py                    # 10,000 names, 3 repeats
    python benchmarks/resolver.py --names 2000 --repeat 1 --only scanner,glibc
    python benchmarks/resolver.py --parse
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# not this directory: its dns.py would shadow dnspython's ``dns`` package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

DOMAIN = "bench.test"
SERVER, SERVER6 = "198.18.53.1", "2001:db8:53::1"
TARGET4, TARGET6 = "198.18.53.9", "2001:db8:53::9"  # on the namespace's link, port 9 closed

_COMMON = r"""
import json, sys, time
names = json.load(open(sys.argv[1]))
want = {"198.18.53.9", "2001:db8:53::9"}
"""
GLIBC = (
    _COMMON
    + r"""
import socket
bad = 0
start, cpu = time.perf_counter(), time.process_time()
for name in names:
    try:
        got = {i[4][0] for i in socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)}
    except socket.gaierror:
        got = set()
    bad += got != want
print(json.dumps({"seconds": time.perf_counter() - start, "wrong": bad,
                  "cpu": time.process_time() - cpu}))
"""
)
SCANNER = (
    _COMMON
    + r"""
import asyncio
from scanner.models import ResolverConfig
from scanner.resolve import RESOLVER_CONCURRENCY, Resolver

async def main():
    resolver = Resolver(ResolverConfig())
    todo, ok = iter(names), []
    async def worker():  # as many lookups at once as the engine allows (2 x the concurrency)
        for name in todo:
            result = await resolver.resolve(name, "any")
            ok.append(set(result.addresses) == want)
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(2 * RESOLVER_CONCURRENCY)))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    await resolver.aclose()
    print(json.dumps({"seconds": seconds, "wrong": ok.count(False), "cpu": cpu}))

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""
)
AIODNS = (
    _COMMON
    + r"""
import asyncio, socket
import aiodns

async def main():
    resolver = aiodns.DNSResolver(loop=asyncio.get_running_loop(), timeout=2.0, tries=1)
    sem = asyncio.Semaphore(256)
    async def one(name):
        async with sem:
            got = set()
            for fam in (socket.AF_INET6, socket.AF_INET):
                try:
                    answer = await resolver.getaddrinfo(name, family=fam)
                except aiodns.error.DNSError:
                    continue
                got |= {n.addr[0].decode() if isinstance(n.addr[0], bytes) else n.addr[0]
                        for n in answer.nodes}
        return got == want
    start, cpu = time.perf_counter(), time.process_time()
    ok = await asyncio.gather(*(one(n) for n in names))
    print(json.dumps({"seconds": time.perf_counter() - start, "wrong": ok.count(False),
                      "cpu": time.process_time() - cpu}))

asyncio.run(main())
"""
)
DNSPYTHON = (
    _COMMON
    + r"""
import asyncio
import dns.asyncresolver, dns.exception

async def main():
    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = 4.0
    sem = asyncio.Semaphore(256)
    async def one(name):
        async with sem:
            got = set()
            for rr in ("AAAA", "A"):
                try:
                    answer = await resolver.resolve(name + ".", rr)
                except dns.exception.DNSException:
                    continue
                got |= {r.to_text() for r in answer}
        return got == want
    start, cpu = time.perf_counter(), time.process_time()
    ok = await asyncio.gather(*(one(n) for n in names))
    print(json.dumps({"seconds": time.perf_counter() - start, "wrong": ok.count(False),
                      "cpu": time.process_time() - cpu}))

asyncio.run(main())
"""
)
CPU_US: dict[str, float] = {}  # the last run's CPU per name of each tool (its own process)
SCRIPTS = {"glibc": GLIBC, "scanner": SCANNER, "aiodns": AIODNS, "dnspython": DNSPYTHON}


def parse_costs() -> None:
    """µs to read one reply (one A record, CNAME-free) with each parser."""
    from dnslib import QTYPE, RR, A, DNSRecord

    from scanner.resolve._wire import QTYPE_A, encode_name, parse_reply

    query = DNSRecord.question("n00042.bench.test", "A")
    reply = query.reply()
    reply.add_answer(RR("n00042.bench.test.", QTYPE.A, rdata=A(TARGET4), ttl=300))
    data = bytes(reply.pack())
    question = encode_name("n00042.bench.test").lower() + b"\x00\x01\x00\x01"
    runs = {
        "scanner._wire.parse_reply": lambda: parse_reply(data, question, QTYPE_A),
        "dnslib DNSRecord.parse": lambda: DNSRecord.parse(data),
    }
    try:
        import dns.message

        runs["dnspython from_wire"] = lambda: dns.message.from_wire(data)
    except ImportError:
        pass
    for label, run in runs.items():
        number = 20_000
        best = min(timeit.repeat(run, number=number, repeat=5)) / number
        print(f"{label:28} {best * 1e6:6.1f} µs per reply")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="glibc,scanner,aiodns,dnspython,check")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="netem delay on lo")
    parser.add_argument("--parse", action="store_true", help="only the parse cost per reply")
    args = parser.parse_args()
    if args.parse:
        parse_costs()
        return 0
    if not 1 <= args.names <= 100_000 or not 1 <= args.repeat <= 20:
        parser.error("--names must be 1..100000, --repeat 1..20")
    from tests.lab import netns
    from tests.lab.netns import Netns
    from tests.lab.real_dns import Zone, start_unbound

    reason = netns.netns_available()
    if reason:
        raise SystemExit(f"needs network namespaces: {reason}")
    names = [f"n{i:05d}.{DOMAIN}" for i in range(args.names)]
    records = [
        r for i in range(args.names) for r in (f"n{i:05d} A {TARGET4}", f"n{i:05d} AAAA {TARGET6}")
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="scanner-resolver-bench-") as tmp:
        work = Path(tmp)
        ns = Netns(f"{netns.run_id()}-bench")
        try:
            ns.ip(
                "link add dummy0 type veth peer name dummy1",
                "link set dummy0 up",
                "link set dummy1 up",
            )
            ns.add_addresses(
                "dummy0", f"{SERVER}/24", f"{TARGET4}/24", f"{SERVER6}/64", f"{TARGET6}/64"
            )
            if args.delay_ms:
                ns.run(
                    [
                        "tc",
                        "qdisc",
                        "add",
                        "dev",
                        "lo",
                        "root",
                        "netem",
                        "delay",
                        f"{args.delay_ms}ms",
                    ]
                )
            start_unbound(ns, work, [SERVER], zones=[Zone(DOMAIN, records)], threads=1)
            ns.write_etc("resolv.conf", f"nameserver {SERVER}\noptions timeout:2 attempts:2\n")
            ns.write_etc("hosts", "127.0.0.1 localhost\n")
            ns.write_etc("nsswitch.conf", "hosts: files dns\n")
            (work / "names.json").write_text(json.dumps(names))
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("CARES_HOSTS", "RES_OPTIONS", "LOCALDOMAIN")
            }
            env["PYTHONPATH"] = str(ROOT)
            print(
                f"{args.names:,} names, Unbound 1.x (1 thread) at {SERVER} in {ns.name}, "
                f"loopback delay {args.delay_ms:g} ms; load average {os.getloadavg()[0]:.2f}"
            )
            rates: dict[str, list[float]] = {}
            for _ in range(args.repeat):
                # warm Unbound's caches are not involved: it answers an auth-zone from memory
                for tool in args.only.split(","):
                    if tool == "check":
                        rate, wrong = run_check(ns, work, names, env)
                    else:
                        rate, wrong = run_script(ns, work, tool, env, args.names)
                    if rate is None:
                        continue
                    failures += bool(wrong)
                    mark = "correct" if not wrong else f"WRONG ({wrong} names)"
                    cpu = f"  {CPU_US[tool]:5.1f} µs CPU/name" if tool in CPU_US else ""
                    print(f"  {tool:10} {rate:9,.0f} names/s{cpu}  {mark}", flush=True)
                    if not wrong:
                        rates.setdefault(tool, []).append(rate)
            print(
                "\nmedian names/s:",
                ", ".join(f"{t} {statistics.median(r):,.0f}" for t, r in rates.items()),
            )
        finally:
            ns.delete()
    return 1 if failures else 0


def run_script(
    ns, work: Path, tool: str, env: dict[str, str], count: int
) -> tuple[float | None, int]:  # type: ignore[no-untyped-def]
    script = work / f"bench_{tool}.py"  # not {tool}.py: it would shadow the module
    script.write_text(SCRIPTS[tool])
    proc = subprocess.run(
        ns.exec_argv([sys.executable, str(script), str(work / "names.json")]),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            print(f"  {tool:10} skipped: {proc.stderr.strip().splitlines()[-1]}")
            return None, 0
        print(f"  {tool:10} failed: {proc.stderr.strip()[-500:]}")
        return None, count
    out = json.loads(proc.stdout)
    CPU_US[tool] = out.get("cpu", 0.0) / count * 1e6
    return count / out["seconds"], int(out["wrong"])


def run_check(ns, work: Path, names: list[str], env: dict[str, str]) -> tuple[float | None, int]:  # type: ignore[no-untyped-def]
    from datetime import datetime

    inventory = work / "names.yaml"
    inventory.write_text(
        "version: 1\ndefaults: {timeout: 1, retries: 0, expect: closed}\ntargets:\n"
        + "".join(f"  - {n}:9\n" for n in names)
    )
    started = time.perf_counter()
    proc = subprocess.run(
        ns.exec_argv(
            [sys.executable, "-m", "scanner", "check", str(inventory), "--format", "json"]
        ),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
        check=False,
    )
    wall = time.perf_counter() - started
    first = last = None
    wrong = 0
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "scan.started":
            first = datetime.fromisoformat(event["timestamp"])
        elif event["event"] == "dns.result":
            last = datetime.fromisoformat(event["timestamp"])
            wrong += set(event["addresses"]) != {TARGET4, TARGET6}
        elif event["event"] == "target.result":
            wrong += event["category"] != "refused"
    if first is None or last is None:
        print(f"  check      failed: {proc.stderr.strip()[-500:]}")
        return None, len(names)
    span = (last - first).total_seconds()
    print(f"  check      wall {wall:.2f} s (exit {proc.returncode})")
    return len(names) / span, wrong


if __name__ == "__main__":
    sys.exit(main())
