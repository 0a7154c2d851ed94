"""Cloud clients, created on first use and shared for the life of the process. The imports
happen inside the getters (google.cloud.* costs about a second to import: a cold start should
not pay for a client it never uses), and the first use is made under a lock, so a cold
instance serving several requests at once makes one client of each kind (docs/capacity.md).
Each client honours its emulator variable (``*_EMULATOR_HOST``); the clients are thread-safe.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from image_pipeline import deadlines

_creating = threading.Lock()


def shared[T](make: Callable[..., T]) -> Callable[..., T]:
    """``functools.cache`` whose first call per arguments runs once across threads."""
    cached = functools.cache(make)

    @functools.wraps(make)
    def get(*args: Any) -> T:
        with _creating:
            return cached(*args)

    return get


@shared
def storage_client(project: str) -> Any:
    import google.cloud.storage as storage  # `from google.cloud import` confuses mypy

    # google-cloud-storage 3.17 fetches each bucket's metadata in the background for its
    # telemetry (Client._bucket_metadata_cache): a storage.buckets.get the functions'
    # accounts are not granted (object roles only), so Cloud Storage refuses it. Not asked.
    os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    return storage.Client(project=project)


@shared
def publisher_client() -> Any:
    import google.cloud.pubsub_v1 as pubsub_v1

    return pubsub_v1.PublisherClient()


@shared
def firestore_client(project: str, database: str) -> Any:
    from google.cloud import firestore

    return deadlines.bound_firestore(firestore.Client(project=project, database=database))
