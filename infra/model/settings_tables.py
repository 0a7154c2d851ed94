"""The settings tables of the docs, generated from the one definition of each setting.

`python -m infra.model.settings_tables` prints the deployment table, `--function-env` the
functions' environment; docs/settings.md carries both, and a unit test checks they are these.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from image_pipeline.settings import Settings, Tunables, env_name, to_text
from infra.model.config import ENV_PREFIX, FIXED_AFTER_FIRST_DEPLOY, DeploymentConfig

FIXED_NOTE = " **(fixed after the first deploy)**"


def _default(field: dataclasses.Field[Any]) -> str:
    if field.metadata.get("default_doc"):
        return str(field.metadata["default_doc"])
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    text = to_text(value)
    return f"`{text}`" if text else "empty"


def _own_then_inherited(cls: type) -> list[dataclasses.Field[Any]]:
    """The class's own fields first (the ones a reader looks for first), then those of
    `Tunables`, which it inherits."""
    inherited = {f.name for f in dataclasses.fields(Tunables)}
    return sorted(dataclasses.fields(cls), key=lambda f: f.name in inherited)


def deployment_table() -> str:
    rows = ["| setting | env variable | default | meaning |", "|---|---|---|---|"]
    for f in _own_then_inherited(DeploymentConfig):
        env = f"{ENV_PREFIX}{f.name.upper()}"
        fixed = FIXED_NOTE if f.name in FIXED_AFTER_FIRST_DEPLOY else ""
        rows.append(f"| `{f.name}` | `{env}` | {_default(f)} | {f.metadata['doc']}{fixed} |")
    return "\n".join(rows) + "\n"


def function_env_table() -> str:
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for f in _own_then_inherited(Settings):
        rows.append(f"| `{env_name(f)}` | {f.metadata['doc']} | {_default(f)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    table = function_env_table if "--function-env" in sys.argv[1:] else deployment_table
    print(table(), end="")
