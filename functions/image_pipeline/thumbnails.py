"""An object's thumbnails in the thumbnails bucket: where they live, how one run of
make_thumbnail writes them, and which outdated ones it removes (all through the ``Storage``
primitives and their generation preconditions).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from image_pipeline import records
from image_pipeline.errors import GenerationMismatch
from image_pipeline.events import MAX_NAME_BYTES, OUTPUT_MARKER, StorageObject
from image_pipeline.formats import FORMATS, MAX_BOX_SIDE, Box
from image_pipeline.gcs import Storage, StoredObject, Upload
from image_pipeline.imaging import Thumbnail
from image_pipeline.passthrough import FINGERPRINT_KEY, RUN_KEY
from image_pipeline.settings import OutputSettings

# The longest leaf any settings can give a thumbnail ("99999x99999.webp", "9999x9999-c.webp").
_HASHED_DIR = "_long/"
_MAX_LEAF_BYTES = len(f"{MAX_BOX_SIDE}x{MAX_BOX_SIDE}.") + max(map(len, FORMATS))


def thumbnail_folder(prefix: str, bucket: str, name: str) -> str:
    """Where an object's thumbnails live (make_thumbnail and cleanup both ask here):
    ``{prefix}{name}/``, or a hashed folder when that could exceed GCS's name limit or the
    name starts with ``_long/`` (docs/architecture.md, "Thumbnails")."""
    folder = f"{prefix}{name}/"
    fits = len(folder.encode()) + _MAX_LEAF_BYTES <= MAX_NAME_BYTES
    if fits and not name.startswith(_HASHED_DIR):
        return folder
    return f"{prefix}{_HASHED_DIR}{records.image_doc_id(bucket, name)}/"


def thumbnail_name(prefix: str, bucket: str, name: str, box: Box, fmt: str) -> str:
    """Deterministic per source object, box, fit mode and format (docs/architecture.md,
    "Thumbnails"): ``WxH.ext`` fits inside the box, ``WxH-c.ext`` covers it."""
    return f"{thumbnail_folder(prefix, bucket, name)}{box.leaf}.{fmt}"


def own_metadata(obj: StorageObject, fingerprint: str) -> dict[str, str]:
    """The custom metadata the pipeline itself puts on every thumbnail of ``obj``."""
    return {
        OUTPUT_MARKER: "thumbnail",
        "source-bucket": obj.bucket,
        "source-name": obj.name,
        "source-generation": str(obj.generation),
        FINGERPRINT_KEY: fingerprint,
    }


# --- runs of one generation under different output rules --------------------------------
#
# Two runs of one generation under different output rules (a rollout, a redelivery, a
# `backfill --stale`) rank by the server's order: a run's place is the generation number of
# its first thumbnail write, which Cloud Storage assigns per write, in microseconds
# (https://cloud.google.com/storage/docs/metadata#generation-number), carried by its later
# thumbnails as RUN_KEY. A run deletes lower-ranked runs' outputs only, and one that meets a
# higher-ranked run's stops and deletes its own; the doc ranks results alike
# (records.decide). Why two concurrent runs end with one set: docs/outputs.md, "Two runs at
# once".


class _Superseded(Exception):
    """A higher-ranked run of this generation holds a name this run was to write."""


@dataclasses.dataclass
class Run:
    """One run of make_thumbnail over a folder: its rules and its place in the server's order
    (``mark``: None until its first write), ``superseded`` once it met a higher-ranked run's
    output; what it wrote (``entries``, for the result event) and ``removed``; and, when its
    source stopped being the live generation before it was done, ``replaced`` by
    ``live_generation`` (None: deleted)."""

    fingerprint: str
    mark: int | None = None
    superseded: bool = False
    entries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    replaced: bool = False
    live_generation: int | None = None

    def rank(self) -> tuple[int, str]:
        assert self.mark is not None, "ranked before its first write"
        return (self.mark, self.fingerprint)

    def owns(self, stored: StoredObject) -> bool:
        return stored.metadata.get(FINGERPRINT_KEY) == self.fingerprint and (
            self.mark is None or _run_mark(stored) == self.mark
        )


def _run_mark(stored: StoredObject) -> int:
    """The run a thumbnail belongs to: its RUN_KEY, or (a run's first write, or a thumbnail
    from before runs were recorded) its own generation."""
    value = stored.metadata.get(RUN_KEY, "")
    return int(value) if value.isdigit() else stored.generation


def _rank(stored: StoredObject) -> tuple[int, str]:
    return (_run_mark(stored), stored.metadata.get(FINGERPRINT_KEY, ""))


def _source_generation(stored: StoredObject | None) -> int | None:
    value = stored.metadata.get("source-generation") if stored else None
    return int(value) if value and value.isdigit() else None


# --- one source generation's folder ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Folder:
    """The thumbnails of one source generation (``source``), written where and how its
    output ``settings`` say."""

    storage: Storage
    settings: OutputSettings
    source: StorageObject

    def write(self, thumbs: Sequence[Thumbnail], metadata: Mapping[str, str]) -> Run:
        """Write the thumbnails in order (custom ``metadata`` on each), stopping when a
        higher-ranked run holds one; then, with the new outputs in place, remove what
        earlier runs made. The source is stat'ed before the writes and after: when it is no
        longer this generation, what the run wrote goes too (docs/architecture.md,
        "Thumbnails": why the stat after the writes closes the race)."""
        run = Run(self.settings.fingerprint)
        live = self._live_generation()
        if live == self.source.generation:
            for thumb in thumbs:
                try:
                    entry = self._put(thumb, metadata, run)
                except _Superseded:
                    run.superseded = True
                    break
                run.entries += [entry] if entry is not None else []
            live = self._live_generation()
        if live != self.source.generation:
            run.entries, run.replaced, run.live_generation = [], True, live
            run.removed = self.delete_older()
        else:
            run.removed = self._remove_outdated(run)
        return run

    def delete_older(self) -> list[str]:
        """Delete the source's thumbnails of its generation or older; keep newer ones."""
        return self._delete(self._listed())

    def _live_generation(self) -> int | None:
        live = self.storage.stat(self.source.bucket, self.source.name)
        return live.generation if live is not None else None

    def _put(
        self, thumb: Thumbnail, metadata: Mapping[str, str], run: Run
    ) -> dict[str, Any] | None:
        """Write a thumbnail unless one of a newer source generation is there, or this
        generation's made by this run (a redelivery), or by a higher-ranked run (raises
        ``_Superseded``); create-only first, read and replaced under a precondition only
        when refused (docs/architecture.md, "Thumbnails"). The first write sets
        ``run.mark``; a first name already written by this run's rules adopts that run's
        mark. Returns its entry for the result event, None when a newer generation won.
        """
        bucket, source = self.settings.thumbnails_bucket, self.source
        name = thumbnail_name(
            self.settings.thumbnail_prefix, source.bucket, source.name, thumb.box, thumb.format
        )
        mark = {} if run.mark is None else {RUN_KEY: str(run.mark)}
        upload = Upload(
            thumb.data, thumb.content_type, self.settings.cache_control, {**metadata, **mark}
        )
        written: StoredObject | None
        try:
            written = self.storage.upload(bucket, name, upload, if_generation_match=0)
        except GenerationMismatch:
            live = self.storage.stat(bucket, name)
            written = self._replace(name, upload, live, run)
            if written is None:
                if live is None or _source_generation(live) != source.generation:
                    return None  # a newer source generation holds the name
                run.mark = _run_mark(live)  # this run's already: adopted, or unchanged
        if run.mark is None and written is not None:
            run.mark = written.generation
        return {
            "bucket": bucket,
            "name": name,
            "uri": f"gs://{bucket}/{name}",
            # Its address on the XML API endpoint, the name percent-encoded but for "/"
            # (https://cloud.google.com/storage/docs/request-endpoints).
            "url": f"https://storage.googleapis.com/{bucket}/{urllib.parse.quote(name, safe='/')}",
            "box": str(thumb.box),
            "width": thumb.width,
            "height": thumb.height,
            "contentType": thumb.content_type,
            "size": len(thumb.data),
            "frames": thumb.frames,
        }

    def _replace(
        self, name: str, upload: Upload, live: StoredObject | None, run: Run
    ) -> StoredObject | None:
        """Overwrite ``live`` (under a precondition on its generation) when it holds an older
        source generation, or this one's from a lower-ranked run (or any run, when this run
        has not written yet: its write will rank above). None when it is left alone: a newer
        source generation's, or this run's own."""
        held = _source_generation(live)
        if live is not None and held is not None and held > self.source.generation:
            return None
        if live is not None and held == self.source.generation:
            if run.owns(live):
                return None
            if run.mark is not None and _rank(live) > run.rank():
                raise _Superseded(name)
        match = live.generation if live else 0
        bucket = self.settings.thumbnails_bucket
        return self.storage.upload(bucket, name, upload, if_generation_match=match)

    def _remove_outdated(self, run: Run) -> list[str]:
        """The removal step after this run's writes, over one listing of the folder: older
        generations' thumbnails and lower-ranked runs' go; after a higher-ranked run's (here
        or met while writing), this run's own go instead and ``run.superseded`` is set."""
        listed = self._listed()
        if run.mark is None:  # every name held a newer source generation's output
            return []
        generation = self.source.generation
        same = [t for t in listed if _source_generation(t) == generation]
        run.superseded = run.superseded or any(_rank(t) > run.rank() for t in same)
        return self._delete(
            [
                t
                for t in listed
                if _source_generation(t) != generation
                or (_rank(t) < run.rank() if not run.owns(t) else run.superseded)
            ]
        )

    def _listed(self) -> list[StoredObject]:
        """The source's thumbnails of its generation or older, from one listing of its
        folder (a newer generation's are its own run's business)."""
        source = self.source
        folder = thumbnail_folder(self.settings.thumbnail_prefix, source.bucket, source.name)
        found = []
        for thumb in self.storage.list(self.settings.thumbnails_bucket, folder):
            meta = thumb.metadata
            if meta.get("source-bucket") != source.bucket or meta.get("source-name") != source.name:
                continue
            held = _source_generation(thumb)
            if held is not None and held <= source.generation:
                found.append(thumb)
        return found

    def _delete(self, listed: list[StoredObject]) -> list[str]:
        """Each delete is conditional on the generation listed: a thumbnail rewritten
        meanwhile (by a generation at least as new, or a higher-ranked run) is its writer's."""
        deleted, bucket = [], self.settings.thumbnails_bucket
        for thumb in listed:
            try:
                self.storage.delete(bucket, thumb.name, if_generation_match=thumb.generation)
            except GenerationMismatch:
                continue  # rewritten since listed: a generation at least as new owns it now
            deleted.append(thumb.name)
        return deleted
