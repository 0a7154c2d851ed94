"""CDKTF app: deployment config -> topology -> checks -> stack -> synth -> deploy order.

`python main.py` (what `cdktf synth` runs, see cdktf.json) writes
cdktf.out/stacks/image-pipeline/cdk.tf.json, then checks its deploy order and removes it
again if that is unsafe, so neither `cdktf deploy` nor a plain `terraform apply` can apply
it. Settings: cdktf.json context.pipeline and PIPELINE_* environment variables
(docs/settings.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from infra.deploy.function_source import SourceError
from infra.model.checks import TopologyError
from infra.model.config import ConfigError, load_config


def main() -> int:
    try:
        config = load_config()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # cdktf (and its Node runtime) is loaded only once the settings are known to be good.
    from cdktf import App

    from infra.deploy.deploy_order import DeployOrderError, refuse_unsafe
    from infra.deploy.pipeline_stack import add_pipeline_stack

    app = App()
    try:
        stack = add_pipeline_stack(app, config)
    except (TopologyError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.synth()
    synthesized = Path(app.outdir) / "stacks" / stack.node.id / "cdk.tf.json"
    try:
        refuse_unsafe(synthesized)
    except DeployOrderError as e:
        print(f"error: {e}\n(removed {synthesized})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
