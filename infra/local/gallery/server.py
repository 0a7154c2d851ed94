"""The gallery: a small web page over the local stack, served on 127.0.0.1 (docs/gallery.md).

The browser only ever talks to the gallery (thumbnails are streamed through it), and every
request passes `infra.local.http_guard` first.
"""

from __future__ import annotations

import base64
import functools
import io
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

from blurhash_rs import BlurhashDecodeError, blurhash_decode

from image_pipeline.events import OUTPUT_MARKER, StorageObject
from image_pipeline.pipeline import skip_reason
from image_pipeline.records import image_doc_id
from infra.common.object_names import name_error
from infra.local.http_guard import GuardedHandler, Refused, serve_in_thread
from infra.ops import dead_letters
from infra.ops import target as targets

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# A page polled every second answers within seconds, whichever dependency is down: each
# Firestore or Cloud Storage call of a request gives up after this long.
DEADLINE_SECONDS = 4.0
MAX_ITEMS = 500  # a page, not an archive: the newest uploads
_OPAQUE = "application/octet-stream"
# The page loads only its own files and cannot be framed (its drop zone takes uploads); a
# "thumbnail" that is not an image is sent as bytes to save, never rendered or run here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _show_dead_lettered(
    uploads: list[dict[str, Any]], records: list[dict[str, Any]], bucket: str
) -> None:
    """A pending upload whose event waits in dead_letters says so, not "processing" forever.

    A discarded record still explains the upload: its event will not be replayed.
    """
    waiting = {}
    for record in records:
        attrs = record.get("attributes") or {}
        if record.get("status") in (dead_letters.RECORDED, dead_letters.DISCARDED) and bucket in (
            attrs.get("bucket"),
            attrs.get("bucketId"),
        ):
            generation = attrs.get("generation") or attrs.get("objectGeneration")
            waiting[(attrs.get("objectId"), generation)] = record
    for item in uploads:
        letter = waiting.get((item["name"], str(item.get("generation"))))
        if item["status"] == "pending" and letter is not None:
            replay = f"scripts/dead-letters replay {letter['id']}"
            discarded = letter.get("status") == dead_letters.DISCARDED
            item.update(
                status="dead-lettered",
                reason=dead_letters.reason_of(letter),
                message=(
                    f"discarded by {letter.get('discardedBy', '?')}; {replay} --force re-drives it"
                    if discarded
                    else f"replay with: {replay}"
                ),
            )


def _show_abandoned(uploads: list[dict[str, Any]], abandoned: list[dict[str, Any]]) -> None:
    """A pending upload whose trigger the router gave up on (or refused) shows as failed."""
    given_up = {(a.get("object"), str(a.get("generation"))): a for a in abandoned}
    for item in uploads:
        record = given_up.get((item["name"], str(item.get("generation"))))
        if item["status"] == "pending" and record is not None:
            item.update(status="failed", reason=record.get("reason"), message=record.get("detail"))


