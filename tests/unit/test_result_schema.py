"""The result event schema: what the publishers build passes it, and the metadata writer
refuses (as malformed, to be dead-lettered) anything off it, naming where."""

from __future__ import annotations

import json

import pytest
from imagekit import push_body, push_event
from pipeline_kit import image_doc, published, upload

from image_pipeline import events, result_schema
from image_pipeline import pipeline as stages
from image_pipeline.errors import MalformedEvent

OBJ = events.StorageObject("uploads", "a.jpg", 7, 1, "image/jpeg", 10, "2026-01-01T00:00:00Z")
THUMB = {
    "bucket": "thumbs",
    "name": "thumbnails/a.jpg/64x64.webp",
    "width": 64,
    "height": 48,
    "contentType": "image/webp",
    "size": 100,
    "frames": 1,
}
IMAGE = {"width": 640, "height": 480, "format": "JPEG", "mode": "RGB", "frames": 1, "exif": {}}


def built() -> list[events.ResultEvent]:
    return [
        events.result_event(
            "processed", OBJ, "e", image=IMAGE, thumbnails=[THUMB], timings={"core_ms": 1.5}
        ),
        events.result_event("failed", OBJ, "e", error={"reason": "corrupt", "message": "bad"}),
        events.result_event("deleted", OBJ, "e", timings={"delete_ms": 0.2}),
        events.result_event("expired", OBJ, "e", expiredAt="2026-02-01T00:00:00Z"),
    ]


@pytest.mark.parametrize("result", built(), ids=lambda r: r.data["status"])
def test_what_the_publishers_build_is_on_the_schema(result):
    assert result_schema.problem(json.loads(result.encoded())) is None


PROCESSED = built()[0].data
OFF_SCHEMA = {
    "thumbnails a string": ({**PROCESSED, "thumbnails": "abc"}, "result.thumbnails is not a list"),
    "thumbnails of numbers": ({**PROCESSED, "thumbnails": [1, 2]}, "[0] is not an object"),
    "a thumbnail without a name": (
        {**PROCESSED, "thumbnails": [{"width": 1}]},
        "result.thumbnails[0].bucket is missing",
    ),
    "generation a string": ({**PROCESSED, "generation": "7"}, "result.generation is not"),
    "generation true": ({**PROCESSED, "generation": True}, "result.generation is not"),
    "processed without image": (
        {k: v for k, v in PROCESSED.items() if k != "image"},
        "result.image is missing",
    ),
    "failed without error": ({**PROCESSED, "status": "failed", "error": None}, ".error is not"),
    "unknown status": ({**PROCESSED, "status": "gone"}, "result.status is not one of"),
    "schema 2": ({**PROCESSED, "schema": 2}, "result.schema is not 1"),
    "madeAt not a time": ({**PROCESSED, "madeAt": "soon"}, "result.madeAt is not an RFC 3339"),
    "timings not numbers": ({**PROCESSED, "timings": {"a": "1"}}, "result.timings['a']"),
    "not an object": ([1, 2], "result is not an object"),
}


@pytest.mark.parametrize("case", OFF_SCHEMA)
def test_off_schema_results_are_named(case):
    data, expected = OFF_SCHEMA[case]
    found = result_schema.problem(data)
    assert found is not None and expected in found, found


@pytest.mark.parametrize("case", OFF_SCHEMA)
def test_the_metadata_writer_refuses_them_and_stores_nothing(pipeline, case):
    data, _ = OFF_SCHEMA[case]
    body = push_body(json.dumps(data).encode(), {"eventType": "image.processed"})
    with pytest.raises(MalformedEvent):
        stages.write_metadata(pipeline, push_event(body), {})
    assert pipeline.store.collections == {}


def test_a_publisher_off_the_schema_fails_before_publishing(pipeline, monkeypatch):
    res = upload(pipeline, "a.jpg", b"not an image")
    real = events.result_event
    monkeypatch.setattr(
        events,
        "result_event",
        lambda *a, **k: events.ResultEvent({**real(*a, **k).data, "error": 1}, {}),
    )
    with pytest.raises(ValueError, match="off its schema"):
        stages.make_thumbnail(pipeline, push_event_for(res), {})
    assert published(pipeline) == [] and image_doc(pipeline, "a.jpg") is None


def push_event_for(res: dict):
    from imagekit import storage_event

    return storage_event(res)
