"""CDKTF app (what `cdktf synth` runs): settings -> topology -> checks -> stacks -> synth.

Writes cdktf.out/stacks/<stack>/cdk.tf.json for the project and pipeline stacks, and refuses
a synth that would replace a resource holding data unless `confirm_destroy_data` names the
project. Settings: docs/settings.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra.deploy.function_source import SourceError
from infra.model.checks import TopologyError
from infra.model.ci_inputs import differences
from infra.model.config import ConfigError, load_environments
from infra.model.synthesized import read_stacks, synthesized_stacks


def main() -> int:
    try:
        configs = load_environments()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in differences():
        print(f"warning: {line}", file=sys.stderr)
    # cdktf (and its Node runtime) is loaded only once the settings are known to be good.
    from cdktf import App

    from infra.deploy.pipeline_stack import add_deployments
    from infra.deploy.replacements import replacements, report

    app = App()
    outdir = Path(app.outdir)
    before = _last_synth(outdir)
    try:
        add_deployments(app, configs)
    except (TopologyError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.synth()
    replaced = list(replacements(before.values(), read_stacks(outdir).values()))
    confirmed = all(c.confirm_destroy_data for c in configs)
    if replaced:
        print(report(replaced, confirmed), file=sys.stderr)
    if replaced and not confirmed:
        _restore(outdir, before)  # the next synth is compared with what was last accepted
        return 2
    return 0


def _last_synth(outdir: Path) -> dict[str, dict[str, Any]]:
    """The stacks the previous `python main.py` wrote here (none if there is no readable one)."""
    try:
        return read_stacks(outdir)
    except (OSError, ValueError, KeyError):
        return {}


def _restore(outdir: Path, stacks: dict[str, dict[str, Any]]) -> None:
    """Puts the previous synth back (and removes stacks it did not have)."""
    for stack_id, path in synthesized_stacks(outdir).items():
        if stack_id in stacks:
            path.write_text(json.dumps(stacks[stack_id], indent=2))
        else:
            path.unlink()


if __name__ == "__main__":
    sys.exit(main())
