"""The stacks a synth writes (a deployment's project stack and pipeline stack), and reading
them back: every stack's `cdk.tf.json`, by stack id, as plain JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.model.config import DeploymentConfig

# `python main.py` writes cdktf.out/stacks/<id>/cdk.tf.json for the pipeline and for the
# project-wide resources it needs, which is deployed first.
STACK_ID = "image-pipeline"
PROJECT_STACK_ID = "image-pipeline-project"


def synthesized_stacks(outdir: Path) -> dict[str, Path]:
    """The `cdk.tf.json` of every stack a synth wrote (cdktf's manifest.json), by stack id."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        stack_id: outdir / entry["synthesizedStackPath"]
        for stack_id, entry in manifest["stacks"].items()
    }


def read_stacks(outdir: Path) -> dict[str, dict[str, Any]]:
    return {k: json.loads(p.read_text()) for k, p in synthesized_stacks(outdir).items()}


def merged(stacks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The resources and data sources of several stacks in one Terraform JSON shape."""
    result: dict[str, Any] = {"resource": {}, "data": {}}
    for tf in stacks:
        for section in ("resource", "data"):
            for kind, bodies in tf.get(section, {}).items():
                result[section].setdefault(kind, {}).update(bodies)
    return result


def stack_order(outdir: Path) -> list[str]:
    """The stacks of a synth in an order they can be applied, each after the stacks it reads
    (the manifest's `dependencies`): what CI deploys and plans (`scripts/cdktf stacks`)."""
    stacks = json.loads((outdir / "manifest.json").read_text())["stacks"]
    ordered: list[str] = []

    def visit(stack_id: str) -> None:
        if stack_id not in ordered:
            for dependency in sorted(stacks[stack_id].get("dependencies", [])):
                visit(dependency)
            ordered.append(stack_id)

    for stack_id in sorted(stacks):
        visit(stack_id)
    return ordered


def pipeline_stack_id(config: DeploymentConfig) -> str:
    """The pipeline stack of a deployment: `image-pipeline`, or `image-pipeline-<env>`."""
    return f"{STACK_ID}-{config.environment}" if config.environment else STACK_ID


def project_stack_id(config: DeploymentConfig) -> str:
    """The project stack, one per GCP project: environments in one project share it."""
    return f"{PROJECT_STACK_ID}-{config.project}" if config.environment else PROJECT_STACK_ID


if __name__ == "__main__":
    print("\n".join(stack_order(Path(sys.argv[1]))))
