"""Packaging as a user meets it: the distribution's name and files, the install lines of the
README and docs/ci run as written in fresh virtual environments, and the Dockerfile.

No container runtime can build the image here (no daemon, and the registry that serves
``python:3.11-slim`` is out of reach), so the Dockerfile is checked the other way: its
build stage's RUN steps run as written in a temporary root, the final stage is read, and
the result runs as the image's unprivileged user — the Kubernetes example's command
included. The install from the repository's archive is served from loopback: the URL's
host is the only thing the test changes. Dependencies come from the package index pip is
configured with, as for any user.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import scanner

from .conftest import ROOT, Listener

DIST = "inventory-scanner"
#: every docs/ci install line names this archive until a release is on PyPI
ARCHIVE_PREFIX = "https://github.com/OWNER/scanner/archive/refs/tags/"
INSTALL_TIMEOUT = 600


# --- helpers shared with the other packaging tests -------------------------------------


def source_files() -> list[str]:
    """The checkout's files as a repository archive holds them: tracked ones, and new ones
    not ignored (so a test sees uncommitted work too)."""
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        names = [n for n in proc.stdout.split("\0") if n and (ROOT / n).is_file()]
    else:  # not a git checkout: what a build needs
        names = ["pyproject.toml", "README.md", "LICENSE"] + [
            str(p.relative_to(ROOT)) for p in (ROOT / "scanner").rglob("*") if p.is_file()
        ]
    return sorted(n for n in names if "__pycache__" not in n)


def copy_checkout(dest: Path) -> Path:
    for name in source_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def run(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )


def user_env(path_first: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no PYTHONPATH to the checkout, no virtualenv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "NO_COLOR", "CARES_HOSTS")
    }
    env["PATH"] = f"{path_first}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env.update(extra)
    return env


def inventory(path: Path, port: int, count: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = "\n".join(
        f"  - {{name: svc-{i}, host: 127.0.0.1, port: {port}, tags: [prod]}}" for i in range(count)
    )
    path.write_text(f"version: 1\ndefaults: {{timeout: 2, retries: 0}}\ntargets:\n{targets}\n")
    return path


# --- metadata -----------------------------------------------------------------------------


def _pyproject() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_distribution_name_is_not_pypis_scanner_and_keeps_the_command() -> None:
    project = _pyproject()
    assert project["name"] == DIST
    assert set(project["scripts"]) == {"scanner"}  # the command keeps its name
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


def test_license_is_the_mit_text_for_the_authors() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the scanner authors\n")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert versions and versions[0] == "Unreleased"
    sections = re.findall(r"^### (\w+)", text, re.MULTILINE)
    allowed = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert sections and set(sections) <= allowed
    assert f"v{scanner.__version__}" in text  # the tag the docs/ci install lines name


def _console_blocks(markdown: str) -> list[str]:
    return re.findall(r"```console\n(.*?)```", markdown, re.DOTALL)


def _ci_package() -> str:
    """SCANNER_PACKAGE as docs/ci sets it, checked to be the same in every file."""
    github = yaml.safe_load((ROOT / "docs/ci/github-actions.yml").read_text())
    gitlab = yaml.safe_load((ROOT / "docs/ci/gitlab-ci.yml").read_text())
    value: str = github["env"]["SCANNER_PACKAGE"]
    assert gitlab["variables"]["SCANNER_PACKAGE"] == value
    return value


def test_every_install_line_is_one_the_tests_run() -> None:
    """README and docs/ci install scanner only in ways this file runs: from a checkout
    (``pip install .``, as the Dockerfile does) or from the repository's archive."""
    package = _ci_package()
    assert package == f"{DIST} @ {ARCHIVE_PREFIX}v{scanner.__version__}.tar.gz"
    readme = (ROOT / "README.md").read_text()
    lines = [
        line.removeprefix("$ ").split("&&")[0].strip()
        for block in _console_blocks(readme)
        for line in block.splitlines()
        if re.match(r"\$ (python -m )?pip install", line)
    ]
    assert lines, "the README shows no install line"
    for line in lines:
        assert line in (
            "pip install .",
            "pip install '.[fast]'",
            "pip install '.[dev]'",
            f'pip install "{package}"',
        ), line
    assert f'pip install "{package}"' in lines
    assert "pip install scanner" not in readme
    for name in ("github-actions.yml", "gitlab-ci.yml", "k8s-indexed-job.yaml"):
        text = (ROOT / "docs/ci" / name).read_text()
        installs = re.findall(r"pip install .*", text)
        assert all(i == 'pip install "$SCANNER_PACKAGE"' for i in installs), installs
    assert "pip install" not in (ROOT / "docs/ci/k8s-indexed-job.yaml").read_text()


