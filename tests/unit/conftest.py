"""In-memory stand-ins for GCS, Pub/Sub and Firestore with the same generation and
transaction semantics, and a Pipeline wired to them."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import functions_framework
import pytest
from hypothesis import settings as hypothesis_settings
from imagekit import FUNCTIONS_MAIN

from image_pipeline.errors import GenerationMismatch
from image_pipeline.formats import Box
from image_pipeline.gcs import StoredObject, Upload
from image_pipeline.pipeline import Pipeline
from image_pipeline.records import SERVER_TIME
from image_pipeline.settings import Settings

NOW = dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC)

# Examples per property test (test_properties.py). HYPOTHESIS_PROFILE picks: `scripts/test unit`,
# the inner loop, runs "quick"; everything else (`scripts/test`, CI) the "thorough" default.
hypothesis_settings.register_profile("thorough", max_examples=100)
hypothesis_settings.register_profile("quick", max_examples=20)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))


@dataclasses.dataclass
class FakeObject:
    data: bytes
    generation: int
    upload: Upload | None = None  # what a pipeline wrote (content type, metadata, ...)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.upload.metadata) if self.upload else {}


class FakeStorage:
    """GCS without network: generations increase, preconditions are checked, and older
    generations stay readable (as in a versioned bucket, or a download that began before
    an overwrite)."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], FakeObject] = {}
        self.history: dict[tuple[str, str, int], bytes] = {}
        self._generations = itertools.count(1_700_000_000_000_001)
        self.uploads = 0
        self.after_download: Callable[[], None] | None = None  # one shot: to stage a race
        self.after_upload: Callable[[], None] | None = None  # one shot, after a pipeline write
        self.calls: collections.Counter[str] = collections.Counter()  # requests, per method

    def put(self, bucket: str, name: str, data: bytes, upload: Upload | None = None) -> FakeObject:
        """Test helper: an unconditional upload, returning the new object."""
        obj = FakeObject(data=data, generation=next(self._generations), upload=upload)
        self.live[bucket, name] = obj
        self.history[bucket, name, obj.generation] = data
        return obj

    def download(self, bucket: str, name: str, generation: int) -> bytes | None:
        self.calls["download"] += 1
        data = self.history.get((bucket, name, generation))
        hook, self.after_download = self.after_download, None
        if hook is not None:
            hook()
        return data

    def stat(self, bucket: str, name: str) -> StoredObject | None:
        self.calls["stat"] += 1
        obj = self.live.get((bucket, name))
        return StoredObject(name, obj.generation, obj.metadata) if obj else None

    def upload(
        self, bucket: str, name: str, upload: Upload, *, if_generation_match: int
    ) -> StoredObject:
        self.calls["upload"] += 1
        current = self.live.get((bucket, name))
        if (current.generation if current else 0) != if_generation_match:
            raise GenerationMismatch(name)
        written = self.put(bucket, name, upload.data, upload)
        self.uploads += 1
        hook, self.after_upload = self.after_upload, None
        if hook is not None:
            hook()
        return StoredObject(name, written.generation, written.metadata)

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        self.calls["list"] += 1
        return [
            StoredObject(name, obj.generation, obj.metadata)
            for (b, name), obj in sorted(self.live.items())
            if b == bucket and name.startswith(prefix) and "/" not in name[len(prefix) :]
        ]

    def delete(self, bucket: str, name: str, *, if_generation_match: int) -> None:
        self.calls["delete"] += 1
        current = self.live.get((bucket, name))
        if current is None:
            return
        if current.generation != if_generation_match:
            raise GenerationMismatch(name)
        del self.live[bucket, name]

    def names(self, bucket: str) -> list[str]:
        return sorted(name for b, name in self.live if b == bucket)


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail_with: Exception | None = None

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.messages.append((topic, data, dict(attributes)))
        return str(len(self.messages))


class FakeStore:
    """Firestore without network: ``update`` is atomic; SERVER_TIME becomes ``NOW``."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.writes = 0

    def _docs(self, collection: str) -> dict[str, dict[str, Any]]:
        return self.collections.setdefault(collection, {})

    def _stamp(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return {k: NOW if v is SERVER_TIME else v for k, v in doc.items()}

    def update(
        self,
        collection: str,
        doc_id: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> dict[str, Any] | None:
        docs = self._docs(collection)
        current = docs.get(doc_id)
        doc = change(dict(current) if current is not None else None)
        if doc is not None:
            docs[doc_id] = self._stamp(doc)
        return doc

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """What ``infra.ops.documents.Documents.get`` reads (the tools' extra read)."""
        doc = self._docs(collection).get(doc_id)
        return dict(doc) if doc is not None else None

    def create(self, collection: str, doc_id: str, doc: dict[str, Any]) -> bool:
        docs = self._docs(collection)
        if doc_id in docs:
            return False
        docs[doc_id] = self._stamp(doc)
        return True


@pytest.fixture
def settings() -> Settings:
    return Settings(
        project="test-project",
        uploads_bucket="uploads",
        thumbnails_bucket="thumbs",
        image_events_topic="image-events",
        thumbnail_sizes=(Box(64, 64), Box(32, 32)),
        thumbnail_formats=("webp", "jpeg"),
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def pipeline(settings: Settings, store: FakeStore) -> Pipeline:
    return Pipeline(
        settings=settings,
        storage=FakeStorage(),
        publisher=FakePublisher(),
        store=store,
        clock=lambda: NOW,
    )


@pytest.fixture
def function_client(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> Callable[[str], Any]:
    """A Flask test client for one target of functions/main.py, using ``pipeline``.

    functions-framework registers the module as ``sys.modules["main"]``, which is the
    CDKTF app's name at the repository root, so the previous entry is put back.
    """
    for key, value in pipeline.settings.to_env().items():
        monkeypatch.setenv(key, value)

    def client(target: str) -> Any:
        previous = sys.modules.get("main")
        try:
            app = functions_framework.create_app(target, str(FUNCTIONS_MAIN), "cloudevent")
            module = sys.modules["main"]
        finally:
            if previous is None:
                sys.modules.pop("main", None)
            else:
                sys.modules["main"] = previous
        monkeypatch.setattr(module, "PIPELINE", pipeline)
        return app.test_client()

    return client
