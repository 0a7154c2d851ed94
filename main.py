"""CDKTF app: deployment config -> topology -> checks -> stack -> synth -> deploy order.

`python main.py` (what `cdktf synth` runs, see cdktf.json) writes
cdktf.out/stacks/<stack>/cdk.tf.json for the project stack and the pipeline stack, then checks
their deploy order (the two merged) and removes them again if that is unsafe, so neither
`cdktf deploy` nor a plain `terraform apply` can apply them. Settings: cdktf.json
context.pipeline and PIPELINE_* environment variables (docs/settings.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from infra.deploy.function_source import SourceError
from infra.model.checks import TopologyError
from infra.model.config import ConfigError, load_environments
from infra.model.synthesized import read_stacks


def main() -> int:
    try:
        configs = load_environments()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # cdktf (and its Node runtime) is loaded only once the settings are known to be good.
    from cdktf import App

    from infra.deploy.deploy_order import DeployOrderError, refuse_unsafe
    from infra.deploy.pipeline_stack import add_deployments
    from infra.deploy.replacements import replacements, warning

    app = App()
    outdir = Path(app.outdir)
    before = _last_synth(outdir)
    try:
        add_deployments(app, configs)
    except (TopologyError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.synth()
    try:
        after = refuse_unsafe(outdir)
    except DeployOrderError as e:
        print(f"error: {e}\n(removed the stacks' cdk.tf.json in {outdir})", file=sys.stderr)
        return 2
    replaced = list(replacements(before, after.values()))
    if replaced:
        print(warning(replaced), file=sys.stderr)
    return 0


def _last_synth(outdir: Path) -> list[dict[str, Any]]:
    """The stacks the previous `python main.py` wrote here (none if there is no readable one)."""
    try:
        return list(read_stacks(outdir).values())
    except (OSError, ValueError, KeyError):
        return []


if __name__ == "__main__":
    sys.exit(main())
