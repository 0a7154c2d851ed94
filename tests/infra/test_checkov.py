"""Static security analysis of the synthesized Terraform JSON with checkov.

checkov pins `packaging<24`, which conflicts with pytest 9, so it lives in its own
`.venv-checkov` (made by `scripts/_bootstrap.sh` -> `ensure_checkov`). Every check we skip
is listed here with the reason; anything else that fails, fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra.model.config import ROOT

pytestmark = [pytest.mark.synth, pytest.mark.checkov]

CHECKOV_SKIPS = {
    "CKV_GCP_83": "Pub/Sub encrypts at rest with Google-managed keys; CMEK needs a KMS key "
    "that outlives `cdktf destroy` and costs money, so it is left to orgs that require it",
    "CKV_GCP_62": "bucket usage logs need yet another bucket; Cloud Audit Logs (Data Access) "
    "is the supported way to audit object access and is a project-level choice",
    "CKV_GCP_78": "versioning is off by design: thumbnails are regenerated deterministically, "
    "archives are named by hash, and noncurrent originals would be billed forever",
    "CKV_GCP_84": "the function images are rebuilt from the source archive at every deploy; "
    "customer keys (CSEK/CMEK) need a KMS key that outlives `cdktf destroy`, as for Pub/Sub",
}
# Findings accepted where, and only where, their reason holds (the check still runs).
OPENED_FOR_BACKFILL = (
    "CKV_GCP_124",
    "backfill_invokers was set: make_thumbnail takes calls from outside the project so "
    "operators can backfill; IAM (run.invoker for the named members only, no allUsers) decides",
)
# Accepted on exactly one resource: Eventarc's troubleshooting guide has its Google-managed
# agent hold roles/eventarc.serviceAgent; no user or workload can act as that agent.
EVENTARC_AGENT_ROLE = ("CKV_GCP_49", "resource.agents_eventarc-agent-service-agent_")
# Accepted on exactly the GitHub deploy account's two bindings: the deploy creates the
# pipeline's service accounts (iam.serviceAccountAdmin) and deploys functions, a trigger and
# push subscriptions that run as them (iam.serviceAccountUser: actAs); neither can be granted
# on accounts that do not exist yet. Only a push to main of the repository (by its id) may
# act as that account; pull requests get the read-only plan account.
DEPLOYER_MANAGES_ACCOUNTS = (
    ("CKV_GCP_41", "CKV_GCP_49"),
    (
        "resource.github_deployer-iam-serviceAccountAdmin_",
        "resource.github_deployer-iam-serviceAccountUser_",
    ),
)
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


def _checkov() -> Path:
    # Without checkov, tests/conftest.py leaves this test out of a bare pytest run; under
    # scripts/test or CI it runs, and fails here.
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} not found: run scripts/test (its bootstrap installs checkov)")
    return CHECKOV


def test_checkov_passes_on_the_synthesized_stacks(stack, alt_stack, team):
    """Every variant: the defaults, every optional resource, and two environments with a
    GitHub repository (its project stack holds the deploy identities)."""
    checkov = _checkov()
    cmd = [str(checkov), "--framework", "terraform_json", "--skip-download", "--output", "json"]
    for synth in (stack, alt_stack, *team):
        cmd += ["--file", str(synth.path), "--file", str(synth.project_path)]
    cmd += ["--skip-check", ",".join(sorted(CHECKOV_SKIPS))]
    # Keeps the exit status for real failures; which findings are accepted is decided below.
    soft = {OPENED_FOR_BACKFILL[0], EVENTARC_AGENT_ROLE[0], *DEPLOYER_MANAGES_ACCOUNTS[0]}
    cmd += ["--soft-fail-on", ",".join(sorted(soft))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (exit {proc.returncode}):\n{proc.stderr}")
    reports = report if isinstance(report, list) else [report]
    failed = [
        c
        for r in reports
        for c in r["results"].get("failed_checks", [])
        if not _accepted(c, (stack, alt_stack))
    ]
    lines = [
        f"{c['check_id']} {c['check_name']} -> {c['resource']} ({c['file_path']})" for c in failed
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(lines)
    assert proc.returncode == 0, proc.stderr
    summary = [r["summary"] for r in reports]
    assert all(s["parsing_errors"] == 0 for s in summary), summary
    # It really looked at the GCP resources (a file it cannot read "passes" with 0 checks).
    passed_ids = {c["check_id"] for r in reports for c in r["results"]["passed_checks"]}
    assert {"CKV_GCP_29", "CKV_GCP_114"} <= passed_ids, sorted(passed_ids)


def _accepted(check: dict, synths: tuple) -> bool:
    """A finding on make_thumbnail's ingress in a stack whose config names backfill invokers,
    or the Eventarc agent's own role, or the deploy account's service-account roles."""
    resource = check["resource"].rsplit("_", 1)[0] + "_"
    if (check["check_id"], resource) == EVENTARC_AGENT_ROLE:
        return True
    checks, resources = DEPLOYER_MANAGES_ACCOUNTS
    if check["check_id"] in checks and resource in resources:
        return True
    check_id, _reason = OPENED_FOR_BACKFILL
    return check["check_id"] == check_id and any(
        synth.config.backfill_invokers
        and f"/{synth.path.parent.name}/" in check["file_path"]
        and check["resource"].startswith("resource.functions_make_thumbnail_")
        for synth in synths
    )
