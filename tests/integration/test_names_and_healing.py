"""Every name GCS accepts, end to end; names it refuses, refused; a stack that heals.

- the hostile names (CJK, emoji, RTL marks, control characters, `%#?+`, spaces) are
  processed, backfilled and cleaned up by the real functions;
- the gallery refuses what GCS refuses, with GCS's message, before writing anything;
- the Eventarc stand-in gives up after its window, visibly (stats, gallery);
- a function killed with SIGKILL is restarted, and the upload it was handed ends processed;
- `scripts/local env` exports let the real gcloud CLI upload into the pipeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core.exceptions import BadRequest

from image_pipeline.records import image_doc_id
from infra.local import sample_images
from infra.local.cli import client_exports
from infra.ops import backfill
from infra.ops import target as targets
from tests.hostile_names import HOSTILE_NAMES

pytestmark = pytest.mark.integration

JPEG = sample_images.jpeg()


def _processed(doc: dict[str, Any]) -> bool:
    return doc.get("status") == "processed"


def test_every_name_gcs_accepts_is_processed_backfilled_and_cleaned_up(
    harness: Any, prefix: str, tmp_path: Path
) -> None:
    names = [prefix + name for name in HOSTILE_NAMES]
    for name in names:
        harness.upload(name, JPEG)
    for name in names:
        doc = harness.wait_doc(name, _processed, timeout=120)
        assert doc["name"] == name
        assert len(harness.thumbnail_blobs(name)) == 3, name
    assert not [d for d in harness.router.log.deliveries(object_prefix=prefix) if d.status >= 300]

    # As if the objects predated the pipeline: no docs. Backfill sends every one again.
    for name in names:
        harness.images.document(image_doc_id(harness.uploads.name, name)).delete()
    target = targets.from_stack(harness.info)
    outcome = backfill.run(
        target, prefix=prefix, rate=100, execute=True, checkpoint_path=tmp_path / "cp.json"
    )
    assert (outcome.selected, outcome.failed) == (len(names), 0)
    for name in names:
        harness.wait_doc(name, _processed, timeout=120)

    for name in names:
        harness.uploads.blob(name).delete()
    for name in names:
        harness.wait_doc(name, lambda d: d.get("status") == "deleted", timeout=120)
        harness.wait_until(
            lambda n=name: not harness.thumbnail_blobs(n), 60, f"cleanup of {name!r}"
        )


@pytest.fixture
def gallery_url(harness: Any) -> str:
    return str(harness.info["gallery"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".", "cannot be named . or .."),
        ("..", "cannot be named . or .."),
        ("line\nfeed.jpg", "Disallowed unicode characters present in object name"),
        ("x" * 1025, "the maximum is 1024 bytes"),
        (".well-known/acme-challenge/t", "cannot start with .well-known/acme-challenge/"),
    ],
)
def test_the_gallery_refuses_what_gcs_refuses_with_its_message(
    harness: Any, gallery_url: str, name: str, message: str
) -> None:
    response = requests.post(f"{gallery_url}upload", params={"name": name}, data=JPEG, timeout=30)
    assert response.status_code == 400 and message in response.json()["error"]
    # Listed, not fetched: fake-gcs answers a GET of "." or ".." with something else.
    listed = harness.clients.storage.list_blobs(harness.uploads.name, prefix=name[:1])
    assert name not in {blob.name for blob in listed}


def test_the_gallery_uploads_a_hostile_name_as_given(
    harness: Any, gallery_url: str, prefix: str
) -> None:
    name = f"{prefix}  写真 100%#?+\u200f.jpg"
    response = requests.post(f"{gallery_url}upload", params={"name": name}, data=JPEG, timeout=30)
    assert response.status_code == 201 and response.json()["name"] == name
    harness.wait_doc(name, _processed, timeout=120)


def test_the_trigger_gives_up_after_its_window_visibly(
    harness: Any, prefix: str, gallery_url: str
) -> None:
    (trigger,) = [r for r in harness.router.routes if r.name == "trigger"]
    window = trigger.window_seconds
    trigger.window_seconds = 1.0
    name = prefix + "never.jpg"
    try:
        with harness.faults(failing=["make_thumbnail"]):
            generation = harness.upload(name, JPEG)
            harness.wait_until(
                lambda: harness.router.log.abandoned(object_prefix=prefix), 60, "the give-up"
            )
    finally:
        trigger.window_seconds = window
    (record,) = harness.router.log.abandoned(object_prefix=prefix)
    assert (record.reason, record.generation) == ("retry_window_exceeded", str(generation))
    assert record.attempts >= 1 and harness.router.stats()["abandoned"]["trigger"] >= 1
    state = requests.get(f"{gallery_url}api/state", timeout=30).json()
    (item,) = [u for u in state["uploads"] if u["name"] == name]
    assert (item["status"], item["reason"]) == ("failed", "retry_window_exceeded")
    assert harness.doc(name) is None  # never delivered, so no doc: the router's record says why


def test_a_killed_function_is_restarted_and_its_upload_processed(harness: Any, prefix: str) -> None:
    stack = harness.stack
    before = stack.functions["make_thumbnail"].pid
    restarts = stack.supervisor.restarts.get("make_thumbnail", 0)
    # Frozen first, so the upload's delivery is taken by the kernel and left unanswered...
    os.killpg(before, signal.SIGSTOP)
    name = prefix + "after-kill.jpg"
    try:
        harness.upload(name, JPEG)
        time.sleep(3)  # the router pulls and POSTs within this (it polls every 50 ms here)
    finally:  # ...then the process group leader is killed, as an OOM kill would
        os.kill(before, signal.SIGKILL)
    harness.wait_doc(name, _processed, timeout=180)
    harness.wait_until(
        lambda: stack.supervisor.restarts.get("make_thumbnail", 0) > restarts, 60, "the restart"
    )
    after = stack.functions["make_thumbnail"]
    assert after.pid != before and after.alive()
    assert stack.info()["functions"]["imgpipe-make-thumbnail"]["restarts"] == restarts + 1

    # The delivery in flight failed with no answer (recorded), and a retry succeeded.
    def statuses() -> list[int]:
        return [d.status for d in harness.calls("make_thumbnail", name)]

    harness.wait_until(lambda: 200 in statuses(), 30, "the successful retry")
    assert 599 in statuses(), statuses()


def test_gcloud_storage_cp_through_local_env_is_processed(
    harness: Any, prefix: str, tmp_path: Path
) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(JPEG)
    name = prefix + "gcloud 写真.jpg"
    env = {
        **os.environ,
        **client_exports(harness.info),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # the operator's own config stays untouched
    }
    uploads = harness.info["buckets"]["uploads"]
    subprocess.run(
        ["gcloud", "storage", "cp", str(source), f"gs://{uploads}/{name}"],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    harness.wait_doc(name, _processed, timeout=120)
    listed = subprocess.run(
        ["gcloud", "pubsub", "topics", "list", "--format=value(name)"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    assert f"projects/{harness.info['project']}/topics/imgpipe-image-events" in listed


def test_a_name_gcs_refuses_is_refused_at_upload_and_never_delivered(
    harness: Any, prefix: str
) -> None:
    name = prefix + "x" * 1100  # GCS refuses names over 1024 bytes; the front does too
    with pytest.raises(BadRequest, match="1024"):
        harness.upload(name, JPEG)
    assert not list(harness.clients.storage.list_blobs(harness.uploads.name, prefix=prefix))
    assert harness.calls("make_thumbnail", prefix) == []
