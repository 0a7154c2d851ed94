"""GcsStorage over a recording fake of the google-cloud-storage client: every call gets a
bounded retry and an explicit timeout, and the library's errors become the adapter's."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud.storage.retry import ConditionalRetryPolicy

from image_pipeline import gcs
from image_pipeline.errors import GenerationMismatch
from image_pipeline.gcs import GcsStorage, Upload


class Recorder:
    """Shared by the fake client, buckets and blobs: (call, kwargs) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.raises: dict[str, Exception] = {}

    def record(self, call: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((call, kwargs))
        if call in self.raises:
            raise self.raises[call]


class FakeBlob:
    def __init__(self, rec: Recorder, name: str, generation: int | None = None) -> None:
        self.rec, self.name, self.generation = rec, name, generation or 7
        self.metadata: dict[str, str] | None = None
        self.cache_control: str | None = None

    def download_as_bytes(self, **kwargs: Any) -> bytes:
        self.rec.record("download", kwargs)
        return b"bytes"

    def upload_from_string(self, data: bytes, **kwargs: Any) -> None:
        self.rec.record("upload", kwargs)

    def delete(self, **kwargs: Any) -> None:
        self.rec.record("delete", kwargs)


class FakeBucket:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def blob(self, name: str, generation: int | None = None) -> FakeBlob:
        return FakeBlob(self.rec, name, generation)

    def get_blob(self, name: str, **kwargs: Any) -> FakeBlob:
        self.rec.record("stat", kwargs)
        return FakeBlob(self.rec, name)


class FakeClient:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def bucket(self, name: str) -> FakeBucket:
        return FakeBucket(self.rec)

    def list_blobs(self, bucket: str, **kwargs: Any) -> list[FakeBlob]:
        self.rec.record("list", kwargs)
        return [FakeBlob(self.rec, f"{kwargs['prefix']}a.webp")]


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(gcs.clients, "storage_client", lambda project: FakeClient(recorder))
    return recorder


UPLOAD = Upload(data=b"x", content_type="image/webp", cache_control="c", metadata={"k": "v"})


def call_everything(gcs: GcsStorage) -> None:
    gcs.download("b", "n", 5)
    gcs.stat("b", "n")
    gcs.upload("b", "n", UPLOAD, if_generation_match=0)
    gcs.list("b", "p/")
    gcs.delete("b", "n", if_generation_match=7)


def test_every_call_has_a_timeout_and_a_bounded_retry(rec):
    call_everything(GcsStorage("p"))
    assert [call for call, _ in rec.calls] == ["download", "stat", "upload", "list", "delete"]
    for call, kwargs in rec.calls:
        assert kwargs["timeout"] == gcs.SECONDS, call
        retry = kwargs["retry"]
        if call in ("upload", "delete"):
            assert isinstance(retry, ConditionalRetryPolicy), call
            conditioned = {"ifGenerationMatch": kwargs["if_generation_match"]}
            retry = retry.get_retry_policy_if_conditions_met(query_params=conditioned)
        assert retry.timeout == gcs.SECONDS < 120, call


def test_unconditioned_writes_would_not_be_retried(rec):
    GcsStorage("p").upload("b", "n", UPLOAD, if_generation_match=0)
    policy = rec.calls[0][1]["retry"]
    assert policy.get_retry_policy_if_conditions_met(query_params={}) is None


@pytest.mark.parametrize(
    ("call", "exc", "expected"),
    [
        ("download", gexc.NotFound("gone"), None),
        ("upload", gexc.PreconditionFailed("412"), GenerationMismatch),
        ("delete", gexc.NotFound("gone"), None),
        ("delete", gexc.PreconditionFailed("412"), GenerationMismatch),
    ],
)
def test_library_errors_become_the_adapters(rec, call, exc, expected):
    rec.raises[call] = exc
    gcs = GcsStorage("p")
    run = {
        "download": lambda: gcs.download("b", "n", 5),
        "upload": lambda: gcs.upload("b", "n", UPLOAD, if_generation_match=0),
        "delete": lambda: gcs.delete("b", "n", if_generation_match=7),
    }[call]
    if expected is GenerationMismatch:
        with pytest.raises(GenerationMismatch):
            run()
    else:
        assert run() is None
