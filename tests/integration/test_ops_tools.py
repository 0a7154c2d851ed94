"""The operator tools against the running local stack: real listing, real docs, and the real
functions on the other end (make_thumbnail for backfill, the recorder and the metadata writer
for dead letters).

The dead letter is published to the dead-letter topic with the attributes Pub/Sub adds when it
forwards one; the emulator's own dead lettering (five failed deliveries, ~90 s here because it
ignores retry backoff settings) is the harness's to test.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from image_pipeline.events import OUTPUT_MARKER, StorageObject, result_event
from image_pipeline.records import dead_letter_id, image_doc_id
from infra.ops import backfill, bulk, dead_letters
from infra.ops import target as targets

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack_file(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness's stack.json, as the CLIs read it."""
    path = tmp_path_factory.mktemp("ops") / "stack.json"
    path.write_text(json.dumps(local_stack.info(), default=str))
    return path


@pytest.fixture(scope="module")
def target(stack_file: Path) -> targets.Target:
    return targets.from_stack_file(stack_file)


@pytest.fixture(scope="module")
def firestore(local_stack: Any) -> Any:
    """The harness's own client: what the tools stored, read without going through them."""
    return local_stack.clients.firestore


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64 + seed, 48), (seed * 40 % 256, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def wait_until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {check.__doc__}")


def doc_of(target: targets.Target, name: str) -> dict[str, Any] | None:
    return target.documents.get(target.images_collection, image_doc_id(target.uploads_bucket, name))


def test_backfill_is_a_bounded_resumable_dry_run_first_pass_through_make_thumbnail(
    target: targets.Target, tmp_path: Path
) -> None:
    prefix = f"backfill-{uuid.uuid4().hex[:8]}/"
    bucket = target.storage.bucket(target.uploads_bucket)
    names = [f"{prefix}{i}.jpg" for i in range(3)]
    blobs = {}
    for i, name in enumerate(names):
        blobs[name] = bucket.blob(name)
        blobs[name].upload_from_string(jpeg(i), content_type="image/jpeg")
    output = bucket.blob(f"{prefix}z-thumbnail.webp")
    output.metadata = {OUTPUT_MARKER: "thumbnail"}
    output.upload_from_string(b"an output that must never be processed", content_type="image/webp")

    def all_processed() -> bool:
        """the pipeline to process the uploads"""
        return all((doc_of(target, n) or {}).get("status") == "processed" for n in names)

    wait_until(all_processed)
    # Forget two results, as if these objects predated the pipeline.
    for name in names[:2]:
        target.documents.delete(target.images_collection, image_doc_id(target.uploads_bucket, name))
    checkpoint = tmp_path / "checkpoint.json"
    quiet = {"checkpoint_path": checkpoint, "prefix": prefix, "err": io.StringIO(), "rate": 50}

    out = io.StringIO()
    dry = backfill.run(target, out=out, **quiet)
    assert dry.selected == 2
    assert "would process" in out.getvalue() and "dry run: 2 objects" in out.getvalue()
    assert not checkpoint.exists(), "a dry run never moves the checkpoint"
    assert doc_of(target, names[0]) is None, "a dry run sends nothing"

    first = backfill.run(target, limit=1, execute=True, out=io.StringIO(), **quiet)
    saved = bulk.Checkpoint.load(checkpoint, backfill.selection(target.uploads_bucket, prefix))
    assert (first.selected, saved.counts["sent"], saved.last_name, saved.complete) == (
        1,
        1,
        names[0],
        False,
    )

    second = backfill.run(target, limit=10, execute=True, out=io.StringIO(), **quiet)
    assert (second.selected, second.failed) == (1, 0)
    totals = bulk.Checkpoint(**json.loads(checkpoint.read_text()))
    counts = [totals.counts.get(k) for k in ("sent", "up to date", "outputs")]
    assert (counts, totals.complete) == ([2, 1, 1], True)

    def restored() -> bool:
        """the backfilled objects to get processed docs for their current generation"""
        docs = [doc_of(target, n) or {} for n in names[:2]]
        return all(
            d.get("status") == "processed" and d.get("generation") == blobs[n].generation
            for d, n in zip(docs, names[:2], strict=True)
        )

    wait_until(restored)
    after = io.StringIO()
    assert backfill.run(target, out=after, **quiet).selected == 0  # a fresh pass finds nothing
    assert doc_of(target, output.name) is None, "outputs are never processed"


def cli(stack_file: Path, *args: str) -> str:
    out = io.StringIO()
    assert dead_letters.main([*args, "--stack", str(stack_file)], out=out, err=out) == 0
    return out.getvalue()


def test_a_dead_letter_is_listed_and_replayed_once_to_its_original_topic(
    stack_file: Path, target: targets.Target, firestore: Any
) -> None:
    name = f"dead-letters-{uuid.uuid4().hex[:8]}.jpg"
    blob = target.storage.bucket(target.uploads_bucket).blob(name)
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "teal").save(buffer, "JPEG")
    blob.upload_from_string(buffer.getvalue(), content_type="image/jpeg")
    images = firestore.collection(target.images_collection)
    ref = images.document(image_doc_id(target.uploads_bucket, name))

    def processed() -> dict[str, Any] | None:
        """the upload to be processed"""
        doc = ref.get().to_dict()
        return doc if doc and doc.get("status") == "processed" else None

    doc = wait_until(processed)
    # The metadata writer "kept failing" on this result event: no doc, and a dead letter.
    ref.delete()
    event = result_event(
        "processed",
        StorageObject(target.uploads_bucket, name, doc["generation"], None, "image/jpeg", 1),
        "dead-letter-test",
        image={key: doc[key] for key in ("width", "height", "format")},
        thumbnails=doc["thumbnails"],
    )
    subscription = target.topology.subscriptions["metadata_writer"]
    message_id = target.publish(
        target.topology.topic_path(subscription.dead_letter_topic),
        event.encoded(),
        {
            **event.attributes,
            "CloudPubSubDeadLetterSourceSubscription": subscription.name,
            "CloudPubSubDeadLetterSourceSubscriptionProject": target.project,
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        },
    )
    record_id = dead_letter_id(message_id)
    record_ref = firestore.collection(target.dead_letters_collection).document(record_id)

    def recorded() -> dict[str, Any] | None:
        """the recorder to store the dead letter"""
        return record_ref.get().to_dict()

    wait_until(recorded)
    rows = [json.loads(line) for line in cli(stack_file, "list", "--json").splitlines()]
    row = next(r for r in rows if r["id"] == record_id)
    assert row["subscription"] == subscription.name
    assert row["attempts"] == 5
    assert row["status"] == "recorded"
    assert row["event"] == f"image.processed gs://{target.uploads_bucket}/{name}"
    assert name in cli(stack_file, "list")
    shown = json.loads(cli(stack_file, "show", record_id))
    assert (shown["id"], shown["messageId"]) == (record_id, message_id)
    assert shown["decodedData"]["name"] == name

    assert "replayed as message" in cli(stack_file, "replay", record_id)
    wait_until(processed)  # the real metadata writer got it from the original topic
    assert ref.get().to_dict()["generation"] == doc["generation"]
    record = record_ref.get().to_dict()
    assert (record["status"], record["replayCount"]) == ("replayed", 1)
    assert record["replayedAt"] is not None

    assert "already replayed" in cli(stack_file, "replay", record_id)
    assert record_ref.get().to_dict()["replayCount"] == 1, "a second replay is a no-op"
    assert "replayed as message" in cli(stack_file, "replay", "--force", record_id)
    assert record_ref.get().to_dict()["replayCount"] == 2


