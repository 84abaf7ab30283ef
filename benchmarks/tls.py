"""TLS checks per second and client CPU per handshake: scanner's TLS prober against its peers.

2,000 TLS endpoints on loopback (one nginx with a config written here: 10 addresses
127.0.3.1-10 x 200 ports, each with an ECDSA P-256 certificate of its own, sent with the
intermediate CA that issued them all; the CAs made here), checked in the same run, round after
round, by:

* ``scanner check``: the real command line on an inventory of the 2,000 endpoints with
  ``tls: {ca_file, server_name}``, ``--concurrency`` as below, its other defaults (workers
  included), JSON events to a file: what a user runs;
* ``scanner``: :func:`scanner.probers.tls.handshake` on a socket connected as the Dialer
  connects (connect_ex, one writable wait, SO_ERROR), driven by a plain loop under a
  semaphore (the engine wiring comes later), on asyncio and on uvloop, with ``classify_tls``
  and ``tls_info`` (the certificate parsed) for every check;
* ``asyncio``: ``asyncio.open_connection(ssl=context)``, the smallest asyncio TLS checker, with
  the same shared verifying context;
* ``nmap``: its ``ssl-cert`` script, forced onto every port (``+ssl-cert``), no DNS, no host
  discovery, aggressive timing, one host group, parallelism pinned to the same concurrency.

Each client runs as its own process; wall time and CPU (user + system) come from
``os.wait4``, so start-up is included; the Python clients also report the CPU of their check
loop alone (``time.process_time``). The server's CPU is not counted. Usage::

    python benchmarks/tls.py [--rounds 3] [--concurrency 100] [--endpoints 2000]

Every loop is bounded: a fixed endpoint list, a fixed number of rounds, a deadline per run.
Traffic goes to 127.0.3.0/24 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDRESSES = [f"127.0.3.{i}" for i in range(1, 11)]
SERVER_NAME = "bench.test"
RUN_DEADLINE_S = 300.0


# --- the server side --------------------------------------------------------------------


def make_certificates(directory: Path, count: int) -> tuple[Path, list[tuple[Path, Path]]]:
    """(CA file, [(chain, key)] * count): a root, an intermediate, one ECDSA leaf per endpoint.

    Every endpoint has a certificate of its own, sent with the shared intermediate, as a
    fleet of real services would: no client can get away with parsing one leaf once.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    pem = serialization.Encoding.PEM

    def issue(
        name: str, signer: ec.EllipticCurvePrivateKey | None, issuer: x509.Name | None, ca: bool
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False
            )
        return builder.sign(signer or key, hashes.SHA256()), key

    root, root_key = issue("scanner bench root", None, None, ca=True)
    inter, inter_key = issue("scanner bench intermediate", root_key, root.subject, ca=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(root.public_bytes(pem))
    files = []
    for number in range(count):
        leaf, key = issue(f"{SERVER_NAME} {number}", inter_key, inter.subject, ca=False)
        chain, key_file = directory / f"chain-{number}.pem", directory / f"key-{number}.pem"
        chain.write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
        key_file.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        files.append((chain, key_file))
    return ca_file, files


def free_ports(count: int) -> list[int]:
    """``count`` consecutive ports free on every benchmark address."""
    for base in range(21000, 60000, 500):
        ports = list(range(base, base + count))
        try:
            for address in ADDRESSES:
                for port in ports:
                    with socket.socket() as probe:
                        probe.bind((address, port))
        except OSError:
            continue
        return ports
    raise RuntimeError("no free port range")


def start_nginx(
    workdir: Path, endpoints: list[tuple[str, int]], files: list[tuple[Path, Path]]
) -> subprocess.Popen[bytes]:
    servers = "\n".join(
        f"""    server {{
        listen {address}:{port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        return 200 "ok\\n";
    }}"""
        for (address, port), (chain, key) in zip(endpoints, files, strict=True)
    )
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{user}
worker_processes 1;
worker_rlimit_nofile 16384;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{servers}
}}
"""
    )
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(endpoints[-1]) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nginx did not start: {proc.communicate(timeout=5)[1].decode()}")


# --- the clients (run as child processes of this script) -----------------------------------


async def _ours(endpoints: list[tuple[str, int]], ca_file: str, concurrency: int) -> Counter[str]:
    from scanner.classify import Category
    from scanner.probers.tls import TlsSettings, classify_tls, context_for, handshake, tls_info

    settings = TlsSettings(ca_file=ca_file, server_name=SERVER_NAME)
    context_for(settings)  # made once, before the clock, as the scanner would at load time
    # imported by the first parse anyway: counted in the process's CPU, kept out of the loop's
    import cryptography.x509  # noqa: F401

    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def connect(sock: socket.socket, address: str, port: int) -> int:
        """The TCP phase as the Dialer runs it: connect_ex, one writable wait, SO_ERROR."""
        err = sock.connect_ex((address, port))
        if err == errno.EINPROGRESS:
            writable = loop.create_future()
            loop.add_writer(sock.fileno(), writable.set_result, None)
            timer = loop.call_later(5.0, writable.cancel)
            try:
                await writable
            except asyncio.CancelledError:
                return errno.ETIMEDOUT
            finally:
                loop.remove_writer(sock.fileno())
                timer.cancel()
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return err

    async def one(address: str, port: int) -> str:
        async with gate:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            try:
                err = await connect(sock, address, port)
                if err:
                    return f"connect:{errno.errorcode.get(err, err)}"
                outcome = await handshake(sock, settings, address, 5.0)
            finally:
                sock.close()
            category, _ = classify_tls(outcome, settings, now)
            info = tls_info(outcome, now)  # the event's tls fields: parsed for every check
            if info is None or info.subject is None:
                return "no-certificate"
            return "ok" if category is Category.OPEN else str(category)

    now = dt.datetime.now(dt.UTC)
    return Counter(await asyncio.gather(*(one(a, p) for a, p in endpoints)))


async def _plain(endpoints: list[tuple[str, int]], ca_file: str, concurrency: int) -> Counter[str]:
    context = ssl.create_default_context(cafile=ca_file)
    gate = asyncio.Semaphore(concurrency)

    async def one(address: str, port: int) -> str:
        async with gate:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        address, port, ssl=context, server_hostname=SERVER_NAME
                    ),
                    5.0,
                )
            except ssl.SSLError as exc:
                return f"ssl:{exc.reason}"
            except (OSError, TimeoutError) as exc:
                return f"error:{type(exc).__name__}"
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return "ok"

    return Counter(await asyncio.gather(*(one(a, p) for a, p in endpoints)))


def client_main(args: argparse.Namespace) -> None:
    endpoints = [
        (line.split()[0], int(line.split()[1]))
        for line in Path(args.endpoints_file).read_text().splitlines()
    ]
    if args.client == "scanner-uvloop":
        import uvloop

        uvloop.install()
    runner = _plain if args.client == "asyncio" else _ours
    cpu0, wall0 = time.process_time(), time.perf_counter()
    counts = asyncio.run(runner(endpoints, args.ca_file, args.concurrency))
    loop_cpu, loop_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({"counts": counts, "loop_cpu_s": loop_cpu, "loop_wall_s": loop_wall}))


# --- the driver -------------------------------------------------------------------------


def timed(argv: list[str], out: Path) -> tuple[float, float, int, str]:
    """(wall s, CPU s, exit code, stderr tail) of one child, killed at the deadline."""
    with open(out, "wb") as stdout, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
        watchdog = threading.Timer(RUN_DEADLINE_S, os.killpg, (proc.pid, signal.SIGKILL))
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-800:]
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, tail


def nmap_argv(ports: list[int], concurrency: int, out: Path) -> list[str]:
    return [
        "nmap",
        "-n",  # no DNS
        "-Pn",  # no host discovery: every address is up
        "-T5",
        "--max-retries", "0",
        "--min-hostgroup", str(len(ADDRESSES)),  # one host group: all ports at once
        "--min-parallelism", str(concurrency),
        "--max-parallelism", str(concurrency),
        "--script", "+ssl-cert",  # '+': run on every open port, not only the usual TLS ones
        "--script-args", f"tls.servername={SERVER_NAME}",
        "-p", f"{ports[0]}-{ports[-1]}",
        "-oX", str(out),
        f"127.0.3.1-{len(ADDRESSES)}",
    ]  # fmt: skip


def nmap_certificates(xml: Path) -> int:
    """Endpoints where ssl-cert printed a certificate."""
    text = xml.read_text(errors="replace")
    return len(re.findall(r'<script id="ssl-cert" output="Subject: ', text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--client", choices=["scanner", "scanner-uvloop", "asyncio"])
    parser.add_argument("--endpoints-file")
    parser.add_argument("--ca-file")
    parser.add_argument("--skip-nmap", action="store_true")
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return 0

    per_address = -(-args.endpoints // len(ADDRESSES))
    workdir = Path(tempfile.mkdtemp(prefix="scanner-tls-bench-"))
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir()
    ports = free_ports(per_address)
    endpoints = [(a, p) for a in ADDRESSES for p in ports][: args.endpoints]
    ca_file, files = make_certificates(workdir, len(endpoints))
    endpoints_file = workdir / "endpoints.txt"
    endpoints_file.write_text("".join(f"{a} {p}\n" for a, p in endpoints))
    nginx = start_nginx(workdir, endpoints, files)
    inventory = workdir / "inventory.yaml"
    inventory.write_text(
        "version: 1\n"
        f"defaults: {{timeout: 10, retries: 0, tls: {{ca_file: {ca_file}, "
        f"server_name: {SERVER_NAME}}}}}\ntargets:\n"
        + "".join(f"  - {a}:{p}\n" for a, p in endpoints)
    )
    tools = ["scanner check", "scanner", "scanner-uvloop", "asyncio"]
    if not args.skip_nmap and shutil.which("nmap"):
        tools.append("nmap ssl-cert")
    results: dict[str, list[tuple[float, float, int, float | None]]] = {t: [] for t in tools}
    try:
        for round_number in range(args.rounds):
            for tool in tools:
                out = workdir / f"{tool.replace(' ', '-')}-{round_number}.out"
                if tool.startswith("nmap"):
                    xml = workdir / f"nmap-{round_number}.xml"
                    wall, cpu, code, tail = timed(nmap_argv(ports, args.concurrency, xml), out)
                    ok = nmap_certificates(xml) if xml.exists() else 0
                    loop_cpu = None
                elif tool == "scanner check":
                    argv = [
                        sys.executable,
                        "-m",
                        "scanner",
                        "check",
                        str(inventory),
                        "--format",
                        "json",
                        "--concurrency",
                        str(args.concurrency),
                    ]
                    wall, cpu, code, tail = timed(argv, out)
                    results_seen = [json.loads(line) for line in out.read_text().splitlines()]
                    categories = Counter(
                        e["category"] for e in results_seen if e["event"] == "target.result"
                    )
                    ok = categories.get("open", 0)
                    code = 0 if code == 0 else code
                    loop_cpu = None
                    if categories.keys() - {"open"}:
                        print(f"  {tool}: {dict(categories)}", file=sys.stderr)
                else:
                    argv = [sys.executable, __file__, "--client", tool, "--endpoints-file",
                            str(endpoints_file), "--ca-file", str(ca_file),
                            "--concurrency", str(args.concurrency)]  # fmt: skip
                    wall, cpu, code, tail = timed(argv, out)
                    report = json.loads(out.read_text() or "{}") if code == 0 else {}
                    ok = report.get("counts", {}).get("ok", 0)
                    loop_cpu = report.get("loop_cpu_s")
                    if report.get("counts", {}).keys() - {"ok"}:
                        print(f"  {tool}: {report['counts']}", file=sys.stderr)
                if code != 0 or ok != len(endpoints):
                    print(f"  {tool} round {round_number}: exit {code}, {ok} ok; {tail}",
                          file=sys.stderr)  # fmt: skip
                results[tool].append((wall, cpu, ok, loop_cpu))
                print(f"round {round_number} {tool:15} {wall:6.2f} s wall {cpu:6.2f} s CPU "
                      f"{ok} ok", file=sys.stderr)  # fmt: skip
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    count = len(endpoints)
    print(f"\n{count} TLS endpoints on loopback (nginx, 1 worker, TLS 1.3, one ECDSA P-256 "
          "certificate each + the intermediate), "
          f"concurrency {args.concurrency}, median of {args.rounds} rounds; "
          f"{os.cpu_count()} cores shared with the server\n")  # fmt: skip
    # medians, and the least CPU seen: on a shared machine other work only ever adds to it
    print(
        "| client | checks/s | wall s | CPU ms/check (process) | least | "
        "CPU ms/check (loop) | least | ok |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpus = [1000 * r[1] / count for r in runs]
        ok = min(r[2] for r in runs)
        loops = [1000 * r[3] / count for r in runs if r[3] is not None]
        loop = f"{statistics.median(loops):.3f} | {min(loops):.3f}" if loops else "- | -"
        print(f"| {tool} | {count / wall:,.0f} | {wall:.2f} | {statistics.median(cpus):.3f} | "
              f"{min(cpus):.3f} | {loop} | {ok}/{count} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