# --- the install from the repository's archive ------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """An HTTP server for ``directory`` on loopback; yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def github_archive(dest: Path, tag: str) -> Path:
    """The checkout as GitHub serves a tag's archive: one top folder named REPO-VERSION."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"scanner-{tag.removeprefix('v')}"
    with tarfile.open(dest, "w:gz") as archive:
        for name in source_files():
            archive.add(ROOT / name, arcname=f"{prefix}/{name}")
    return dest


def test_gitlab_job_installs_from_the_archive_and_runs(tmp_path: Path, listener: Listener) -> None:
    """The GitLab job for shard 1 of 4 as a runner executes it: before_script, then script,
    in one shell with the job's variables; only the archive's host is loopback."""
    package = _ci_package()
    url = package.split(" @ ", 1)[1]
    tag = url.rsplit("/", 1)[1].removesuffix(".tar.gz")
    github_archive(tmp_path / "www" / url.removeprefix("https://github.com/"), tag)
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    pipeline = yaml.safe_load((ROOT / "docs/ci/gitlab-ci.yml").read_text())
    job = pipeline["scanner"]
    work = tmp_path / "work"
    inventory(work / "inventories" / "prod.yaml", listener.port)
    with serve(tmp_path / "www") as base:
        served = package.replace("https://github.com/", base)
        env = user_env(
            venv / "bin",
            SCANNER_PACKAGE=served,
            CI_NODE_INDEX="1",
            CI_NODE_TOTAL=str(job["parallel"]),
        )
        script = "\n".join(job["before_script"] + job["script"])
        proc = run(["sh", "-e", "-c", script], env=env, cwd=work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    shown = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({DIST!r}))",
        ]
    )
    assert shown.stdout.strip() == scanner.__version__
    report = json.loads((work / "reports" / "report-1.json").read_text())
    assert report["shard"] == "1/4" and report["summary"]["ok"] is True
    assert (work / "reports" / "junit-1.xml").exists()
    events = (work / "reports" / "events-1.jsonl").read_text().splitlines()
    assert json.loads(events[-1])["event"] == "scan.finished"


# --- the Dockerfile ---------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for op, args in self.steps if op == instruction]


def dockerfile(text: str) -> list[Stage]:
    """Stages and their instructions: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.strip().startswith("#") or (not raw.strip() and not pending):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        logical.append(pending + raw.strip())
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        op, _, args = line.partition(" ")
        op, args = op.upper(), args.strip()
        if op == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{op} before FROM"
            stages[-1].steps.append((op, args))
    return stages


