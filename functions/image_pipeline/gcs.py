"""Cloud Storage through a few primitives with generation preconditions: the pipeline decides
over them (``image_pipeline.thumbnails``), against GCS and the unit tests' fake alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from image_pipeline import clients, deadlines
from image_pipeline.errors import GenerationMismatch

# Each call, its retries included, gives up after this: a dead connection surfaces as a
# transient error while the platform can still redeliver (the delivery, not the call, is
# the unit of retry).
SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class StoredObject:
    name: str
    generation: int
    metadata: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Upload:
    """The bytes and attributes of an object to write."""

    data: bytes
    content_type: str
    cache_control: str
    metadata: Mapping[str, str]


class Storage(Protocol):
    def download(self, bucket: str, name: str, generation: int) -> bytes | None:
        """That generation's bytes; None when it no longer exists."""

    def stat(self, bucket: str, name: str) -> StoredObject | None:
        """The live object, or None."""

    def upload(
        self, bucket: str, name: str, upload: Upload, *, if_generation_match: int
    ) -> StoredObject:
        """Write if the live generation is ``if_generation_match`` (0: absent), else raise
        ``GenerationMismatch``; the object written, as the write's response describes it
        (its generation is the server's, no extra request)."""

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Objects directly under ``prefix`` (not in deeper "folders")."""

    def delete(self, bucket: str, name: str, *, if_generation_match: int) -> None:
        """Delete that generation; nothing if the object is gone, ``GenerationMismatch``
        if it was replaced."""


class GcsStorage:
    """``Storage`` on google-cloud-storage, every call with a bounded retry and timeout."""

    def __init__(self, project: str) -> None:
        self.project = project

    def _bucket(self, bucket: str) -> Any:
        return clients.storage_client(self.project).bucket(bucket)

    def download(self, bucket: str, name: str, generation: int) -> bytes | None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket(bucket).blob(name, generation=generation)
        try:
            return blob.download_as_bytes(**deadlines.storage_call(SECONDS))
        except NotFound:
            return None

    def stat(self, bucket: str, name: str) -> StoredObject | None:
        blob = self._bucket(bucket).get_blob(name, **deadlines.storage_call(SECONDS))
        return _stored(blob) if blob is not None else None

    def upload(
        self, bucket: str, name: str, upload: Upload, *, if_generation_match: int
    ) -> StoredObject:
        from google.api_core.exceptions import PreconditionFailed

        blob = self._bucket(bucket).blob(name)
        blob.cache_control = upload.cache_control
        blob.metadata = dict(upload.metadata)
        try:
            blob.upload_from_string(
                upload.data,
                content_type=upload.content_type,
                if_generation_match=if_generation_match,
                **deadlines.storage_call(SECONDS, write=True),
            )
        except PreconditionFailed as exc:
            raise GenerationMismatch(f"gs://{bucket}/{name} changed") from exc
        return _stored(blob)  # the library sets the blob's properties from the response

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        blobs = clients.storage_client(self.project).list_blobs(
            bucket, prefix=prefix, delimiter="/", **deadlines.storage_call(SECONDS)
        )
        return [_stored(blob) for blob in blobs]

    def delete(self, bucket: str, name: str, *, if_generation_match: int) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            blob = self._bucket(bucket).blob(name)
            blob.delete(
                if_generation_match=if_generation_match,
                **deadlines.storage_call(SECONDS, write=True),
            )
        except NotFound:
            pass
        except PreconditionFailed as exc:
            raise GenerationMismatch(f"gs://{bucket}/{name} changed") from exc


def _stored(blob: Any) -> StoredObject:
    return StoredObject(
        name=blob.name, generation=int(blob.generation), metadata=blob.metadata or {}
    )
