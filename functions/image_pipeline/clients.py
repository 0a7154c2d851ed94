"""Cloud clients, created on first use and then shared for the life of the process.

The imports happen inside the getters: google.cloud.* costs about a second to import, and
a cold start should not pay for clients a function never uses. Each client honours its
emulator variable (STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def storage_client(project: str) -> Any:
    import google.cloud.storage as storage  # `from google.cloud import` confuses mypy

    return storage.Client(project=project)


@functools.cache
def publisher_client() -> Any:
    import google.cloud.pubsub_v1 as pubsub_v1

    return pubsub_v1.PublisherClient()


@functools.cache
def firestore_client(project: str, database: str) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=project, database=database)
