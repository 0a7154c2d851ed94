"""The GitHub Actions workflows: actionlint finds nothing in them (and does find a broken
one), CI runs the whole suite on every push, the deploy plans on pull requests and applies
on main, authenticated with Workload Identity Federation."""

from __future__ import annotations

import re
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


def _jobs() -> tuple[str, str, str]:
    """deploy.yml, and the text of its plan job and of its apply job."""
    deploy = (WORKFLOWS / "deploy.yml").read_text()
    return (
        deploy,
        deploy[deploy.index("\n  plan:") : deploy.index("\n  apply:")],
        deploy[deploy.index("\n  apply:") :],
    )


def test_deploy_plans_on_pull_requests_and_applies_on_main_without_keys():
    deploy, plan, apply = _jobs()
    assert "  pull_request:\n  push:\n    branches: [main]\n" in deploy
    assert "credentials_json" not in deploy and "secrets." not in deploy  # no key anywhere
    assert "github.event_name == 'pull_request'" in plan and "scripts/cdktf diff" in plan
    assert "refs/heads/main" in apply and "scripts/cdktf deploy --auto-approve" in apply
    assert "cdktf deploy" not in plan
    # Only the jobs that authenticate may ask for the OIDC token.
    assert "id-token: write" not in deploy[: deploy.index("\njobs:")]
    assert "id-token: write" in plan and "id-token: write" in apply


def test_pull_requests_plan_as_the_read_only_account_and_forks_get_nothing():
    _, plan, apply = _jobs()
    assert "service_account: ${{ vars.PLAN_SERVICE_ACCOUNT }}" in plan
    assert "DEPLOY_SERVICE_ACCOUNT" not in plan
    assert "service_account: ${{ vars.DEPLOY_SERVICE_ACCOUNT }}" in apply
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan
    assert "TF_CLI_ARGS_plan: -lock=false" in plan  # the plan account cannot write the lock


def test_a_pull_request_never_shares_a_concurrency_group_with_an_apply():
    """GitHub cancels a pending run when another joins its group (one pending per group):
    plans and applies are in different groups, and applies queue without cancelling."""
    deploy, plan, apply = _jobs()
    assert "\nconcurrency:" not in deploy  # no workflow-wide group
    assert (
        "    concurrency:\n      group: deploy-plan-${{ github.event.pull_request.number }}\n"
        "      cancel-in-progress: true\n"
    ) in plan
    assert (
        "    concurrency:\n      group: deploy-apply\n      cancel-in-progress: false\n"
        "      queue: max\n"
    ) in apply


def test_ci_reads_the_stacks_from_the_synth_and_every_setting_from_the_repository():
    deploy, plan, apply = _jobs()
    for job in (plan, apply):
        assert 'list="$(scripts/cdktf stacks)"' in job
    assert not re.search(r"cdktf (diff|deploy)[^\n]*image-pipeline", deploy)  # none typed
    assert "PIPELINE_" not in deploy.replace("no PIPELINE_* variable", "")
