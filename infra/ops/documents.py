"""Firestore documents as the operator tools and the local stack read and change them: the
functions' own adapter (transactional writes) plus the reads and the delete a tool needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from image_pipeline import deadlines
from image_pipeline.firestore_docs import Doc, FirestoreStore

_PAGE = 300  # documents per query page


class Documents(FirestoreStore):
    """``client`` must be opened on ``database``: the one the functions write."""

    def __init__(self, client: Any, database: str, seconds: float = deadlines.SECONDS) -> None:
        super().__init__(client.project, database, client, seconds)

    def get(self, collection: str, doc_id: str) -> Doc | None:
        """The document, or None when there is none."""
        with self._answering():
            snapshot = self._client().collection(collection).document(doc_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def get_many(self, collection: str, doc_ids: Iterable[str]) -> dict[str, Doc]:
        """The documents that exist among ``doc_ids`` (one batched read), by id."""
        refs = [self._client().collection(collection).document(i) for i in doc_ids]
        with self._answering():
            return {s.id: s.to_dict() for s in self._client().get_all(refs) if s.exists}

    def stream(self, collection: str) -> Iterator[tuple[str, Doc]]:
        """Every document of the collection with its id, in no particular order (the
        deadline bounds the whole stream: a page, not an archive)."""
        with self._answering():
            for snapshot in self._client().collection(collection).stream():
                yield snapshot.id, snapshot.to_dict()

    def delete(self, collection: str, doc_id: str) -> None:
        """Removes the document (nothing happens when there is none)."""
        with self._answering():
            self._client().collection(collection).document(doc_id).delete()

    def by_name(self, collection: str, prefix: str, after: str = "") -> Iterator[tuple[str, Doc]]:
        """The documents whose `name` starts with ``prefix`` and sorts after ``after``, in name
        order, a page at a time (each page within the deadline). Docs without a `name` are
        not listed. The single-field index on `name` serves it (infra.model.topology)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._client().collection(collection).order_by("name").limit(_PAGE)
        if after >= prefix:
            query = query.where(filter=FieldFilter("name", ">", after))
        else:
            query = query.where(filter=FieldFilter("name", ">=", prefix))
        while True:
            with self._answering():
                page = list(query.stream())
            for snapshot in page:
                doc = snapshot.to_dict()
                if not str(doc.get("name")).startswith(prefix):
                    return
                yield snapshot.id, doc
            if len(page) < _PAGE:
                return
            query = query.start_after(page[-1])
