"""The GitHub Actions workflows: actionlint finds nothing in them (and does find a broken
one), CI runs the whole suite on every push, the deploy plans on pull requests and applies
on main, authenticated with Workload Identity Federation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # requirements.txt installs it


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.exists():
        pytest.fail(f"{ACTIONLINT} not found: pip install -r requirements.txt (scripts/test does)")
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_actionlint_finds_nothing_in_the_workflows():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "deploy.yml"]
    done = _actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_does_check(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    done = _actionlint(broken)
    assert done.returncode == 1 and "no_such_thing" in done.stdout


def test_ci_runs_the_whole_suite_on_every_push():
    ci = (WORKFLOWS / "ci.yml").read_text()
    assert "\non:\n  push:\n  pull_request:\n" in ci
    assert "run: .ci/run" in ci
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec bash scripts/test")


def test_deploy_plans_on_pull_requests_and_applies_on_main_without_keys():
    deploy = (WORKFLOWS / "deploy.yml").read_text()
    assert "  pull_request:\n  push:\n    branches: [main]\n" in deploy
    assert "id-token: write" in deploy
    assert "workload_identity_provider: ${{ vars.WIF_PROVIDER }}" in deploy
    assert "credentials_json" not in deploy and "secrets." not in deploy  # no key anywhere
    plan = deploy[deploy.index("- name: Plan") : deploy.index("- name: Apply")]
    apply = deploy[deploy.index("- name: Apply") :]
    assert "github.event_name == 'pull_request'" in plan and "cdktf diff" in plan
    assert "refs/heads/main" in apply and "cdktf deploy --auto-approve" in apply
    assert "cdktf deploy" not in plan
