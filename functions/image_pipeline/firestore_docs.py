"""Firestore documents through two primitives: a transactional read-modify-write and a
create-if-absent. ``records.SERVER_TIME`` values become the server's timestamp. Every call
has a deadline (``deadlines``): an unreachable Firestore raises ``deadlines.Unavailable``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from image_pipeline import clients, deadlines
from image_pipeline.records import SERVER_TIME

Doc = dict[str, Any]


class Store(Protocol):
    def update(
        self, collection: str, doc_id: str, change: Callable[[Doc | None], Doc | None]
    ) -> Doc | None:
        """Atomically: read the doc, ``change`` it (None: leave it), write; return what was
        written. ``change`` may run more than once (transactions retry on contention)."""

    def create(self, collection: str, doc_id: str, doc: Doc) -> bool:
        """Write ``doc`` unless the id exists; False when it did."""


class FirestoreStore:
    """``client``: one made elsewhere (the operator tools' own, for the emulator or a project);
    by default the process's shared client for ``project`` and ``database``. Its calls give
    up after ``seconds``."""

    def __init__(
        self, project: str, database: str, client: Any = None, seconds: float = deadlines.SECONDS
    ) -> None:
        self.project = project
        self.database = database
        self.seconds = seconds
        self._given = None if client is None else deadlines.bound_firestore(client, seconds)

    def _client(self) -> Any:
        if self._given is not None:
            return self._given
        return clients.firestore_client(self.project, self.database)

    def _answering(self) -> AbstractContextManager[None]:
        """Around every call: no answer in time becomes ``Unavailable`` naming Firestore."""
        return deadlines.answering(
            "Firestore", self._client()._emulator_host or "firestore.googleapis.com", self.seconds
        )

    def update(
        self, collection: str, doc_id: str, change: Callable[[Doc | None], Doc | None]
    ) -> Doc | None:
        from google.cloud import firestore

        ref = self._client().collection(collection).document(doc_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Doc | None:
            snapshot = ref.get(transaction=transaction)
            doc = change(snapshot.to_dict() if snapshot.exists else None)
            if doc is not None:
                transaction.set(ref, _server_times(doc, firestore.SERVER_TIMESTAMP))
            return doc

        with self._answering():
            return run(self._client().transaction())

    def create(self, collection: str, doc_id: str, doc: Doc) -> bool:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import firestore

        ref = self._client().collection(collection).document(doc_id)
        try:
            with self._answering():
                ref.create(_server_times(doc, firestore.SERVER_TIMESTAMP))
        except AlreadyExists:
            return False
        return True


def _server_times(doc: Mapping[str, Any], server_time: object) -> Doc:
    return {k: server_time if v is SERVER_TIME else v for k, v in doc.items()}
