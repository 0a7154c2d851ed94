"""`scripts/erase --metadata owner=... --execute` on the local stack: it leaves no original,
thumbnail, personal doc field or dead-letter record of that person's images, touches nothing
of anyone else's, and the gallery serves none of them; its dry run lists what it would remove
and changes nothing; a second run finds nothing to do; the pipeline's own late events (the
deletes erase caused) do not bring a doc back.

The stack copies `owner` into docs for this test (`metadata_keys`), so an image whose original
is already gone (a person's delete of an old upload, taken as the lifecycle rule's expiry:
thumbnails and doc kept) is found by its doc.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from image_pipeline.events import StorageObject, result_event
from image_pipeline.records import dead_letter_id
from infra.local import sample_images
from infra.local.gallery.server import Gallery, serve_gallery, url_of
from infra.local.local_stack import LocalStack
from infra.model.config import load_config
from infra.ops import dead_letters, erase
from infra.ops import target as targets
from tests.integration.conftest import TEST_SETTINGS, Harness

pytestmark = pytest.mark.integration


def dead_letter(harness: Harness, name: str, doc: dict[str, Any]) -> str:
    """A result event about `name` the metadata writer "kept failing" on, as Pub/Sub forwards
    it to the dead-letter topic; the record id once the recorder stored it."""
    obj = StorageObject(harness.uploads.name, name, doc["generation"], None, "image/jpeg", 1)
    source = f"erase-{uuid.uuid4().hex[:6]}"
    event = result_event("processed", obj, source, image={}, metadata=doc["metadata"])
    subscription = harness.stack.topology.subscriptions["metadata_writer"]
    message_id = harness.publish(
        subscription.dead_letter_topic,
        event.encoded(),
        **event.attributes,
        CloudPubSubDeadLetterSourceSubscription=subscription.name,
        CloudPubSubDeadLetterSourceSubscriptionProject=harness.info["project"],
        CloudPubSubDeadLetterSourceDeliveryCount="5",
    )
    record = harness.dead_letters.document(dead_letter_id(message_id))
    harness.wait_until(lambda: record.get().exists, 30, f"the dead letter about {name}")
    return record.id


def served(gallery: str, thumbnail: str) -> int:
    return requests.get(f"{gallery}thumbnail", params={"name": thumbnail}, timeout=30).status_code


def test_erase_by_owner_removes_everything_of_that_person_and_nothing_else(
    harness: Harness, local_stack: LocalStack, prefix: str, tmp_path: Path
) -> None:
    original = local_stack.config
    local_stack.redeploy(load_config(overrides={**TEST_SETTINGS, "metadata_keys": "owner"}))
    try:
        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(local_stack.info(), default=str))
        target = targets.from_stack_file(stack_file)
        alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
        hers = [f"{prefix}{alice}/a.jpg", f"{prefix}shared/b.jpg", f"{prefix}{alice}/old.jpg"]
        his = f"{prefix}{alice}/not-hers.jpg"  # under her prefix, but bob's
        owners = {**dict.fromkeys(hers, alice), his: bob}
        generations = {
            name: harness.upload(name, sample_images.jpeg(200 + i, 150), metadata={"owner": who})
            for i, (name, who) in enumerate(owners.items())
        }
        docs = {n: harness.wait_doc(n, lambda d: d.get("status") == "processed") for n in owners}
        # A person deletes an old upload; with uploads_lifecycle_days set it is taken as the
        # rule's expiry: the thumbnails and the doc stay, the original is gone.
        old = hers[2]
        harness.stack.expire_next_delete(old, generations[old])
        harness.uploads.blob(old).delete()
        harness.wait_doc(old, lambda d: d.get("status") == "expired")
        letters = {n: dead_letter(harness, n, docs[n]) for n in (hers[0], his)}
        thumbnails = {n: [t["name"] for t in docs[n]["thumbnails"]] for n in owners}
        gallery = serve_gallery(Gallery(target))
        try:
            assert served(url_of(gallery), thumbnails[old][0]) == 200

            def erase_cli(*flags: str) -> tuple[int, str]:
                out = io.StringIO()
                argv = ["--metadata", f"owner={alice}", "--stack", str(stack_file), *flags]
                code = erase.main([*argv, "--checkpoint", str(tmp_path / "erase.json")], out=out)
                return code, out.getvalue()

            code, dry = erase_cli()
            assert code == 0, dry
            assert dry.count("would erase") == 3 and "dry run: 3 images would be erased" in dry
            for name in hers:
                assert f"would erase gs://{harness.uploads.name}/{name}\n" in dry
                assert all(
                    f"thumbnail gs://{harness.thumbnails.name}/{t}" in dry for t in thumbnails[name]
                )
            assert f"original gs://{harness.uploads.name}/{hers[0]}#{generations[hers[0]]}" in dry
            assert f"dead letter {target.dead_letters_collection}/{letters[hers[0]]}" in dry
            assert his not in dry and bob not in dry
            assert harness.uploads.get_blob(hers[0]) is not None, "a dry run changes nothing"
            assert harness.doc(hers[0])["metadata"] == {"owner": alice}

            code, done = erase_cli("--execute")
            assert code == 0 and "erased 3, failed 0" in done, done
            for name in hers:
                assert harness.uploads.get_blob(name) is None
                assert harness.thumbnail_blobs(name) == []
                assert set(harness.doc(name) or {}) <= set(erase.TOMBSTONE), harness.doc(name)
                assert all(served(url_of(gallery), t) == 404 for t in thumbnails[name])
            assert not harness.dead_letters.document(letters[hers[0]]).get().exists
            abouts = [dead_letters.subject_of(r)[1] for r in dead_letters.load_all(target)]
            assert not set(hers) & set(abouts)

            # Bob's image, under her prefix, is as it was.
            assert harness.uploads.get_blob(his).generation == generations[his]
            assert sorted(b.name for b in harness.thumbnail_blobs(his)) == sorted(thumbnails[his])
            assert harness.doc(his) == docs[his]
            assert harness.dead_letters.document(letters[his]).get().exists
            assert served(url_of(gallery), thumbnails[his][0]) == 200

            # The deletes erase caused reach cleanup and write_metadata: nothing comes back.
            for name in hers[:2]:
                harness.settled_calls("cleanup", name)
            harness.settled_calls("write_metadata", hers[0], at_least=2)
            for name in hers:
                assert set(harness.doc(name) or {}) <= set(erase.TOMBSTONE), harness.doc(name)
            code, again = erase_cli("--execute")
            assert code == 0 and "erased 0, failed 0" in again and "erased gs://" not in again
        finally:
            gallery.shutdown()
    finally:
        local_stack.redeploy(original)
