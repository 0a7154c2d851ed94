"""CDKTF app: deployment config -> topology -> checks -> stacks -> synth.

`python main.py` (what `cdktf synth` runs, see cdktf.json) writes
cdktf.out/stacks/<stack>/cdk.tf.json for the project stack and the pipeline stack, and warns
when that replaces a resource holding data. Settings: cdktf.json context.pipeline and
PIPELINE_* environment variables (docs/settings.md).
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
    replaced = list(replacements(before, read_stacks(outdir).values()))
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
