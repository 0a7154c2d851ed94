"""Output rules through the stages: per-path outputs, regeneration after a rules change,
metadata passthrough and the URLs in the doc (in-memory GCS/Pub/Sub/Firestore)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

import pytest
from imagekit import notification, photo, push_body, push_event, resource, storage_event
from PIL import Image

from image_pipeline import pipeline as stages
from image_pipeline import thumbnails
from image_pipeline.formats import Box
from image_pipeline.output_rules import parse_rules
from image_pipeline.passthrough import MAX_CUSTOM_METADATA_BYTES
from image_pipeline.records import image_doc_id

RULES = [
    {"name": "avatars", "include": ["avatars/**"], "sizes": ["64x64:cover", "32x32:cover"]},
    {"name": "products", "include": ["products/**"], "sizes": ["48x48"], "formats": ["png"]},
]


def with_settings(p: stages.Pipeline, **changes: object) -> stages.Pipeline:
    """The same stores under other settings: a redeploy, a minute later."""
    later = p.clock() + dt.timedelta(minutes=1)
    return dataclasses.replace(
        p, settings=dataclasses.replace(p.settings, **changes), clock=lambda: later
    )


def process(p: stages.Pipeline, name: str, metadata: dict[str, str] | None = None) -> dict:
    """Upload (unless already there), run make_thumbnail and write_metadata; the doc."""
    bucket = p.settings.uploads_bucket
    live = p.storage.live.get((bucket, name))
    if live is None:
        live = p.storage.put(bucket, name, photo(400, 300))
    res = resource(bucket, name, live.generation, len(live.data), metadata=metadata or {})
    before = len(p.publisher.messages)
    stages.make_thumbnail(p, storage_event(res), {})
    for i, (_, data, attrs) in enumerate(p.publisher.messages[before:], start=before):
        stages.write_metadata(p, push_event(push_body(data, attrs, message_id=f"r-{i}")), {})
    return p.store.collections[p.settings.images_collection][image_doc_id(bucket, name)]


def leaves(p: stages.Pipeline, name: str) -> list[str]:
    folder = thumbnails.thumbnail_folder(p.settings.thumbnail_prefix, "uploads", name)
    return sorted(n[len(folder) :] for n in p.storage.names("thumbs") if n.startswith(folder))


def test_two_paths_under_two_rules_get_their_rules_outputs(pipeline):
    p = with_settings(pipeline, output_rules=parse_rules(RULES))
    avatar, product, other = (
        process(p, "avatars/u1.jpg"),
        process(p, "products/shoe.jpg"),
        process(p, "misc/cat.jpg"),
    )
    assert leaves(p, "avatars/u1.jpg") == [
        f"{s}-c.{f}" for s in ("32x32", "64x64") for f in ("jpeg", "webp")
    ]
    assert leaves(p, "products/shoe.jpg") == ["48x48.png"]
    assert leaves(p, "misc/cat.jpg") == [
        f"{s}.{f}" for s in ("32x32", "64x64") for f in ("jpeg", "webp")
    ]
    assert (avatar["rule"], product["rule"], other["rule"]) == ("avatars", "products", None)
    assert {(t["width"], t["height"], t["box"]) for t in avatar["thumbnails"]} == {
        (64, 64, "64x64:cover"),
        (32, 32, "32x32:cover"),
    }
    assert [(t["width"], t["height"]) for t in product["thumbnails"]] == [(48, 36)]
    for doc in (avatar, product, other):
        assert doc["outputFingerprint"] == p.settings.outputs.fingerprint


def test_every_thumbnail_entry_carries_its_gs_uri_and_https_url(pipeline):
    doc = process(pipeline, "dir/a b#1%ü.jpg")
    entry = doc["thumbnails"][0]
    assert entry["uri"] == f"gs://thumbs/{entry['name']}"
    assert entry["url"] == (
        "https://storage.googleapis.com/thumbs/thumbnails/dir/a%20b%231%25%C3%BC.jpg/"
        + entry["name"].rsplit("/", 1)[1]
    )


def test_a_rules_change_regenerates_writes_first_and_leaves_no_old_output(pipeline):
    name = "avatars/u1.jpg"
    old = process(pipeline, name)
    assert old["rule"] is None and leaves(pipeline, name) == [
        "32x32.jpeg",
        "32x32.webp",
        "64x64.jpeg",
        "64x64.webp",
    ]
    new_p = with_settings(pipeline, output_rules=parse_rules(RULES[:1]), thumbnail_quality=50)
    storage = new_p.storage
    delete = storage.delete

    def delete_only_with_the_new_outputs_in_place(bucket, thumb, *, if_generation_match):
        # At each removal every new output is already written: never an object without any.
        new = {f"thumbnails/{name}/{leaf}" for leaf in ("64x64-c.webp", "32x32-c.jpeg")}
        assert new <= set(storage.names("thumbs")), storage.names("thumbs")
        delete(bucket, thumb, if_generation_match=if_generation_match)

    storage.delete = delete_only_with_the_new_outputs_in_place
    doc = process(new_p, name)
    assert leaves(new_p, name) == ["32x32-c.jpeg", "32x32-c.webp", "64x64-c.jpeg", "64x64-c.webp"]
    assert doc["rule"] == "avatars"
    assert (
        doc["outputFingerprint"] == new_p.settings.outputs.fingerprint != old["outputFingerprint"]
    )
    assert [t["name"].rsplit("/", 1)[1] for t in doc["thumbnails"]] == [
        "64x64-c.webp",
        "64x64-c.jpeg",
        "32x32-c.webp",
        "32x32-c.jpeg",
    ]


def test_the_same_name_under_a_new_fingerprint_is_rewritten_not_skipped(pipeline):
    name = "photo.jpg"
    process(pipeline, name)
    before = pipeline.storage.live["thumbs", f"thumbnails/{name}/64x64.webp"]
    lower = with_settings(pipeline, thumbnail_quality=20)
    process(lower, name)
    after = lower.storage.live["thumbs", f"thumbnails/{name}/64x64.webp"]
    assert after.generation > before.generation and len(after.data) < len(before.data)
    uploads = lower.storage.uploads
    process(lower, name)  # a redelivery under the same rules writes nothing
    assert lower.storage.uploads == uploads


def test_a_late_result_of_the_old_rules_does_not_replace_the_new_doc(pipeline):
    name = "late.jpg"
    process(pipeline, name)
    old_message = pipeline.publisher.messages[-1]
    new_p = with_settings(pipeline, thumbnail_sizes=(Box(48, 48, "cover"),))
    process(new_p, name)
    _, data, attrs = old_message  # redelivered after the new result was written
    stages.write_metadata(new_p, push_event(push_body(data, attrs, message_id="again")), {})
    doc = new_p.store.collections["images"][image_doc_id("uploads", name)]
    assert doc["outputFingerprint"] == new_p.settings.outputs.fingerprint


def test_named_custom_metadata_reaches_thumbnails_and_doc_and_nothing_by_default(pipeline):
    meta = {"owner": "u-42", "album": "summer", "secret": "no"}
    plain = process(pipeline, "plain.jpg", meta)
    assert plain["metadata"] == {}
    thumb = pipeline.storage.live["thumbs", "thumbnails/plain.jpg/64x64.webp"]
    assert not {"owner", "album", "secret"} & set(thumb.metadata)

    p = with_settings(pipeline, metadata_keys=("owner", "album", "missing"))
    doc = process(p, "copied.jpg", meta)
    assert doc["metadata"] == {"owner": "u-42", "album": "summer"}
    for entry in doc["thumbnails"]:
        stored = p.storage.live["thumbs", entry["name"]].metadata
        assert stored["owner"] == "u-42" and stored["album"] == "summer"
        assert "secret" not in stored and stored["source-name"] == "copied.jpg"


def test_metadata_over_gcs_8_kib_is_left_out_and_logged(pipeline, capsys):
    big = {"a": "x" * 4050, "b": "y" * 4050, "c": "z" * 10}
    p = with_settings(pipeline, metadata_keys=("a", "b", "c"))
    doc = process(p, "big.jpg", big)
    assert set(doc["metadata"]) == {"a", "c"}  # b would take the thumbnail over 8 KiB
    for entry in doc["thumbnails"]:
        stored = p.storage.live["thumbs", entry["name"]].metadata
        assert sum(len(k) + len(v) for k, v in stored.items()) <= MAX_CUSTOM_METADATA_BYTES
    assert '"omitted":["b"]' in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "bell\x07", "del\x7f", "\ud800"])
def test_a_value_cloud_storage_could_not_hold_is_never_copied(pipeline, capsys, bad):
    p = with_settings(pipeline, metadata_keys=("owner", "note", "tab"))
    doc = process(p, "odd.jpg", {"owner": "u-42", "note": bad, "tab": "a\tb é"})
    assert doc["metadata"] == {"owner": "u-42", "tab": "a\tb é"}  # HTAB and UTF-8 are fine
    for entry in doc["thumbnails"]:
        stored = p.storage.live["thumbs", entry["name"]].metadata
        assert "note" not in stored and stored["owner"] == "u-42"
    assert '"omitted":["note"]' in capsys.readouterr().out


def test_cover_thumbnails_decode_to_exactly_their_box(pipeline):
    p = with_settings(pipeline, thumbnail_sizes=(Box(40, 40, "cover"), Box(40, 40)))
    doc = process(p, "sq.jpg")
    got = {}
    for entry in doc["thumbnails"]:
        data = p.storage.live["thumbs", entry["name"]].data
        got[entry["name"].rsplit("/", 1)[1]] = Image.open(io.BytesIO(data)).size
    assert got == {
        "40x40-c.webp": (40, 40),
        "40x40-c.jpeg": (40, 40),
        "40x40.webp": (40, 30),
        "40x40.jpeg": (40, 30),
    }


@pytest.mark.parametrize("rules", [json.dumps(RULES)])
def test_cleanup_removes_every_output_of_every_mode(pipeline, rules):
    p = with_settings(pipeline, output_rules=parse_rules(rules))
    process(p, "avatars/gone.jpg")
    generation = p.storage.live["uploads", "avatars/gone.jpg"].generation
    del p.storage.live["uploads", "avatars/gone.jpg"]
    stages.cleanup(p, push_event(notification("uploads", "avatars/gone.jpg", generation)), {})
    assert leaves(p, "avatars/gone.jpg") == []


def test_an_older_generation_never_replaces_a_newer_ones_cover_thumbnails(pipeline):
    p = with_settings(pipeline, thumbnail_sizes=(Box(40, 40, "cover"),))
    name = "order.jpg"
    older = p.storage.put("uploads", name, photo(400, 300))
    older_res = resource("uploads", name, older.generation, len(older.data))
    p.storage.put("uploads", name, photo(300, 400))  # N+1 overwrote N before N's event ran
    newer_doc = process(p, name)
    assert newer_doc["generation"] > older.generation
    stages.make_thumbnail(p, storage_event(older_res, event_id="late"), {})
    for leaf in ("40x40-c.webp", "40x40-c.jpeg"):
        held = p.storage.live["thumbs", f"thumbnails/{name}/{leaf}"].metadata
        assert held["source-generation"] == str(newer_doc["generation"])
