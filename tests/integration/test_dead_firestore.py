"""A dead Firestore emulator: the gallery and every tool answer within seconds, naming it,
and the supervisor starts a new one, as it restarts a dead function.

The shared stack keeps its own Firestore: the tools here are pointed at a second Firestore
emulator, started for this test and killed (its whole process group) once the gallery has
talked to it, so the gallery's client meets a peer that died under an open channel and the
tools meet a port nobody answers on. The bounds are the promises of docs/local-stack.md.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from infra.common.paths import ROOT
from infra.local import servers
from infra.local.gallery import server as gallery_server
from infra.local.processes import group_alive

pytestmark = pytest.mark.integration

GALLERY_BOUND = 10.0
TOOL_BOUND = 30.0  # each tool's own deadline, plus a loaded machine's start-up
SMOKE_TIMEOUT = 20.0


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 90, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _tool(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ROOT / "scripts" / argv[0]), *argv[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_with_firestore_killed_the_gallery_and_the_tools_answer_in_seconds_naming_it(
    local_stack: Any, harness: Any, prefix: str, tmp_path: Path
) -> None:
    # An object to look up: over an empty bucket, backfill would never ask Firestore.
    harness.upload(f"{prefix}there.jpg", _jpeg())
    firestore = servers.start("firestore", "dead-firestore", tmp_path, os.environ)
    try:
        firestore.wait_ready()
        info = {**local_stack.info(), "env": {**local_stack.env}}
        info["env"]["FIRESTORE_EMULATOR_HOST"] = firestore.host
        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(info, default=str))
        gallery = gallery_server.start(info, lambda: [])
        url = f"{gallery_server.url_of(gallery)}api/state"
        # Its channel is open once one read succeeds. A JVM just started on a loaded machine
        # can miss the gallery's 4 s deadline on the first reads: that is a 503 to retry.
        deadline = time.monotonic() + 60
        while (status := requests.get(url, timeout=30).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        firestore.stop(timeout=1)
    assert firestore.popen.poll() is not None

    started = time.monotonic()
    tools = {
        "dead-letters list": _tool(["dead-letters", "list", "--stack", str(stack_file)]),
        "backfill (dry run)": _tool(["backfill", "--stack", str(stack_file)]),
        "smoke": _tool(
            ["smoke", "--local", "--stack", str(stack_file), "--timeout", f"{SMOKE_TIMEOUT:g}"]
        ),
    }
    try:
        answer = requests.get(url, timeout=60)
        gallery_seconds = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert f"Firestore at {firestore.host} did not answer" in answer.json()["error"]
        assert gallery_seconds <= GALLERY_BOUND
        for name, process in tools.items():
            _, err = process.communicate(timeout=60)
            seconds = time.monotonic() - started
            assert process.returncode == 1, (name, err)
            assert f"error: Firestore at {firestore.host} did not answer" in err, (name, err)
            assert "Traceback" not in err, (name, err)
            assert seconds <= TOOL_BOUND, (name, seconds)
    finally:
        gallery.shutdown()
        gallery.server_close()
        for process in tools.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


def _java_of(emulator: Any) -> int:
    """The Java process under an emulator's gcloud wrapper (same process group)."""
    found = subprocess.run(
        ["pgrep", "-g", str(emulator.pid), "java"], capture_output=True, text=True
    ).stdout.split()
    assert found, f"no Java in the process group of {emulator.title}"
    return int(found[0])


@pytest.mark.restarts_emulators
def test_the_supervisor_restarts_a_killed_emulator_and_the_pipeline_goes_on(
    local_stack: Any, harness: Any, prefix: str
) -> None:
    dead = local_stack.emulators["firestore"]
    os.kill(_java_of(dead), signal.SIGKILL)  # the emulator dies; its gcloud wrapper follows

    harness.wait_until(
        lambda: local_stack.info()["emulators"]["firestore"]["restarts"] >= 1,
        90,
        "the supervisor to restart the Firestore emulator",
    )
    restarted = local_stack.emulators["firestore"]
    assert restarted.host == dead.host and restarted.pid != dead.pid
    assert not group_alive(dead.pid)  # nothing of the dead one is left
    harness.upload(f"{prefix}after.jpg", _jpeg())
    doc = harness.wait_doc(f"{prefix}after.jpg", lambda d: d.get("status") == "processed", 90)
    assert doc["thumbnails"]
