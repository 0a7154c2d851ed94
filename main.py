"""CDKTF app: deployment config -> topology -> checks -> stack -> synth.

`python main.py` (what `cdktf synth` runs, see cdktf.json) writes
cdktf.out/stacks/image-pipeline/cdk.tf.json. Settings: cdktf.json context.pipeline and
PIPELINE_* environment variables (README, "Deploy to GCP").
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# functions/ is its own deploy root; put it on the path like pytest and scripts do.
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

from infra.checks import TopologyError  # noqa: E402
from infra.config import ConfigError, load_config  # noqa: E402
from infra.function_source import SourceError  # noqa: E402


def main() -> int:
    try:
        config = load_config()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # cdktf (and its Node runtime) is loaded only once the settings are known to be good.
    from cdktf import App

    from infra.stack import add_pipeline_stack

    app = App()
    try:
        add_pipeline_stack(app, config)
    except (TopologyError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