def env_pairs(args: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        assert sep, f"ENV {args}: write KEY=VALUE"
        pairs[key] = value
    return pairs


def test_dockerfile_final_stage_is_small_non_root_with_scanner_as_entrypoint() -> None:
    build, final = dockerfile((ROOT / "Dockerfile").read_text())
    assert build.base == final.base == "python:3.11-slim"
    assert build.name is not None
    venv = env_pairs(build.all("ENV")[0])["VENV"]
    (copy,) = final.all("COPY")
    assert copy == f"--from={build.name} {venv} {venv}"  # a venv only works where it was made
    assert not final.all("RUN"), "the final stage only copies the built venv"
    path = next(v for e in final.all("ENV") for k, v in env_pairs(e).items() if k == "PATH")
    assert path.startswith(f"{venv}/bin:")
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["scanner"]
    # what the build stage copies from the context is in the context
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for args in build.all("COPY"):
        *sources, _dest = args.split()
        assert set(sources) <= kept, f"COPY {args}: .dockerignore leaves out {sources}"
        for source in sources:
            assert (ROOT / source).exists()


def _public_python() -> str | None:
    """A Python 3.11 that any user may run, as the image's is; None if there is none."""
    candidates = [os.path.realpath(getattr(sys, "_base_executable", sys.executable))]
    candidates += [p for p in ("/usr/bin/python3.11", "/usr/local/bin/python3.11")]
    for candidate in candidates:
        path = Path(candidate)
        if not path.is_file():
            continue
        reachable = all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])
        if reachable and run([candidate, "-c", "import venv, ensurepip"]).returncode == 0:
            version = run([candidate, "-c", "import sys; print(sys.version_info[:2])"]).stdout
            if version.strip() == "(3, 11)":
                return candidate
    return None


@dataclass
class Image:
    """The Dockerfile built without a container: its root folder and environment."""

    root: Path
    env: dict[str, str]
    user: tuple[int, int]
    workdir: Path


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """Run the build stage's RUN steps as written, with / at a temporary folder.

    Every absolute path a step uses comes from an ENV value or WORKDIR, and each of those
    is moved under that folder; a RUN step that names an absolute path itself fails here.
    """
    build, final = dockerfile((ROOT / "Dockerfile").read_text())
    python = _public_python() or sys.executable
    root = Path(tempfile.mkdtemp(prefix="scanner-image-"))
    root.chmod(0o755)  # the image's user must reach the venv, as in the image
    try:
        shim = root / "usr" / "local" / "bin"
        shim.mkdir(parents=True)
        (shim / "python").symlink_to(python)
        env = user_env(shim)
        workdir = root
        for op, args in build.steps:
            if op == "ENV":
                for key, value in env_pairs(args).items():
                    env[key] = str(root / value.lstrip("/")) if value.startswith("/") else value
            elif op == "WORKDIR":
                workdir = root / args.lstrip("/")
                workdir.mkdir(parents=True, exist_ok=True)
            elif op == "COPY":
                *sources, dest = args.split()
                target = root / dest.lstrip("/") if dest.startswith("/") else workdir / dest
                for source in sources:
                    if (ROOT / source).is_dir():
                        shutil.copytree(
                            ROOT / source,
                            target / Path(source).name if dest.endswith("/") else target,
                            ignore=shutil.ignore_patterns("__pycache__"),
                        )
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(ROOT / source, target)
            elif op == "RUN":
                words = shlex.split(args)
                assert not any(w.startswith("/") for w in words), f"RUN {args}: absolute path"
                proc = run(["/bin/sh", "-c", args], env=env, cwd=workdir)
                assert proc.returncode == 0, f"RUN {args}\n{proc.stdout[-3000:]}{proc.stderr}"
            else:
                raise AssertionError(f"the test does not know {op} in the build stage")
        venv = final.all("COPY")[0].split()[-1]  # where the image has the venv
        final_env = user_env(root / "usr" / "local" / "bin", HOME="/", LANG="C.UTF-8")
        for args in final.all("ENV"):
            for key, value in env_pairs(args).items():
                parts = [
                    str(root / part.lstrip("/")) if part.startswith(venv) else part
                    for part in value.split(":")
                ]
                final_env[key] = ":".join(parts).replace("$PATH", final_env["PATH"])
        uid, _, gid = final.all("USER")[0].partition(":")
        final_workdir = root / final.all("WORKDIR")[0].lstrip("/")
        final_workdir.mkdir(parents=True, exist_ok=True)
        yield Image(root, final_env, (int(uid), int(gid)), final_workdir)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def require_image_user() -> None:
    """Commands as the image's user need root (to switch), setpriv, and a Python that user
    may run; without them a laptop skips, CI fails."""
    message = None
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        message = "running as the image's user needs root and setpriv (util-linux)"
    elif _public_python() is None:
        message = "no Python 3.11 that an unprivileged user may run (e.g. /usr/bin/python3.11)"
    if message is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def as_image_user(image: Image, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``sh -c command`` as the image's user, without privileges, as the container runs it."""
    require_image_user()
    uid, gid = image.user
    return run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--",
            "/bin/sh",
            "-c",
            command,
        ],
        env=image.env,
        cwd=cwd,
    )


