"""Custom metadata copied from an original to its thumbnails and its doc (``METADATA_KEYS``,
docs/outputs.md). A key that would not fit Cloud Storage's 8 KiB per object beside the
pipeline's own (https://cloud.google.com/storage/quotas#objects) is left out and named, never
a failed upload; so is a value not every API can hold: not UTF-8, or with a control
character but HTAB, which ``x-goog-meta-*`` headers cannot carry
(https://cloud.google.com/storage/docs/metadata#custom-metadata; RFC 9110, 5.5)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from image_pipeline.events import OUTPUT_MARKER

MAX_CUSTOM_METADATA_BYTES = 8 * 1024
# A thumbnail's key for the output rules' fingerprint it was made under.
FINGERPRINT_KEY = "output-fingerprint"
# A thumbnail's key for the run that wrote it: the generation number of that run's first
# write (absent on the first write itself: its own generation): image_pipeline.thumbnails.
RUN_KEY = "outputs-generation"
# Room kept for RUN_KEY and its value: the widest generation number (int64, 19 digits).
_RUN_BYTES = len(RUN_KEY) + 19
# RFC 9110, 5.5: an HTTP field value holds no control character but HTAB.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What the pipeline writes on every thumbnail itself: never copied over from an original.
PIPELINE_KEYS = frozenset(
    {OUTPUT_MARKER, "source-bucket", "source-name", "source-generation", FINGERPRINT_KEY, RUN_KEY}
)


def copied(
    source: Mapping[str, str], keys: Sequence[str], ours: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """(the keys of ``source`` named in ``keys`` that fit beside ``ours`` and a run mark, in
    that order; the keys present but left out for want of room; those left out for holding
    a control character or a lone surrogate)."""
    kept: dict[str, str] = {}
    omitted: list[str] = []
    refused: list[str] = []
    room = MAX_CUSTOM_METADATA_BYTES - _RUN_BYTES
    room -= sum(len(k.encode()) + len(v.encode()) for k, v in ours.items())
    for key in keys:
        if key not in source or key in ours:
            continue
        value = str(source[key])
        if not _holdable(value):
            refused.append(key)
            continue
        size = len(key.encode()) + len(value.encode())
        if size > room:
            omitted.append(key)
        else:
            kept[key] = value
            room -= size
    return kept, omitted, refused


def _holdable(value: str) -> bool:
    """Text Cloud Storage can hold in every API: UTF-8 (no lone surrogate from a JSON
    escape) without control characters."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return not CONTROL_CHARACTERS.search(value)
