"""action.yml: the composite action's shell steps run as GitHub's runner runs them.

Each ``run:`` step is a bash script (``bash --noprofile --norc -eo pipefail FILE``) in the
workspace, with the runner's files: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_PATH
(whose lines go on PATH for the later steps), GITHUB_ACTION_PATH (the action's checkout,
here a copy of this one) and RUNNER_TEMP. Inputs reach the scripts only through ``env:``
(``${{ inputs.x }}`` there, never inside a script), so they are substituted only there. The
install step runs once, as written: pip builds scanner from the copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import scanner

from .conftest import ROOT, Listener, free_port
from .test_packaging import copy_checkout, inventory, user_env

ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Runner:
    """One job on a GitHub runner, as the action's steps see it."""

    root: Path
    path: list[str] = field(default_factory=list)  # added through GITHUB_PATH
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summaries: list[str] = field(default_factory=list)
    steps_run: int = 0
    last: subprocess.CompletedProcess[str] | None = None

    @property
    def stderr(self) -> str:
        return self.last.stderr if self.last is not None else ""

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def run_action(self, inputs: dict[str, str], first: int = 0) -> tuple[int, dict[str, str], str]:
        """The action's steps in order from ``first``, until one fails: (exit code, the
        action's outputs, the step summary)."""
        declared = ACTION["inputs"]
        assert set(inputs) <= set(declared), f"unknown inputs {set(inputs) - set(declared)}"
        missing = [k for k, v in declared.items() if v.get("required") and k not in inputs]
        assert not missing, f"required inputs missing: {missing}"
        values = {k: inputs.get(k, str(v.get("default", ""))) for k, v in declared.items()}
        self.summaries.clear()
        code = 0
        for step in ACTION["runs"]["steps"][first:]:
            code = self.run_step(step, values)
            if code != 0:
                break
        outputs = {
            name: self.evaluate(spec["value"], values) for name, spec in ACTION["outputs"].items()
        }
        return code, outputs, "".join(self.summaries)

    def evaluate(self, text: str, inputs: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("inputs."):
                return inputs[expression.removeprefix("inputs.")]
            found = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
            assert found, f"the test does not know the expression {expression!r}"
            return self.step_outputs.get(found.group(1), {}).get(found.group(2), "")

        return EXPRESSION.sub(one, text)

    def run_step(self, step: dict[str, Any], inputs: dict[str, str]) -> int:
        assert step["shell"] == "bash" and "uses" not in step
        script: str = step["run"]
        assert "${{" not in script, "expressions belong in env:, not in the script"
        self.steps_run += 1
        files = self.root / "files" / str(self.steps_run)  # the runner's files of this step
        files.mkdir(parents=True)
        output, summary, path_file = files / "output", files / "summary", files / "path"
        for f in (output, summary, path_file):
            f.touch()
        env = user_env(Path(self.path[0]) if self.path else Path("/usr/local/bin"))
        if len(self.path) > 1:
            env["PATH"] = os.pathsep.join([*self.path, env["PATH"]])
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_ACTION_PATH=str(self.root / "action"),
            RUNNER_TEMP=str(self.root / "runner_temp"),
            GITHUB_OUTPUT=str(output),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_PATH=str(path_file),
        )
        env.update({k: self.evaluate(str(v), inputs) for k, v in step.get("env", {}).items()})
        script_file = files / "script.sh"
        script_file.write_text(script)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.last = proc
        if "id" in step:
            self.step_outputs[step["id"]] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
        self.path[:0] = reversed(path_file.read_text().split())  # later lines come first
        self.summaries.append(summary.read_text())
        return proc.returncode


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """A job whose first step (the install) already ran, as written."""
    root = tmp_path_factory.mktemp("github")
    copy_checkout(root / "action")
    (root / "runner_temp").mkdir()
    (root / "workspace").mkdir()
    job = Runner(root)
    install = ACTION["runs"]["steps"][0]
    defaults = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
    code = job.run_step(install, defaults)
    assert job.last is not None
    assert code == 0, job.last.stdout[-2000:] + job.last.stderr[-3000:]
    yield job


def _readme_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """The README's workflow excerpt: the action's step and the step after it."""
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "uses:" in b)
    steps = yaml.safe_load(block)
    index = next(i for i, s in enumerate(steps) if s.get("id") == "scan")
    return steps[index], steps[index + 1]


