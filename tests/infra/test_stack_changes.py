"""Changes that lose nothing, and a tear-down that says what it takes: a synth that would
replace what holds data is refused unless the project is named, and `scripts/cdktf destroy`
without that confirmation stops with one line before anything starts."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from infra.common.paths import ROOT
from infra.deploy.replacements import replacements, report

pytestmark = pytest.mark.synth


def test_a_filter_change_is_refused_before_the_plan(stack):
    """A subscription's filter is ForceNew: recreating it loses its backlog and whatever is
    published meanwhile, so it is named, and refused without the confirmation (prevent_destroy
    then refuses the plan too)."""
    changed = copy.deepcopy(dict(stack.tf))
    subs = changed["resource"]["google_pubsub_subscription"]
    [cleanup] = [s for s in subs.values() if s["name"] == "imgpipe-cleanup"]
    assert cleanup["lifecycle"] == {"prevent_destroy": True}
    cleanup["filter"] = 'attributes.eventType = "OBJECT_FINALIZE"'
    [line] = replacements([stack.tf], [changed])
    assert "google_pubsub_subscription" in line and "filter" in line and "OBJECT_FINALIZE" in line
    refused = report([line], confirmed=False)
    assert refused.startswith("error: ") and "Changes that lose nothing" in refused
    assert "PIPELINE_CONFIRM_DESTROY_DATA=<project>" in refused
    assert report([line], confirmed=True).startswith("warning: the plan will destroy")


def test_python_main_refuses_a_synth_that_replaces_data_and_keeps_the_last_one(stack, tmp_path):
    # The last synth of the default settings, alone in its cdktf.out.
    outdir = tmp_path / "cdktf.out"
    for stack_id, path in ((stack.project_id, stack.project_path), ("image-pipeline", stack.path)):
        (outdir / "stacks" / stack_id).mkdir(parents=True)
        shutil.copy(path, outdir / "stacks" / stack_id / "cdk.tf.json")
    entries = {
        s: {"synthesizedStackPath": f"stacks/{s}/cdk.tf.json"}
        for s in os.listdir(outdir / "stacks")
    }
    (outdir / "manifest.json").write_text(json.dumps({"stacks": entries}))
    last = {p: json.loads(p.read_text()) for p in outdir.glob("stacks/*/cdk.tf.json")}
    # A new prefix renames every topic and subscription: each is destroyed, then created.
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PIPELINE_PREFIX": "imgnew"}
    env.pop("PIPELINE_CONFIRM_DESTROY_DATA", None)
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "error: this synth (not written) would destroy" in done.stderr
    assert (
        "google_pubsub_subscription" in done.stderr
        and "'imgpipe-cleanup' -> 'imgnew-cleanup'" in done.stderr
    )
    # The next synth is compared with the last accepted one, not with the refused one.
    assert {p: json.loads(p.read_text()) for p in outdir.glob("stacks/*/cdk.tf.json")} == last


def _cdktf(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return subprocess.run(
        [str(ROOT / "scripts" / "cdktf"), *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_destroy_without_the_confirmation_stops_with_one_line_naming_it():
    done = _cdktf("destroy", "image-pipeline")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("bootstrap:")]
    assert lines == [
        "error: destroy deletes the buckets with their objects, the topics and subscriptions "
        "with their messages (and a named environment's database): confirm with "
        "PIPELINE_CONFIRM_DESTROY_DATA=my-gcp-project"
    ]
    wrong = _cdktf("destroy", "image-pipeline", PIPELINE_CONFIRM_DESTROY_DATA="other-project")
    assert wrong.returncode == 2
    assert "'other-project' is not this deployment's project 'my-gcp-project'" in wrong.stderr
