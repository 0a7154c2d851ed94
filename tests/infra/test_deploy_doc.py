"""docs/deploy-and-operate.md's commands, run as written in a checkout whose cdktf.json names
the doc's project (`my-project`), on a machine without Google credentials: the synth and the
checks run whole; every command that would reach GCP stops at its first line, the missing
credentials, and nothing before it (settings, confirmation, stack names) is wrong."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.common.paths import ROOT
from infra.model.config import from_mapping
from infra.model.synthesized import pipeline_stack_id, project_stack_id

pytestmark = pytest.mark.synth

DOC = ROOT / "docs" / "deploy-and-operate.md"
PROJECT = "my-project"  # the project id the doc's examples use
NO_CREDENTIALS = (
    "error: no Application Default Credentials (Terraform's google provider needs them): "
    "run `gcloud auth application-default login`"
)
# The doc's environments example (section "Environments"): the stacks it names.
ENVIRONMENT_STACKS = {
    f(from_mapping({"project": PROJECT, "environment": env, "prefix": f"img{env}"}))
    for env in ("dev", "prod")
    for f in (pipeline_stack_id, project_stack_id)
}


def _commands() -> list[str]:
    """Every line of the doc's shell blocks that runs scripts/cdktf or our Python."""
    lines, inside = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside and line.strip() in ("```bash", "```sh", "```")
        elif inside and re.search(r"(^|\s)(scripts/cdktf|python main\.py|python -m infra)", line):
            lines.append(re.sub(r"\s+#.*", "", line).strip())
    return lines


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of what the commands read, with the doc's project in cdktf.json."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("infra", "functions", "scripts"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("main.py", "requirements.txt", ".python-version", ".nvmrc"):
        shutil.copy(ROOT / name, root / name)
    for name in (".venv", ".node"):
        if (ROOT / name).exists():
            (root / name).symlink_to((ROOT / name).resolve())
    document = json.loads((ROOT / "cdktf.json").read_text())
    document["context"]["pipeline"]["project"] = PROJECT
    (root / "cdktf.json").write_text(json.dumps(document))
    return root


def _run(checkout: Path, command: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "GOOGLE_"))}
    environ["CLOUDSDK_CONFIG"] = str(checkout / ".gcloud")  # no credentials there
    environ["PATH"] = f"{checkout / '.venv' / 'bin'}:{environ['PATH']}"  # `python`: the venv's
    environ["PYTHONPATH"] = f"{checkout}:{checkout / 'functions'}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if not line.startswith("bootstrap:")]


def test_the_doc_walks_through_deploy_change_ci_and_tear_down():
    commands = _commands()
    verbs = {c.split("scripts/cdktf ")[1].split()[0] for c in commands if "scripts/cdktf " in c}
    assert {"stacks", "deploy", "diff", "output", "destroy"} <= verbs, verbs
    assert "python main.py" in commands and "python -m infra.model.ci_inputs" in commands


def test_every_documented_command_runs_as_written(checkout):
    done = _run(checkout, "scripts/cdktf stacks")  # the synth: `python main.py`, then the order
    assert done.returncode == 0, done.stderr
    stacks = done.stdout.split()
    assert stacks == ["image-pipeline-project", "image-pipeline"]
    manifest = json.loads((checkout / "cdktf.out" / "manifest.json").read_text())
    assert set(manifest["stacks"]) == set(stacks)
    for command in _commands():
        named = [w for w in re.findall(r"image-pipeline[\w-]*", command)]
        assert set(named) <= set(stacks) | ENVIRONMENT_STACKS, command
        if command in ("scripts/cdktf stacks", "python main.py"):
            continue  # just run: the same synth
        if " output " in f"{command} ":
            assert len(named) == 1, f"{command}: cdktf output needs its stack named"
            continue  # reads the state of a deployed stack
        done = _run(checkout, command)
        if command.startswith("python -m infra.model.ci_inputs"):
            assert (done.returncode, done.stdout) == (0, ""), done.stdout
            continue
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert _errors(done) == [NO_CREDENTIALS], (command, done.stderr)
