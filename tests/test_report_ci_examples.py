"""docs/ci: every example parses, and the exact scanner command lines it contains run.

Each example's commands are taken from the YAML as CI would, CI variables are set as the CI
system sets them, and ``scanner`` is the code under test (a shim on PATH). The inventory the
example names is written at that path with loopback targets, so the flags and file layout
are proven, not just spelled.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .conftest import ROOT, Listener, scanner_env, scanner_on_path

CI = ROOT / "docs" / "ci"


def _inventory(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = "\n".join(
        f"  - {{name: svc-{i}, host: 127.0.0.1, port: {port}, tags: [prod]}}" for i in range(16)
    )
    path.write_text(f"version: 1\ndefaults: {{timeout: 2, retries: 0}}\ntargets:\n{targets}\n")


def _sh(script: str, cwd: Path, env: dict[str, str], shell: str = "bash") -> None:
    assert "${{" not in script, f"unsubstituted expression in {script!r}"
    proc = subprocess.run(
        [shell, "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{script}\n{proc.stderr}"


def _scanner_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.strip().startswith(("scanner ", "mkdir "))]


def _merged(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_github_actions_workflow(tmp_path: Path, listener: Listener) -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    scan, verdict = workflow["jobs"]["scan"], workflow["jobs"]["verdict"]
    assert verdict["needs"] == "scan" and verdict["if"] == "always()"
    uses = [s.get("uses", "") for s in scan["steps"] + verdict["steps"]]
    assert any(u.startswith("mikepenz/action-junit-report@") for u in uses)
    work = tmp_path / "work"
    _inventory(work / "inventories" / "prod.yaml", listener.port)
    summary = tmp_path / "step_summary.md"
    env = scanner_on_path(tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    scan_script = next(s["run"] for s in scan["steps"] if "scanner check" in s.get("run", ""))
    for shard in scan["strategy"]["matrix"]["shard"]:
        _sh(scan_script.replace("${{ matrix.shard }}", str(shard)), work, env)
    assert summary.read_text().count("## scanner") == 4  # one step summary per shard
    merge_script = next(s["run"] for s in verdict["steps"] if "scanner merge" in s.get("run", ""))
    _sh(merge_script, work, env)
    report = _merged(work / "scanner-report.json")
    assert len(report["targets"]) == 16 and report["summary"]["ok"] is True
    assert (work / "junit.xml").exists()
    junit_step = next(
        s for s in verdict["steps"] if s.get("uses", "").startswith("mikepenz/action-junit-report@")
    )
    assert junit_step["with"]["report_paths"] == "junit.xml"


def test_gitlab_ci_job(tmp_path: Path, listener: Listener) -> None:
    pipeline = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job, verdict = pipeline["scanner"], pipeline["scanner-verdict"]
    assert job["artifacts"]["reports"]["junit"] == "reports/junit-*.xml"
    assert job["artifacts"]["when"] == "always"
    work = tmp_path / "work"
    _inventory(work / "inventories" / "prod.yaml", listener.port)
    total = job["parallel"]
    for index in range(1, total + 1):
        env = scanner_on_path(tmp_path, CI_NODE_INDEX=str(index), CI_NODE_TOTAL=str(total))
        _sh("\n".join(_scanner_lines("\n".join(job["script"]))), work, env, shell="sh")
    junit_files = sorted((work / "reports").glob("junit-*.xml"))
    assert len(junit_files) == total
    script = "\n".join(_scanner_lines("\n".join(verdict["script"])))
    _sh(script, work, scanner_on_path(tmp_path), shell="sh")
    assert (work / "verdict.md").read_text().count("✅") == 1
    assert len(_merged(work / "scanner-report.json")["targets"]) == 16


def test_kubernetes_indexed_job(tmp_path: Path, listener: Listener) -> None:
    documents = list(yaml.safe_load_all((CI / "k8s-indexed-job.yaml").read_text()))
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    job = next(d for d in documents if d["kind"] == "Job")
    assert job["spec"]["completionMode"] == "Indexed"
    # the shipped inventory is valid as written
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(config_map["data"]["prod.yaml"])
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "validate", str(shipped)],
        env=scanner_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["sh", "-c"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    inventory_dir, reports = tmp_path / "inventory", tmp_path / "reports"
    reports.mkdir()
    _inventory(inventory_dir / "prod.yaml", listener.port)
    command = container["command"][2]
    command = re.sub(f"{re.escape(mounts['inventory'])}/", f"{inventory_dir}/", command)
    command = re.sub(f"{re.escape(mounts['reports'])}/", f"{reports}/", command)
    completions = job["spec"]["completions"]
    for index in range(completions):  # what each pod of the Indexed Job runs
        _sh(
            command + " > /dev/null",
            tmp_path,
            scanner_on_path(tmp_path, JOB_COMPLETION_INDEX=str(index)),
            shell="sh",
        )
    shards = sorted(_merged(p)["shard"] for p in reports.glob("report-*.json"))
    assert shards == [f"{i}/{completions}" for i in range(1, completions + 1)]
    merged = tmp_path / "merged.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "merge",
            *map(str, sorted(reports.glob("report-*.json"))),
            "--report",
            str(merged),
        ],
        env=scanner_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(_merged(merged)["targets"]) == 16
