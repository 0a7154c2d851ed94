"""The operator scripts, as a new deployer first runs them, without credentials: each prints
one line naming what to do and exits non-zero, never a traceback. The scripts themselves run
(their bootstrap included), all at once; GOOGLE_APPLICATION_CREDENTIALS names a file that does
not exist, so nothing reaches the network (in-process variants: tests/unit)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.source_tree import ROOT

COMMANDS = (
    ["scripts/smoke"],
    ["scripts/backfill", "--project", "my-real-project", "--execute"],
    ["scripts/dead-letters", "list", "--project", "my-real-project"],
    ["scripts/erase", "--project", "my-real-project", "--metadata", "owner=alice", "--execute"],
)


def test_without_credentials_every_operator_script_answers_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json"),
        "CLOUDSDK_CONFIG": str(tmp_path),
    }
    running = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in COMMANDS
    ]
    for command, process in zip(COMMANDS, running, strict=True):
        out, err = process.communicate(timeout=120)
        lines = [line for line in err.splitlines() if not line.startswith("bootstrap:")]
        assert process.returncode == 1, (command, out, err)
        assert len(lines) == 1 and "Traceback" not in out + err, (command, err)
        assert lines[0].startswith("error: no Application Default Credentials"), (command, err)
        assert "gcloud auth application-default login" in lines[0]