def _with_check_step(job: Runner, inputs: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """The action's steps after the install, which the fixture ran once for the job."""
    return job.run_action(inputs, first=1)


def test_action_shape() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"inventory", "args"} <= set(ACTION["inputs"])
    assert ACTION["inputs"]["inventory"]["required"] is True
    assert {"verdict", "report"} <= set(ACTION["outputs"])
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"]


def test_readme_example_passes_and_writes_outputs_and_summary(
    runner: Runner, listener: Listener
) -> None:
    scan, after = _readme_example()
    assert scan["uses"] == f"OWNER/scanner@v{scanner.__version__}"
    inputs = {k: str(v) for k, v in scan["with"].items()}
    inventory(runner.workspace / inputs["inventory"], listener.port)
    code, outputs, summary = _with_check_step(runner, inputs)
    assert code == 0, runner.stderr
    assert outputs["verdict"] == "ok" and outputs["exit-code"] == "0"
    report = json.loads((runner.workspace / outputs["report"]).read_text())
    assert report["summary"]["ok"] is True and len(report["targets"]) == 8
    events = (runner.workspace / outputs["events"]).read_text().splitlines()
    assert json.loads(events[-1])["event"] == "scan.finished"
    assert summary.startswith("## scanner") and "✅" in summary
    # scanner is on PATH for the job's later steps
    later = subprocess.run(
        ["bash", "-c", f"scanner merge {outputs['report']} > /dev/null && command -v scanner"],
        cwd=runner.workspace,
        env={**user_env(Path(runner.path[0]))},
        capture_output=True,
        text=True,
        check=False,
    )
    assert later.returncode == 0, later.stderr
    assert later.stdout.strip().startswith(str(runner.root / "runner_temp"))
    assert after["if"] == "failure()"


def test_a_failing_target_fails_the_step_with_outputs_and_the_readme_jq_step_runs(
    runner: Runner, listener: Listener
) -> None:
    closed = free_port()
    inv = runner.workspace / "inventories" / "mixed.yaml"
    inv.parent.mkdir(parents=True, exist_ok=True)
    inv.write_text(
        "version: 1\ndefaults: {timeout: 2, retries: 0}\ntargets:\n"
        f"  - {{name: web, host: 127.0.0.1, port: {listener.port}, tags: [prod]}}\n"
        f"  - {{name: db, host: 127.0.0.1, port: {closed}, tags: [prod]}}\n"
        f"  - {{name: other, host: 127.0.0.1, port: {closed}, tags: [dev]}}\n"
    )
    code, outputs, summary = _with_check_step(
        runner,
        {
            "inventory": "inventories/mi*.yaml",  # a pattern, expanded
            "args": "--tags prod  --retries 0",
            "report": "out/report.json",
            "events": "out/events.jsonl",
        },
    )
    assert code == 1
    assert outputs["verdict"] == "failed" and outputs["exit-code"] == "1"
    assert outputs["report"] == "out/report.json"
    report = json.loads((runner.workspace / "out/report.json").read_text())
    assert {t["target"] for t in report["targets"]} == {"web", "db"}  # --tags prod applied
    assert "db" in summary and "refused" in summary
    _scan, after = _readme_example()
    if shutil.which("jq") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("jq is needed to run the README's failure step")
        pytest.skip("jq is not installed")
    env = user_env(Path("/usr/local/bin"))
    env.update({k: runner.evaluate(v, {}) for k, v in after["env"].items()})
    env["EVENTS"] = outputs["events"]  # what steps.scan.outputs.events gives
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", after["run"]],
        cwd=runner.workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    failed = json.loads(line)
    assert failed["target"] == "db" and failed["category"] == "refused"


def test_an_inventory_error_is_verdict_error_with_a_summary_line(runner: Runner) -> None:
    bad = runner.workspace / "broken.yaml"
    bad.write_text("version: 1\ntargets:\n  - {host: 127.0.0.1, port: 70000}\n")
    code, outputs, summary = _with_check_step(runner, {"inventory": "broken.yaml"})
    assert code == 2
    assert outputs["verdict"] == "error" and outputs["report"] == ""
    assert "broken.yaml:3" in runner.stderr  # file:line:column in the job's log
    assert summary.startswith("## scanner: error")
