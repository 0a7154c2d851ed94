"""The output fingerprint covers exactly what shapes the outputs.

Every setting is changed in turn, the same uploads are processed under the base and the
changed settings (in-memory GCS/Pub/Sub/Firestore), and what make_thumbnail and
write_metadata leave is compared: each thumbnail's bytes, name, content type, Cache-Control
and custom metadata, the result events, and the docs. A setting that changes any of it must
change the fingerprint; one that changes none of it must leave the fingerprint alone. A new
setting fails `test_every_setting_is_changed_here` until it has a value here, so it cannot
be missed.

Each changed value keeps the uploads processed: the fingerprint is about what is made of an
object, not whether it is (patterns and limits; see ``settings.OutputSettings``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import Any

import pytest
from conftest import NOW, FakePublisher, FakeStorage, FakeStore
from imagekit import encode, photo, push_body, push_event, resource, storage_event
from PIL import Image, ImageDraw

from image_pipeline import pipeline as stages
from image_pipeline.formats import Box
from image_pipeline.passthrough import FINGERPRINT_KEY
from image_pipeline.settings import Settings

BASE = Settings(
    project="p",
    uploads_bucket="src-bucket-a",
    thumbnails_bucket="thumbs-a",
    image_events_topic="image-events",
    thumbnail_sizes=(Box(64, 64), Box(32, 32)),
    output_rules=[{"name": "avatars", "include": ["avatars/**"], "sizes": ["48x48:cover"]}],
    metadata_keys=("owner",),
)

# Another valid value for every setting.
CHANGED: dict[str, Any] = {
    "thumbnail_sizes": (Box(40, 40),),
    "thumbnail_formats": ("jpeg",),
    "thumbnail_quality": 50,
    "cache_control": "private, max-age=60",
    "cover_focus": "detail",
    "output_rules": [{"name": "avatars", "include": ["avatars/**"], "sizes": ["24x24:cover"]}],
    "metadata_keys": ("owner", "album"),
    "max_input_bytes": 40 * 1024 * 1024,
    "max_input_pixels": 100_000_000,
    "max_input_frames": 5_000,
    "thumbnail_memory": "2Gi",
    "include_patterns": ("**",),
    "exclude_patterns": ("nothing/**",),
    "retry_window_seconds": 3600,
    "exif_include_gps": True,
    "animated": True,
    "uploads_lifecycle_days": 30,
    "project": "other-project",
    "uploads_bucket": "src-bucket-b",
    "thumbnails_bucket": "thumbs-b",
    "image_events_topic": "other-events",
    "images_collection": "images-b",
    "dead_letters_collection": "dead-letters-b",
    "firestore_database": "other-db",
    "thumbnail_prefix": "small/",
}
# What varies from run to run, or is the fingerprint itself, or says which object and where.
_NOT_OUTPUTS = {"timings", "madeAt", "outputFingerprint", "outputsGeneration", "updatedAt"}


def camera_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Acme"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "W", 4: (2.0, 17.0, 40.0)})
    return photo(200, 100, exif=exif.tobytes())


def busy_on_one_side() -> bytes:
    """A wide picture whose detail is at its right end: `detail` and `centre` crop apart."""
    im = Image.new("RGB", (300, 100), (120, 170, 220))
    draw = ImageDraw.Draw(im)
    rng = random.Random(7)
    for _ in range(400):
        x, y = rng.randint(230, 295), rng.randint(5, 95)
        draw.line(((x, y), (x + rng.randint(-8, 8), y + 8)), fill=(rng.randint(0, 255),) * 3)
    return encode(im, "PNG")


def three_frames() -> bytes:
    frames = [Image.new("RGB", (60, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


UPLOADS = {
    "photos/camera.jpg": (camera_jpeg(), {"owner": "alice", "album": "summer"}),
    "avatars/me.png": (busy_on_one_side(), {"owner": "bob"}),
    "anim/wave.gif": (three_frames(), {}),
}


def outputs(settings: Settings) -> str:
    """Everything the uploads leave, as text with the uploads bucket's name abstracted."""
    p = stages.Pipeline(settings, FakeStorage(), FakePublisher(), FakeStore(), clock=lambda: NOW)
    for name, (data, metadata) in UPLOADS.items():
        obj = p.storage.put(settings.uploads_bucket, name, data)
        res = resource(settings.uploads_bucket, name, obj.generation, len(data), metadata=metadata)
        stages.make_thumbnail(p, storage_event(res, event_id=f"e-{name}"), {})
    for i, (_, data, attrs) in enumerate(p.publisher.messages):
        stages.write_metadata(p, push_event(push_body(data, attrs, message_id=f"r-{i}")), {})
    thumbnails = {
        f"{bucket}/{name}": {
            "sha256": hashlib.sha256(thumb.data).hexdigest(),
            "contentType": thumb.upload.content_type,
            "cacheControl": thumb.upload.cache_control,
            "metadata": {k: v for k, v in thumb.metadata.items() if k != FINGERPRINT_KEY},
        }
        for (bucket, name), thumb in p.storage.live.items()
        if bucket != settings.uploads_bucket and thumb.upload is not None
    }
    events = [({**json.loads(d), "sourceEventId": None}, a) for _, d, a in p.publisher.messages]
    docs = sorted(p.store.collections[settings.images_collection].values(), key=str)
    everything = {"thumbnails": thumbnails, "events": events, "docs": docs}
    text = json.dumps(_without(everything, _NOT_OUTPUTS), sort_keys=True, default=str)
    assert len(thumbnails) >= len(docs) == len(UPLOADS), text  # all processed
    return text.replace(settings.uploads_bucket, "UPLOADS")


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list | tuple):
        return [_without(v, keys) for v in value]
    return value


@pytest.fixture(scope="module")
def base_outputs() -> str:
    return outputs(BASE)


def test_every_setting_is_changed_here():
    assert set(CHANGED) == {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize("setting", sorted(CHANGED))
def test_the_fingerprint_changes_exactly_when_an_output_does(setting, base_outputs):
    changed = dataclasses.replace(BASE, **{setting: CHANGED[setting]})
    assert getattr(changed, setting) != getattr(BASE, setting)
    outputs_changed = outputs(changed) != base_outputs
    fingerprint_changed = changed.outputs.fingerprint != BASE.outputs.fingerprint
    assert fingerprint_changed == outputs_changed, (
        f"{setting} changes {'an output' if outputs_changed else 'no output'} but "
        f"{'changes' if fingerprint_changed else 'not'} the fingerprint"
    )
