"""The settings a `PIPELINE_*` variable gives here that CI, which synthesizes from
`cdktf.json` alone, would not see, and so would revert at its next apply on `main`
(docs/deploy-and-operate.md, "Deploying from GitHub Actions"). `python main.py` warns about
each; `python -m infra.model.ci_inputs` names them and exits 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

from infra.model.config import (
    ENV_PREFIX,
    ENVIRONMENT_VAR,
    ConfigError,
    DeploymentConfig,
    load_environments,
)

# Meant to be given here and nowhere else: the confirmation of a tear-down.
LOCAL_ONLY = ("confirm_destroy_data",)


def differences(
    environ: Mapping[str, str] = os.environ, cdktf_json: Path | None = None
) -> list[str]:
    """One line per setting these variables give a value CI would not; empty if none."""
    names = {f.name for f in fields(DeploymentConfig)}
    found = [
        f"{key} is not a setting (ignored)"
        for key in sorted(environ)
        if key.startswith(ENV_PREFIX)
        and key != ENVIRONMENT_VAR
        and key[len(ENV_PREFIX) :].lower() not in names
    ]
    try:
        ci = {c.environment: c for c in load_environments(cdktf_json, {})}
    except ConfigError as e:
        return [*found, f"CI cannot synthesize from cdktf.json alone: {e}"]
    for config in load_environments(cdktf_json, environ):
        theirs = ci[config.environment]
        for name in sorted(names - set(LOCAL_ONLY)):
            if f"{ENV_PREFIX}{name.upper()}" not in environ:
                continue
            mine, their = getattr(config, name), getattr(theirs, name)
            if mine != their:
                found.append(
                    f"{ENV_PREFIX}{name.upper()} sets {name} to {mine!r}; CI, which reads "
                    f"cdktf.json only, deploys {their!r} (put it in cdktf.json)"
                )
    return found


def main() -> int:
    """`python -m infra.model.ci_inputs`: 1 when something differs, 2 when this machine's own
    settings do not load (one line, no traceback)."""
    try:
        lines = differences()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(f"differs from CI: {line}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