def test_dockerfile_build_stage_installs_scanner_with_uvloop_and_without_pip(image: Image) -> None:
    venv = Path(image.env["PATH"].split(":")[0]).parent
    python = venv / "bin" / "python"
    proc = run([str(python), "-c", "import scanner, uvloop; print(scanner.__version__)"])
    assert proc.stdout.strip() == scanner.__version__, proc.stderr
    assert not (venv / "bin" / "pip").exists()
    assert run([str(python), "-c", "import pip"]).returncode != 0
    data = run([str(python), "-c", "import scanner, os; print(os.path.dirname(scanner.__file__))"])
    shipped = Path(data.stdout.strip()) / "data"
    names = {p.name for p in shipped.iterdir()}
    assert {"events.schema.json", "report.schema.json", "inventory.schema.json"} <= names


def test_image_user_runs_the_entrypoint_and_a_check(image: Image, listener: Listener) -> None:
    require_image_user()
    inv = inventory(image.workdir / "prod.yaml", listener.port)
    inv.chmod(0o644)
    version = as_image_user(image, "scanner --version", image.workdir)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"scanner {scanner.__version__}"
    check = as_image_user(image, "scanner check prod.yaml --format json", image.workdir)
    assert check.returncode == 0, check.stderr
    last = json.loads(check.stdout.splitlines()[-1])
    assert last["event"] == "scan.finished" and last["ok"] is True
    assert last["counts"]["open"] == 8


def test_kubernetes_pod_command_runs_in_the_image(image: Image, listener: Listener) -> None:
    """What each pod of the Indexed Job runs: its command, in the image, as the image's
    user, with the inventory mounted read-only and a reports volume its group may write
    (fsGroup)."""
    require_image_user()
    documents = list(yaml.safe_load_all((ROOT / "docs/ci/k8s-indexed-job.yaml").read_text()))
    job = next(d for d in documents if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    text = (ROOT / "docs/ci/k8s-indexed-job.yaml").read_text()
    tag = container["image"].rsplit(":", 1)[1]
    assert tag == scanner.__version__
    assert f"docker build -t {container['image']} ." in text  # how the image is made
    uid, gid = image.user
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == gid
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    inventory_dir = image.root / mounts["inventory"].lstrip("/")
    reports = image.root / mounts["reports"].lstrip("/")
    inventory(inventory_dir / "prod.yaml", listener.port)
    for path in (inventory_dir, inventory_dir / "prod.yaml"):
        path.chmod(0o755 if path.is_dir() else 0o444)
    reports.mkdir(parents=True)
    os.chown(reports, 0, gid)
    reports.chmod(0o2775)  # as fsGroup leaves a volume
    command = container["command"][2]
    command = command.replace(f"{mounts['inventory']}/", f"{inventory_dir}/")
    command = command.replace(f"{mounts['reports']}/", f"{reports}/")
    assert container["command"][:2] == ["sh", "-c"]
    image.env["JOB_COMPLETION_INDEX"] = "2"
    try:
        proc = as_image_user(image, command + " > /dev/null", image.workdir)
    finally:
        del image.env["JOB_COMPLETION_INDEX"]
    assert proc.returncode == 0, proc.stderr
    written = reports / "report-2.json"
    assert written.stat().st_uid == uid
    assert json.loads(written.read_text())["shard"] == "3/4"
