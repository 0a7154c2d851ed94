"""The toolchain agrees with itself: the tests run on the Python the functions deploy on, and
every file that names a Python or Node version names the same one."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from infra.model.config import ROOT
from infra.model.topology import FUNCTION_RUNTIME
from tests.node_version import NODE_MIN_MAJOR
from tests.python_runtime import runtime_python_version

MAJOR, MINOR = runtime_python_version(FUNCTION_RUNTIME)


def test_the_tests_run_on_the_python_the_functions_deploy_on():
    assert sys.version_info[:2] == (MAJOR, MINOR), (
        f"the functions deploy on {FUNCTION_RUNTIME} but the tests run on Python "
        f"{sys.version_info.major}.{sys.version_info.minor}: run them through scripts/test, "
        "which rebuilds .venv with the right Python"
    )


def test_runtime_ids_parse_and_nonsense_is_refused():
    assert runtime_python_version("python314") == (3, 14)
    assert runtime_python_version("python39") == (3, 9)
    for bad in ("nodejs22", "python", "python3", "pythonXY", "go125"):
        with pytest.raises(ValueError, match="not a Python runtime id"):
            runtime_python_version(bad)


def test_version_files_and_tool_settings_name_the_deployed_python():
    assert (ROOT / ".python-version").read_text().strip() == f"{MAJOR}.{MINOR}"
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tools["ruff"]["target-version"] == f"py{MAJOR}{MINOR}"
    assert tools["mypy"]["python_version"] == f"{MAJOR}.{MINOR}"


def test_the_bootstrap_and_the_tests_agree_on_node():
    bootstrap = (ROOT / "scripts" / "_bootstrap.sh").read_text()
    assert re.search(rf"^NODE_MIN_MAJOR={NODE_MIN_MAJOR}$", bootstrap, re.M)
    # .nvmrc is the Node the bootstrap installs: a supported LTS (even) release.
    nvmrc = int((ROOT / ".nvmrc").read_text().strip().lstrip("v"))
    assert nvmrc >= NODE_MIN_MAJOR and nvmrc % 2 == 0
