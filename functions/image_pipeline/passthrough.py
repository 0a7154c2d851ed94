"""Custom metadata copied from an original to its thumbnails and its doc (``METADATA_KEYS``).

Cloud Storage allows at most 8 KiB of custom metadata per object, keys and values together
(https://cloud.google.com/storage/quotas#objects); a thumbnail already carries the pipeline's
own keys (loop marker, source, generation, fingerprint), so a copied key that would take it
over the limit is left out and named, never a failed upload. The doc's ``metadata`` holds the
same keys: far within Firestore's 1 MiB per document (https://cloud.google.com/firestore/quotas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from image_pipeline.events import OUTPUT_MARKER

MAX_CUSTOM_METADATA_BYTES = 8 * 1024
# A thumbnail's key for the output rules' fingerprint it was made under.
FINGERPRINT_KEY = "output-fingerprint"
# A thumbnail's key for the run that wrote it: the generation number of that run's first
# write (absent on the first write itself: its own generation). image_pipeline.pipeline.
RUN_KEY = "outputs-generation"
# Room kept for RUN_KEY's value: the widest generation number (int64, 19 digits).
RUN_VALUE_WIDTH = 19
# What the pipeline writes on every thumbnail itself: never copied over from an original.
PIPELINE_KEYS = frozenset(
    {OUTPUT_MARKER, "source-bucket", "source-name", "source-generation", FINGERPRINT_KEY, RUN_KEY}
)


def metadata_bytes(metadata: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())


def copied(
    source: Mapping[str, str], keys: Sequence[str], ours: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """(the keys of ``source`` named in ``keys`` that fit beside ``ours``, in that order;
    the keys present but left out for want of room)."""
    kept: dict[str, str] = {}
    omitted: list[str] = []
    room = MAX_CUSTOM_METADATA_BYTES - metadata_bytes(ours)
    for key in keys:
        if key not in source or key in ours:
            continue
        size = len(key.encode()) + len(str(source[key]).encode())
        if size > room:
            omitted.append(key)
            continue
        kept[key] = str(source[key])
        room -= size
    return kept, omitted