def _unreadable(doc: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
    generation = doc.get("generation")
    return {
        "generation": generation if isinstance(generation, int) else None,
        "status": "unreadable",
        "reason": "unreadable",
        "message": f"its document is not in the shape the pipeline writes: {exc}",
        "thumbnails": [],
    }


def _placeholder_url(placeholder: Any) -> str | None:
    """The doc's BlurHash as a small PNG at the image's aspect, a data URL the page paints
    before the thumbnail loads; None without a placeholder it can decode."""
    try:
        blurhash, width, height = (placeholder[k] for k in ("blurhash", "width", "height"))
        scale = 32 / max(int(width), int(height))
        size = max(1, round(int(width) * scale)), max(1, round(int(height) * scale))
        return _decoded(str(blurhash), *size)
    except (TypeError, KeyError, ValueError, ZeroDivisionError, BlurhashDecodeError):
        return None


@functools.lru_cache(maxsize=1024)  # the page polls every second
def _decoded(blurhash: str, width: int, height: int) -> str:
    png = io.BytesIO()
    blurhash_decode(blurhash, width, height).save(png, "PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class Gallery:
    """Reads the stack for the page and writes uploads into it."""

    target: targets.Target
    abandoned: Callable[[], list[dict[str, Any]]] = lambda: []  # what the router gave up on

    def uploads(self) -> list[dict[str, Any]]:
        """Objects in the uploads bucket joined with their docs; deleted ones stay listed."""
        bucket = self.target.uploads_bucket
        items: dict[str, dict[str, Any]] = {}
        with self.target.answering("Cloud Storage"):
            for blob in self.target.storage.list_blobs(bucket, **self.target.storage_call()):
                if OUTPUT_MARKER in (blob.metadata or {}):
                    continue
                items[image_doc_id(bucket, blob.name)] = {
                    "name": blob.name,
                    "generation": blob.generation,
                    "size": blob.size,
                    "contentType": blob.content_type,
                    "uploadedAt": _iso(blob.time_created),
                    **self._expected(blob),
                }
        for doc_id, doc in self.target.documents.stream(self.target.images_collection):
            if doc.get("bucket") != bucket:
                continue
            name = doc.get("name")
            item = items.setdefault(doc_id, {"name": name if isinstance(name, str) else doc_id})
            try:
                shown = self._from_doc(doc)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # A doc off its shape (written by hand, or by an older writer) is one
                # unreadable card, never an error for the whole page.
                shown = _unreadable(doc, exc)
            generation = shown.get("generation")
            if (
                "generation" in item
                and isinstance(generation, int)
                and generation < item["generation"]
            ):
                continue  # the doc describes an older upload; the new one is pending
            item.update(shown)
        rows = sorted(items.values(), key=lambda i: str(i.get("uploadedAt") or ""), reverse=True)
        return rows[:MAX_ITEMS]

    def _expected(self, blob: Any) -> dict[str, Any]:
        """An object without a doc is pending, unless make_thumbnail skips it by its own rule
        (a folder placeholder, a name outside the patterns): then it never gets one."""
        obj = StorageObject(self.target.uploads_bucket, blob.name, blob.generation or 0)
        skipped = skip_reason(self.target.settings, obj)
        if skipped is None:
            return {"status": "pending"}
        reason = "folder" if blob.name.endswith("/") else "not_selected"
        return {"status": "skipped", "reason": reason, "message": skipped}

    @staticmethod
    def _from_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
        """The card of a doc; raises (TypeError, ValueError, ...) on one it cannot read."""
        error = doc.get("error") or {}
        timings = doc.get("timings") or {}
        generation = doc.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise TypeError(f"generation {generation!r} is not an integer")
        if not isinstance(doc.get("status"), str):
            raise TypeError(f"status {doc.get('status')!r} is not a string")
        for key, value in (("error", error), ("timings", timings)):
            if not isinstance(value, Mapping):
                raise TypeError(f"{key} is not an object")
        thumbnails = doc.get("thumbnails") or []
        if not isinstance(thumbnails, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("name"), str) for t in thumbnails
        ):
            raise TypeError("thumbnails is not a list of named objects")
        return {
            "generation": generation,
            "size": doc.get("size"),
            "contentType": doc.get("contentType"),
            "uploadedAt": _iso(doc.get("timeCreated")),
            "status": doc.get("status", "pending"),
            "reason": error.get("reason"),
            "message": error.get("message"),
            "width": doc.get("width"),
            "height": doc.get("height"),
            "format": doc.get("format"),
            "placeholder": doc.get("placeholder"),
            "placeholderUrl": _placeholder_url(doc.get("placeholder")),
            "latencyMs": timings.get("total_ms"),
            "thumbnails": [
                {
                    "url": f"/thumbnail?name={quote(t['name'], safe='')}&v={generation}",
                    "box": t.get("box"),
                    "width": t.get("width"),
                    "height": t.get("height"),
                    "contentType": t.get("contentType"),
                    "size": t.get("size"),
                }
                for t in thumbnails
            ],
        }

    def state(self) -> dict[str, Any]:
        """Everything the page shows, in one JSON document."""
        records = dead_letters.load_all(self.target)
        uploads = self.uploads()
        _show_dead_lettered(uploads, records, self.target.uploads_bucket)
        _show_abandoned(uploads, self.abandoned())
        letters = [dead_letters.summary(r) for r in records]
        for row in letters:
            row["recordedAt"] = _iso(row["recordedAt"])
        return {
            "project": self.target.project,
            "buckets": {
                "uploads": self.target.uploads_bucket,
                "thumbnails": self.target.thumbnails_bucket,
            },
            "uploads": uploads,
            "deadLetters": letters,
        }

    def thumbnail(self, name: str) -> tuple[bytes, str] | None:
        """A thumbnail's bytes while its doc lists it: never one whose doc is deleted or erased
        (scripts/erase). Only the thumbnails bucket is ever read for the browser."""
        bucket = self.target.storage.bucket(self.target.thumbnails_bucket)
        with self.target.answering("Cloud Storage"):
            blob = bucket.get_blob(name, **self.target.storage_call())
        if blob is None:
            return None
        source = blob.metadata or {}
        doc_id = image_doc_id(str(source.get("source-bucket")), str(source.get("source-name")))
        doc = self.target.documents.get(self.target.images_collection, doc_id) or {}
        if name not in [t.get("name") for t in doc.get("thumbnails") or []]:
            return None
        with self.target.answering("Cloud Storage"):
            data = blob.download_as_bytes(**self.target.storage_call())
        kind = blob.content_type or ""
        # SVG is a document, whatever the case (media types are case-insensitive, RFC 9110 8.3.1)
        raster = kind.lower().startswith("image/") and "svg" not in kind.lower()
        return data, kind if raster else _OPAQUE

    def upload(self, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Writes an upload (a name GCS refuses gets the GCS front's 400, as from GCS)."""
        blob = self.target.storage.bucket(self.target.uploads_bucket).blob(name)
        with self.target.answering("Cloud Storage"):
            # Not retried: a repeated upload would make a second generation.
            blob.upload_from_string(
                data, content_type=content_type, timeout=self.target.deadline_seconds
            )
        return {"bucket": blob.bucket.name, "name": blob.name, "generation": blob.generation}


class _Handler(GuardedHandler):
    gallery: Gallery  # set on the per-server subclass by `serve`
    extra_headers = (("Content-Security-Policy", CONTENT_SECURITY_POLICY),)

    def on_get(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/state":
            try:
                state = self.gallery.state()
            except Exception as exc:  # an emulator down: the page says so and keeps polling
                error = f"{type(exc).__name__}: {exc}"
                self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": error})
                return
            self.send_json(HTTPStatus.OK, state)
        elif url.path == "/thumbnail" and query.get("name"):
            found = self.gallery.thumbnail(query["name"][0])
            if found is None:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "no such thumbnail"})
            else:
                self.send_body(HTTPStatus.OK, *found)
        else:
            self._static("index.html" if url.path == "/" else url.path.lstrip("/"))

    def _static(self, relative: str) -> None:
        path = (STATIC / relative).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        kind = mimetypes.guess_type(path.name)[0] or _OPAQUE
        self.send_body(HTTPStatus.OK, path.read_bytes(), f"{kind}; charset=utf-8")

    def on_post(self) -> None:
        url = urlsplit(self.path)
        names = parse_qs(url.query, keep_blank_values=True).get("name")
        if url.path != "/upload" or not names:
            raise Refused(HTTPStatus.BAD_REQUEST, "POST /upload?name=OBJECT_NAME")
        name = names[0]  # as given: GCS accepts leading spaces and slashes
        if error := name_error(name):
            raise Refused(HTTPStatus.BAD_REQUEST, error)
        data = self.read_body(MAX_UPLOAD_BYTES)
        content_type = self.headers.get("Content-Type") or _OPAQUE
        self.send_json(HTTPStatus.CREATED, self.gallery.upload(name, data, content_type))


def serve_gallery(gallery: Gallery, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serves `gallery` on a background thread (tests pass a gallery of their own)."""
    handler = type("GalleryHandler", (_Handler,), {"gallery": gallery})
    return serve_in_thread(handler, host, port, "gallery")[0]


def start(
    stack_info: Mapping[str, Any], abandoned: Callable[[], list[dict[str, Any]]]
) -> ThreadingHTTPServer:
    """What `LocalStack.up` calls: a gallery for the stack described by `stack_info`, shown
    what its router `abandoned`."""
    target = targets.from_stack(stack_info, deadline_seconds=DEADLINE_SECONDS)
    return serve_gallery(Gallery(target, abandoned))


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = cast(tuple[str, int], server.server_address)[:2]  # a TCP server
    return f"http://{host}:{port}/"
