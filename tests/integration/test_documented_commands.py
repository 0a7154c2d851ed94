"""What the docs tell a user to run, run for real: `scripts/local status` and `env` against
the session's running stack, and every tool's `--help` through its bash wrapper
(tests/unit/test_doc_commands.py parses every documented command line in-process)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from infra.common import paths
from infra.local import cli
from tests.source_tree import ROOT
from tests.unit.test_doc_commands import TOOLS

pytestmark = pytest.mark.integration


def test_local_status_and_env_describe_the_running_stack(harness, monkeypatch, capsys):
    monkeypatch.setattr(paths, "STACK_JSON", harness.stack.stack_json)
    assert cli.main(["status"]) == 0  # 1 when any part is down
    status = capsys.readouterr().out
    assert all(f"  {name} " in status for name in harness.info["functions"]), status
    assert cli.main(["env"]) == 0
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in capsys.readouterr().out.splitlines()
    )
    for variable, value in harness.info["env"].items():
        assert exports[variable] == value


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_answers_help_through_its_script(tool):
    """The wrapper sources scripts/_bootstrap.sh (the venv, the paths) and runs the module."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    done = subprocess.run(
        [str(ROOT / tool), "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {tool}"), done.stdout
