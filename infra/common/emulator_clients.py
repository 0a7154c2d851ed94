"""Google Cloud clients pointed at the local emulators.

The client libraries find emulators through `*_EMULATOR_HOST` read at construction, so the
variables are set only while the clients are built: the caller's environment is left as
it was and two stacks in one process would not cross wires.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import google.cloud.pubsub_v1 as pubsub_v1  # not `from google.cloud import`: that confuses mypy
import google.cloud.storage as storage
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def patched_env(values: Mapping[str, str]) -> Iterator[None]:
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


@dataclass
class Clients:
    project: str
    publisher: pubsub_v1.PublisherClient
    subscriber: pubsub_v1.SubscriberClient
    storage: storage.Client
    firestore: firestore.Client

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.subscriber.close()
        with contextlib.suppress(Exception):
            self.publisher.transport.close()
        with contextlib.suppress(Exception):
            self.firestore.close()


def emulator_clients(project: str, env: Mapping[str, str], database: str) -> Clients:
    """Clients for the emulators named by `env` (the `env` of `.local/stack.json`); Firestore
    opened on `database`, the one the functions write (their `FIRESTORE_DATABASE`)."""
    with patched_env(env):
        return Clients(
            project=project,
            publisher=pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005)
            ),
            subscriber=pubsub_v1.SubscriberClient(),
            storage=storage.Client(project=project, credentials=AnonymousCredentials()),
            firestore=firestore.Client(
                project=project, credentials=AnonymousCredentials(), database=database
            ),
        )


def emulator_subscriber(env: Mapping[str, str]) -> pubsub_v1.SubscriberClient:
    """A Pub/Sub subscriber alone, for the emulator named by `env`."""
    with patched_env(env):
        return pubsub_v1.SubscriberClient()
