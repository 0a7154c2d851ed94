"""Each function of the topology as its own `functions-framework` process, as a user runs it."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.local.processes import ManagedProcess, free_port, spawn, wait_http
from infra.model.topology import FunctionSpec

STARTUP_TIMEOUT = 60.0


@dataclass
class RunningFunction:
    key: str  # the topology key, also the --target
    url: str
    process: ManagedProcess


def _framework_command() -> str:
    """The `functions-framework` next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "functions-framework"
    if beside.exists():
        return str(beside)
    found = shutil.which("functions-framework")
    if found is None:
        raise RuntimeError("functions-framework is not installed: pip install -r requirements.txt")
    return found


def start_function(
    spec: FunctionSpec, source: Path, env: Mapping[str, str], log_dir: Path, port: int = 0
) -> RunningFunction:
    """Starts one function; its env is the topology's plus the emulator hosts in `env`.

    `port` 0 picks a free one; a restart passes the old one, so the router's URL holds.
    """
    port = port or free_port()
    argv = [
        _framework_command(),
        "--source",
        str(source),
        "--target",
        spec.key,
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    full_env = {**env, **spec.env, "PYTHONUNBUFFERED": "1"}
    process = spawn(
        f"function {spec.key}", argv, log_dir / f"{spec.key}.log", full_env, cwd=source.parent
    )
    return RunningFunction(spec.key, f"http://127.0.0.1:{port}/", process)


def wait_ready(
    function: RunningFunction,
    timeout: float = STARTUP_TIMEOUT,
    cancel: threading.Event | None = None,
) -> float:
    """Ready once the server answers at all (a GET on a CloudEvent function is a 4xx)."""
    return wait_http(function.url, function.process, timeout, cancel=cancel)
