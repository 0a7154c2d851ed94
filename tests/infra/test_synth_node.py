"""The synth ran on a Node that jsii supports (22 or 24), whatever node the machine has:
scripts/test puts one first on PATH (scripts/_bootstrap.sh, ensure_node) when it is older."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.node_version import NODE_MIN_MAJOR, node_major, node_version

pytestmark = pytest.mark.synth


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we read
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_the_synth_ran_on_a_supported_node(synthesized):
    # jsii's kernel is a node process this test process started; it lives for the session.
    nodes = []
    for child in _children(os.getpid()):
        try:
            exe = os.readlink(f"/proc/{child}/exe")
        except OSError:
            continue
        if Path(exe).name.startswith("node"):
            nodes.append((exe, node_version(exe)))
    assert nodes, "no jsii node process under this test process"
    for exe, version in nodes:
        assert node_major(version) >= NODE_MIN_MAJOR, f"the synth ran on {exe} {version}"
