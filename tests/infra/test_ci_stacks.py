"""CI plans and applies the stacks the synth wrote, in the order of its manifest, for one
environment and for several (`scripts/cdktf stacks` ends with this module)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.common.paths import ROOT

pytestmark = pytest.mark.synth


def _order(manifest: dict, stack_ids: set[str], tmp_path) -> list[str]:
    """What `python -m infra.model.synthesized` prints for a synth of exactly these stacks."""
    (tmp_path / "manifest.json").write_text(
        json.dumps({"stacks": {k: v for k, v in manifest["stacks"].items() if k in stack_ids}})
    )
    done = subprocess.run(
        [sys.executable, "-m", "infra.model.synthesized", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.parametrize("variant", ["one environment", "two environments"])
def test_ci_takes_every_stack_of_the_manifest_each_after_those_it_reads(
    variant, stack, team, tmp_path
):
    manifest = json.loads((stack.path.parents[2] / "manifest.json").read_text())
    synths = [stack] if variant == "one environment" else team
    stack_ids = {s.project_id for s in synths} | {s.path.parent.name for s in synths}
    order = _order(manifest, stack_ids, tmp_path)
    assert sorted(order) == sorted(stack_ids)  # every stack, once
    for position, stack_id in enumerate(order):
        for dependency in manifest["stacks"][stack_id]["dependencies"]:
            assert order.index(dependency) < position, (dependency, stack_id)
    expected = {
        "one environment": ["image-pipeline-project", "image-pipeline"],
        "two environments": [
            "image-pipeline-project-team-project-1",
            "image-pipeline-dev",
            "image-pipeline-prod",
        ],
    }
    assert order == expected[variant]
