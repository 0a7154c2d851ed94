"""The local stack's functions run on the Python the stack deploys them on (FUNCTION_RUNTIME),
so what the integration tests see is what the platform runs."""

from __future__ import annotations

import os
import subprocess

import pytest

from infra.model.topology import FUNCTION_RUNTIME
from tests.python_runtime import runtime_python_version

pytestmark = pytest.mark.integration


def test_every_function_process_runs_the_deployed_python(local_stack):
    major, minor = runtime_python_version(FUNCTION_RUNTIME)
    want = f"{major}.{minor}"
    assert local_stack.functions, "the local stack started no functions"
    for key, running in local_stack.functions.items():
        exe = os.readlink(f"/proc/{running.pid}/exe")
        version = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        assert version == want, f"{key} runs {exe} (Python {version}), deployed: {FUNCTION_RUNTIME}"
