"""A burst many times a capped stack's capacity drains completely: Cloud Run's limit is
modelled (429s counted), and throttling fails nothing and dead-letters nothing.

Its own small stack (one instance per function, the default dead-letter policy), so the
session stack keeps its size; about 30-60 s on two cores.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from PIL import Image

from image_pipeline.events import StorageObject, result_event
from infra.local.local_stack import LocalStack, StackOptions
from infra.local.servers import PreflightError
from infra.model.config import load_config
from infra.ops.backfill import finalized_event, object_resource
from tests.integration.conftest import Harness
from tests.synthesis import CAPPED_ID, CAPPED_SETTINGS, Synth

BURST = 40  # 40 x the make_thumbnail capacity of 1
# Cloud Run's 10 s wait for an instance becomes 0.5 s or more (3.5 x the measured start),
# Eventarc's 10..600 s backoff 0.5..30 s.
FACTOR = 0.05


@pytest.fixture(scope="module")
def capped(
    tmp_path_factory: pytest.TempPathFactory, synthesized: dict[str, Synth]
) -> Iterator[Harness]:
    stack = LocalStack(
        load_config(overrides=CAPPED_SETTINGS),
        StackOptions(
            state_dir=tmp_path_factory.mktemp("capped-stack"),
            backoff_factor=FACTOR,
            poll_seconds=0.05,
            policy=synthesized[CAPPED_ID].outdir,
        ),
    )
    try:
        stack.up()
    except PreflightError as exc:
        pytest.fail(f"the integration tests need the emulators: {exc}", pytrace=False)
    try:
        yield Harness(stack)
    finally:
        stack.down()


def jpeg(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320 + n, 240), (n * 5 % 256, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_burst_over_capacity_is_all_processed_with_429s_and_no_dead_letter(capped: Harness):
    router = capped.router
    assert router.stats()["capacity"]["make_thumbnail"]["slots"] == 1
    names = [f"burst/img-{n:03d}.jpg" for n in range(BURST)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: capped.upload(names[n], jpeg(n)), range(BURST)))

    def statuses() -> list[str]:
        return [(capped.doc(name) or {}).get("status", "pending") for name in names]

    capped.wait_until(
        lambda: "pending" not in statuses(), 120, f"all {BURST} uploads to be recorded"
    )
    assert statuses() == ["processed"] * BURST, "throttling failed an upload"
    throttled = router.stats()["functions"]["make_thumbnail"]["throttled"]
    assert throttled > 0, "the burst never met the capacity limit: nothing was modelled"
    assert [d.status for d in router.log.deliveries("make_thumbnail") if d.by == "throttled"] == [
        429
    ] * throttled
    assert router.log.abandoned() == []
    assert list(capped.dead_letters.limit(1).stream()) == [], "throttling dead-lettered"


def test_concurrent_requests_to_one_instance_each_write_their_own_result(capped: Harness):
    """write_metadata serves `function_concurrency` requests at once in one process: each of
    them, sent together, must land as its own document (no state shared between requests)."""
    spec = capped.stack.topology.functions["write_metadata"]
    assert spec.concurrency > 1
    url = capped.info["functions"][spec.name]["url"]
    subscription = capped.stack.topology.subscription_path("metadata_writer")
    count = spec.concurrency * 2
    names = [f"parallel/p-{n:02d}.jpg" for n in range(count)]

    def push(n: int) -> int:
        obj = StorageObject(capped.uploads.name, names[n], 1000 + n, None, "image/jpeg", n + 1)
        image = {"width": n + 1, "height": 1}
        event = result_event("processed", obj, f"evt-{n}", image=image, thumbnails=[])
        message = {
            "data": base64.b64encode(event.encoded()).decode(),
            "attributes": event.attributes,
            "messageId": f"parallel-{n}",
            "publishTime": "2026-01-01T00:00:00Z",
        }
        body = {"message": message, "subscription": subscription}
        return requests.post(url, json=body, timeout=60).status_code

    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(push, range(count)))
    assert answers == [200] * count
    for n, name in enumerate(names):
        doc = capped.doc(name)
        assert doc is not None and (doc["generation"], doc["width"]) == (1000 + n, n + 1)


def test_an_event_hours_old_within_eventarcs_retention_is_processed(capped: Harness):
    """The event-age guard gives up on failures only: an event that waited five hours in a
    backlog (Eventarc keeps it 24 h) is processed by the real function."""
    name = "late/five-hours.jpg"
    capped.upload(name, jpeg(1))
    capped.wait_doc(name, lambda d: d.get("status") == "processed")
    blob = capped.uploads.get_blob(name)
    headers, body = finalized_event(object_resource(blob), datetime.now(UTC) - timedelta(hours=5))
    spec = capped.stack.topology.functions["make_thumbnail"]
    function = capped.info["functions"][spec.name]
    assert requests.post(function["url"], data=body, headers=headers, timeout=60).status_code == 200
    lines = [json.loads(line) for line in Path(function["log"]).read_text().splitlines()
             if line.startswith("{") and headers["ce-id"] in line]  # fmt: skip
    assert [line["message"] for line in lines if line["message"].startswith("published")] == [
        "published image.processed"
    ]