def test_a_poison_dead_letter_is_reported_by_replay_all_until_discarded(
    stack_file: Path, target: targets.Target, firestore: Any
) -> None:
    """A record whose source subscription is not in the topology (another pipeline's, or a
    renamed one) can never be replayed: `replay --all` replays the rest, names it and exits
    1, and `discard` sets it aside (kept, marked) so the next `replay --all` is clean of it."""
    subscription = target.topology.subscriptions["metadata_writer"]
    message_id = target.publish(
        target.topology.topic_path(subscription.dead_letter_topic),
        b'{"schema": 1}',
        {
            "eventType": "image.processed",
            "CloudPubSubDeadLetterSourceSubscription": "someone-elses-subscription",
            "CloudPubSubDeadLetterSourceSubscriptionProject": target.project,
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        },
    )
    letters = firestore.collection(target.dead_letters_collection)
    poison_id = dead_letter_id(message_id)  # what the tools print
    poison = letters.document(poison_id)

    def recorded() -> dict[str, Any] | None:
        """the recorder to store the poison dead letter"""
        return poison.get().to_dict()

    wait_until(recorded)

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = dead_letters.main([*args, "--stack", str(stack_file)], out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = run("replay", "--all")
    assert code == 1
    assert f"{poison_id}: cannot replay: source subscription someone-elses-subscription" in err
    assert f"scripts/dead-letters discard {poison_id}" in err
    assert poison.get().to_dict()["status"] == "recorded", "nothing changed for the poison"

    code, out, _ = run("discard", poison_id, "--by", "itest", "--note", "not ours")
    assert (code, out.strip()) == (0, f"{poison_id}: discarded")
    record = poison.get().to_dict()
    assert record["status"] == "discarded", "discarded records are kept, not deleted"
    assert (record["discardedBy"], record["discardNote"]) == ("itest", "not ours")
    assert record["discardedAt"] is not None
    assert record["data"], "the evidence stays"
    assert run("discard", poison_id)[1].strip() == f"{poison_id}: already discarded"
    assert run("discard", "no-such-id")[0] == 1

    code, out, err = run("replay", "--all")
    assert poison_id not in out + err, "discarded records are not replayed"
    assert code == 0, err
    assert poison.get().to_dict().get("replayCount", 0) == 0
    code, out, _ = run("replay", poison_id)  # by id, without --force: skipped, said so
    assert (code, f"{poison_id}: already discarded, skipped" in out) == (0, True)
    listed = [json.loads(line) for line in run("list", "--json")[1].splitlines()]
    assert next(r for r in listed if r["id"] == poison_id)["status"] == "discarded"


def test_the_tools_read_and_write_the_database_the_functions_write(
    local_stack: Any, stack_file: Path
) -> None:
    """A stack whose functions write a named database: a tool's record lands there, in the
    real Firestore emulator, and not in `(default)`."""
    from infra.common.emulator_clients import emulator_clients

    info = json.loads(stack_file.read_text())
    info["function_env"] = {**info["function_env"], "FIRESTORE_DATABASE": "tools-db"}
    target = targets.from_stack(info)
    doc_id = f"named-database-{uuid.uuid4().hex[:8]}"
    assert target.documents.create(target.dead_letters_collection, doc_id, {"status": "recorded"})
    named = emulator_clients(info["project"], info["env"], "tools-db")
    try:
        stored = named.firestore.collection(target.dead_letters_collection).document(doc_id)
        assert stored.get().to_dict() == {"status": "recorded"}
    finally:
        named.close()
    default = local_stack.clients.firestore.collection(target.dead_letters_collection)
    assert not default.document(doc_id).get().exists
    assert target.documents.get(target.dead_letters_collection, doc_id) == {"status": "recorded"}
