"""Feeding and reading the in-memory Pipeline of conftest: an upload, a processed object,
what was published, the docs and thumbnails written, the log lines."""

from __future__ import annotations

import json

from imagekit import photo, push_body, push_event, resource, storage_event

from image_pipeline import pipeline as stages
from image_pipeline.records import image_doc_id


def upload(p: stages.Pipeline, name: str, data: bytes, **res_fields):
    """Put ``data`` in the uploads bucket; return its object resource."""
    obj = p.storage.put(p.settings.uploads_bucket, name, data)
    return resource(p.settings.uploads_bucket, name, obj.generation, len(data), **res_fields)


def published(p: stages.Pipeline) -> list[tuple[dict, dict]]:
    return [(json.loads(data), attrs) for _, data, attrs in p.publisher.messages]


def deliver_results(p: stages.Pipeline, indexes: list[int]) -> None:
    """Push published result events to write_metadata, in the given order."""
    for i in indexes:
        _, data, attrs = p.publisher.messages[i]
        body = push_body(data, attrs, message_id=f"r-{i}")
        stages.write_metadata(p, push_event(body), {})


def image_doc(p: stages.Pipeline, name: str) -> dict | None:
    docs = p.store.collections.get(p.settings.images_collection, {})
    return docs.get(image_doc_id(p.settings.uploads_bucket, name))


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def process(pipeline: stages.Pipeline, name: str) -> dict:
    res = upload(pipeline, name, photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res, event_id=f"e-{res['generation']}"), {})
    return res


def thumbs_of(pipeline: stages.Pipeline, name: str) -> list[str]:
    prefix = f"thumbnails/{name}/"
    return [n for n in pipeline.storage.names("thumbs") if n.startswith(prefix)]
