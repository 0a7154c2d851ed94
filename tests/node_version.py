"""Which Node a synth runs on: jsii starts `$JSII_NODE` or the `node` on PATH, and supports
Node 22 and 24 (scripts/_bootstrap.sh installs 24 into .node/ when the machine's is older)."""

from __future__ import annotations

import re
import subprocess

NODE_MIN_MAJOR = 22  # the same as NODE_MIN_MAJOR in scripts/_bootstrap.sh (a unit test checks)


def node_major(version: str) -> int:
    """`v24.22.3` -> 24; 0 when it is not a Node version."""
    match = re.match(r"v(\d+)\.", version.strip())
    return int(match.group(1)) if match else 0


def node_version(node: str) -> str:
    """`node --version` of that executable (`v24.22.3`), empty if it does not answer."""
    try:
        result = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()
